"""Held-out evaluation of the tokenizer: SI-SDR, MR-STFT distance and codebook health.

    python evaluate.py --vqvae runs/vqvae.pt [--data DIR] [--split test] [--json results.json]

Every figure is a mean over held-out chunks (track, source, offset fixed by `data.eval_chunks`)
with a 95% confidence interval and the chunk count. The same function scores the validation
split during training (to keep the best checkpoint) and the test split at its end.
"""
import json
import math

import numpy as np
import torch

from checkpoint import load_vqvae
from cli import ArgumentParser, autocast, pick_device, run_main
from data import embedded_dataset, eval_chunks, find_tracks
from files import atomic_write
from losses import reconstruction_loss, spectral_loss
from metrics import mean_ci95, mrstft_distance, si_sdr

EVAL_SECONDS = 1.0  # length of each held-out chunk


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


def write_json(path, results):
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")


def main():
    parser = ArgumentParser(description="Evaluate a trained tokenizer on held-out data.")
    parser.add_argument("--vqvae", default="runs/vqvae.pt", help="VQ-VAE checkpoint (default runs/vqvae.pt)")
    parser.add_argument("--data", default=None, help="dataset folder (default: the embedded synthetic dataset)")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"], help="split to score")
    parser.add_argument("--chunks-per-track", type=int, default=4, help="held-out chunks per track and source")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    device = pick_device(args.device)
    model = load_vqvae(args.vqvae, device)
    data_root = args.data or embedded_dataset(model.config.sample_rate)
    chunks = held_out_chunks(data_root, args.split, model.config.sample_rate, args.chunks_per_track)
    results = {"reconstruction": evaluate_reconstruction(model, chunks, device)}
    print_reconstruction(results["reconstruction"], f"reconstruction, {args.split} split")
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    run_main(main)
