"""End to end through the command line with tiny models: train.py bert, infer.py separate and
inpaint, evaluate.py with a BERT (its JSON keys), and the BERT's bad inputs."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from audio import resample
from synth import write_synthetic_dataset
from test_cli import RATE, ROOT, TINY_FLAGS, assert_one_line_error, assert_same_audio, run, run_all

BERT_FLAGS = ["--steps", "3", "--tiny", "--batch-size", "4", "--eval-every", "2"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny dataset, a 3-step VQ-VAE and a 3-step BERT on its tokens, all through the CLI."""
    work = tmp_path_factory.mktemp("cli_bert")
    data = write_synthetic_dataset(work / "data", sample_rate=RATE, seed=0, num_tracks=(2, 1, 1))
    result = run(ROOT / "train.py", "vqvae", "--k", "3", "--steps", "3", "--data", data, "--out", work / "runs",
                 *TINY_FLAGS, cwd=work)
    assert result.returncode == 0, result.stderr
    result = run(ROOT / "train.py", "bert", "--data", data, "--out", work / "runs", *BERT_FLAGS, cwd=work)
    assert result.returncode == 0, result.stderr
    sf.write(work / "mix.wav", np.random.default_rng(0).normal(0, 0.1, (int(44100 * 1.5), 2)), 44100)  # stereo 44.1k
    return work


def test_bert_checkpoint_records_its_tokenizer(work):
    checkpoint = torch.load(work / "runs" / "bert.pt", weights_only=True)
    assert checkpoint["kind"] == "bert" and checkpoint["stems"] == ["bass", "drums", "guitar", "piano"]
    assert len(checkpoint["vqvae_fingerprint"]) == 16
    assert torch.load(work / "runs" / "bert-last.pt", weights_only=True)["step"] == 3


def test_resume_bert(work):
    result = run(ROOT / "train.py", "bert", "--data", work / "data", "--out", work / "runs", "--resume",
                 *BERT_FLAGS[2:], "--steps", "4", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "at step 3" in result.stdout
    assert torch.load(work / "runs" / "bert-last.pt", weights_only=True)["step"] == 4



def test_init_fine_tunes_from_a_checkpoints_weights_and_refuses_another_models(work):
    """--init starts from runs/bert.pt's weights (one step at the warm-up's 1e-5 moves them by about
    that much; a fresh start is elsewhere) and refuses a checkpoint of other settings in one line."""
    start = torch.load(work / "runs" / "bert.pt", weights_only=True)["model"]
    for out, extra in (("tuned", ["--init", "runs/bert.pt"]), ("fresh", ["--seed", "7"])):
        result = run(ROOT / "train.py", "bert", "--data", "data", "--out", out, "--vqvae", "runs/vqvae.pt", *BERT_FLAGS[2:],
                     "--steps", "1", *extra, cwd=work)
        assert result.returncode == 0, result.stderr
    tuned, fresh = (torch.load(work / out / "bert-last.pt", weights_only=True)["model"] for out in ("tuned", "fresh"))
    assert max((tuned[k].float() - start[k].float()).abs().max().item() for k in start) < 1e-3
    assert max((fresh[k].float() - start[k].float()).abs().max().item() for k in start) > 0.02
    result = run(ROOT / "train.py", "bert", "--data", "data", "--out", "other", "--vqvae", "runs/vqvae.pt", *BERT_FLAGS,
                 "--init", "runs/bert.pt", "--latent-weight", "0", cwd=work)
    assert_one_line_error(result, "runs/bert.pt", "--init needs the same")


def test_separate_writes_every_stem_in_the_inputs_format(work):
    """Refined stems come back as the input came (44.1 kHz stereo here); unrefined ones at the model's rate, mono."""
    result = run(ROOT / "infer.py", "separate", "mix.wav", "--vqvae", "runs/vqvae.pt", "--bert", "runs/bert.pt",
                 cwd=work)
    assert result.returncode == 0, result.stderr
    stems = {stem: sf.read(work / "separated" / "mix" / f"{stem}.wav") for stem in ("bass", "drums", "guitar", "piano")}
    for audio, rate in stems.values():
        assert rate == 44100 and audio.shape == (int(1.5 * 44100), 2)
    mixture = sf.read(work / "mix.wav")[0]
    residual = mixture - sum(audio for audio, _ in stems.values())  # the masks share each channel: nothing is made up
    assert np.sqrt(np.mean(residual ** 2)) < np.sqrt(np.mean(mixture ** 2))
    result = run(ROOT / "infer.py", "separate", "mix.wav", "--refine", "none", "--out", "unrefined", cwd=work)
    assert result.returncode == 0, result.stderr
    audio, rate = sf.read(work / "unrefined" / "mix" / "bass.wav")
    assert rate == RATE and audio.shape == (int(1.5 * RATE),)
    result = run(ROOT / "infer.py", "separate", "mix.wav", "--stem", "bass", "--out", "one", cwd=work)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (work / "one" / "mix").iterdir()] == ["bass.wav"]


