#!/usr/bin/env bash
# The whole `infer.py separate` command on a 30 s mix (the three example mixes end to end, cut to 30 s),
# timed twice, each a fresh process: imports, loading, encoding, BERT (cold), decoding, Eq. 10, writing.
set -euo pipefail
python - <<'PY'
import numpy as np, soundfile as sf
parts = [sf.read(f"examples/{name}.flac", dtype="float32")[0] for name in ("timgm6mb-test", "merlin-unseen", "timgm6mb-test")]
sf.write("/tmp/mix30.wav", np.concatenate([p if p.ndim == 1 else p.mean(axis=1) for p in parts])[:30 * 16000], 16000, subtype="PCM_16")
PY
/usr/bin/time -f "imports alone: %e s" python -c "import infer"
for run in 1 2; do
  /usr/bin/time -f "infer.py separate, 30 s mix, run $run: %e s, peak %M KB" \
    python infer.py separate /tmp/mix30.wav --out /tmp/sep30 --overwrite 2>&1 | grep -v "window\|->"
done
