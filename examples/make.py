"""Write the example mixes of examples/ from two rendered datasets (run from the repository root).

    python synth.py data/merlin-seed1 --seed 1 --tracks 0,4,20 --soundfont data/Merlin.sf2
    python synth.py data/seed0-44k --tracks 0,0,1 --sample-rate 44100
    python examples/make.py

Each example is the first test track of its dataset that has all four target stems: its first
seconds of mixture as examples/<name>.flac and its true stems as examples/<name>/<stem>.flac (a
stem played by two instruments is their sum), 16-bit FLAC, so `infer.py separate
examples/<name>.flac --reference examples/<name>` can score what it separates. Two are 10 s at
16 kHz mono, as the models were trained; the third is the first test track again, rendered at
44.1 kHz, 6 s, with guitar panned left and piano right, as a song from a user would come.
"""
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
from data import STEMS, embedded_dataset, find_tracks, read_source  # noqa: E402

FOLDER = Path(__file__).resolve().parent
EXAMPLES = {  # name: dataset, sample rate, seconds, pan of each stem (-1 left, +1 right; None: mono)
    "timgm6mb-test": (embedded_dataset(16000), 16000, 10.0, None),  # the training timbres, unseen music
    "merlin-unseen": (Path("data/merlin-seed1"), 16000, 10.0, None),  # another SoundFont: timbres never heard
    "timgm6mb-test-44k-stereo": (Path("data/seed0-44k"), 44100, 6.0, {"guitar": -0.6, "piano": 0.6}),
}


def write(path, wave, rate):
    sf.write(str(path), np.clip(wave.T, -1, 1), rate, subtype="PCM_16")
    print(f"{path}: {path.stat().st_size / 1e3:.0f} KB")


def place(wave, pan):
    """(T,) -> (2, T) constant-power panning; centre keeps the mono level on both sides."""
    angle = (pan + 1) * np.pi / 4
    return np.sqrt(2) * np.stack([np.cos(angle) * wave, np.sin(angle) * wave])


for name, (root, rate, seconds, pans) in EXAMPLES.items():
    track = next(t for t in find_tracks(root, "test") if all(stem in t.sources for stem in STEMS))
    mix = read_source(track, "mix", rate, 0.0, seconds)
    stems = {stem: read_source(track, stem, rate, 0.0, seconds) for stem in STEMS}
    if pans is not None:  # the rest of the band (pad, lead) stays in the centre
        rest = mix - sum(stems.values())
        stems = {stem: place(wave, pans.get(stem, 0.0)) for stem, wave in stems.items()}
        mix = place(rest, 0.0) + sum(stems.values())
    write(FOLDER / f"{name}.flac", mix, rate)
    (FOLDER / name).mkdir(exist_ok=True)
    for stem, wave in stems.items():
        write(FOLDER / name / f"{stem}.flac", wave, rate)
    print(f"{name}: {track.name} of {root.name}, 0-{seconds:g} s")
