"""Tests for data.py: the three layouts, partial reads, the training sampler and the evaluation chunks.

Every test writes its own tiny dataset in tmp_path; nothing is downloaded.
"""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import data
import synth
from data import ChunkSampler, Track, detect_layout, eval_chunks, find_tracks, read_source, track_duration
from files import UserError

RATE = 8000


def sine(frequency, seconds, rate=RATE, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write(path, x, rate=RATE, subtype=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, rate, subtype=subtype)
    return path


# ---- fixtures in each layout ----

def slakh_track(folder, stems):
    """stems: {stem id: (inst_class, is_drum, audio_rendered, waveform or None for no file)}."""
    write(folder / "mix.flac", sum(x for *_, x in stems.values() if x is not None))
    metadata = {"audio_dir": "stems", "stems": {}}
    for stem_id, (inst_class, is_drum, rendered, x) in stems.items():
        metadata["stems"][stem_id] = {"inst_class": inst_class, "is_drum": is_drum, "audio_rendered": rendered,
                                      "program_num": 0, "midi_program_name": "x", "plugin_name": "x"}
        if x is not None:
            write(folder / "stems" / f"{stem_id}.flac", x)
    (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata))


@pytest.fixture
def slakh(tmp_path):
    root = tmp_path / "slakh"
    slakh_track(root / "train" / "Track00001", {
        "S00": ("Bass", False, True, sine(55, 1.0, amplitude=0.2)),
        "S01": ("Guitar", False, True, sine(220, 1.0, amplitude=0.2)),
        "S02": ("Guitar", False, True, sine(330, 1.0, amplitude=0.1)),  # a second guitar: summed
        "S03": ("Piano", False, False, sine(440, 1.0, amplitude=0.2)),  # not rendered: skipped
        "S04": ("Drums", True, True, sine(100, 1.0, amplitude=0.1)),
        "S05": ("Strings", False, True, sine(660, 1.0, amplitude=0.1)),  # not one of our four stems
        "S06": ("Piano", False, True, None),  # rendered, but the file is missing: skipped
    })
    for split, name in (("validation", "Track00002"), ("test", "Track00003")):
        slakh_track(root / split / name, {"S00": ("Bass", False, True, sine(55, 0.5))})
    return root


@pytest.fixture
def musdb(tmp_path):
    root = tmp_path / "musdb"
    names = {"train": ["A - One", "B - Two", "C - Three"], "test": ["D - Four"]}
    for split, tracks in names.items():
        for name in tracks:
            for i, source in enumerate(("mixture", "vocals", "drums", "bass", "other")):
                write(root / split / name / f"{source}.wav", np.stack([sine(110 * (i + 1), 0.5)] * 2, axis=1))
    return root


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "songs"
    write(root / "a.wav", sine(220, 0.5))
    write(root / "sub" / "b.flac", sine(330, 0.5))
    write(root / "c.ogg", sine(440, 0.5))
    (root / "readme.txt").write_text("not audio")
    return root


# ---- layouts ----

def test_detect_layout(slakh, musdb, folder):
    assert (detect_layout(slakh), detect_layout(musdb), detect_layout(folder)) == ("slakh", "musdb", "folder")


def test_slakh_sums_stems_of_one_class_and_skips_unrendered_ones(slakh):
    (track,) = find_tracks(slakh, "train")
    assert track.name == "Track00001" and track.split == "train"
    assert set(track.sources) == {"mix", "bass", "drums", "guitar"}
    assert [p.name for p in track.sources["guitar"]] == ["S01.flac", "S02.flac"]
    guitar = read_source(track, "guitar", RATE, 0.25, 0.5)
    expected = sine(220, 1.0, amplitude=0.2) + sine(330, 1.0, amplitude=0.1)
    np.testing.assert_allclose(guitar, expected[2000:6000], atol=1e-4)  # 16-bit FLAC
    assert not read_source(track, "piano", RATE, 0.0, 0.5).any()  # absent: silence
    assert [t.name for t in find_tracks(slakh, "validation")] == ["Track00002"]


def test_musdb_carves_validation_out_of_train(musdb):
    splits = {split: [t.name for t in find_tracks(musdb, split)] for split in data.SPLITS}
    assert splits == {"train": ["B - Two", "C - Three"], "validation": ["A - One"], "test": ["D - Four"]}
    track = find_tracks(musdb, "test")[0]
    assert set(track.sources) == {"mix", "vocals", "drums", "bass", "other"}
    assert data.dataset_sources([track]) == ("mix", "bass", "drums", "other", "vocals")


