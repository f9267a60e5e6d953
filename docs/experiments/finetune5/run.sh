#!/usr/bin/env bash
# The runs of docs/experiments/finetune5.md, from the repository root, each alone on the machine
# (2026-12-07, 2-core AMD EPYC with AVX512-BF16, bf16 autocast). runs/vqvae.pt is the shipped tokenizer;
# the start is the BERT shipped at commit 755bd89 (8000 + 2000 + 3000 + 3750 + 3000 steps,
# docs/experiments/finetune4.md).
set -euo pipefail
out=$PWD/docs/experiments/finetune5
mkdir -p runs data && cp -n pretrained/vqvae.pt runs/vqvae.pt
# 1. 2000 more steps of today's recipe at half its peak learning rate (--lr 5e-4) from its weights (fresh optimizer and schedule), with the code of
#    commit a859ae2 (the training computes the same at this page's commit), in a throwaway worktree
W=$(mktemp -d)/finetune5
git worktree add --detach "$W" a859ae2
(cd "$W" && ln -s "$OLDPWD/runs" runs && ln -s "$OLDPWD/data" data &&
 python train.py bert --init pretrained/bert.pt --steps 2000 --lr 5e-4 --out runs/finetune5 > "$OLDPWD/runs/finetune5-train.log" 2>&1)
git worktree remove --force "$W"
cp runs/finetune5-train.log $out/finetune5-train.log
cp runs/finetune5/bert-log.csv $out/finetune5-bert-log.csv
# 2. validation, where the choice is made (it said no: the test split and the unseen set were not scored)
run() { echo "\$ $*" | tee -a "$out/evaluate.log"; /usr/bin/time -f "%e s" python "$@" 2>&1 | grep -v window | tee -a "$out/evaluate.log"; }
: > "$out/evaluate.log"
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune5/bert.pt --split validation --gap-seconds 0.256,0.5,1 --json $out/validation-finetune5.json --overwrite
python $out/tables.py > $out/tables.md
