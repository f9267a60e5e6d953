"""Probe: seconds of BERT's part of separating every stem of a 30 s mix (as bench.py times it),
for a few batch sizes and with bf16 autocast or plain fp32. Each setting: one warm-up, then the
median of three runs. Run alone on the machine:

    PYTHONPATH=. python docs/experiments/separation-speed/probe.py --json docs/experiments/separation-speed/probe.json
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch

from checkpoint import load_bert, load_vqvae
from cli import autocast
from tasks import separate_all

parser = argparse.ArgumentParser()
parser.add_argument("--vqvae", default="pretrained/vqvae.pt")
parser.add_argument("--bert", default="pretrained/bert.pt")
parser.add_argument("--json", default=None)
args = parser.parse_args()
vqvae = load_vqvae(args.vqvae)
bert, vocab = load_bert(args.bert, vqvae)
S = 30 * vqvae.config.sample_rate // vqvae.hop
generator = torch.Generator().manual_seed(1)
mixture = torch.randint(0, vocab.num_codes, (S,), generator=generator)
features = torch.nn.functional.normalize(torch.randn(S, vqvae.config.code_dim, generator=generator), dim=-1)
print(f"{torch.get_num_threads()} threads; {S} frames; bf16 available: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
results, reference = [], None
for dtype in ("auto", "fp32"):
    for batch_size in (8, 16, 32, 64):
        def run():
            with torch.inference_mode(), autocast("cpu", dtype):
                return separate_all(bert, vocab, mixture, features, vocab.stems, tokens=False, batch_size=batch_size)["latent"]
        latents = run()  # warm-up
        if reference is None:
            reference = latents
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        cosine = float(torch.nn.functional.cosine_similarity(latents.float(), reference.float(), dim=-1).mean())
        row = {"dtype": dtype, "batch_size": batch_size, "seconds": statistics.median(times), "runs": times,
               "mean_cosine_to_first": cosine}
        results.append(row)
        print(f"{dtype:>5} batch {batch_size:3d}: {row['seconds']:.2f} s (runs {', '.join(f'{t:.2f}' for t in times)}); "
              f"latents' cosine to auto/8 {cosine:.4f}", flush=True)
if args.json:
    with open(args.json, "w") as f:
        json.dump({"threads": torch.get_num_threads(), "frames": S, "results": results}, f, indent=2)