@pytest.mark.parametrize("refine, count", [("none", 8), ("mixture", 3)])
def test_separate_in_segments_gives_the_bytes_of_one_pass(work, refine, count):
    """Segments start on whole hops of BERT's windows and read a window and more beside them (and,
    when refining, the STFT frames' reach), so cutting the 1.5 s mixture into 0.2 s segments
    changes nothing in the output (but rounding: assert_same_audio)."""
    for seconds in ("0.2", "100"):
        result = run(ROOT / "infer.py", "separate", "mix.wav", "--stem", "drums", "--out", f"seg{seconds}{refine}",
                     "--segment-seconds", seconds, "--refine", refine, cwd=work)
        assert result.returncode == 0, result.stderr
        # 1500 tokens in segments of whole windows (23 tokens), longer with refinement's margin at 44.1 kHz
        assert (f"segment {count}/{count}" in result.stderr) == (seconds == "0.2")
    first, last = (sf.read(work / f"seg{s}{refine}" / "mix" / "drums.wav")[0] for s in ("0.2", "100"))
    assert len(first) == int(1.5 * (RATE if refine == "none" else 44100))
    assert_same_audio(first, last)


def test_separate_refines_by_default_with_every_stem(work):
    """Eq. 10 needs every stem's estimate: --stem bass writes the bass that the all-stems run writes;
    --refine none writes BERT's output decoded (its predicted latents, at the model's rate), which differs."""
    for args, out in ((["--refine", "mixture"], "all"), (["--stem", "bass"], "bass"), (["--stem", "bass", "--refine", "none"], "raw")):
        result = run(ROOT / "infer.py", "separate", "mix.wav", "--out", out, *args, cwd=work)
        assert result.returncode == 0, result.stderr
    refined, alone, raw = (sf.read(work / out / "mix" / "bass.wav")[0] for out in ("all", "bass", "raw"))
    assert np.array_equal(refined, alone)
    mono = resample(refined.mean(axis=1).astype(np.float32), 44100, RATE)  # the refined bass at the model's rate
    assert raw.shape == mono.shape and not np.allclose(mono, raw, atol=1e-3)


def check_the_true_latent_decodes_to_the_continuous_ceiling(work, monkeypatch, stem):
    """--decode latent with a perfect prediction: a BERT that returns the input's own latents, run on
    a stem's audio, writes that stem's latents decoded without quantisation (evaluate.py's ceiling)."""
    import infer
    from checkpoint import load_vqvae
    from data import find_tracks, read_source
    from tokens import encode_waveform
    audio = read_source(find_tracks(work / "data", "test")[0], stem, RATE, 0.0, 1.0)  # (T,) a true stem
    sf.write(work / f"{stem}_only.wav", audio, RATE, subtype="FLOAT")

    def perfect(bert, vocab, mixture, features, stems, *args, **kwargs):
        assert kwargs["tokens"] is False, "decoding latents runs no token decoding (one BERT pass)"
        return {"latent": features[None].expand(len(stems), -1, -1), "tokens": mixture[None].expand(len(stems), -1)}
    monkeypatch.setattr(infer, "separate_all", perfect)
    monkeypatch.chdir(work)
    monkeypatch.setattr("sys.argv", ["infer.py", "separate", f"{stem}_only.wav", "--stem", stem, "--refine", "none",
                                     "--out", "ceiling", "--segment-seconds", "0.3"])
    infer.main()
    written = sf.read(work / "ceiling" / f"{stem}_only" / f"{stem}.wav", dtype="float32")[0]
    cpu = torch.device("cpu")
    vqvae = load_vqvae(work / "runs" / "vqvae.pt", cpu)
    _, h, _ = encode_waveform(vqvae, audio, cpu)  # (S, D) the stem's normalised latents, as the cache holds them
    ceiling = infer.decode_long(h, vqvae, cpu)[:len(written)]
    assert np.abs(ceiling).max() > 0.01  # not silence
    np.testing.assert_allclose(written, np.clip(ceiling, -1, 1), atol=2 / 32768)  # 16-bit rounding, nothing more
    tokens = infer.decode_long(vqvae.quantizer(h[None])[2][0], vqvae, cpu)[:len(written)]
    assert not np.allclose(written, np.clip(tokens, -1, 1), atol=1e-3), "the latent, not its nearest codes"


