#!/usr/bin/env bash
# The runs of docs/experiments/longer-finetune.md, from the repository root, each alone on the machine
# (2026-12-07, 2-core AMD EPYC with AVX512-BF16, bf16 autocast). runs/vqvae.pt is the shipped tokenizer;
# the start is the BERT shipped at commit 57f948f (8000 + 2000 steps).
set -euo pipefail
out=$PWD/docs/experiments/longer-finetune
mkdir -p runs data && cp -n pretrained/vqvae.pt runs/vqvae.pt
# 1. 3000 more steps of today's recipe from its weights (fresh optimizer and schedule), with the code of
#    commit 57f948f (AdamW decaying every parameter, as the 2000 steps before), in a throwaway worktree
W=$(mktemp -d)/longer-finetune
git worktree add --detach "$W" 57f948f
(cd "$W" && ln -s "$OLDPWD/runs" runs && ln -s "$OLDPWD/data" data &&
 python train.py bert --init pretrained/bert.pt --steps 3000 --out runs/finetune2 > $out/finetune2-train.log 2>&1)
git worktree remove --force "$W"
cp runs/finetune2/bert-log.csv $out/finetune2-bert-log.csv
# 2. today's code reads a config without `dropout` and `mixture_segment` (removed at this page's commit)
python docs/experiments/longer-finetune/convert.py runs/finetune2/bert.pt runs/finetune2/bert.pt
# 3. validation (the decision; the BERT before is inpainting/validation-finetuned.json), then the test split
#    and the unseen SoundFont set (synth.py data/merlin-seed1 ..., README)
run() { echo "\$ $*" | tee -a "$out/evaluate.log"; /usr/bin/time -f "%e s" python "$@" 2>&1 | grep -v window | tee -a "$out/evaluate.log"; }
: > "$out/evaluate.log"
gaps="0.256,0.5,1"
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune2/bert.pt --split validation --gap-seconds $gaps --json $out/validation-finetune2.json --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune2/bert.pt --gap-seconds $gaps --json $out/test-finetune2.json --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune2/bert.pt --data data/merlin-seed1 --gap-seconds $gaps --json $out/transfer-finetune2.json --overwrite
python $out/tables.py > $out/tables.md
# 4. ship it: weights and config of runs/finetune2/bert.pt to pretrained/; vqvae.pt kept byte for byte (a re-save
#    differs in bytes: torch.save names its archive after the file), and its line of SHA256SUMS with it
python pretrained.py runs/vqvae.pt runs/finetune2/bert.pt
git checkout pretrained/vqvae.pt
sed -i "s/^[0-9a-f]*  vqvae.pt$/$(sha256sum pretrained/vqvae.pt | cut -d' ' -f1)  vqvae.pt/" pretrained/SHA256SUMS
(cd pretrained && sha256sum -c SHA256SUMS)
