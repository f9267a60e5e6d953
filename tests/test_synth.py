"""Tests for composer.py and synth.py: determinism, the Slakh layout and metadata, mixing, bad
SoundFonts and interrupted runs, and musical structure.

The musical checks can fail: a generator playing random pitches would put ~7/12 of the tonal energy
in the track's scale, and drums without a repeating bar pattern would not correlate with themselves
one bar later.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import yaml

import composer
import synth
from data import SLAKH_CLASSES, find_tracks, read_source
from files import UserError

RATE = 8000
TINY = (2, 1, 1)  # train, validation, test tracks
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "tiny"
    return synth.write_synthetic_dataset(root, RATE, seed=0, num_tracks=TINY)


def track_folders(root):
    return sorted(path.parent for path in root.glob("*/*/mix.flac"))


def read_track(folder):
    """(metadata, mix, {stem id: stem}) as int16 arrays: the exact integers in the files."""
    metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
    mix, _ = sf.read(folder / "mix.flac", dtype="int16")
    stems = {stem_id: sf.read(folder / "stems" / f"{stem_id}.flac", dtype="int16")[0] for stem_id in metadata["stems"]}
    return metadata, mix, stems


# ---- the dataset on disk ----

def test_same_seed_gives_the_same_bytes(tiny, tmp_path):
    again = synth.write_synthetic_dataset(tmp_path / "again", RATE, seed=0, num_tracks=TINY, workers=2)
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
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
    for folder in track_folders(tiny):
        metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
        assert (folder / "all_src.mid").stat().st_size > 0
        for stem_id, info in metadata["stems"].items():
            assert (folder / "stems" / f"{stem_id}.flac").exists() and (folder / "MIDI" / f"{stem_id}.mid").exists()
            assert {"inst_class", "program_num", "is_drum", "midi_program_name", "plugin_name",
                    "audio_rendered"} <= set(info)
            assert info["program_num"] in synth.PROGRAMS[info["part"]]
            assert info["is_drum"] == (info["inst_class"] == "Drums") == (info["part"] == "drums")
            # the class follows the General MIDI program, as in Slakh: a target part is in its target class
            assert (SLAKH_CLASSES.get(info["inst_class"]) or "other") == (
                info["part"] if info["part"] in SLAKH_CLASSES.values() else "other")
    assert sf.info(str(tiny / "train/Track00001/mix.flac")).samplerate == RATE
    assert not [p for p in tiny.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_the_mix_is_exactly_the_sum_of_the_stem_files_and_does_not_clip(tiny):
    for folder in track_folders(tiny):
        _, mix, stems = read_track(folder)
        assert 7.5 * RATE < len(mix) < 14 * RATE
        np.testing.assert_array_equal(sum(x.astype(np.int32) for x in stems.values()), mix)
        assert np.abs(mix).max() <= synth.MIX_PEAK * 32768 + len(stems)  # + rounding of each stem
        assert 20 * np.log10(np.sqrt(np.mean((mix / 32768.0) ** 2))) > -35  # not silent


def test_stems_are_loudness_normalised_within_half_a_lu(tiny):
    """Each stem file measures its metadata loudness (its target plus the common gain) by BS.1770."""
    meter = pyloudnorm.Meter(RATE)
    for folder in track_folders(tiny):
        metadata, _, stems = read_track(folder)
        for stem_id, x in stems.items():
            loudness = meter.integrated_loudness(x / 32768.0)
            assert abs(loudness - metadata["stems"][stem_id]["loudness_lufs"]) < 0.5, (folder.name, stem_id)
            assert synth.LOUDNESS_LUFS[0] - 12 < loudness <= synth.LOUDNESS_LUFS[1] + 0.5


def test_loader_keeps_targets_and_leaves_the_other_parts_in_the_mix(tiny):
    """Validation track 3 has a pad: the loader gives no pad source, and the mix minus the targets is it."""
    track = find_tracks(tiny, "validation")[0]
    metadata, _, stems = read_track(tiny / "validation" / track.name)
    parts = {info["part"]: stem_id for stem_id, info in metadata["stems"].items()}
    assert {"pad", "lead"} & set(parts)
    assert set(track.sources) == {"mix"} | (set(parts) & {"bass", "drums", "guitar", "piano"})
    mix = read_source(track, "mix", RATE, 0.0, 8.0)
    targets = sum(read_source(track, name, RATE, 0.0, 8.0) for name in track.sources if name != "mix")
    others = sum(stems[stem_id][: 8 * RATE] / 32768.0 for part, stem_id in parts.items() if part in ("pad", "lead"))
    assert np.sqrt(np.mean(others ** 2)) > 0.01
    np.testing.assert_allclose(mix - targets, others, atol=1e-4)


def test_a_track_without_a_guitar(tmp_path, monkeypatch):
    monkeypatch.setitem(composer.PLAYS, "guitar", 0.0)
    root = synth.write_synthetic_dataset(tmp_path / "data", RATE, seed=0, num_tracks=(1, 0, 0))
    metadata = yaml.safe_load((root / "train/Track00001/metadata.yaml").read_text())
    assert "Guitar" not in [info["inst_class"] for info in metadata["stems"].values()]
    track = find_tracks(root, "train")[0]
    assert "guitar" not in track.sources and "bass" in track.sources
    assert not read_source(track, "guitar", RATE, 1.0, 1.0).any()  # a missing stem reads as silence


def test_parts_vary_per_track_like_slakh():
    """Over 200 tracks: every part is sometimes missing, non-targets play in most tracks, programs vary."""
    scores = [composer.compose(np.random.default_rng([0, 0, i])) for i in range(200)]
    for part in composer.PARTS:
        share = np.mean([part in score.notes for score in scores])
        assert 0.5 < share < 1.0, (part, share)
    assert np.mean([bool({"pad", "lead"} & set(score.notes)) for score in scores]) > 0.8
    assert all(sum(part in score.notes for part in composer.PARTS[:4]) >= 2 for score in scores)


def test_a_finished_dataset_is_not_generated_again(tiny, monkeypatch):
    monkeypatch.setattr(synth, "render_track", lambda *args: pytest.fail("regenerated"))
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


def test_a_killed_generation_is_never_trusted_and_the_next_run_regenerates(tmp_path):
    """kill -9 in the middle of the first run: no dataset, and the next run cleans up and builds it."""
    root = tmp_path / "data"
    code = f"import synth; synth.write_synthetic_dataset({str(root)!r}, {RATE}, 0, (40, 0, 0), workers=1)"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".data.*.tmp/train/*/metadata.yaml")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not root.exists() and list(tmp_path.glob(".data.*.tmp"))  # half a build, under a hidden name
    assert not synth.is_complete(root, RATE, 0, (1, 0, 0))
    synth.write_synthetic_dataset(root, RATE, 0, (1, 0, 0))
    assert synth.is_complete(root, RATE, 0, (1, 0, 0)) and [p.name for p in tmp_path.iterdir()] == ["data"]


def test_refuses_to_overwrite_a_folder_that_is_not_ours(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a synthetic dataset"):
        synth.write_synthetic_dataset(tmp_path / "mine", RATE, num_tracks=TINY)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_missing_or_corrupt_soundfont_or_renderer_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO_MLM_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(UserError, match="missing.sf2: no such SoundFont"):
        synth.write_synthetic_dataset(tmp_path / "data", RATE, num_tracks=(1, 0, 0))
    (tmp_path / "bad.sf2").write_bytes(b"RIFF not a soundfont" * 100)
    monkeypatch.setenv("AUDIO_MLM_SOUNDFONT", str(tmp_path / "bad.sf2"))
    with pytest.raises(UserError, match="bad.sf2: could not render with this SoundFont"):
        synth.write_synthetic_dataset(tmp_path / "data", RATE, num_tracks=(1, 0, 0))
    monkeypatch.delenv("AUDIO_MLM_SOUNDFONT")
    monkeypatch.setitem(sys.modules, "midirenderer", None)  # as if the package were not installed
    with pytest.raises(UserError, match="midirenderer is not installed"):
        synth.write_synthetic_dataset(tmp_path / "data", RATE, num_tracks=(1, 0, 0))
    assert list(tmp_path.iterdir()) == [tmp_path / "bad.sf2"]  # no dataset, no temporary folder


# ---- the music ----

def test_generate_track_returns_float32_stems_of_one_length_that_sum_to_the_mix():
    stems = synth.generate_track(np.random.default_rng([0, 0, 1]), RATE)
    assert set(stems) == {"bass", "drums", "guitar", "piano", "pad", "mix"}
    assert {x.dtype for x in stems.values()} == {np.dtype(np.float32)}
    assert len({x.shape for x in stems.values()}) == 1 and stems["mix"].ndim == 1
    np.testing.assert_allclose(sum(x for name, x in stems.items() if name != "mix"), stems["mix"], atol=1e-6)


def chroma(x, sample_rate, low=60.0, high=1000.0):
    """Share of the energy between `low` and `high` Hz in each of the 12 pitch classes (C = 0)."""
    power = np.abs(np.fft.rfft(x)) ** 2
    bins = np.fft.rfftfreq(len(x), 1 / sample_rate)
    keep = (bins >= low) & (bins <= high)
    pitch_class = np.round(69 + 12 * np.log2(bins[keep] / 440.0)).astype(int) % 12
    return np.bincount(pitch_class, weights=power[keep], minlength=12) / power[keep].sum()


@pytest.mark.parametrize("seed", range(3))
def test_tonal_stems_play_the_notes_of_the_tracks_scale(seed):
    """The sampled instruments play in the key: more energy in the scale than a semitone off."""
    rng = np.random.default_rng([seed, 0, 0])
    score = composer.compose(np.random.default_rng([seed, 0, 0]))
    stems = synth.generate_track(rng, RATE)
    scale = sorted(score.pitch_classes())
    for name in set(stems) & {"bass", "guitar", "piano", "pad", "lead"}:
        share = chroma(stems[name], RATE)
        in_scale = share[scale].sum()
        # the same scale a semitone off shares only two notes with it: a control that must score lower
        off_by_a_semitone = max(share[[(p + shift) % 12 for p in scale]].sum() for shift in (1, 11))
        assert in_scale > 0.7 and in_scale > off_by_a_semitone + 0.15, (name, in_scale, off_by_a_semitone)


def correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.mark.parametrize("seed", range(3))
def test_drums_repeat_every_bar(seed):
    score = composer.compose(np.random.default_rng([seed, 0, 0]))
    drums = synth.generate_track(np.random.default_rng([seed, 0, 0]), RATE)["drums"]
    hop = RATE // 200  # 5 ms frames
    envelope = np.sqrt(np.mean(drums[: len(drums) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    bar = score.bar_seconds * 200  # in frames

    def at(lag):
        lag = int(round(lag))
        return correlation(envelope[:-lag], envelope[lag:])

    one_bar, off_grid = at(bar), at(bar + bar / 32)  # half a sixteenth off: between the hits
    assert one_bar > 0.35 and one_bar > off_grid + 0.15, (one_bar, off_grid)


def test_the_command_line_renders_a_variant_and_refuses_bad_flags(tmp_path):
    run = lambda *flags: subprocess.run([sys.executable, "synth.py", *map(str, flags)], cwd=REPO,
                                        capture_output=True, text=True)
    done = run(tmp_path / "other", "--seed", 3, "--tracks", "0,1,1", "--sample-rate", RATE)
    assert done.returncode == 0 and "2 tracks rendered with TimGM6mb.sf2" in done.stdout
    assert synth.is_complete(tmp_path / "other", RATE, 3, (0, 1, 1))
    for flags, message in [(["--tracks", "1,2"], "--tracks must be three counts"),
                           (["--soundfont", tmp_path / "none.sf2"], "none.sf2: no such SoundFont")]:
        failed = run(tmp_path / "bad", *flags)
        assert failed.returncode == 2 and message in failed.stderr and len(failed.stderr.splitlines()) == 1
    assert not (tmp_path / "bad").exists()