def test_decoding_the_true_latent_gives_the_continuous_ceiling(work, monkeypatch):
    check_the_true_latent_decodes_to_the_continuous_ceiling(work, monkeypatch, "bass")


def test_inpaint_a_gap_in_the_last_partial_token(work):
    """12005 samples = 1500 tokens of 8 and 5 samples: a gap that ends at the end of the file lies
    partly in a token that runs past the end (a review found a crash there)."""
    x = np.random.default_rng(1).normal(0, 0.1, 12005)
    sf.write(work / "odd_length.wav", x, RATE, subtype="FLOAT")
    result = run(ROOT / "infer.py", "inpaint", "odd_length.wav", "--start", "1.49", "--duration", "0.0106",
                 "-o", "odd_filled.wav", cwd=work)
    assert result.returncode == 0, result.stderr
    filled = sf.read(work / "odd_filled.wav", dtype="float32")[0]
    assert len(filled) == 12005 and not np.allclose(filled[11920:], x[11920:], atol=1e-3)
    assert np.array_equal(filled[:11920 - 40 - 8], x[:11920 - 40 - 8].astype(np.float32))  # before gap, fade, token


def test_inpaint_changes_only_the_gap_and_keeps_the_files_format(work):
    """mix.wav is 44.1 kHz stereo, 16-bit: so is the output, and every sample outside the gap, its
    fades and the token the gap starts in is the input's own, bit for bit; the gap is BERT's, on both channels."""
    result = run(ROOT / "infer.py", "inpaint", "mix.wav", "--start", "0.5", "--duration", "0.02",
                 "-o", "filled.wav", "--segment-seconds", "0.3", cwd=work)  # the output is copied in 5 pieces
    assert result.returncode == 0, result.stderr
    assert sf.info(str(work / "filled.wav")).subtype == sf.info(str(work / "mix.wav")).subtype == "PCM_16"
    filled, rate = sf.read(work / "filled.wav", dtype="int16")
    source = sf.read(work / "mix.wav", dtype="int16")[0]
    assert rate == 44100 and filled.shape == source.shape == (int(1.5 * 44100), 2)
    token, fade = int(np.ceil(8 * 44100 / RATE)), int(0.005 * 44100)  # a token is 8 samples at the model's rate
    gap = slice(int(0.5 * 44100) - fade - token, int(0.52 * 44100) + fade + token + 1)
    outside = np.ones(len(source), dtype=bool)
    outside[gap] = False
    assert np.array_equal(filled[outside], source[outside])
    middle = slice(int(0.505 * 44100), int(0.515 * 44100))
    assert not np.allclose(filled[middle], source[middle], atol=300)
    assert np.array_equal(filled[middle, 0], filled[middle, 1]), "one fill laid on each channel"


def test_sampled_inpainting_is_the_same_for_the_same_seed(work):
    outputs = {}
    for name, seed in (("a.wav", 1), ("b.wav", 1), ("c.wav", 2)):
        result = run(ROOT / "infer.py", "inpaint", "mix.wav", "--start", "0.5", "--duration", "0.02", "--steps", "2",
                     "--temperature", "1", "--seed", seed, "-o", name, cwd=work)
        assert result.returncode == 0, result.stderr
        outputs[name] = sf.read(work / name, dtype="float32")[0]
    assert np.array_equal(outputs["a.wav"], outputs["b.wav"]) and not np.array_equal(outputs["a.wav"], outputs["c.wav"])


