"""Seconds per BatchMaker.sample(16) with and without Remix (half the 12 separation items remixed), alternating."""
import time, numpy as np, torch
from checkpoint import load_vqvae
from tokens import BatchMaker, Remix, TokenCache
from masking import Vocabulary
from data import find_tracks
STEMS = ["bass", "drums", "guitar", "piano"]
v = load_vqvae("runs/vqvae.pt", torch.device("cpu"))
cache = TokenCache("runs/token-cache/a0eb55e3bc42", "train")
vocab = Vocabulary(512, tuple(STEMS))
plain = BatchMaker(cache, vocab, STEMS, 512, seed=0)
remix = BatchMaker(cache, vocab, STEMS, 512, seed=0, remix=Remix(v, find_tracks("data/synthetic-v2-sr16000-seed0", "train"), cache, torch.device("cpu")))
plain.sample(16); remix.sample(16)
a, b = [], []
for _ in range(20):
    t = time.perf_counter(); plain.sample(16); a.append(time.perf_counter() - t)
    t = time.perf_counter(); remix.sample(16); b.append(time.perf_counter() - t)
print(f"torch threads {torch.get_num_threads()}: sample(16) without Remix {np.median(a)*1000:.0f} ms, with {np.median(b)*1000:.0f} ms, added {1000*(np.median(b)-np.median(a)):.0f} ms per step")
