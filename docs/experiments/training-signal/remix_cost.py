"""Milliseconds to draw one training batch of 16 (BatchMaker.sample) with and without Remix (half of
the 12 separation items remixed), the two timed alternately. Needs remix.patch applied and the token
cache that `python train.py bert` builds beside runs/vqvae.pt.

    PYTHONPATH=. python docs/experiments/training-signal/remix_cost.py
"""
import time

import numpy as np
import torch

from checkpoint import load_vqvae
from data import embedded_dataset, find_tracks
from masking import Vocabulary
from tokens import BatchMaker, Remix, TokenCache, cache_folder, vqvae_fingerprint

STEMS = ["bass", "drums", "guitar", "piano"]
REPEATS = 20

vqvae = load_vqvae("runs/vqvae.pt", torch.device("cpu"))
data_root = embedded_dataset(vqvae.config.sample_rate)
cache = TokenCache(cache_folder("runs", data_root, vqvae_fingerprint(vqvae)), "train")
vocab = Vocabulary(vqvae.config.num_codes, tuple(STEMS))
remix = Remix(vqvae, find_tracks(data_root, "train"), cache, torch.device("cpu"))
makers = {"plain": BatchMaker(cache, vocab, STEMS, 512, seed=0), "remix": BatchMaker(cache, vocab, STEMS, 512, seed=0, remix=remix)}
seconds = {name: [] for name in makers}
for repeat in range(REPEATS + 1):
    for name, maker in makers.items():
        start = time.perf_counter()
        maker.sample(16)
        if repeat:  # the first round is a warm-up
            seconds[name].append(time.perf_counter() - start)
plain, remixed = (1000 * np.median(seconds[name]) for name in makers)
print(f"torch threads {torch.get_num_threads()}: sample(16) without Remix {plain:.0f} ms, with {remixed:.0f} ms, "
      f"added {remixed - plain:.0f} ms per step")
