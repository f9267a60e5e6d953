#!/bin/bash
# The page's runs, from the repository root, each alone on the machine (2026-12-06, 2-core Xeon with AMX).
# The default tokenizer first: python train.py vqvae --k 4 (runs/vqvae.pt).
set -e
python train.py bert --out runs/sep-seed0                       # the new default: every stem frame masked, the latent head
python train.py bert --out runs/sep-seed1 --seed 1              # the same, another seed
for s in 0 1; do
  python evaluate.py --bert runs/sep-seed$s/bert.pt --vqvae runs/vqvae.pt --split validation --json validation-seed$s.json
  python evaluate.py --bert runs/sep-seed$s/bert.pt --vqvae runs/vqvae.pt --json results-seed$s.json
  python evaluate.py --bert runs/sep-seed$s/bert.pt --vqvae runs/vqvae.pt --data data/merlin-seed1 --json transfer-seed$s.json
done
python bench.py --json bench.json
