#!/usr/bin/env bash
# The runs of docs/experiments/finetune3.md, from the repository root, each alone on the machine
# (2026-12-07, 2-core AMD EPYC with AVX512-BF16, bf16 autocast). runs/vqvae.pt is the shipped tokenizer;
# the start is the BERT shipped at commit 8e10501 (8000 + 2000 + 3000 steps, docs/experiments/longer-finetune.md).
set -euo pipefail
out=$PWD/docs/experiments/finetune3
mkdir -p runs data && cp -n pretrained/vqvae.pt runs/vqvae.pt
# 1. 4000 more steps of today's recipe from its weights (fresh optimizer and schedule), with the code of
#    commit 8e10501 (the training is the same computation at this page's commit), in a throwaway worktree
W=$(mktemp -d)/finetune3
git worktree add --detach "$W" 8e10501
(cd "$W" && ln -s "$OLDPWD/runs" runs && ln -s "$OLDPWD/data" data &&
 python train.py bert --init pretrained/bert.pt --steps 4000 --out runs/finetune3 > $out/finetune3-train.log 2>&1)
git worktree remove --force "$W"
cp runs/finetune3/bert-log.csv $out/finetune3-bert-log.csv
# 2. the checkpoint format of today's code (3: one code per frame, docs/experiments/one-codebook.md); the
#    tokenizer converted the same way is the shipped one
PYTHONPATH=. python docs/experiments/one-codebook/convert.py runs/vqvae.pt runs/vqvae3.pt runs/finetune3/bert.pt runs/finetune3/bert3.pt
cp pretrained/vqvae.pt runs/vqvae.pt && mv runs/finetune3/bert3.pt runs/finetune3/bert.pt && rm runs/vqvae3.pt
# 3. validation (the decision), then the test split and the unseen SoundFont set (synth.py data/merlin-seed1 ..., README)
run() { echo "\$ $*" | tee -a "$out/evaluate.log"; /usr/bin/time -f "%e s" python "$@" 2>&1 | grep -v window | tee -a "$out/evaluate.log"; }
: > "$out/evaluate.log"
gaps="0.256,0.5,1"
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune3/bert.pt --split validation --gap-seconds $gaps --json $out/validation-finetune3.json --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune3/bert.pt --gap-seconds $gaps --json $out/test-finetune3.json --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune3/bert.pt --data data/merlin-seed1 --gap-seconds $gaps --json $out/transfer-finetune3.json --overwrite
python $out/tables.py > $out/tables.md
# 4. ship it: weights and config of runs/finetune3/bert.pt to pretrained/; vqvae.pt kept byte for byte (a re-save
#    differs in bytes: torch.save names its archive after the file), and its line of SHA256SUMS with it
python pretrained.py runs/vqvae.pt runs/finetune3/bert.pt
git checkout pretrained/vqvae.pt
sed -i "s/^[0-9a-f]*  vqvae.pt$/$(sha256sum pretrained/vqvae.pt | cut -d' ' -f1)  vqvae.pt/" pretrained/SHA256SUMS
(cd pretrained && sha256sum -c SHA256SUMS)
