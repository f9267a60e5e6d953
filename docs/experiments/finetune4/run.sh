#!/usr/bin/env bash
# The runs of docs/experiments/finetune4.md, from the repository root, each alone on the machine
# (2026-12-07, 2-core AMD EPYC with AVX512-BF16, bf16 autocast). runs/vqvae.pt is the shipped tokenizer;
# the start is the BERT shipped at commit 2a6988b (8000 + 2000 + 3000 + 3750 steps,
# docs/experiments/finetune3.md).
set -euo pipefail
out=$PWD/docs/experiments/finetune4
mkdir -p runs data && cp -n pretrained/vqvae.pt runs/vqvae.pt
# 1. 3000 more steps of today's recipe from its weights (fresh optimizer and schedule), with the code of
#    commit 008ae56 (the training computes the same at this page's commit), in a throwaway worktree
W=$(mktemp -d)/finetune4
git worktree add --detach "$W" 008ae56
(cd "$W" && ln -s "$OLDPWD/runs" runs && ln -s "$OLDPWD/data" data &&
 python train.py bert --init pretrained/bert.pt --steps 3000 --out runs/finetune4 > "$OLDPWD/runs/finetune4-train.log" 2>&1)
git worktree remove --force "$W"
cp runs/finetune4-train.log $out/finetune4-train.log
cp runs/finetune4/bert-log.csv $out/finetune4-bert-log.csv
# 2. validation (the decision), then the test split and the unseen SoundFont set (synth.py data/merlin-seed1 ..., README)
run() { echo "\$ $*" | tee -a "$out/evaluate.log"; /usr/bin/time -f "%e s" python "$@" 2>&1 | grep -v window | tee -a "$out/evaluate.log"; }
: > "$out/evaluate.log"
gaps="0.256,0.5,1"
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune4/bert.pt --split validation --gap-seconds $gaps --json $out/validation-finetune4.json --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune4/bert.pt --gap-seconds $gaps --json $out/test-finetune4.json --overwrite
run evaluate.py --vqvae runs/vqvae.pt --bert runs/finetune4/bert.pt --data data/merlin-seed1 --gap-seconds $gaps --json $out/transfer-finetune4.json --overwrite
python $out/tables.py > $out/tables.md
# 3. ship it: weights and config of runs/finetune4/bert.pt to pretrained/; vqvae.pt kept byte for byte (a re-save
#    differs in bytes: torch.save names its archive after the file), and its line of SHA256SUMS with it
python pretrained.py runs/vqvae.pt runs/finetune4/bert.pt
git checkout pretrained/vqvae.pt
sed -i "s/^[0-9a-f]*  vqvae.pt$/$(sha256sum pretrained/vqvae.pt | cut -d' ' -f1)  vqvae.pt/" pretrained/SHA256SUMS
(cd pretrained && sha256sum -c SHA256SUMS)
# 4. the README's example mix, every stem scored, and its picture (the bass)
(echo '$ python infer.py separate examples/timgm6mb-test.flac --reference examples/timgm6mb-test --out /tmp/sepcmp4 --overwrite   # the shipped models'
 python infer.py separate examples/timgm6mb-test.flac --reference examples/timgm6mb-test --out /tmp/sepcmp4 --overwrite 2>&1 | grep -v window) > $out/example.log
python infer.py separate examples/timgm6mb-test.flac --stem bass --reference examples/timgm6mb-test/bass.flac --plot --out /tmp/sepplot --overwrite
cp /tmp/sepplot/timgm6mb-test/spectrograms.png docs/separation.png
