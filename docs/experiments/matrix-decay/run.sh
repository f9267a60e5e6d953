#!/usr/bin/env bash
# The runs of docs/experiments/matrix-decay.md, from the repository root, each alone on the machine
# (2026-12-07, 2-core AMD EPYC with AVX512-BF16, bf16 autocast). runs/vqvae.pt is the shipped tokenizer.
set -euo pipefail
out=docs/experiments/matrix-decay
mkdir -p runs && cp -n pretrained/vqvae.pt runs/vqvae.pt
# the default command, seed 0: AdamW decays the weight matrices only (train_bert.make_optimizer)
python train.py bert --out runs/default-matrix-decay > $out/train.log 2>&1
cp runs/default-matrix-decay/bert-log.csv $out/bert-log.csv
/usr/bin/time -f "%e s" python evaluate.py --vqvae runs/vqvae.pt --bert runs/default-matrix-decay/bert.pt \
    --json $out/results.json --overwrite 2>&1 | grep -v window > $out/evaluate.log
# the same command before, AdamW decaying every parameter: docs/experiments/inpainting/results-default.json
