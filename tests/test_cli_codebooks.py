"""End to end through the command line with a residual tokenizer (Eq. 9, --codebooks 2) and a BERT
on its frames: (S, Q) token files round trip through encode / decode, a tokenizer, token file or
BERT of another Q is refused in one line, separation and inpainting decode coarse to fine, and
evaluate.py reports each level."""
import json
from dataclasses import asdict

import numpy as np
import pytest
import soundfile as sf
import torch

from checkpoint import load_vqvae, save_checkpoint
from cli import autocast
from inputs import decode_in_pieces
from test_cli import RATE, ROOT, TINY_FLAGS, assert_one_line_error, run, run_all
from test_cli_bert import BERT_FLAGS, check_the_true_latent_decodes_to_the_continuous_ceiling
from test_data import sine, slakh_track
from vqvae import VQVAE, VQVAEConfig


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Slakh-layout tracks of 2.5 s of sines (a separation chunk is 2 s), a 3-step VQ-VAE with 2
    codebooks and a 3-step BERT on its frames, all through the CLI."""
    work = tmp_path_factory.mktemp("cli_codebooks")
    for split, name, pitch in (("train", "Track00001", 1.0), ("train", "Track00002", 1.5),
                               ("validation", "Track00003", 2.0), ("test", "Track00004", 1.25)):
        slakh_track(work / "data" / split / name, {
            "S00": ("Bass", False, True, sine(55 * pitch, 2.5, amplitude=0.2)),
            "S01": ("Drums", True, True, sine(100 * pitch, 2.5, amplitude=0.1)),
            "S02": ("Guitar", False, True, sine(220 * pitch, 2.5, amplitude=0.2)),
            "S03": ("Piano", False, True, sine(440 * pitch, 2.5, amplitude=0.2)),
        })
    result = run(ROOT / "train.py", "vqvae", "--k", "3", "--codebooks", "2", "--steps", "3", "--data", "data",
                 "--out", "runs", *TINY_FLAGS, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "'codebooks': 2" in result.stdout and "by level" in result.stdout
    result = run(ROOT / "train.py", "bert", "--data", "data", "--out", "runs", *BERT_FLAGS, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "frames of 2 code(s)" in result.stdout
    sf.write(work / "mix.wav", sine(110, 1.0) + sine(330, 1.0, amplitude=0.2), RATE)
    torch.manual_seed(0)  # and a one-codebook tokenizer, to be refused where two are expected
    single = VQVAE(VQVAEConfig(num_downsamples=3, num_codes=16, code_dim=4, sample_rate=RATE, base_channels=2,
                               max_channels=8))
    save_checkpoint(work / "single.pt", {"kind": "vqvae", "config": asdict(single.config), "model": single.state_dict()})
    return work


def test_checkpoints_and_test_scores_have_levels(work):
    vqvae = torch.load(work / "runs" / "vqvae.pt", weights_only=True)
    assert vqvae["config"]["codebooks"] == 2 and vqvae["format"] == 2
    assert vqvae["args"]["lr"] == 1e-3 and vqvae["config"]["quantizer_dropout"] == 0.5  # the defaults for Q > 1
    bert = torch.load(work / "runs" / "bert.pt", weights_only=True)
    assert bert["config"]["codebooks"] == 2 and len(bert["model"]["codebook"]) == 2  # (Q, K, D) code vectors
    results = json.loads((work / "runs" / "vqvae-test.json").read_text())["reconstruction"]
    assert len(results["codes_used_fraction_by_level"]) == 2 and results["si_sdr_db_by_levels"].keys() == {"1", "2"}
    assert results["bitrate_kbps"] == pytest.approx(RATE / 8 * 2 * 4 / 1000)  # 2 codes of 4 bits per frame


def test_frames_round_trip_through_encode_and_decode(work):
    result = run(ROOT / "infer.py", "encode", "mix.wav", "-o", "mix.tokens.npy", cwd=work)
    assert result.returncode == 0, result.stderr
    tokens = np.load(work / "mix.tokens.npy")
    assert tokens.shape == (RATE // 8, 2) and tokens.dtype == np.int16 and "of 2 code(s)" in result.stdout
    result = run(ROOT / "infer.py", "decode", "mix.tokens.npy", "-o", "mix.decoded.wav", cwd=work)
    assert result.returncode == 0, result.stderr
    decoded, rate = sf.read(work / "mix.decoded.wav", dtype="float32")
    model = load_vqvae(work / "runs" / "vqvae.pt")
    with autocast(torch.device("cpu")):  # as infer.py decodes: bf16 on a CPU with bf16 units, else fp32
        expected = decode_in_pieces(model, torch.from_numpy(tokens.astype(np.int64))).float().numpy()
    assert rate == RATE and decoded.shape == expected.shape
    assert np.abs(decoded - np.clip(expected, -1, 1)).max() < 1e-4  # 16-bit wav rounding


def test_another_q_is_refused_in_one_line(work):
    np.save(work / "single.npy", np.zeros(100, dtype=np.int16))
    np.save(work / "triple.npy", np.zeros((100, 3), dtype=np.int16))
    cases = [(["decode", "single.npy", "-o", "x.wav"], "1 code(s) per frame, but the VQ-VAE runs/vqvae.pt reads 2"),
             (["decode", "triple.npy", "-o", "x.wav"], "3 code(s) per frame"),
             (["decode", "mix.tokens.npy", "-o", "x.wav", "--vqvae", "single.pt"], "reads 1"),
             (["separate", "mix.wav", "--vqvae", "single.pt", "--bert", "runs/bert.pt"], "reads frames of 2 codes, the VQ-VAE gives 1")]
    run(ROOT / "infer.py", "encode", "mix.wav", "-o", "mix.tokens.npy", "--overwrite", cwd=work)
    cases = [([ROOT / "infer.py", *args], words) for args, words in cases]
    cases.append(([ROOT / "train.py", "vqvae", "--k", "3", "--codebooks", "3", "--steps", "4", "--data", "data",
                   "--out", "runs", "--resume", *TINY_FLAGS], "codebooks"))
    for result, (_, words) in zip(run_all([args for args, _ in cases], cwd=work), cases):
        assert_one_line_error(result, words)


def test_separate_and_inpaint_decode_frames(work):
    result = run(ROOT / "infer.py", "separate", "mix.wav", "--stem", "bass", "--refine", "none",
                 "--decode", "tokens", cwd=work)
    assert result.returncode == 0, result.stderr
    audio, rate = sf.read(work / "separated" / "mix" / "bass.wav")
    assert rate == RATE and len(audio) == RATE
    result = run(ROOT / "infer.py", "separate", "mix.wav", "--stem", "bass", "--refine", "none",
                 "--decode", "soft", "--out", "soft", cwd=work)
    assert result.returncode == 0, result.stderr
    soft = sf.read(work / "soft" / "mix" / "bass.wav")[0]  # expected code vectors: not the chosen codes' audio
    assert len(soft) == RATE and np.isfinite(soft).all() and not np.allclose(soft, audio, atol=1e-3)
    result = run(ROOT / "infer.py", "inpaint", "mix.wav", "--start", "0.5", "--duration", "0.02", "-o", "filled.wav", cwd=work)
    assert result.returncode == 0, result.stderr
    filled, source = sf.read(work / "filled.wav")[0], sf.read(work / "mix.wav")[0]
    assert len(filled) == len(source) and np.allclose(filled[:int(0.45 * RATE)], source[:int(0.45 * RATE)], atol=1e-4)


def test_evaluate_reports_each_level_and_the_gaps_asked_for(work):
    result = run(ROOT / "evaluate.py", "--data", "data", "--gap-seconds", "0.02,0.03,100", "--json", "results.json", cwd=work)
    assert result.returncode == 0, result.stderr
    results = json.loads((work / "results.json").read_text())
    assert len(results["reconstruction"]["codes_used_fraction_by_level"]) == 2
    mlm = results["mlm"]
    assert len(mlm["accuracy_by_level"]) == len(mlm["unigram_accuracy_by_level"]) == 2
    assert mlm["accuracy"] == mlm["accuracy_by_level"][0]
    gaps = results["inpainting_gaps"]
    assert gaps["0.02"]["gap_tokens"] == 20 and gaps["0.02"]["mrstft_crossfade"] > 0
    assert gaps["0.02"]["mrstft_unigram"] > 0 and gaps["0.02"]["mrstft_oracle_tokens"] > 0
    assert "mrstft_lpc" in gaps["0.03"] and "mrstft_bert_latent" not in gaps["0.03"], "beyond BERT: the classic fillers"
    assert gaps["0.03"]["bert"] == "fills at most 24 tokens"
    assert "shorter than" in gaps["100"]["skipped"]
    assert results["separation"]["bass"]["chunks"] >= 1
    assert "by level (top-1 / unigram)" in result.stdout and "SI-SDR from the first n of 2 levels" in result.stdout


def test_decoding_the_true_latent_of_frames_gives_the_continuous_ceiling(work, monkeypatch):
    """Eq. 11 with frames of 2 codes: the frame's whole latent decoded, as with one codebook."""
    check_the_true_latent_decodes_to_the_continuous_ceiling(work, monkeypatch, "bass")
