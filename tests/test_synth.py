"""Tests for synth.py: determinism, the Slakh layout, levels, atomic writing, and musical structure.

The musical checks can fail: a generator playing random pitches would put ~7/12 of the tonal energy
in the track's scale (we ask for 80%), and drums without a repeating bar pattern would not
correlate with themselves one bar later.
"""
import numpy as np
import pytest
import soundfile as sf
import yaml

import synth
from files import UserError

RATE = 8000
TINY = (2, 1, 1)  # train, validation, test tracks
LSB = 1 / 32768  # one step of 16-bit FLAC


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "tiny"
    return synth.write_synthetic_dataset(root, RATE, seed=0, num_tracks=TINY)


def track_folders(root):
    return sorted(path.parent for path in root.glob("*/*/mix.flac"))


def read_track(folder):
    mix, rate = sf.read(folder / "mix.flac", dtype="float64")
    stems = {name: sf.read(folder / "stems" / f"{stem_id}.flac", dtype="float64")[0]
             for stem_id, (name, *_) in synth.STEM_METADATA.items()}
    return rate, mix, stems


# ---- the dataset on disk ----

def test_same_seed_gives_the_same_bytes(tiny, tmp_path):
    again = synth.write_synthetic_dataset(tmp_path / "again", RATE, seed=0, num_tracks=TINY)
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert len(files) == 4 * 6 + 1  # mix, 4 stems and metadata per track, plus the marker
    for name in files:
        assert (tiny / name).read_bytes() == (again / name).read_bytes(), name


def test_different_seed_gives_different_audio(tiny, tmp_path):
    other = synth.write_synthetic_dataset(tmp_path / "other", RATE, seed=1, num_tracks=(1, 0, 0))
    a, _ = sf.read(tiny / "train/Track00001/mix.flac")
    b, _ = sf.read(other / "train/Track00001/mix.flac")
    n = min(len(a), len(b))
    assert np.abs(a[:n] - b[:n]).max() > 0.1


