#!/usr/bin/env bash
# The runs of docs/experiments/inpainting.md, from the repository root, each alone on the machine
# (2026-12-07, 2-core AMD EPYC with AVX512-BF16, bf16 autocast). runs/vqvae.pt is the shipped tokenizer.
set -euo pipefail
out=docs/experiments/inpainting
mkdir -p runs && cp -n pretrained/vqvae.pt runs/vqvae.pt
git show 3f0f2ed:pretrained/bert.pt > runs/bert-8000.pt   # the BERT shipped before this page (8000 steps)
# 0. linear prediction's order and context, on validation gaps (no model)
PYTHONPATH=. python $out/lpc_order.py > $out/lpc-order.txt
# 1. the shipped BERT (8000 steps of the recipe before span items) fine-tuned 2000 steps with today's recipe:
#    span masks in a third of the single-source items, Eq. 11 targets at every masked single-source frame
python train.py bert --init runs/bert-8000.pt --out runs/finetune > $out/finetune-train.log 2>&1
cp runs/finetune/bert-log.csv $out/finetune-bert-log.csv
# 2. validation (the decision), then the test split and the unseen SoundFont set (synth.py data/merlin-seed1 ..., README)
run() { echo "\$ $*" | tee -a "$out/evaluate.log"; /usr/bin/time -f "%e s" python "$@" 2>&1 | grep -v window | tee -a "$out/evaluate.log"; }
: > "$out/evaluate.log"
gaps="0.256,0.5,1"
run evaluate.py --vqvae runs/vqvae.pt --bert runs/bert-8000.pt --split validation --gap-seconds $gaps --json $out/validation-shipped.json --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune/bert.pt --split validation --gap-seconds $gaps --json $out/validation-finetuned.json --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune/bert.pt --gap-seconds $gaps --json $out/test-finetuned.json --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune/bert.pt --data data/merlin-seed1 --gap-seconds $gaps --json $out/transfer-finetuned.json --overwrite
python $out/tables.py > $out/tables.md
# 3. ship it: weights and config of runs/finetune/bert.pt to pretrained/ (vqvae.pt kept as it was)
python pretrained.py runs/vqvae.pt runs/finetune/bert.pt
# 4. today's recipe at the default budget (the README's "default budget" column)
python train.py bert --out runs/default-span > $out/default-train.log 2>&1
cp runs/default-span/bert-log.csv $out/default-bert-log.csv
run evaluate.py --vqvae runs/vqvae.pt --bert runs/default-span/bert.pt --json $out/results-default.json --overwrite
