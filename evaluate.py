"""Held-out evaluation against honest baselines and an oracle ceiling: the command.

    python evaluate.py [--vqvae runs/vqvae.pt] [--bert runs/bert.pt] [--data DIR] [--split test]
                       [--gap-seconds 1.0] [--json results.json] [--report DIR]

Prints the headline table and saves every figure of `evaluation.py` and `evaluation_bert.py`; with
`--report`, a listening page (`report.py`).
"""
from pathlib import Path

from checkpoint import load_bert, load_vqvae
from cli import ArgumentParser, add_device_flag, add_overwrite_flag, number_list, pick_device, run_main
from data import embedded_dataset
from evaluation import evaluate_reconstruction, held_out_chunks, print_reconstruction, write_json
from evaluation_bert import CANDIDATES, GAP_FILLS, SEPARATION_SECONDS, evaluate_bert, held_out_tokens
from files import UserError, check_writable, refuse_existing
from pretrained import check_shipped_paths, default_models, work_folder

def print_bert(results):
    mlm = results["mlm"]
    print(f"masked modelling, 15% BERT masking ({mlm['windows']} windows)")
    print(f"  top-1 accuracy {mlm['accuracy']:.3f} +- {mlm['accuracy_ci95']:.3f}   top-5 {mlm['top5_accuracy']:.3f}   "
          f"unigram baseline {mlm['unigram_accuracy']:.3f} (ratio {mlm['accuracy'] / max(mlm['unigram_accuracy'], 1e-9):.1f}x)   "
          f"neighbour baseline {mlm['neighbour_accuracy']:.3f}")
    for gap in [results["inpainting"], *results.get("inpainting_gaps", {}).values()]:
        if "skipped" in gap:
            print(f"inpainting: {gap['skipped']}")
            continue
        print(f"inpainting, gap of {gap['gap_tokens']} frames = {gap['gap_seconds']:.3f} s ({gap['gaps']} gaps; BERT "
              f"{gap['bert']}), on the gap (lower is better): MR-STFT distance / log-spectral distance in dB")
        names = [name for name in GAP_FILLS if f"mrstft_{name}" in gap]
        print("  " + "   ".join(f"{GAP_FILLS[name]} {gap[f'mrstft_{name}']:.2f} +- {gap[f'mrstft_{name}_ci95']:.2f} / "
                                f"{gap[f'lsd_db_{name}']:.1f}" for name in names))
    if "separation" in results:
        separation = results["separation"]
        print(f"separation, {SEPARATION_SECONDS:g} s chunks, SI-SDRi in dB over the mixture (higher is better; "
              f"refined = Eq. 10, latents = Eq. 11)")
        heads = (f"{stem} ({r['chunks']})" for stem, r in separation.items())
        print(f"  {'':<24}" + "".join(f"{head:>16}" for head in heads))
        for name in (c for c in CANDIDATES if c != "mixture"):
            cells = (f"{m['si_sdri_db']:+6.2f} +- {m['si_sdri_db_ci95']:<5.2f}" for m in (r["metrics"][name] for r in separation.values()))
            print(f"  {CANDIDATES[name]:<24}" + "".join(f"{cell:>16}" for cell in cells))


def main():
    parser = ArgumentParser(description="Evaluate the tokenizer (and BERT) on held-out data.")
    parser.add_argument("--vqvae", default=None, help="VQ-VAE checkpoint (default runs/vqvae.pt if it exists, else pretrained/vqvae.pt)")
    parser.add_argument("--bert", default=None, help="BERT checkpoint (default: bert.pt beside the VQ-VAE if it exists; 'none' to skip)")
    parser.add_argument("--data", default=None, help="dataset folder (default: the embedded synthetic dataset)")
    parser.add_argument("--split", default="test", choices=["validation", "test"], help="split to score")
    parser.add_argument("--gap-seconds", default=None,
                        help="comma-separated further inpainting gaps in seconds, e.g. 0.5,1 (BERT fills at most half its context)")
    add_device_flag(parser)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--report", default=None, help="also write a listening page (DIR/index.html) of a few examples")
    add_overwrite_flag(parser, "the --json file or --report page")
    args = parser.parse_args()
    outputs = [p for p in (args.json, args.report and Path(args.report) / "index.html") if p]
    check_writable(outputs)
    refuse_existing(outputs, args.overwrite)
    gap_seconds = number_list(args.gap_seconds, "--gap-seconds", float, lambda g: 0 < g < float("inf"), "positive and finite")
    device = pick_device(args.device)
    default_models(args, with_bert=False)
    model = load_vqvae(args.vqvae, device)
    beside = Path(args.vqvae).parent / "bert.pt"  # the BERT trained on this tokenizer's tokens, by default
    bert_path = args.bert or (str(beside) if beside.exists() else "none")
    check_shipped_paths([bert_path])
    if bert_path == "none" and args.report:
        raise UserError(f"{args.report}: the listening page needs a BERT checkpoint (--bert)")
    if bert_path != "none":  # a wrong checkpoint is refused before any work
        bert, vocab = load_bert(bert_path, model, device)
    data_root = args.data or embedded_dataset(model.config.sample_rate)
    chunks = held_out_chunks(data_root, args.split, model.config.sample_rate, chunks_per_track=4)
    results = {"reconstruction": evaluate_reconstruction(model, chunks, device)}
    print_reconstruction(results["reconstruction"], f"reconstruction, {args.split} split")
    if bert_path != "none":
        cache, validation, tracks = held_out_tokens(model, vocab, data_root, args.split, work_folder(args.vqvae), device)
        results.update(evaluate_bert(bert, vocab, model, cache, validation, tracks, device, gap_seconds=gap_seconds))
        print_bert(results)
        if args.report:
            from report import write_report  # matplotlib only when pictures are asked for
            print(f"listening page -> {write_report(args.report, bert, vocab=vocab, vqvae=model, cache=cache, tracks=tracks, device=device)}")
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    run_main(main)
