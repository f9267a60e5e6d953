#!/usr/bin/env bash
# The README's "default budget" with the one-codebook code (commit e66899d), from the repository root,
# alone on the machine (2026-12-07, 2-core AMD EPYC with AVX512-BF16, bf16 autocast).
# runs/vqvae.pt is the shipped tokenizer (the default-budget one, converted to format 3).
set -euo pipefail
out=docs/experiments/one-codebook
mkdir -p runs && cp -n pretrained/vqvae.pt runs/vqvae.pt
/usr/bin/time -f "%e s" python train.py bert --out runs/default-onecode > $out/default-train.log 2>&1
cp runs/default-onecode/bert-log.csv $out/default-bert-log.csv
/usr/bin/time -f "%e s" python evaluate.py --vqvae runs/vqvae.pt --bert runs/default-onecode/bert.pt \
  --json $out/results-default.json --overwrite > $out/default-evaluate.log 2>&1
/usr/bin/time -f "%e s" python evaluate.py --vqvae runs/vqvae.pt --bert runs/default-onecode/bert.pt \
  --data data/merlin-seed1 --json $out/transfer-default.json --overwrite > $out/transfer-evaluate.log 2>&1
