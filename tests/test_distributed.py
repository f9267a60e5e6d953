"""torchrun with 2 CPU processes (gloo): both models train data-parallel and the ranks end with
identical weights, though each rank reads its own data."""
import subprocess
import sys

import pytest
import torch

from synth import write_synthetic_dataset
from test_cli import RATE, ROOT, TINY_FLAGS
from test_cli_bert import BERT_FLAGS


def torchrun(*args, cwd):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533", *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    work = tmp_path_factory.mktemp("ddp")
    return work, write_synthetic_dataset(work / "data", sample_rate=RATE, seed=0, num_tracks=(2, 1, 1))


def test_two_ranks_train_both_models_to_identical_weights(data):
    work, root = data
    result = torchrun(ROOT / "train.py", "vqvae", "--k", "3", "--steps", "4", "--data", root, "--out", "runs",
                      *TINY_FLAGS, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 ranks hold identical weights: True" in result.stdout
    assert result.stdout.count("config:") == 1, "only rank 0 logs"
    assert torch.load(work / "runs" / "vqvae-last.pt", weights_only=True)["step"] == 4
    result = torchrun(ROOT / "train.py", "bert", "--data", root, "--out", "runs", *BERT_FLAGS, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 ranks hold identical weights: True" in result.stdout
    assert torch.load(work / "runs" / "bert-last.pt", weights_only=True)["step"] == 3
