#!/usr/bin/env bash
# Stems in the user's format (docs/experiments/release.md): the 44.1 kHz stereo example separated as it
# is (the Eq. 10 masks applied to each channel at 44.1 kHz) against the same mix and true stems first
# mixed down to mono and resampled to the model's 16 kHz. Run from the repository root; log to native.log.
set -euo pipefail
out=docs/experiments/release
work=$(mktemp -d)
models="--vqvae pretrained/vqvae.pt --bert pretrained/bert.pt"  # the shipped ones
python - "$work" <<'PY'
import sys
from pathlib import Path
import soundfile as sf
from audio import read_frames, resample
work, name = Path(sys.argv[1]), "timgm6mb-test-44k-stereo"
(work / "mono16k").mkdir()
for source, target in [(f"examples/{name}.flac", work / "mono16k.flac")] + [
        (f"examples/{name}/{s}.flac", work / "mono16k" / f"{s}.flac") for s in ("bass", "drums", "guitar", "piano")]:
    wave, rate = read_frames(source), sf.info(source).samplerate  # (T, C)
    sf.write(target, resample(wave.mean(axis=1), rate, 16000), 16000, subtype="PCM_16")
PY
{
  echo "\$ python infer.py separate examples/timgm6mb-test-44k-stereo.flac --reference examples/timgm6mb-test-44k-stereo"
  python infer.py separate examples/timgm6mb-test-44k-stereo.flac --reference examples/timgm6mb-test-44k-stereo --out "$work/native" $models
  echo "\$ (the same mix and stems mixed down to mono, resampled to 16 kHz) python infer.py separate mono16k.flac --reference mono16k"
  python infer.py separate "$work/mono16k.flac" --reference "$work/mono16k" --out "$work/mono" $models
} 2>&1 | grep -v window | sed "s#$work/##g" | tee "$out/native.log"
rm -r "$work"
