#!/usr/bin/env bash
# The runs of docs/experiments/matrix-decay.md, from the repository root, each alone on the machine
# (2026-12-07, 2-core AMD EPYC with AVX512-BF16, bf16 autocast). runs/vqvae.pt is the shipped tokenizer.
set -euo pipefail
out=docs/experiments/matrix-decay
mkdir -p runs data && cp -n pretrained/vqvae.pt runs/vqvae.pt
# the default command, seed 0, with AdamW decaying the weight matrices only: the code of commit b843b1e
# (train_bert.make_optimizer), in a throwaway worktree
W=$(mktemp -d)/matrix-decay
git worktree add --detach "$W" b843b1e
(cd "$W" && ln -s "$OLDPWD/runs" runs && ln -s "$OLDPWD/data" data &&
 python train.py bert --out runs/default-matrix-decay > $OLDPWD/$out/train.log 2>&1)
git worktree remove --force "$W"
cp runs/default-matrix-decay/bert-log.csv $out/bert-log.csv
/usr/bin/time -f "%e s" python evaluate.py --vqvae runs/vqvae.pt --bert runs/default-matrix-decay/bert.pt \
    --json $out/results.json --overwrite 2>&1 | grep -v window > $out/evaluate.log
# the same command before, AdamW decaying every parameter: docs/experiments/inpainting/results-default.json
