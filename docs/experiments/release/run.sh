#!/usr/bin/env bash
# The shipped models' figures (docs/experiments/release.md), run from the repository root after
#   python train.py vqvae --k 4                                   # runs/vqvae.pt: 1500 steps (the default budget)
#   python train.py bert --out runs/lw10                          # 2000 steps (the default budget)
#   python train.py bert --out runs/release --steps 8000          # 4x the default budget: the shipped BERT
#   python pretrained.py runs/vqvae.pt runs/release/bert.pt       # writes pretrained/
#   python synth.py data/merlin-seed1 --seed 1 --tracks 0,4,20 --soundfont data/Merlin.sf2   # the transfer set (README)
set -euo pipefail
out=docs/experiments/release
run() { echo "\$ $*" | tee -a "$out/evaluate.log"; /usr/bin/time -f "%e s" python "$@" 2>&1 | grep -v window | tee -a "$out/evaluate.log"; }
: > "$out/evaluate.log"
run evaluate.py --vqvae pretrained/vqvae.pt --bert pretrained/bert.pt --json "$out/test-shipped.json" --overwrite
run evaluate.py --vqvae pretrained/vqvae.pt --bert pretrained/bert.pt --data data/merlin-seed1 --json "$out/transfer-shipped.json" --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/lw10/bert.pt --data data/merlin-seed1 --json "$out/transfer-default.json" --overwrite
