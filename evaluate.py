"""Held-out evaluation against honest baselines and an oracle ceiling: the command.

    python evaluate.py [--vqvae runs/vqvae.pt] [--bert runs/bert.pt] [--data DIR] [--split test]
                       [--json results.json] [--report DIR]

It prints and saves the figures that `evaluation.py` and `evaluation_bert.py` compute (see there, and the README's
Results and JSON keys): the tokenizer's reconstruction; BERT's masked modelling, inpainting and
separation, token-only and refined by the mixture (Eq. 10), against the mixture and the oracle;
and, with `--report`, a listening page (`report.py`).
"""
from pathlib import Path

from checkpoint import load_bert, load_vqvae
from cli import ArgumentParser, number_list, pick_device, run_main
from data import embedded_dataset
from evaluation import evaluate_reconstruction, held_out_chunks, print_reconstruction, write_json
from evaluation_bert import evaluate_bert, held_out_tokens
from files import UserError, refuse_existing

CANDIDATE_NAMES = {"tokens": "BERT's tokens", "refined": "refined (Eq. 10)", "expected": "soft decoding",
                   "expected_refined": "soft, refined", "mixture": "mixture",
                   "mixture_tokens": "mixture's tokens",
                   "oracle": "oracle tokens", "oracle_refined": "oracle refined"}


def print_bert(results):
    mlm = results["mlm"]
    print(f"masked modelling, 15% BERT masking ({mlm['windows']} windows)")
    print(f"  top-1 accuracy {mlm['accuracy']:.3f} +- {mlm['accuracy_ci95']:.3f}   top-5 {mlm['top5_accuracy']:.3f}   "
          f"unigram baseline {mlm['unigram_accuracy']:.3f} (ratio {mlm['accuracy'] / max(mlm['unigram_accuracy'], 1e-9):.1f}x)   "
          f"neighbour baseline {mlm['neighbour_accuracy']:.3f}")
    if "accuracy_by_level" in mlm:  # frames of Q codes: the figures above are level 1's
        print("  by level (top-1 / unigram): " + ", ".join(
            f"{q + 1}: {a:.3f} / {u:.3f}" for q, (a, u) in enumerate(zip(mlm["accuracy_by_level"], mlm["unigram_accuracy_by_level"]))))
    print(f"  counting twins (code cosine >= 0.99) as right: {mlm['twin_accuracy']:.3f}; commonest guess: code "
          f"{mlm['most_predicted_code']} on {mlm['most_predicted_share']:.0%} of frames; unigram code {mlm['unigram_code']} "
          f"has {mlm['unigram_code_twins']} twin(s)")
    inp = results["inpainting"]
    print(f"inpainting, gap of {inp['gap_tokens']} tokens = {inp['gap_seconds']:.3f} s ({inp['gaps']} gaps, "
          f"{inp['decoding_steps']} decoding steps, temperature {inp['decoding_temperature']:g}, "
          f"reveal noise {inp['decoding_reveal_noise']:g}), "
          f"MR-STFT distance on the gap (lower is better)")
    print(f"  BERT {inp['mrstft_gap']:.3f} +- {inp['mrstft_gap_ci95']:.3f}   silence {inp['mrstft_gap_silence']:.3f}   "
          f"cross-fade {inp['mrstft_gap_crossfade']:.3f}   oracle tokens {inp['mrstft_gap_oracle']:.3f}" + unigram_text(inp))
    print_log_mel(inp, "")
    print("  BERT by decoding steps: " + ", ".join(f"{n}: {v:.3f}" for n, v in inp["mrstft_gap_by_steps"].items()))
    for seconds, gap in [("", inp), *results.get("inpainting_gaps", {}).items()]:
        for key, name in (("mrstft_gap_by_temperature", "sampling temperature"), ("mrstft_gap_by_reveal_noise", "reveal noise")):
            if key in gap:
                print(f"  BERT by {name}{f' (gap of {seconds} s)' if seconds else ''}: " + ", ".join(
                    f"{t}: {m:.3f} +- {ci:.3f}" for t, (m, ci) in gap[key].items()))
    for seconds, gap in results.get("inpainting_gaps", {}).items():
        if "skipped" in gap:
            print(f"  gap of {seconds} s: {gap['skipped']}")
        else:
            print(f"  gap of {seconds} s ({gap['gap_tokens']} tokens, {gap['gaps']} gaps): BERT {gap['mrstft_gap']:.3f} +- "
                  f"{gap['mrstft_gap_ci95']:.3f}   silence {gap['mrstft_gap_silence']:.3f}   cross-fade "
                  f"{gap['mrstft_gap_crossfade']:.3f} +- {gap['mrstft_gap_crossfade_ci95']:.3f}   oracle {gap['mrstft_gap_oracle']:.3f}"
                  + unigram_text(gap))
            print_log_mel(gap, f" (gap of {seconds} s)")
    if "separation" in results:
        print_separation(results)


