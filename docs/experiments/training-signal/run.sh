#!/bin/bash
# The page's runs, each alone on the machine (2026-12-06, 2-core AMD EPYC with AVX512-BF16, bf16
# autocast). The tokenizer is the shipped one, the default `python train.py vqvae --k 4` of commit de92ddc.
# They run in a throwaway worktree of the page's commit 1697a44 (its MLM_SHARE default was 0.25), so the
# edits below never touch your checkout; the JSONs are written back here.
set -e
P=$PWD/docs/experiments/training-signal
W=$(mktemp -d)/training-signal
git worktree add --detach "$W" 1697a44
trap 'git worktree remove --force "$W"' EXIT
mkdir -p runs data && cp -n pretrained/vqvae.pt runs/vqvae.pt
ln -s "$PWD/runs" "$W/runs" && ln -s "$PWD/data" "$W/data" && cd "$W"
# 1. a larger masked-modelling share: MLM_SHARE = 0.375 in train_bert.py (6 of 16 items; the default is 0.25)
sed -i 's/^MLM_SHARE = 0.25 /MLM_SHARE = 0.375 /' train_bert.py
python train.py bert --out runs/mlm375
sed -i 's/^MLM_SHARE = 0.375 /MLM_SHARE = 0.25 /' train_bert.py
python evaluate.py --bert runs/mlm375/bert.pt --vqvae runs/vqvae.pt --split validation --json $P/validation-mlm375.json
# 2. Remix: the probe's code is remix.patch (tokens.Remix, train.py bert --remix, and its test)
git apply $P/remix.patch
python train.py bert --out runs/remix --remix
python evaluate.py --bert runs/remix/bert.pt --vqvae runs/vqvae.pt --split validation --json $P/validation-remix.json
PYTHONPATH=. python $P/remix_cost.py > $P/remix-cost.txt   # what Remix adds to drawing a batch
git apply -R $P/remix.patch
# 3. twice the peak learning rate
python train.py bert --out runs/lr2e-3 --lr 2e-3
python evaluate.py --bert runs/lr2e-3/bert.pt --vqvae runs/vqvae.pt --split validation --json $P/validation-lr2e-3.json
# 4. the latent head's share of a step, timed in alternating pairs
python bench.py --json $P/bench.json
cd - > /dev/null && python $P/tables.py
