"""pretrained.py and the shipped models: files that match their sha256 and load as weights only, the
default lookup (runs/ first, then pretrained/), bad shipped files, and an example separated in seconds."""
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from checkpoint import load_bert, load_checkpoint, load_vqvae
from files import UserError
from pretrained import KEPT, SHIPPED, recorded_hashes, sha256
from test_cli import ROOT, assert_one_line_error, run

EXAMPLE = ROOT / "examples" / "timgm6mb-test"


def test_shipped_files_match_their_sha256_and_hold_weights_and_config_only():
    hashes = recorded_hashes()
    assert sorted(hashes) == ["bert.pt", "vqvae.pt"]
    assert sum((SHIPPED / name).stat().st_size for name in hashes) <= 25e6
    for name, digest in hashes.items():
        assert sha256(SHIPPED / name) == digest
        checkpoint = torch.load(SHIPPED / name, map_location="cpu", weights_only=True)
        assert set(checkpoint) <= set(KEPT) | {"format"} and "optimizer" not in checkpoint
    vqvae = load_vqvae(SHIPPED / "vqvae.pt")  # its config rebuilds the model the weights fit
    bert, vocab = load_bert(SHIPPED / "bert.pt", vqvae)  # trained on that VQ-VAE's tokens (fingerprint)
    assert vocab.stems == ("bass", "drums", "guitar", "piano") and bert.config.latent_weight > 0


class Payload:
    def __reduce__(self):  # what a malicious pickle does: call something on load
        return (os.system, ("echo this should never run",))


def test_a_checkpoint_that_holds_pickled_code_is_refused(tmp_path):
    torch.save({"kind": "vqvae", "model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="evil.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt", "vqvae")


def test_a_slice_of_an_example_separates_with_the_shipped_models(tmp_path):
    """A fresh folder (no runs/): infer.py says it uses the shipped models, writes the four stems, and
    the drums it pulls out beat the unprocessed mixture."""
    mixture, rate = sf.read(EXAMPLE.with_suffix(".flac"))
    sf.write(tmp_path / "slice.flac", mixture[:rate], rate)
    (tmp_path / "truth").mkdir()
    sf.write(tmp_path / "truth" / "drums.flac", sf.read(EXAMPLE / "drums.flac")[0][:rate], rate)
    result = run(ROOT / "infer.py", "separate", "slice.flac", "--reference", "truth", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the shipped ones" in result.stdout.splitlines()[0]
    for stem in ("bass", "drums", "guitar", "piano"):
        assert sf.info(str(tmp_path / "separated" / "slice" / f"{stem}.wav")).frames == rate
    drums = next(line for line in result.stdout.splitlines() if line.startswith("drums: SI-SDR"))
    separated, mixture_score = (float(part.split("SI-SDR ")[-1].split(" dB")[0]) for part in drums.split("(the mixture:"))
    assert separated > mixture_score + 1, drums


def test_a_missing_or_truncated_shipped_file_is_a_one_line_error(tmp_path):
    """A copy of the project whose pretrained/bert.pt is truncated, then gone: a one-line error naming it;
    with models in runs/ the command works."""
    project = tmp_path / "project"
    project.mkdir()
    for path in ROOT.glob("*.py"):
        shutil.copy(path, project)
    shutil.copytree(SHIPPED, project / "pretrained")
    data = (project / "pretrained" / "bert.pt").read_bytes()
    (project / "pretrained" / "bert.pt").write_bytes(data[:len(data) // 2])
    sf.write(tmp_path / "mix.wav", np.random.default_rng(0).normal(0, 0.1, 16000), 16000)
    result = run(project / "infer.py", "separate", "mix.wav", cwd=tmp_path)
    assert_one_line_error(result, "pretrained/bert.pt", "sha256 differs")
    (project / "pretrained" / "bert.pt").unlink()
    result = run(project / "infer.py", "separate", "mix.wav", cwd=tmp_path)
    assert_one_line_error(result, "pretrained/bert.pt", "no such file")
    result = run(project / "infer.py", "reconstruct", "mix.wav", cwd=tmp_path)  # needs the VQ-VAE only: still fine
    assert result.returncode == 0, result.stderr
    (tmp_path / "runs").mkdir()  # models of your own: pretrained/ is not even looked at
    for name in ("vqvae.pt", "bert.pt"):
        shutil.copy(SHIPPED / name, tmp_path / "runs" / name)
    result = run(project / "infer.py", "separate", "mix.wav", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "yours, in runs" in result.stdout.splitlines()[0]
