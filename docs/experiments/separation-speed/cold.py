"""BERT's separation pass over a 30 s mix, three times in one fresh process: the first (cold) call,
as `infer.py separate` meets it, then two warm ones, as `bench.py` times it. Shipped models, random
tokens and latents (speed does not depend on them). Run alone:

    PYTHONPATH=. python docs/experiments/separation-speed/cold.py > docs/experiments/separation-speed/cold.log
"""
import time

import torch

from checkpoint import load_bert, load_vqvae
from cli import autocast
from tasks import separate_all

vqvae = load_vqvae("pretrained/vqvae.pt")
bert, vocab = load_bert("pretrained/bert.pt", vqvae)
S = 30 * vqvae.config.sample_rate // vqvae.hop
generator = torch.Generator().manual_seed(1)
mixture = torch.randint(0, vocab.num_codes, (S,), generator=generator)
features = torch.nn.functional.normalize(torch.randn(S, vqvae.config.code_dim, generator=generator), dim=-1)
for run in ("first (cold)", "second", "third"):
    start = time.perf_counter()
    with torch.inference_mode(), autocast("cpu"):
        separate_all(bert, vocab, mixture, features, vocab.stems, tokens=False)
    print(f"BERT's pass, 30 s mix, every stem, {run} call: {time.perf_counter() - start:.2f} s")
