#!/usr/bin/env bash
# docs/experiments/one-codebook.md, from the repository root: convert the format 2 shipped models of commit
# fe96be8 and check that this code writes, from the converted files, exactly what fe96be8 writes from the old ones.
set -euo pipefail
out=$PWD/docs/experiments/one-codebook
W=$(mktemp -d)/fe96be8
git worktree add --detach "$W" fe96be8
old=$(mktemp -d)
PYTHONPATH=. python $out/convert.py "$W/pretrained/vqvae.pt" $old/vqvae.pt "$W/pretrained/bert.pt" $old/bert.pt
mix=examples/timgm6mb-test.flac
for code in old new; do
  if [ $code = old ]; then dir=$W; models="--vqvae pretrained/vqvae.pt --bert pretrained/bert.pt"; mixpath=$PWD/$mix
  else dir=$PWD; models="--vqvae $old/vqvae.pt --bert $old/bert.pt"; mixpath=$mix; fi
  (cd $dir && python infer.py separate $mixpath $models --out $old/$code-latent --overwrite > /dev/null 2>&1 &&
   python infer.py separate $mixpath $models --decode tokens --reference $PWD/examples/timgm6mb-test --out $old/$code-tokens --overwrite 2>&1 | grep SI-SDR &&
   python infer.py inpaint $mixpath --start 2 --duration 0.1 $models -o $old/$code-inpainted.wav --overwrite > /dev/null)
done
for s in bass drums guitar piano; do
  cmp $old/old-latent/timgm6mb-test/$s.wav $old/new-latent/timgm6mb-test/$s.wav
  cmp $old/old-tokens/timgm6mb-test/$s.wav $old/new-tokens/timgm6mb-test/$s.wav
done
cmp $old/old-inpainted.wav $old/new-inpainted.wav && echo "every output identical"
git worktree remove --force "$W"
