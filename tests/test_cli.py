"""End to end through the command line, with a tiny model on a tiny synthetic dataset:
train.py vqvae, then infer.py encode / decode / reconstruct, then evaluate.py; and the bad
inputs of the tokenizer issue, each of which must give one line on stderr and exit code 2."""
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from synth import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
RATE = 8000
TINY_FLAGS = ["--tiny", "--batch-size", "2", "--sample-rate", str(RATE), "--eval-every", "2"]


def run(*args, cwd):
    return subprocess.run([sys.executable, *[str(a) for a in args]], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


def run_all(commands, cwd):
    """`run` each command (a list of arguments), two at a time: the suite itself keeps one core busy,
    so a test that checks many one-line errors takes about half the time. Results in order."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda args: run(*args, cwd=cwd), commands))


def assert_same_audio(a, b):
    """The same 16-bit audio: equal lengths, and equal samples except that a few may differ in the last
    bit or two (sums of floats in other batch shapes round differently on some CPUs: seen on an AMD
    EPYC, where a 1.5 s separation in 0.2 s segments differed from one pass in 3 samples by 1 LSB).
    A misplaced segment edge differs by far more, in far more samples."""
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 2 / 32768 and np.mean(a != b) < 1e-3, (np.abs(a - b).max(), np.mean(a != b))


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dataset of 4 tiny tracks and a VQ-VAE trained 3 steps on it through the CLI."""
    work = tmp_path_factory.mktemp("cli")
    data = write_synthetic_dataset(work / "data", sample_rate=RATE, seed=0, num_tracks=(2, 1, 1))
    result = run(ROOT / "train.py", "vqvae", "--k", "3", "--steps", "3", "--data", data,
                 "--out", work / "runs", *TINY_FLAGS, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "held-out test split" in result.stdout
    song = work / "song.flac"
    stereo_44k = np.stack([np.sin(np.arange(44100) * 0.05), np.sin(np.arange(44100) * 0.07)], 1) * 0.3
    sf.write(song, stereo_44k, 44100)
    return work


def test_train_writes_loadable_checkpoints_and_test_results(trained):
    for name in ("vqvae.pt", "vqvae-last.pt"):
        checkpoint = torch.load(trained / "runs" / name, weights_only=True)
        assert checkpoint["kind"] == "vqvae" and checkpoint["config"]["num_downsamples"] == 3
    assert torch.load(trained / "runs" / "vqvae-last.pt", weights_only=True)["step"] == 3
    results = json.loads((trained / "runs" / "vqvae-test.json").read_text())["reconstruction"]
    assert results["tokens_per_second"] == RATE / 8
    assert 0 < results["codes_used_fraction"] <= 1


def test_encode_decode_reconstruct(trained):
    ckpt = ["--vqvae", trained / "runs" / "vqvae.pt"]
    result = run(ROOT / "infer.py", "encode", "song.flac", "-o", "song.tokens.npy", *ckpt, cwd=trained)
    assert result.returncode == 0, result.stderr
    tokens = np.load(trained / "song.tokens.npy")
    assert tokens.shape == (RATE // 8,) and tokens.min() >= 0 and tokens.max() < 16  # 1 s at 8 kHz, k = 3
    result = run(ROOT / "infer.py", "decode", "song.tokens.npy", "-o", "song.decoded.wav", *ckpt, cwd=trained)
    assert result.returncode == 0, result.stderr
    audio, rate = sf.read(trained / "song.decoded.wav")
    assert rate == RATE and audio.shape == (RATE,)
    np.save(trained / "column.npy", tokens[:, None])  # (S, 1), as commits before fe96be8 wrote them
    result = run(ROOT / "infer.py", "decode", "column.npy", "-o", "column.wav", *ckpt, cwd=trained)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(sf.read(trained / "column.wav")[0], audio)
    result = run(ROOT / "infer.py", "reconstruct", "song.flac", *ckpt, cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "SI-SDR" in result.stdout and (trained / "song.recon.wav").exists()


def test_long_files_run_in_segments_with_the_bytes_of_one_pass(trained):
    """--segment-seconds 0.3 cuts the 1 s song into 4 segments (memory bounded by the segment): the
    margins make encode give exactly the tokens of one pass over the file, and decode and reconstruct
    its audio (to the last bit, but for rounding: assert_same_audio)."""
    ckpt = ["--vqvae", trained / "runs" / "vqvae.pt"]
    outputs = {}
    for seconds in ("1e-9", "0.3", "100"):  # 1e-9: segments as short as their margins, no shorter
        for args in (["encode", "song.flac", "-o", f"seg{seconds}.npy"],
                     ["decode", f"seg{seconds}.npy", "-o", f"dec{seconds}.wav"],
                     ["reconstruct", "song.flac", "-o", f"rec{seconds}.wav"]):
            result = run(ROOT / "infer.py", *args, "--segment-seconds", seconds, *ckpt, cwd=trained)
            assert result.returncode == 0, result.stderr
            if args[0] == "reconstruct":
                outputs[seconds] = result.stdout
        assert (trained / f"dec{seconds}.wav").exists()
    for seconds in ("1e-9", "0.3"):
        assert np.array_equal(np.load(trained / f"seg{seconds}.npy"), np.load(trained / "seg100.npy"))
        for name in ("dec", "rec"):
            assert_same_audio(sf.read(trained / f"{name}{seconds}.wav")[0], sf.read(trained / f"{name}100.wav")[0])
    scores = {seconds: [float(text.split(word)[1].split()[0]) for word in ("SI-SDR", "MR-STFT distance")]
              for seconds, text in outputs.items()}
    assert scores["0.3"][0] == scores["100"][0]  # SI-SDR: the same sums, block by block
    # MR-STFT: STFT frames at segment edges differ (segments shorter than an FFT size, 2048, leave it out)
    assert scores["0.3"][1] == pytest.approx(scores["100"][1], rel=0.1)


def peak_memory_mb(command, cwd):
    """Run a command; its peak resident memory in MB (Linux: VmHWM in /proc/PID/status, polled while it runs)."""
    process = subprocess.Popen([sys.executable, *map(str, command)], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    peak = 0.0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text().splitlines()
            peak = max([peak] + [int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:")])
        except (OSError, ValueError):  # it just exited
            pass
        time.sleep(0.05)
    assert process.returncode == 0, process.stderr.read()
    return peak


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
def test_a_long_file_runs_in_bounded_memory(trained):
    """10 minutes of 44.1 kHz stereo is 212 MB as float32, more once resampled: read whole, it would
    raise the peak memory by hundreds of MB. In 5 s segments the peak stays that of a 5 s file."""
    rate, t = 44100, np.arange(60 * 44100) / 44100
    minute = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 0.5 * t)).astype(np.float32)
    with sf.SoundFile(trained / "ten_minutes.flac", "w", samplerate=rate, channels=2) as out:
        for _ in range(10):
            out.write(np.stack([minute, minute], axis=1))
    sf.write(trained / "five_seconds.flac", np.stack([minute[:5 * rate]] * 2, axis=1), rate)
    peaks = {name: peak_memory_mb([ROOT / "infer.py", "reconstruct", f"{name}.flac", "-o", f"{name}.wav",
                                   "--segment-seconds", "5", "--vqvae", trained / "runs" / "vqvae.pt"], trained)
             for name in ("five_seconds", "ten_minutes")}
    assert sf.info(trained / "ten_minutes.wav").frames == 600 * RATE
    assert peaks["ten_minutes"] - peaks["five_seconds"] < 80, peaks


def test_existing_outputs_are_kept_unless_asked_to_overwrite(trained):
    kept = trained / "kept.wav"
    kept.write_bytes(b"an earlier result")
    ckpt = ["--vqvae", trained / "runs" / "vqvae.pt"]
    assert_one_line_error(run(ROOT / "infer.py", "reconstruct", "song.flac", "-o", "kept.wav", *ckpt, cwd=trained),
                          "kept.wav", "already exists", "--overwrite")
    assert kept.read_bytes() == b"an earlier result"
    result = run(ROOT / "infer.py", "reconstruct", "song.flac", "-o", "kept.wav", "--overwrite", *ckpt, cwd=trained)
    assert result.returncode == 0, result.stderr
    assert sf.read(kept)[1] == RATE
    # a fresh training run never replaces an earlier run's checkpoint
    before = (trained / "runs" / "vqvae.pt").read_bytes()
    result = run(ROOT / "train.py", "vqvae", "--k", "3", "--steps", "1", "--data", trained / "data",
                 "--out", trained / "runs", *TINY_FLAGS, cwd=trained)
    assert_one_line_error(result, "vqvae.pt", "--resume", "--overwrite")
    assert (trained / "runs" / "vqvae.pt").read_bytes() == before


def test_resume_continues_from_the_last_step(trained):
    result = run(ROOT / "train.py", "vqvae", "--k", "3", "--steps", "5", "--data", trained / "data",
                 "--out", trained / "runs", "--resume", *TINY_FLAGS, "--lr", "0.001", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout and "at step 3" in result.stdout
    assert "note: resuming with changed flags: --lr 0.002 -> 0.001" in result.stdout
    assert torch.load(trained / "runs" / "vqvae-last.pt", weights_only=True)["step"] == 5


def test_resume_with_other_settings_is_refused(trained):
    result = run(ROOT / "train.py", "vqvae", "--k", "4", "--steps", "5", "--data", trained / "data",
                 "--out", trained / "runs", "--resume", *TINY_FLAGS, cwd=trained)
    assert_one_line_error(result, "vqvae-last.pt", "num_downsamples")


def test_evaluate_writes_json(trained):
    result = run(ROOT / "evaluate.py", "--vqvae", trained / "runs" / "vqvae.pt", "--data", trained / "data",
                 "--json", "results.json", cwd=trained)
    assert result.returncode == 0, result.stderr
    results = json.loads((trained / "results.json").read_text())["reconstruction"]
    for key in ("si_sdr_db", "mrstft", "codes_used_fraction", "perplexity", "tokens_per_second", "bitrate_kbps"):
        assert key in results


# ---- bad input: one line naming the file and the problem, exit 2, no partial output ----

def write_bad_inputs(folder):
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("this is not audio\n" * 100)
    good = folder / "good.flac"
    sf.write(good, np.sin(np.arange(RATE * 2) * 0.05) * 0.3, RATE)
    (folder / "truncated.flac").write_bytes(good.read_bytes()[:200])
    sf.write(folder / "nan.wav", np.array([0.1, np.nan, 0.2] * 1000, dtype=np.float32), RATE, subtype="FLOAT")
    sf.write(folder / "silent.wav", np.zeros(RATE), RATE)
    sf.write(folder / "short.wav", np.full(3, 0.5), RATE)  # 3 samples < one token of 8
    (folder / "tokens_text.npy").write_text("nope")
    np.save(folder / "tokens_range.npy", np.array([0, 5, 999], dtype=np.int16))
    np.save(folder / "tokens_frames.npy", np.zeros((10, 4), dtype=np.int16))  # frames of 4 codes: not this tokenizer's


@pytest.mark.parametrize("name, problem", [
    ("missing.wav", "no such file"), ("empty.wav", "empty"), ("text.wav", "not a readable audio file"),
    ("truncated.flac", "truncated.flac"), ("nan.wav", "NaN"), ("silent.wav", "silent"),
    ("short.wav", "shorter than one token"), (".", "directory")])
def test_bad_audio_input(trained, name, problem):
    write_bad_inputs(trained)
    result = run(ROOT / "infer.py", "reconstruct", name, "-o", "new/out.wav", "--vqvae",
                 trained / "runs" / "vqvae.pt", cwd=trained)
    assert_one_line_error(result, problem)
    assert not (trained / "new").exists()  # no output, no temporary leftovers, not even the folder made for them


def test_a_constant_input_is_refused_like_silence(trained):
    """Pure DC (0.5) passes an RMS check but is no sound, and SI-SDR (which removes the mean) is
    undefined for it: one line, exit 2, no output (it was a traceback after writing)."""
    sf.write(trained / "dc.wav", np.full(RATE, 0.5), RATE)
    result = run(ROOT / "infer.py", "reconstruct", "dc.wav", "-o", "dc_out.wav", "--vqvae",
                 trained / "runs" / "vqvae.pt", cwd=trained)
    assert_one_line_error(result, "dc.wav", "constant 0.5", "DC")
    assert not (trained / "dc_out.wav").exists() and not list(trained.glob(".dc_out*"))


def test_a_float_file_beyond_full_scale_is_scaled_to_peak_1_with_a_line(trained):
    """A float WAV reaching +-100 is read as the same music at peak 1, and the user is told."""
    t = np.arange(RATE) / RATE
    music = (np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 1.5 * t)).astype(np.float32)
    music /= np.abs(music).max()  # peak 1
    sf.write(trained / "loud.wav", 100 * music, RATE, subtype="FLOAT")
    sf.write(trained / "unit.wav", music, RATE, subtype="FLOAT")
    ckpt = ["--vqvae", trained / "runs" / "vqvae.pt", "--overwrite"]
    loud = run(ROOT / "infer.py", "reconstruct", "loud.wav", "-o", "loud_out.wav", *ckpt, cwd=trained)
    unit = run(ROOT / "infer.py", "reconstruct", "unit.wav", "-o", "unit_out.wav", *ckpt, cwd=trained)
    assert loud.returncode == 0 and unit.returncode == 0, loud.stderr + unit.stderr
    assert loud.stderr.strip().splitlines() == [
        "loud.wav: float samples reach +-100, beyond full scale (+-1); scaled by 1/100 to a peak of 1"]
    assert unit.stderr.strip() == ""
    np.testing.assert_allclose(sf.read(trained / "loud_out.wav")[0], sf.read(trained / "unit_out.wav")[0], atol=1e-3)
    assert loud.stdout.split("SI-SDR")[1].split(",")[0] == unit.stdout.split("SI-SDR")[1].split(",")[0]


@pytest.mark.parametrize("name, problem", [("tokens_text.npy", "not a token file"),
                                           ("tokens_range.npy", "outside"), ("tokens_frames.npy", "(10, 4)")])
def test_bad_token_file(trained, name, problem):
    write_bad_inputs(trained)
    result = run(ROOT / "infer.py", "decode", name, "-o", "out.wav", "--vqvae",
                 trained / "runs" / "vqvae.pt", cwd=trained)
    assert_one_line_error(result, name, problem)


def test_bad_checkpoints(trained):
    good = (trained / "runs" / "vqvae.pt").read_bytes()
    (trained / "truncated.pt").write_bytes(good[: len(good) // 2])
    torch.save({"kind": "bert", "config": {}, "model": {}}, trained / "bert.pt")
    torch.save({"weights": 1}, trained / "other.pt")
    old = torch.load(trained / "runs" / "vqvae.pt", weights_only=True)
    del old["format"]  # as commit 9f53cb0 and earlier wrote them: format 1
    torch.save(old, trained / "old.pt")
    for name, problem in [("truncated.pt", "truncated"), ("bert.pt", "expected a vqvae"),
                          ("old.pt", "checkpoint format 1, this code needs format 3"),
                          ("other.pt", "not an audio-mlm checkpoint"), ("none.pt", "no such checkpoint")]:
        result = run(ROOT / "infer.py", "encode", "song.flac", "--vqvae", name, cwd=trained)
        assert_one_line_error(result, name, problem)


def test_bad_flags(trained):
    unknown = trained / "unknown_layout"
    unknown.mkdir(exist_ok=True)
    (unknown / "notes.txt").write_text("no audio here")
    cases = [([ROOT / "train.py", "vqvae", "--k", "0"], "--k"),
             ([ROOT / "train.py", "vqvae", "--steps", "many"], "--steps"),
             ([ROOT / "train.py", "vqvae", "--bogus"], "--bogus"),
             ([ROOT / "train.py", "vqvae", "--lr", "0"], "--lr"),
             ([ROOT / "train.py", "vqvae", "--data", unknown, "--out", "fresh"], "unknown_layout")]
    cases += [([ROOT / "evaluate.py", "--gap-seconds", value], "--gap-seconds") for value in ("nan", "1,x", "-1")]
    for result, (_, words) in zip(run_all([args for args, _ in cases], cwd=trained), cases):
        assert_one_line_error(result, words)


@pytest.mark.parametrize("rate, channels, suffix", [(8000, 1, "wav"), (96000, 2, "flac"), (44100, 8, "wav"),
                                                    (22050, 3, "ogg"), (44100, 2, "mp3")])
def test_any_rate_channel_count_and_format_is_accepted(trained, rate, channels, suffix):
    """Mixed down to mono and resampled to the model's rate: 0.5 s in, 0.5 s out at 8 kHz."""
    name = f"odd_{rate}_{channels}.{suffix}"
    t = np.arange(rate // 2) / rate
    wave = np.stack([0.2 * np.sin(2 * np.pi * (220 + 50 * c) * t) for c in range(channels)], axis=1)
    sf.write(trained / name, wave, rate)
    result = run(ROOT / "infer.py", "reconstruct", name, "-o", "odd.wav", "--overwrite", "--vqvae",
                 trained / "runs" / "vqvae.pt", cwd=trained)
    assert result.returncode == 0, result.stderr
    audio, out_rate = sf.read(trained / "odd.wav")
    assert out_rate == RATE and abs(len(audio) - RATE // 2) <= RATE // 100  # mp3 pads a few ms
