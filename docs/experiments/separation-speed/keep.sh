#!/usr/bin/env bash
# The last block on the stem half only (bert.hidden_states(keep=...)): bench.py before (commit e66899d,
# a worktree at OLD) and after (this commit), each alone and twice in turn, the shipped models; then
# infer.py separate on the example mix with both, compared byte for byte.
# (2026-12-07, a 2-core AMD EPYC with AVX512-BF16, bf16 autocast.)  Usage: bash keep.sh OLD_WORKTREE
set -euo pipefail
old=$1
out=docs/experiments/separation-speed
new=$PWD
for round in 1 2; do
  for side in before after; do
    dir=$([ $side = before ] && echo "$old" || echo "$new")
    echo "== $side (round $round)"
    (cd "$dir" && python bench.py --vqvae "$new/pretrained/vqvae.pt" --bert "$new/pretrained/bert.pt" \
       --json "$new/$out/bench-$side-$round.json") | grep -E "models|separate|peak"
  done
done
rm -rf /tmp/keep-sep && mkdir -p /tmp/keep-sep
for side in before after; do
  dir=$([ $side = before ] && echo "$old" || echo "$new")
  (cd "$dir" && /usr/bin/time -f "$side: %e s" python infer.py separate "$new/examples/timgm6mb-test.flac" \
     --vqvae "$new/pretrained/vqvae.pt" --bert "$new/pretrained/bert.pt" --out /tmp/keep-sep/$side 2>&1 | grep -v window)
done
for stem in bass drums guitar piano; do
  cmp /tmp/keep-sep/before/timgm6mb-test/$stem.wav /tmp/keep-sep/after/timgm6mb-test/$stem.wav && echo "$stem.wav: identical"
done
