"""Linear prediction's order and context, chosen on the validation split (docs/experiments/inpainting.md).

The 0.128 s gaps of `evaluate.py` (a quarter of the shipped BERT's context, in the middle of 40
validation mixture windows), filled by `gap_fillers.lpc_fill` at each order, fitted on the gap's
length of audio on each side or on LPC_CONTEXT samples (1 s), scored by the MR-STFT distance.
Run from the repository root: PYTHONPATH=. python docs/experiments/inpainting/lpc_order.py > docs/experiments/inpainting/lpc-order.txt
"""
import numpy as np

from data import embedded_dataset, find_tracks, is_silent, read_source
from evaluation import evenly_spaced
from gap_fillers import LPC_CONTEXT, lpc_fill
from metrics import mean_ci95, mrstft_distance
from tokens import TokenCache

RATE, HOP, L = 16000, 16, 512
P = L // 4
cache = TokenCache("runs/token-cache/a0eb55e3bc42", "validation")  # the shipped VQ-VAE's cache (only its frame grid is used)
tracks = find_tracks(embedded_dataset(RATE), "validation")
scores = {}
for t, first in evenly_spaced(cache, L, 4):
    start, end = cache.track_range(t)
    audio = read_source(tracks[t], "mix", RATE, 0.0, (end - start) * HOP / RATE)
    a = (first - start + (L - P) // 2) * HOP
    b = a + P * HOP
    if is_silent(audio[a:b], -50.0):
        continue
    for order in (64, 256, 1024):
        for name, context in (("gap length", b - a), ("1 s", LPC_CONTEXT)):
            fill = lpc_fill(audio[max(0, a - context):a], audio[b:b + context], b - a, order)
            scores.setdefault((order, name), []).append(mrstft_distance(audio[a:b], fill))
print(f"{len(next(iter(scores.values())))} gaps of {P * HOP / RATE:.3f} s, validation split, MR-STFT on the gap")
for (order, name), values in scores.items():
    mean, ci = mean_ci95(values)
    print(f"order {order:5d}, context {name:>10}: {mean:.3f} +- {ci:.3f}")