def unigram_text(gap):
    return f"   unigram codes {gap['mrstft_gap_unigram']:.3f} +- {gap['mrstft_gap_unigram_ci95']:.3f}" if "mrstft_gap_unigram" in gap else ""


def print_log_mel(gap, where):
    print(f"  log-mel distance on the gap{where}, dB: " + ", ".join(
        f"{name} {m:.2f} +- {ci:.2f}" for name, (m, ci) in gap["log_mel_gap"].items()))
    print("    RMS level of each fill, dB: " + ", ".join(f"{name} {v:.1f}" for name, v in gap["gap_level_db"].items()))
    if "gap_code_nll" in gap:
        print("    NLL of the true level-1 codes of the gap, nats per code (first pass): " + ", ".join(
            f"{name} {m:.3f} +- {ci:.3f}" for name, (m, ci) in gap["gap_code_nll"].items()))
        print("      BERT's by distance from the nearest known frame (frames): " + ", ".join(
            f"{bins} {nll:.3f}" for bins, nll in gap["gap_code_nll_by_distance"].items()))


def print_separation(results):
    steps, refinement = results["separation_steps"], results["separation_refinement"]
    print(f"separation, {steps['chunk_seconds']:.2f} s chunks, {steps['default_steps']} decoding steps, "
          f"refined with {refinement['default']} (dB; MR-STFT and log-mel distances: lower is better)")
    for stem, r in results["separation"].items():
        print(f"  {stem} ({r['chunks']} chunks)   {'SI-SDRi':>15} {'SI-SDR':>7} {'BSS SDR':>8} {'MR-STFT':>8} {'log-mel':>8}")
        for name, m in r["metrics"].items():
            improvement = f"{m['si_sdri_db']:+6.2f} +- {m['si_sdri_db_ci95']:<5.2f}" if "si_sdri_db" in m else ""
            print(f"    {CANDIDATE_NAMES[name]:<18} {improvement:>15} {m['si_sdr_db']:>7.2f} {m['bss_sdr_db']:>8.2f} "
                  f"{m['mrstft']:>8.3f} {m['log_mel_distance']:>8.2f}")
    print(f"  token-only SI-SDRi by decoding steps ({steps['chunks_per_track']} chunk(s) per track): " + "; ".join(
        f"{n}: " + ", ".join(f"{stem} {v:+.2f}" for stem, v in by_stem.items())
        for n, by_stem in steps["si_sdri_db"].items()))
    if "si_sdri_db_by_levels" in steps:
        print("  token-only SI-SDRi from the first n levels of BERT's tokens: " + "; ".join(
            f"{n}: " + ", ".join(f"{stem} {v:+.2f}" for stem, v in by_stem.items())
            for n, by_stem in steps["si_sdri_db_by_levels"].items()))
    for weight, kinds in steps.get("si_sdri_db_by_mixture_prior", {}).items():
        print(f"  SI-SDRi with mixture prior {weight}: " + "; ".join(
            f"{kind}: " + ", ".join(f"{stem} {mean:+.2f} +- {ci:.2f}" for stem, (mean, ci) in by_stem.items())
            for kind, by_stem in kinds.items()))
    print("  refined SI-SDRi by Eq. 10 setting (choose on the validation split):")
    for name, by_stem in refinement["si_sdri_db"].items():
        print(f"    {name:<28} " + ", ".join(f"{stem} {v:+.2f}" for stem, v in by_stem.items()))
    use = results["mixture_use"]
    print(f"  mixture-use check, one-shot accuracy of fully masked stem tokens: true mixture "
          f"{use.get('true_mixture', float('nan')):.3f}, another track's {use.get('other_mixture', float('nan')):.3f}, "
          f"copying the mixture's token {use.get('mixture_copy', float('nan')):.3f}")


