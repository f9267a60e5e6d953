"""The ceiling of a gate on the mixture's latent (Conv-TasNet's masked form), validation split.

    python docs/experiments/separation-training/oracle_gate.py   # from the repository root, after the default runs

For every frame the best non-negative per-dimension gate g (h_stem / h_mix where the signs agree, else
0), so g * h_mix matches the stem latent on the agreeing dimensions; decoded after normalising; SI-SDRi
against the mixture, 2 s chunks, two per track; beside it the stem's own latent and the mixture's.
"""
import sys; sys.path.insert(0, ".")
import numpy as np, torch
torch.set_num_threads(1)
from checkpoint import load_vqvae
from tokens import TokenCache, cache_folder, vqvae_fingerprint
from evaluation import evenly_spaced, decode_batch
from data import embedded_dataset, find_tracks, read_source
from metrics import si_sdr
import torch.nn.functional as F
dev = torch.device("cpu")
vq = load_vqvae("runs/vqvae.pt", dev)
cache = TokenCache(cache_folder("runs", embedded_dataset(16000), vqvae_fingerprint(vq)), "validation")
tracks = find_tracks(embedded_dataset(16000), "validation")
hop, rate = vq.hop, 16000
frames = 2 * rate // hop
mix_row = cache.sources.index("mix")
res = {}
for t, first in evenly_spaced(cache, frames, 2):
    start = (first - cache.track_range(t)[0]) * hop / rate
    mix = read_source(tracks[t], "mix", rate, start, frames * hop / rate)
    hm = cache.latents(mix_row, first, first + frames)
    for stem in cache.sources[1:]:
        ref = read_source(tracks[t], stem, rate, start, frames * hop / rate)
        if np.sqrt(np.mean(ref**2)) < 10**(-40/20): continue
        hs = cache.latents(cache.sources.index(stem), first, first + frames)
        g = torch.where(hs * hm > 0, hs / hm, torch.zeros_like(hm))
        gated = F.normalize(g * hm + 1e-8, dim=-1)
        cand = {"gate": gated, "stem": hs, "mix": hm}
        base = si_sdr(ref, mix)
        for name in ("gate", "stem", "mix"):
            w = decode_batch(vq, cand[name][None], dev)[0][:len(ref)]
            res.setdefault(stem, {}).setdefault(name, []).append(si_sdr(ref, w) - base)
        res[stem].setdefault("cos", []).append(float((gated * hs).sum(-1).mean()))
        res[stem].setdefault("cos_mix", []).append(float((hm * hs).sum(-1).mean()))
for stem, d in res.items():
    print(stem, len(d["gate"]), {k: round(float(np.mean(v)), 2) for k, v in d.items()})
