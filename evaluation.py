"""Held-out evaluation of the tokenizer (SI-SDR, MR-STFT distance, codebook use, token rate,
bitrate), and the helpers that BERT's scoring (`evaluation_bert.py`) and the listening page
(`report.py`) share. Every figure is a mean over held-out chunks with a 95% confidence interval.
"""
import json
import math

import numpy as np
import torch

from cli import autocast
from data import eval_chunks, find_tracks
from files import UserError, atomic_write
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
    """Encode + decode each chunk; return a dict of metrics."""
    model.eval()
    K = model.config.num_codes
    per_source, all_sdr, all_mrstft, losses = {}, [], [], []
    counts = torch.zeros(K)
    for start in range(0, len(chunks), batch_size):
        batch = chunks[start:start + batch_size]
        x = torch.from_numpy(np.stack([wave for _, _, wave in batch])).unsqueeze(1).to(device)  # (B, 1, T)
        with autocast(device):
            indices = model.encode(x)  # (B, S)
            x_hat = model.decode(indices, x.shape[-1]).float()  # (B, 1, T)
        losses.append(float(reconstruction_loss(x, x_hat) + spectral_loss(x, x_hat)) * len(batch))
        counts += torch.bincount(indices.flatten().cpu(), minlength=K).float()
        for (_, source, wave), recon in zip(batch, x_hat[:, 0].cpu().numpy()):
            sdr, distance = si_sdr(wave, recon), mrstft_distance(wave, recon)
            all_sdr.append(sdr)
            all_mrstft.append(distance)
            per_source.setdefault(source, []).append(sdr)
    probs = counts / counts.sum()  # (K,)
    perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
    sample_rate, hop = model.config.sample_rate, model.hop
    sdr_mean, sdr_ci = mean_ci95(all_sdr)
    mrstft_mean, mrstft_ci = mean_ci95(all_mrstft)
    results = {
        "chunks": len(chunks),
        "loss": sum(losses) / len(chunks),
        "si_sdr_db": sdr_mean, "si_sdr_db_ci95": sdr_ci,
        "si_sdr_db_by_source": {s: mean_ci95(v)[0] for s, v in sorted(per_source.items())},
        "mrstft": mrstft_mean, "mrstft_ci95": mrstft_ci,
        "codes_used_fraction": float((counts > 0).float().mean()),
        "perplexity": float(perplexity),
        "tokens_per_second": sample_rate / hop,
        "bitrate_kbps": sample_rate / hop * math.log2(K) / 1000,
        "seconds_per_512_tokens": 512 * hop / sample_rate,
    }
    return results


def print_reconstruction(metrics, title):
    print(f"{title} ({metrics['chunks']} chunks of {EVAL_SECONDS:g} s)")
    print(f"  SI-SDR           {metrics['si_sdr_db']:6.2f} dB +- {metrics['si_sdr_db_ci95']:.2f} (95% CI)")
    for source, value in metrics["si_sdr_db_by_source"].items():
        print(f"    {source:<14} {value:6.2f} dB")
    print(f"  MR-STFT distance {metrics['mrstft']:6.3f} +- {metrics['mrstft_ci95']:.3f}")
    print(f"  codes used       {100 * metrics['codes_used_fraction']:5.1f} %   perplexity {metrics['perplexity']:.1f}")
    print(f"  {metrics['tokens_per_second']:g} tokens/s, {metrics['bitrate_kbps']:.2f} kbit/s, "
          f"512 tokens = {metrics['seconds_per_512_tokens']:.3f} s of audio")


# ---- helpers shared with evaluation_bert.py and report.py ----

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
    """(B, length) int64 tokens of one source at the given windows [(track, first frame)]."""
    return torch.from_numpy(np.stack([cache.tokens[row, a:a + length] for _, a in windows]).astype(np.int64))


@torch.no_grad()
def decode_batch(vqvae, tokens, device):
    """(B, S) tokens -> (B, T) waveforms.
    Float (B, S, D) input is decoder vectors (predicted or true latents), decoded as they are."""
    with torch.no_grad(), autocast(device):
        if tokens.is_floating_point():
            return vqvae.decode_vectors(tokens.to(device)).float()[:, 0].cpu().numpy()  # (B, T)
        return vqvae.decode(tokens.to(device)).float()[:, 0].cpu().numpy()  # (B, T)


def write_json(path, results):
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