def test_evaluate_with_bert_writes_the_documented_json(work):
    result = run(ROOT / "evaluate.py", "--data", "data", "--json", "results.json", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "separation, 2 s chunks" in result.stdout and "unigram baseline" in result.stdout  # the headline table
    results = json.loads((work / "results.json").read_text())
    assert results.keys() == {"reconstruction", "mlm", "inpainting", "separation"}
    for key in ("accuracy", "top5_accuracy", "unigram_accuracy", "neighbour_accuracy"):
        assert 0 <= results["mlm"][key] <= 1
    assert results["mlm"]["top5_accuracy"] >= results["mlm"]["accuracy"]
    gap = results["inpainting"]
    for fill in ("bert_tokens", "bert_latent", "unigram", "silence", "crossfade", "lpc", "repetition", "oracle_tokens",
                 "oracle_latent"):
        assert gap[f"mrstft_{fill}"] > 0 and gap[f"lsd_db_{fill}"] > 0 and f"lsd_db_{fill}_ci95" in gap
    assert gap["mrstft_silence"] > max(gap["mrstft_crossfade"], gap["mrstft_repetition"]), "real audio beats silence"
    for stem, values in results["separation"].items():
        assert stem in ("bass", "drums", "guitar", "piano") and values["chunks"] > 0
        metrics = values["metrics"]
        assert metrics.keys() == {"tokens", "refined", "latent", "latent_refined", "mixture",
                                  "mixture_tokens", "mixture_latent", "oracle", "oracle_refined", "stem_latent"}
        for name, m in metrics.items():
            assert {"si_sdr_db", "si_sdr_db_ci95", "bss_sdr_db", "bss_sdr_db_ci95", "mrstft"} <= m.keys()
            assert ("si_sdri_db" in m) == (name != "mixture")  # the improvement over the mixture, paired per chunk
            if name != "mixture":
                assert m["si_sdri_db"] == pytest.approx(m["si_sdr_db"] - metrics["mixture"]["si_sdr_db"], abs=1e-6)


def test_bert_bad_inputs(work):
    other = work / "other"
    result = run(ROOT / "train.py", "vqvae", "--k", "3", "--steps", "1", "--data", "data", "--out", other,
                 *TINY_FLAGS, "--seed", "1", cwd=work)
    assert result.returncode == 0, result.stderr
    cases = [
        (["separate", "mix.wav", "--stem", "vocals"], "vocals"),
        (["separate", "mix.wav", "--bert", "runs/vqvae.pt"], "expected a bert"),
        (["separate", "mix.wav", "--vqvae", "runs/bert.pt"], "expected a vqvae"),
        (["separate", "mix.wav", "--vqvae", other / "vqvae.pt", "--bert", "runs/bert.pt"], "another VQ-VAE"),
        (["separate", "mix.wav", "--vqvae", other / "vqvae.pt"], "bert.pt: no such checkpoint"),  # the BERT beside it
        (["separate", "mix.wav", "--reference", "mix.wav"], "needs --stem"),
        (["separate", "mix.wav", "--reference", "runs"], "no reference stems"),
        (["separate", "mix.wav", "--steps", "2"], "unrecognized arguments: --steps"),
        (["inpaint", "mix.wav", "--start", "0.5", "--duration", "0.01", "--temperature", "-1"], "--temperature"),
        (["inpaint", "mix.wav", "--start", "0.5", "--duration", "0.01", "--steps", "0"], "--steps"),
        (["inpaint", "mix.wav", "--start", "0.5", "--duration", "1.0"], "at most"),
        (["inpaint", "mix.wav", "--start", "9", "--duration", "0.01"], "not inside"),
        (["separate", "missing.wav"], "no such file"),
        (["inpaint", "mix.wav", "--start", "nan", "--duration", "0.1"], "--start"),
        (["inpaint", "mix.wav", "--start", "0.5", "--duration", "inf"], "--duration"),
        (["inpaint", "mix.wav", "--start", "-1", "--duration", "0.1"], "from -1 s to -0.9 s"),
        (["inpaint", "mix.wav", "--start", "0.5", "--duration", "0.01", "-o", "runs"], "is a directory"),
        (["separate", "mix.wav", "--out", "mix.wav"], "is a file"),
        (["separate", "mix.wav", "--decode", "codes"], "--decode"),
        (["separate", "mix.wav", "--decode", "soft"], "--decode"),  # soft decoding left the code
        (["inpaint", "mix.wav", "--start", "0.5", "--duration", "0"], "--duration must be positive"),
    ]
    cases = [([ROOT / "infer.py", *args], words) for args, words in cases]
    cases.append(([ROOT / "train.py", "bert", "--data", "data", "--stems", "vocals", "--out", "runs", "--overwrite"],
                  "vocals"))
    cases.append(([ROOT / "train.py", "bert", "--data", "data", "--latent-weight", "-1", "--out", "runs", "--overwrite"],
                  "--latent-weight"))
    # wrong outputs and checkpoints are refused before any work (no dataset scored, no cache built)
    cases.append(([ROOT / "evaluate.py", "--data", "data", "--json", "runs"], "runs: is a directory"))
    cases.append(([ROOT / "evaluate.py", "--data", "data", "--bert", "missing.pt"], "missing.pt: no such checkpoint"))
    cases.append(([ROOT / "train.py", "bert", "--data", "data", "--init", "missing.pt", "--out", "new"],
                  "missing.pt: no such checkpoint"))
    cases.append(([ROOT / "train.py", "vqvae", "--k", "3", "--data", "data", "--out", "mix.wav", *TINY_FLAGS], "mix.wav: is a file"))
    cases.append(([ROOT / "bench.py", "--vqvae", "typo.pt"], "typo.pt: no such checkpoint"))  # not an untrained stand-in
    for result, (_, words) in zip(run_all([args for args, _ in cases], cwd=work), cases):
        assert_one_line_error(result, words)
        assert "reconstruction" not in result.stdout and "token cache" not in result.stdout
    assert not (work / "new").exists()


def test_pictures_listening_page_and_training_log(work):
    result = run(ROOT / "evaluate.py", "--data", "data", "--report", "page", cwd=work)
    assert result.returncode == 0, result.stderr
    page = (work / "page" / "index.html").read_text()
    for src in page.split("src='")[1:]:  # every player and picture the page links to exists
        assert (work / "page" / src.split("'")[0]).exists()
    assert "<audio" in page and "oracle tokens" in page and "cross-fade" in page
    assert "linear prediction" in page and "repetition" in page and page.count("a gap of") >= 2, "a row per gap length"
    result = run(ROOT / "infer.py", "separate", "mix.wav", "--stem", "bass", "--reference", "mix.wav", "--plot",
                 "--overwrite", cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "separated" / "mix" / "spectrograms.png").read_bytes()[:4] == b"\x89PNG"
    header = (work / "runs" / "bert-log.csv").read_text().splitlines()[0]
    assert header == "step,loss,cross_entropy,latent,logit_scale,lr,val_loss,val_cross_entropy,val_latent"


def test_separate_report_scores_a_folder_of_true_stems(work):
    """--reference DIR scores every stem found there, in the input's format when the file has it (else at
    the model's rate, mono); --report writes index.html beside the stems, every link of it a file there."""
    refs = work / "refs"
    refs.mkdir()
    mixture, rate = sf.read(work / "mix.wav")
    sf.write(refs / "bass.wav", 0.5 * mixture, rate)  # the input's format: 44.1 kHz stereo
    sf.write(refs / "drums.flac", resample(mixture.mean(axis=1).astype(np.float32), rate, RATE), RATE)  # 16 kHz mono
    result = run(ROOT / "infer.py", "separate", "mix.wav", "--reference", "refs", "--report", "--out", "page", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "bass: SI-SDR" in result.stdout and "at 44100 Hz, 2 channel(s)" in result.stdout
    assert "drums: SI-SDR" in result.stdout and f"at {RATE} Hz mono" in result.stdout
    assert "guitar: SI-SDR" not in result.stdout
    folder = work / "page" / "mix"
    page = (folder / "index.html").read_text()
    links = [src.split("'")[0] for src in page.split("src='")[1:]]
    assert "bass.wav" in links and all((folder / link).exists() for link in links)
    assert "true bass" in page and "true drums" in page and "true guitar" not in page


def test_bench_times_every_part_of_trained_checkpoints(work):
    """bench.py on the tiny checkpoints: every figure it reports is a finite positive number, the parts
    of separation add up to its total, and --json writes what it printed."""
    result = run(ROOT / "bench.py", "--vqvae", "runs/vqvae.pt", "--bert", "runs/bert.pt", "--json", "bench-tiny.json",
                 cwd=work)
    assert result.returncode == 0, result.stderr
    assert "models: runs/vqvae.pt, runs/bert.pt" in result.stdout, "the checkpoints are timed, not untrained defaults"
    results = json.loads((work / "bench-tiny.json").read_text())
    for key in ("vqvae_train_samples_per_s", "bert_train_frames_per_s", "encode_realtime_factor",
                "decode_realtime_factor", "encode_decode_realtime_factor", "peak_memory_mb"):
        assert np.isfinite(results[key]) and results[key] > 0, key
    parts = results["separate_30s_all_stems"]
    assert parts["total"] == pytest.approx(parts["bert"] + parts["decode"] + parts["refine"])
    assert f"{results['bert_train_frames_per_s']:10.0f} frames/s" in result.stdout