def test_folder_of_files_splits_every_file_once(folder):
    splits = {split: [t.name for t in find_tracks(folder, split)] for split in data.SPLITS}
    assert sorted(sum(splits.values(), [])) == ["a.wav", "c.ogg", "sub/b.flac"]  # each file in one split
    assert all(len(names) == 1 for names in splits.values())
    track = find_tracks(folder, "train")[0]
    assert list(track.sources) == ["mix"] and len(read_source(track, "mix", RATE, 0, 0.1)) == 800


def test_folder_split_is_about_90_5_5_and_stable(tmp_path):
    root = tmp_path / "many"
    for i in range(60):
        write(root / f"{i:02d}.wav", np.zeros(10, np.float32) + 0.1)
    splits = {split: {t.name for t in find_tracks(root, split)} for split in data.SPLITS}
    assert len(splits["train"]) >= 45 and splits["validation"] and splits["test"]
    write(root / "new.wav", np.zeros(10, np.float32) + 0.1)  # adding a file moves no other file
    again = {split: {t.name for t in find_tracks(root, split)} - {"new.wav"} for split in data.SPLITS}
    assert again == splits


def test_folder_with_fewer_than_three_files_uses_them_everywhere(tmp_path):
    write(tmp_path / "x" / "only.wav", sine(220, 0.1))
    assert all([t.name for t in find_tracks(tmp_path / "x", split)] == ["only.wav"] for split in data.SPLITS)


def test_errors_name_the_folder(tmp_path, slakh):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("hello")
    for root in (tmp_path / "missing", tmp_path / "empty", tmp_path / "text"):
        with pytest.raises(UserError, match=str(root)):
            find_tracks(root, "train")
    for split in ("validation", "test"):
        for track in (slakh / split).iterdir():
            for path in sorted(track.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
    with pytest.raises(UserError, match="test split"):
        find_tracks(slakh, "test")


# ---- reading ----

def test_partial_read_returns_exactly_the_asked_samples(tmp_path, monkeypatch):
    ramp = (np.arange(3 * RATE) / (3 * RATE)).astype(np.float32)
    track = Track("ramp", "train", {"mix": [write(tmp_path / "ramp.wav", ramp, subtype="FLOAT")]})
    frames_read = []
    read_audio = data.read_audio

    def spy(path, rate, start, frames):
        frames_read.append(frames)
        return read_audio(path, rate, start, frames)
    monkeypatch.setattr(data, "read_audio", spy)
    x = read_source(track, "mix", RATE, 1.25, 0.5)
    np.testing.assert_array_equal(x, ramp[10000:14000])
    assert frames_read == [4000]  # only the chunk was decoded
    end = read_source(track, "mix", RATE, 2.9, 0.25)  # past the end: zero-padded to the asked length
    assert len(end) == 2000 and np.array_equal(end[:800], ramp[-800:]) and not end[800:].any()
    assert track_duration(track) == 3.0 and track.duration == 3.0


def test_read_resamples_from_44k1_and_averages_stereo(tmp_path):
    t = np.arange(3 * 44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, 0.5 * left], axis=1)  # mono = 0.75 * left
    track = Track("sine", "train", {"mix": [write(tmp_path / "sine.wav", stereo, 44100, "FLOAT")]})
    x = read_source(track, "mix", 16000, 1.3, 0.2)
    assert x.shape == (3200,) and x.dtype == np.float32
    expected = 0.375 * np.sin(2 * np.pi * 440 * (1.3 + np.arange(3200) / 16000))
    np.testing.assert_allclose(x, expected, atol=2e-3)
    whole = read_source(track, "mix", 16000, 0.0, 3.0)  # the partial read equals a slice of the whole
    np.testing.assert_allclose(x, whole[20800:24000], atol=1e-6)


# ---- training chunks and evaluation chunks ----

@pytest.fixture
def half_silent(tmp_path):
    """Two tracks whose mixture sounds in its first half only, and one that is silent throughout."""
    half = np.concatenate([sine(440, 1.0), np.zeros(RATE, np.float32)])
    return [Track("a", "train", {"mix": [write(tmp_path / "a.wav", half)]}),
            Track("b", "train", {"mix": [write(tmp_path / "b.wav", half)],
                                 "drums": [write(tmp_path / "b_drums.wav", sine(100, 2.0))]})]