def main():
    parser = ArgumentParser(description="Evaluate the tokenizer (and BERT) on held-out data.")
    parser.add_argument("--vqvae", default="runs/vqvae.pt", help="VQ-VAE checkpoint (default runs/vqvae.pt)")
    parser.add_argument("--bert", default=None, help="BERT checkpoint (default runs/bert.pt if it exists; 'none' to skip)")
    parser.add_argument("--data", default=None, help="dataset folder (default: the embedded synthetic dataset)")
    parser.add_argument("--split", default="test", choices=["validation", "test"], help="split to score")
    parser.add_argument("--chunks-per-track", type=int, default=4, help="reconstruction chunks per track and source")
    parser.add_argument("--separation-chunks", type=int, default=4, help="separation chunks (2 s) per track and stem")
    parser.add_argument("--steps-chunks", type=int, default=1,
                        help="of those, chunks per track also scored at every --separation-steps value")
    parser.add_argument("--separation-steps", default="1,4,8,16", help="comma-separated decoding steps to score separation with")
    parser.add_argument("--gap-seconds", default=None,
                        help="comma-separated further inpainting gaps in seconds, e.g. 0.128,1.0 (at most half the context)")
    parser.add_argument("--inpaint-temperatures", default=None,
                        help="comma-separated sampling temperatures to fill every gap with too, e.g. 0.7,1.0 (0 = argmax)")
    parser.add_argument("--inpaint-steps", default=None,
                        help="comma-separated decoding steps to fill every gap with, the first the headline (default 1,8 "
                             "for the quarter-context gap, 1 for --gap-seconds)")
    parser.add_argument("--reveal-noises", default=None,
                        help="comma-separated MaskGIT reveal noises to fill every gap with too, e.g. 1,10 (0 = most "
                             "confident first)")
    parser.add_argument("--mixture-priors", default=None,
                        help="comma-separated mixture prior weights to separate with too, e.g. 1,2,4 (tasks.py; 0 = none)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--report", default=None, help="also write a listening page (DIR/index.html) of a few examples of the scored split")
    parser.add_argument("--overwrite", action="store_true", help="replace the --json file or --report page if it exists")
    args = parser.parse_args()
    refuse_existing([p for p in (args.json, args.report and Path(args.report) / "index.html") if p], args.overwrite)
    if min(args.chunks_per_track, args.separation_chunks, args.steps_chunks) < 1:
        raise UserError("--chunks-per-track, --separation-chunks and --steps-chunks must be at least 1")
    separation_steps = number_list(args.separation_steps, "--separation-steps", int, lambda n: n >= 1, "at least 1")
    gap_seconds = number_list(args.gap_seconds, "--gap-seconds", float, lambda g: 0 < g < float("inf"), "positive and finite")
    temperatures = number_list(args.inpaint_temperatures, "--inpaint-temperatures", float, lambda t: 0 <= t < float("inf"),
                               "finite and at least 0")
    inpaint_steps = number_list(args.inpaint_steps, "--inpaint-steps", int, lambda n: n >= 1, "at least 1")
    reveal_noises = number_list(args.reveal_noises, "--reveal-noises", float, lambda r: 0 <= r < float("inf"),
                                "finite and at least 0")
    mixture_priors = number_list(args.mixture_priors, "--mixture-priors", float, lambda w: 0 <= w < float("inf"),
                                 "finite and at least 0")
    device = pick_device(args.device)
    model = load_vqvae(args.vqvae, device)
    data_root = args.data or embedded_dataset(model.config.sample_rate)
    chunks = held_out_chunks(data_root, args.split, model.config.sample_rate, args.chunks_per_track)
    results = {"reconstruction": evaluate_reconstruction(model, chunks, device)}
    print_reconstruction(results["reconstruction"], f"reconstruction, {args.split} split")
    bert_path = args.bert or ("runs/bert.pt" if Path("runs/bert.pt").exists() else "none")
    if bert_path == "none" and args.report:
        raise UserError(f"{args.report}: the listening page needs a BERT checkpoint (--bert)")
    if bert_path != "none":
        bert, vocab = load_bert(bert_path, model, device)
        cache, validation, tracks = held_out_tokens(model, vocab, data_root, args.split, Path(args.vqvae).parent, device,
                                                    bert.config.stem_latents)
        results.update(evaluate_bert(bert, vocab, model, cache, validation, tracks, device,
                                     separation_per_track=args.separation_chunks, separation_steps=separation_steps,
                                     steps_per_track=args.steps_chunks, gap_seconds=gap_seconds,
                                     inpaint_temperatures=temperatures, inpaint_steps=inpaint_steps,
                                     reveal_noises=reveal_noises, mixture_priors=mixture_priors))
        print_bert(results)
        if args.report:
            from report import write_report  # matplotlib only when pictures are asked for
            print(f"listening page -> {write_report(args.report, bert, vocab=vocab, vqvae=model, cache=cache, tracks=tracks, device=device)}")
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    run_main(main)
