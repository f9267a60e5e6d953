"""Held-out evaluation against honest baselines and an oracle ceiling.

    python evaluate.py [--vqvae runs/vqvae.pt] [--bert runs/bert.pt] [--data DIR] [--split test]
                       [--json results.json]

- reconstruction (the tokenizer): SI-SDR, MR-STFT distance, codebook use, token rate, bitrate.
- mlm (BERT, plain 15% masking of single-source windows): top-1 / top-5 accuracy, beside the
  unigram baseline (always guess the most frequent code of the *validation* split).
- inpainting (Eq. 7, a gap a quarter of the context long, in mixtures): MR-STFT distance on the
  gap for BERT, for silence, for a cross-fade of the neighbouring audio, and for the oracle
  (decoding the true tokens: the tokenizer's own floor).
- separation (Eq. 8, per stem): SI-SDR of the estimate, of the unprocessed mixture (the baseline),
  their difference SI-SDRi, and the oracle (decoding the true stem tokens); the same against the
  number of decoding steps; and the mixture-use check: accuracy of the fully masked stem tokens
  given the true mixture vs another track's.
Every figure is a mean over held-out chunks with a 95% confidence interval and the chunk count.
`evaluate_reconstruction` also scores the validation split during tokenizer training.
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from checkpoint import load_bert, load_vqvae
from cli import ArgumentParser, autocast, pick_device, run_main
from data import embedded_dataset, eval_chunks, find_tracks, is_silent, read_source
from decoding import maskgit_fill
from files import UserError, atomic_write, refuse_existing
from losses import reconstruction_loss, spectral_loss
from masking import IGNORE, bert_mask, middle_mask
from metrics import mean_ci95, mrstft_distance, si_sdr
from tasks import separate_tokens, separation_inputs, single_source_inputs
from tokens import TokenCache, build_token_cache, cache_folder, vqvae_fingerprint

EVAL_SECONDS = 1.0  # length of each held-out chunk
DEFAULT_STEPS = 1  # decoding steps of the headline separation figures (infer.py separate's default)
INPAINT_STEPS = (8, 1)  # decoding steps scored for inpainting; the first is the headline (infer.py's default)


def held_out_chunks(data_root, split, sample_rate, chunks_per_track):
    """(track, source, waveform) chunks of EVAL_SECONDS from one split, mixture and stems."""
    tracks = find_tracks(data_root, split)
    sources = sorted({source for track in tracks for source in track.sources})
    length = int(EVAL_SECONDS * sample_rate)
    return eval_chunks(tracks, sample_rate, length, sources, chunks_per_track=chunks_per_track)


@torch.no_grad()
def evaluate_reconstruction(model, chunks, device, batch_size=16):
    """Encode + decode each chunk; return a dict of metrics (see README, 'Results')."""
    model.eval()
    per_source, all_sdr, all_mrstft, losses = {}, [], [], []
    counts = torch.zeros(model.config.num_codes)
    for start in range(0, len(chunks), batch_size):
        batch = chunks[start:start + batch_size]
        x = torch.from_numpy(np.stack([wave for _, _, wave in batch])).unsqueeze(1).to(device)  # (B, 1, T)
        with autocast(device):
            indices = model.encode(x)  # (B, S)
            x_hat = model.decode(indices, x.shape[-1]).float()  # (B, 1, T)
        losses.append(float(reconstruction_loss(x, x_hat) + spectral_loss(x, x_hat)) * len(batch))
        counts += torch.bincount(indices.flatten().cpu(), minlength=model.config.num_codes).float()
        for (_, source, wave), recon in zip(batch, x_hat[:, 0].cpu().numpy()):
            sdr, distance = si_sdr(wave, recon), mrstft_distance(wave, recon)
            all_sdr.append(sdr)
            all_mrstft.append(distance)
            per_source.setdefault(source, []).append(sdr)
    probs = counts / counts.sum()
    sample_rate, hop = model.config.sample_rate, model.hop
    sdr_mean, sdr_ci = mean_ci95(all_sdr)
    mrstft_mean, mrstft_ci = mean_ci95(all_mrstft)
    return {
        "chunks": len(chunks),
        "loss": sum(losses) / len(chunks),
        "si_sdr_db": sdr_mean, "si_sdr_db_ci95": sdr_ci,
        "si_sdr_db_by_source": {s: mean_ci95(v)[0] for s, v in sorted(per_source.items())},
        "mrstft": mrstft_mean, "mrstft_ci95": mrstft_ci,
        "codes_used_fraction": float((counts > 0).float().mean()),
        "perplexity": float(torch.exp(-(probs * torch.log(probs + 1e-10)).sum())),
        "tokens_per_second": sample_rate / hop,
        "bitrate_kbps": sample_rate / hop * math.log2(model.config.num_codes) / 1000,
        "seconds_per_512_tokens": 512 * hop / sample_rate,
    }


def print_reconstruction(metrics, title):
    print(f"{title} ({metrics['chunks']} chunks of {EVAL_SECONDS:g} s)")
    print(f"  SI-SDR           {metrics['si_sdr_db']:6.2f} dB +- {metrics['si_sdr_db_ci95']:.2f} (95% CI)")
    for source, value in metrics["si_sdr_db_by_source"].items():
        print(f"    {source:<14} {value:6.2f} dB")
    print(f"  MR-STFT distance {metrics['mrstft']:6.3f} +- {metrics['mrstft_ci95']:.3f}")
    print(f"  codes used       {100 * metrics['codes_used_fraction']:5.1f} %   perplexity {metrics['perplexity']:.1f}")
    print(f"  {metrics['tokens_per_second']:g} tokens/s, {metrics['bitrate_kbps']:.2f} kbit/s, "
          f"512 tokens = {metrics['seconds_per_512_tokens']:.3f} s of audio")


# ---- BERT: masked modelling, inpainting, separation ----

def evenly_spaced(cache, length, per_track):
    """[(track index, first frame in the cache)] of `per_track` windows of `length` frames per track."""
    windows = []
    for t in range(len(cache.starts) - 1):
        start, end = cache.track_range(t)
        if end - start < length:
            continue
        for k in range(per_track):
            centre = start + (k + 0.5) * (end - start) / per_track
            windows.append((t, int(np.clip(centre - length / 2, start, end - length))))
    if not windows:
        raise UserError(f"every track of the {len(cache.starts) - 1} held-out tracks is shorter than {length} tokens")
    return windows


def batched(items, size):
    for first in range(0, len(items), size):
        yield items[first:first + size]


def rows(cache, row, windows, length):
    """(B, length) int64 tokens of one source at the given windows."""
    return torch.from_numpy(np.stack([cache.tokens[row, a:a + length] for _, a in windows]).astype(np.int64))


@torch.no_grad()
def evaluate_mlm(bert, vocab, cache, unigram_code, device, per_track=4, batch_size=16):
    """Plain BERT masking (15%, 80/10/10) of single-source windows of the full context.

    Two baselines: the unigram guess (the most frequent code), and the neighbour guess (the code
    nearest to the sum of the visible latents just before and after: interpolation, no learning).
    """
    L = bert.config.max_positions
    generator = torch.Generator().manual_seed(0)
    windows = [(row, w) for row in range(len(cache.sources)) for w in evenly_spaced(cache, L, per_track)]
    top1, top5, unigram, neighbours = [], [], [], []
    for batch in batched(windows, batch_size):
        tokens = torch.cat([rows(cache, row, [w], L) for row, w in batch])  # (B, L)
        features = torch.stack([cache.latents(row, a, a + L) for row, (_, a) in batch])  # (B, L, D)
        inputs, labels = bert_mask(tokens, vocab, generator)
        batch_inputs = single_source_inputs(inputs, features, hidden=labels != IGNORE)
        with autocast(device):
            logits, _ = bert(**{key: value.to(device) for key, value in batch_inputs.items()})
        chosen = labels != IGNORE  # (B, L)
        best5 = logits.float().topk(5, dim=-1).indices.cpu()  # (B, L, 5)
        # neighbour baseline: the code nearest to the sum of the visible latents on either side
        visible = batch_inputs["features"]  # (B, L, D), zero where hidden
        around = F.pad(visible, (0, 0, 1, 0))[:, :-1] + F.pad(visible, (0, 0, 0, 1))[:, 1:]  # (B, L, D)
        neighbour = (around @ bert.codebook.cpu().t()).argmax(-1)  # (B, L)
        for b in range(len(batch)):
            truth = labels[b][chosen[b]]
            top1.append((best5[b][chosen[b]][:, 0] == truth).float().mean().item())
            top5.append((best5[b][chosen[b]] == truth[:, None]).any(-1).float().mean().item())
            unigram.append((truth == unigram_code).float().mean().item())
            neighbours.append((neighbour[b][chosen[b]] == truth).float().mean().item())
    (a1, c1), (a5, c5), (u, cu), (n, cn) = map(mean_ci95, (top1, top5, unigram, neighbours))
    return {"windows": len(windows), "accuracy": a1, "accuracy_ci95": c1, "top5_accuracy": a5,
            "top5_accuracy_ci95": c5, "unigram_accuracy": u, "unigram_accuracy_ci95": cu,
            "neighbour_accuracy": n, "neighbour_accuracy_ci95": cn}


def decode_batch(vqvae, tokens, device):
    with torch.no_grad(), autocast(device):
        return vqvae.decode(tokens.to(device)).float()[:, 0].cpu().numpy()  # (B, T)


def crossfade_fill(before, after):
    """Baseline gap filler: the audio just before the gap fading out into the audio just after it."""
    weight = np.linspace(0.0, 1.0, len(before), dtype=np.float32)
    return (1 - weight) * before + weight * after


@torch.no_grad()
def evaluate_inpainting(bert, vqvae, vocab, cache, tracks, device, per_track=4, steps_list=INPAINT_STEPS, batch_size=16):
    """Eq. 7 on mixture windows of the full context, a gap of a quarter of it in the middle."""
    L, hop, rate = bert.config.max_positions, vqvae.hop, vqvae.config.sample_rate
    P = L // 4
    a, b = (L - P) // 2 * hop, ((L - P) // 2 + P) * hop  # the gap, in samples of the window
    mix_row = cache.sources.index("mix")
    scores = {"silence": [], "crossfade": [], "oracle": [], **{steps: [] for steps in steps_list}}
    for batch in batched(evenly_spaced(cache, L, per_track), batch_size):
        tokens = rows(cache, mix_row, batch, L)  # (B, L)
        inputs, _ = middle_mask(tokens, P, vocab)
        features = torch.stack([cache.latents(mix_row, a, a + L) for _, a in batch])  # (B, L, D)
        batch_inputs = {key: value.to(device) for key, value in
                        single_source_inputs(inputs, features, hidden=inputs == vocab.mask).items()}
        estimates = {}
        for steps in steps_list:
            with autocast(device):
                estimates[steps] = decode_batch(vqvae, maskgit_fill(bert, batch_inputs, vocab.mask, steps).cpu(), device)
        oracles = decode_batch(vqvae, tokens, device)
        for i, ((t, first), oracle) in enumerate(zip(batch, oracles)):
            frame = first - cache.track_range(t)[0]
            reference = read_source(tracks[t], "mix", rate, frame * hop / rate, L * hop / rate)
            gap = reference[a:b]
            if is_silent(gap, -50.0):
                continue
            for steps in steps_list:
                scores[steps].append(mrstft_distance(gap, estimates[steps][i][a:b]))
            scores["silence"].append(mrstft_distance(gap, np.zeros_like(gap)))
            scores["crossfade"].append(mrstft_distance(gap, crossfade_fill(reference[a - (b - a):a], reference[b:b + (b - a)])))
            scores["oracle"].append(mrstft_distance(gap, oracle[a:b]))
    results = {"gaps": len(scores["silence"]), "gap_tokens": P, "gap_seconds": P * hop / rate,
               "decoding_steps": steps_list[0],
               "mrstft_gap_by_steps": {str(steps): mean_ci95(scores[steps])[0] for steps in steps_list}}
    for name, key in ((steps_list[0], "mrstft_gap"), ("silence", "mrstft_gap_silence"),
                      ("crossfade", "mrstft_gap_crossfade"), ("oracle", "mrstft_gap_oracle")):
        results[key], results[key + "_ci95"] = mean_ci95(scores[name])
    return results


@torch.no_grad()
def evaluate_separation(bert, vqvae, vocab, cache, tracks, device, seconds=2.0, per_track=1,
                        steps_list=(1, 4, 8, 16), default_steps=1):
    """Eq. 8 on held-out chunks of `seconds`, through the same sliding windows as `infer.py separate`."""
    hop, rate = vqvae.hop, vqvae.config.sample_rate
    frames = int(seconds * rate) // hop
    mix_row = cache.sources.index("mix")
    by_stem = {stem: {"estimate": {s: [] for s in steps_list}, "mixture": [], "oracle": []} for stem in vocab.stems}
    for t, first in evenly_spaced(cache, frames, per_track):
        start = (first - cache.track_range(t)[0]) * hop / rate
        mixture_audio = read_source(tracks[t], "mix", rate, start, frames * hop / rate)
        mixture = torch.from_numpy(cache.tokens[mix_row, first:first + frames].astype(np.int64))  # (S,)
        features = cache.latents(mix_row, first, first + frames)  # (S, D)
        for stem in vocab.stems:
            reference = read_source(tracks[t], stem, rate, start, frames * hop / rate)
            if is_silent(reference, -40.0):
                continue  # SI-SDR of a silent stem is undefined
            scores = by_stem[stem]
            truth = torch.from_numpy(cache.tokens[cache.sources.index(stem), first:first + frames].astype(np.int64))
            scores["oracle"].append(si_sdr(reference, decode_batch(vqvae, truth[None], device)[0]))
            scores["mixture"].append(si_sdr(reference, mixture_audio))
            for steps in steps_list:
                with autocast(device):
                    predicted = separate_tokens(bert, vocab, mixture, features, stem, steps=steps)
                scores["estimate"][steps].append(si_sdr(reference, decode_batch(vqvae, predicted[None], device)[0]))
    separation, by_steps = {}, {str(s): {} for s in steps_list}
    for stem, scores in by_stem.items():
        if not scores["mixture"]:
            continue
        mixture = np.array(scores["mixture"])
        estimate = np.array(scores["estimate"][default_steps])
        improvement = mean_ci95(estimate - mixture)
        separation[stem] = {"chunks": len(mixture), "si_sdri_db": improvement[0], "si_sdri_db_ci95": improvement[1],
                            "si_sdr_db": mean_ci95(estimate)[0], "oracle_si_sdr_db": mean_ci95(scores["oracle"])[0],
                            "mixture_si_sdr_db": mean_ci95(mixture)[0],
                            "oracle_si_sdri_db": mean_ci95(np.array(scores["oracle"]) - mixture)[0]}
        for steps in steps_list:
            by_steps[str(steps)][stem] = mean_ci95(np.array(scores["estimate"][steps]) - mixture)[0]
    return separation, {"chunk_seconds": frames * hop / rate, "default_steps": default_steps, "si_sdri_db": by_steps}


@torch.no_grad()
def mixture_use_check(bert, vocab, cache, device, per_track=4):
    """One-shot accuracy on fully masked stem tokens with the true mixture vs another track's.

    If BERT ignored the mixture (the failure of the first prototype), both would be equal.
    """
    M = (bert.config.max_positions - 1) // 2
    windows = evenly_spaced(cache, M, per_track)
    tracks = sorted({t for t, _ in windows})
    first_window = {t: a for t, a in reversed(windows)}
    mix_row = cache.sources.index("mix")
    correct = {"true_mixture": [], "other_mixture": []}
    for stem in vocab.stems:
        row = cache.sources.index(stem)
        active = [(t, a) for t, a in windows if cache.active[row, a:a + M].mean() >= 0.25]
        if not active:
            continue
        other = [(None, first_window[tracks[(tracks.index(t) + 1) % len(tracks)]]) for t, _ in active]
        truth = rows(cache, row, active, M)  # (B, M)
        for name, source in (("true_mixture", active), ("other_mixture", other)):
            mixture = rows(cache, mix_row, source, M)
            features = torch.stack([cache.latents(mix_row, a, a + M) for _, a in source])
            inputs = separation_inputs(mixture, features, vocab.stem_separator(stem), vocab)
            with autocast(device):
                logits, _ = bert(**{key: value.to(device) for key, value in inputs.items()})
            guess = logits[:, M + 1:].argmax(-1).cpu()  # (B, M)
            correct[name].append((guess == truth).float().mean(dim=1))
    return {name: float(torch.cat(values).mean()) for name, values in correct.items() if values}


def held_out_tokens(vqvae, vocab, data_root, split, cache_root, device):
    """(split cache, validation cache, split tracks), tokenized once into the cache beside the VQ-VAE."""
    folder = cache_folder(cache_root, data_root, vqvae_fingerprint(vqvae))
    for name in ("validation", split):
        build_token_cache(vqvae, data_root, name, folder, vocab.stems, device)
    return TokenCache(folder, split), TokenCache(folder, "validation"), find_tracks(data_root, split)


def evaluate_bert(bert, vocab, vqvae, cache, validation, tracks, device, separation_per_track=1,
                  separation_steps=(1, 4, 8, 16)):
    """Every BERT figure on one split; the unigram guess comes from the validation split, never the test."""
    unigram_code = int(validation.code_counts(vocab.num_codes).argmax())
    results = {"mlm": evaluate_mlm(bert, vocab, cache, unigram_code, device),
               "inpainting": evaluate_inpainting(bert, vqvae, vocab, cache, tracks, device)}
    if vocab.stems:
        results["separation"], results["separation_steps"] = evaluate_separation(
            bert, vqvae, vocab, cache, tracks, device, per_track=separation_per_track, steps_list=separation_steps,
            default_steps=DEFAULT_STEPS if DEFAULT_STEPS in separation_steps else separation_steps[0])
        results["mixture_use"] = mixture_use_check(bert, vocab, cache, device)
    return results


def print_bert(results):
    mlm = results["mlm"]
    print(f"masked modelling, 15% BERT masking ({mlm['windows']} windows)")
    print(f"  top-1 accuracy {mlm['accuracy']:.3f} +- {mlm['accuracy_ci95']:.3f}   top-5 {mlm['top5_accuracy']:.3f}   "
          f"unigram baseline {mlm['unigram_accuracy']:.3f} (ratio {mlm['accuracy'] / max(mlm['unigram_accuracy'], 1e-9):.1f}x)   "
          f"neighbour baseline {mlm['neighbour_accuracy']:.3f}")
    inp = results["inpainting"]
    print(f"inpainting, gap of {inp['gap_tokens']} tokens = {inp['gap_seconds']:.3f} s ({inp['gaps']} gaps, "
          f"{inp['decoding_steps']} decoding steps), "
          f"MR-STFT distance on the gap (lower is better)")
    print(f"  BERT {inp['mrstft_gap']:.3f} +- {inp['mrstft_gap_ci95']:.3f}   silence {inp['mrstft_gap_silence']:.3f}   "
          f"cross-fade {inp['mrstft_gap_crossfade']:.3f}   oracle tokens {inp['mrstft_gap_oracle']:.3f}")
    print("  BERT by decoding steps: " + ", ".join(f"{n}: {v:.3f}" for n, v in inp["mrstft_gap_by_steps"].items()))
    if "separation" in results:
        steps = results["separation_steps"]
        print(f"separation, {steps['chunk_seconds']:.2f} s chunks, {steps['default_steps']} decoding steps (SI-SDR in dB)")
        print(f"  {'stem':<8} {'chunks':>6} {'SI-SDRi':>14} {'estimate':>9} {'mixture':>8} {'oracle':>7}")
        for stem, r in results["separation"].items():
            print(f"  {stem:<8} {r['chunks']:>6} {r['si_sdri_db']:>6.2f} +- {r['si_sdri_db_ci95']:<5.2f} "
                  f"{r['si_sdr_db']:>9.2f} {r['mixture_si_sdr_db']:>8.2f} {r['oracle_si_sdr_db']:>7.2f}")
        print("  SI-SDRi by decoding steps: " + "; ".join(
            f"{n}: " + ", ".join(f"{stem} {v:+.2f}" for stem, v in by_stem.items())
            for n, by_stem in steps["si_sdri_db"].items()))
        use = results["mixture_use"]
        print(f"  mixture-use check, one-shot accuracy of fully masked stem tokens: true mixture "
              f"{use.get('true_mixture', float('nan')):.3f}, another track's {use.get('other_mixture', float('nan')):.3f}")


def write_json(path, results):
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")


def main():
    parser = ArgumentParser(description="Evaluate the tokenizer (and BERT) on held-out data.")
    parser.add_argument("--vqvae", default="runs/vqvae.pt", help="VQ-VAE checkpoint (default runs/vqvae.pt)")
    parser.add_argument("--bert", default=None, help="BERT checkpoint (default runs/bert.pt if it exists; 'none' to skip)")
    parser.add_argument("--data", default=None, help="dataset folder (default: the embedded synthetic dataset)")
    parser.add_argument("--split", default="test", choices=["validation", "test"], help="split to score")
    parser.add_argument("--chunks-per-track", type=int, default=4, help="reconstruction chunks per track and source")
    parser.add_argument("--separation-chunks", type=int, default=1, help="separation chunks (2 s) per track and stem")
    parser.add_argument("--separation-steps", default="1,4,8,16", help="comma-separated decoding steps to score separation with")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--report", default=None, help="also write a listening page (DIR/index.html) of a few examples of the scored split")
    parser.add_argument("--overwrite", action="store_true", help="replace the --json file or --report page if it exists")
    args = parser.parse_args()
    refuse_existing([p for p in (args.json, args.report and Path(args.report) / "index.html") if p], args.overwrite)
    if args.chunks_per_track < 1 or args.separation_chunks < 1:
        raise UserError("--chunks-per-track and --separation-chunks must be at least 1")
    try:
        separation_steps = tuple(int(n) for n in args.separation_steps.split(","))
    except ValueError:
        raise UserError(f"--separation-steps must be comma-separated integers, got '{args.separation_steps}'") from None
    if min(separation_steps) < 1:
        raise UserError(f"--separation-steps must be at least 1, got '{args.separation_steps}'")
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
        cache, validation, tracks = held_out_tokens(model, vocab, data_root, args.split, Path(args.vqvae).parent, device)
        results.update(evaluate_bert(bert, vocab, model, cache, validation, tracks, device,
                                     separation_per_track=args.separation_chunks, separation_steps=separation_steps))
        print_bert(results)
        if args.report:
            from report import write_report  # matplotlib only when pictures are asked for
            print(f"listening page -> {write_report(args.report, bert, vocab=vocab, vqvae=model, cache=cache, tracks=tracks, device=device)}")
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    run_main(main)