def test_sampler_shapes_and_determinism(half_silent):
    batch = ChunkSampler(half_silent, RATE, 400, seed=3).sample(6)
    assert batch.shape == (6, 1, 400) and batch.dtype == torch.float32
    assert np.array_equal(batch.numpy(), ChunkSampler(half_silent, RATE, 400, seed=3).sample(6).numpy())
    assert not np.array_equal(batch.numpy(), ChunkSampler(half_silent, RATE, 400, seed=4).sample(6).numpy())


def test_sampler_skips_silent_chunks(half_silent):
    loud = ChunkSampler(half_silent, RATE, 400, sources=["mix"], seed=0).sample(32).numpy()
    assert (np.sqrt(np.mean(loud**2, axis=-1)) > 0.01).all()
    # control: with no silence threshold about half the chunks of these tracks are silent
    sampler = ChunkSampler(half_silent, RATE, 400, sources=["mix"], seed=0, silence_db=-np.inf)
    anything = sampler.sample(32).numpy()
    assert (np.abs(anything).max(axis=-1) == 0).sum() >= 8


def test_sampler_gives_up_on_an_all_silent_dataset(tmp_path):
    track = Track("quiet", "train", {"mix": [write(tmp_path / "q.wav", np.zeros(RATE, np.float32))]})
    batch = ChunkSampler([track], RATE, 100, max_retries=3).sample(2)
    assert batch.shape == (2, 1, 100) and not batch.any()


def test_sampler_draws_only_sources_that_exist(half_silent):
    sampler = ChunkSampler(half_silent, RATE, 400)
    assert [names for _, names in sampler.choices] == [["mix"], ["drums", "mix"]]
    with pytest.raises(UserError):
        ChunkSampler(half_silent, RATE, 400, sources=["vocals"])


def test_eval_chunks_are_fixed_evenly_spaced_and_skip_silence(tmp_path, half_silent):
    ramp = (np.arange(2 * RATE) / (2 * RATE)).astype(np.float32) + 0.1
    tracks = half_silent + [Track("ramp", "test", {"mix": [write(tmp_path / "r.wav", ramp, subtype="FLOAT")]})]
    chunks = eval_chunks(tracks, RATE, 800, ["mix", "drums"], chunks_per_track=2)
    # the second half of "a" and "b" is silent, so each keeps only its first chunk
    assert [(name, source) for name, source, _ in chunks] == [
        ("a", "mix"), ("b", "mix"), ("b", "drums"), ("b", "drums"), ("ramp", "mix"), ("ramp", "mix")]
    np.testing.assert_array_equal(chunks[4][2], ramp[3600:4400])  # centred in the first half
    np.testing.assert_array_equal(chunks[5][2], ramp[11600:12400])  # centred in the second half
    again = eval_chunks(tracks, RATE, 800, ["mix", "drums"], chunks_per_track=2)
    assert all(np.array_equal(x, y) for (_, _, x), (_, _, y) in zip(chunks, again))


# ---- the embedded default ----

def test_embedded_dataset_is_generated_once_in_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUDIO_MLM_DATA_CACHE", str(tmp_path / "cache"))
    root = data.embedded_dataset(RATE, num_tracks=(2, 1, 1))
    assert root == tmp_path / "cache" / f"synthetic-v{synth.GENERATOR_VERSION}-sr{RATE}-seed0"
    assert root == data.default_data_dir(RATE)
    assert "rendering" in capsys.readouterr().out
    assert data.embedded_dataset(RATE, num_tracks=(2, 1, 1)) == root and capsys.readouterr().out == ""
    assert detect_layout(root) == "slakh"
    tracks = find_tracks(root, "train")
    assert len(tracks) == 2 and set(tracks[0].sources) == {"mix", *data.STEMS}
    assert len(find_tracks(root, "validation")) == len(find_tracks(root, "test")) == 1
    assert track_duration(tracks[0]) > 7.5
    for track, others in zip(tracks, (0, 1)):  # the second track has a pad: not a target, in the mix
        mix = read_source(track, "mix", RATE, 1.0, 1.0)
        stems = sum(read_source(track, stem, RATE, 1.0, 1.0) for stem in data.STEMS)
        assert (np.abs(mix - stems).max() > 0.01) == bool(others)
    assert synth.is_complete(root, RATE, 0, (2, 1, 1))


def test_default_data_dir_is_in_the_repository(monkeypatch):
    monkeypatch.delenv("AUDIO_MLM_DATA_CACHE", raising=False)
    assert data.default_data_dir(16000, seed=3).as_posix().endswith(f"/data/synthetic-v{synth.GENERATOR_VERSION}-sr16000-seed3")
    assert data.default_data_dir(16000).parent.parent == Path(data.__file__).resolve().parent