def test_slakh_layout_and_metadata(tiny):
    assert [f.relative_to(tiny).as_posix() for f in track_folders(tiny)] == [
        "test/Track00004", "train/Track00001", "train/Track00002", "validation/Track00003"]
    metadata = yaml.safe_load((tiny / "train/Track00001/metadata.yaml").read_text())
    classes = {stem_id: (info["inst_class"], info["is_drum"], info["audio_rendered"])
               for stem_id, info in metadata["stems"].items()}
    assert classes == {"S00": ("Bass", False, True), "S01": ("Drums", True, True),
                       "S02": ("Guitar", False, True), "S03": ("Piano", False, True)}
    assert sf.info(str(tiny / "train/Track00001/mix.flac")).samplerate == RATE
    assert not [p for p in tiny.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_stems_sum_to_the_mix_without_clipping(tiny):
    for folder in track_folders(tiny):
        rate, mix, stems = read_track(folder)
        assert 7.5 < len(mix) / rate < 13.0
        assert np.abs(sum(stems.values()) - mix).max() <= 5 * LSB / 2 + 1e-12  # five files rounded to 16 bits
        assert np.abs(mix).max() <= 0.9 + LSB
        assert max(np.abs(x).max() for x in stems.values()) < 0.99
        assert 20 * np.log10(np.sqrt(np.mean(mix**2))) > -30  # not silent
        for name, x in stems.items():
            assert 20 * np.log10(np.sqrt(np.mean(x**2))) > -45, (folder.name, name)


def test_a_finished_dataset_is_not_generated_again(tiny, monkeypatch):
    monkeypatch.setattr(synth, "render", lambda *args: pytest.fail("regenerated"))
    assert synth.write_synthetic_dataset(tiny, RATE, seed=0, num_tracks=TINY) == tiny
    assert synth.is_complete(tiny, RATE, 0, TINY) and not synth.is_complete(tiny, RATE, 1, TINY)


def test_a_dataset_of_ours_made_with_other_settings_is_replaced(tmp_path):
    root = synth.write_synthetic_dataset(tmp_path / "data", RATE, seed=0, num_tracks=(1, 0, 0))
    synth.write_synthetic_dataset(root, RATE, seed=0, num_tracks=(1, 1, 0))
    assert synth.is_complete(root, RATE, 0, (1, 1, 0))
    assert len(track_folders(root)) == 2 and [p.name for p in tmp_path.iterdir()] == ["data"]


def test_an_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def crash_on_second_track(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return write_track(*args)

    write_track = synth.write_track
    monkeypatch.setattr(synth, "write_track", crash_on_second_track)
    with pytest.raises(KeyboardInterrupt):
        synth.write_synthetic_dataset(tmp_path / "data", RATE, num_tracks=TINY)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_folder_that_is_not_ours(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a synthetic dataset"):
        synth.write_synthetic_dataset(tmp_path / "mine", RATE, num_tracks=TINY)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# ---- the generator ----

def test_generate_track_returns_float32_stems_of_one_length():
    stems = synth.generate_track(np.random.default_rng(0), RATE)
    assert set(stems) == {"bass", "drums", "guitar", "piano", "mix"}
    assert {x.dtype for x in stems.values()} == {np.dtype(np.float32)}
    assert len({x.shape for x in stems.values()}) == 1 and stems["mix"].ndim == 1
    np.testing.assert_allclose(sum(stems[name] for name in synth.RENDERERS), stems["mix"], atol=1e-6)


@pytest.mark.parametrize("frequency", [130.8, 329.6, 987.8])
def test_karplus_strong_string_is_in_tune(frequency):
    """Reference: the spectral peak of the string must sit on the asked pitch (within 5 cents)."""
    string = synth.pluck(frequency, 1.0, RATE, np.random.default_rng(0), t60=2.0, brightness=0.3)
    spectrum = np.abs(np.fft.rfft(string * np.hanning(len(string)), 1 << 18))
    bins = np.fft.rfftfreq(1 << 18, 1 / RATE)
    near = (bins > 0.8 * frequency) & (bins < 1.2 * frequency)
    peak = bins[near][np.argmax(spectrum[near])]
    assert abs(1200 * np.log2(peak / frequency)) < 5


def chroma(x, sample_rate, low=60.0, high=1000.0):
    """Share of the energy between `low` and `high` Hz in each of the 12 pitch classes (C = 0)."""
    power = np.abs(np.fft.rfft(x)) ** 2
    bins = np.fft.rfftfreq(len(x), 1 / sample_rate)
    keep = (bins >= low) & (bins <= high)
    pitch_class = np.round(69 + 12 * np.log2(bins[keep] / 440.0)).astype(int) % 12
    return np.bincount(pitch_class, weights=power[keep], minlength=12) / power[keep].sum()


@pytest.mark.parametrize("seed", range(4))
def test_tonal_stems_play_the_notes_of_the_tracks_scale(seed):
    rng = np.random.default_rng([seed, 0, 0])
    score = synth.compose(rng)
    stems = synth.render(score, rng, RATE)
    scale = sorted(score.pitch_classes())
    for name in ("bass", "guitar", "piano"):
        share = chroma(stems[name], RATE)
        in_scale = share[scale].sum()
        # the same scale a semitone off shares only two notes with it: a control that must score lower
        off_by_a_semitone = max(share[[(p + shift) % 12 for p in scale]].sum() for shift in (1, 11))
        assert in_scale > 0.8 and in_scale > off_by_a_semitone + 0.15, (name, in_scale, off_by_a_semitone)


def correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.mark.parametrize("seed", range(4))
def test_drums_repeat_every_bar(seed):
    rng = np.random.default_rng([seed, 0, 0])
    score = synth.compose(rng)
    drums = synth.render(score, rng, RATE)["drums"]
    hop = RATE // 200  # 5 ms frames
    envelope = np.sqrt(np.mean(drums[: len(drums) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    bar = score.bar_seconds * 200  # in frames

    def at(lag):
        lag = int(round(lag))
        return correlation(envelope[:-lag], envelope[lag:])

    one_bar, off_grid = at(bar), at(bar + bar / 32)  # half a sixteenth off: between the hits
    assert one_bar > 0.35 and one_bar > off_grid + 0.15, (one_bar, off_grid)
