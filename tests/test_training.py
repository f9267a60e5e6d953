"""training.py and the interruption paths of train.py: Ctrl-C saves and says how to resume,
a kill -9 leaves the last checkpoint loadable, a NaN loss stops with a message, the log's ETA."""
import math
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from files import UserError
from synth import write_synthetic_dataset
from test_cli import RATE, ROOT, TINY_FLAGS
from cli import run_main
from training import WARMUP_STEPS, learning_rate, pace, set_learning_rate, stop_if_diverged


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    peak, warmup, total = 1e-3, 10, 110
    assert learning_rate(0, total, peak, warmup) == pytest.approx(peak / warmup)
    assert learning_rate(9, total, peak, warmup) == pytest.approx(peak)
    assert learning_rate(60, total, peak, warmup) == pytest.approx(peak * (0.1 + 0.9 * 0.5))  # half way
    assert learning_rate(total, total, peak, warmup) == pytest.approx(peak * 0.1)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    lr = set_learning_rate(optimizer, 60, SimpleNamespace(steps=total, lr=peak))
    assert optimizer.param_groups[0]["lr"] == lr == learning_rate(60, total, peak, WARMUP_STEPS)


def test_the_log_line_gives_the_pace_and_the_time_left():
    now = time.time()  # 50 steps done in the last 50 s, 100 in 200 s since the run began: 50 more at 2 s each
    assert pace(100, 150, 0, now - 200, now - 50, 50) == "1.00 steps/s | ETA 1.7 min"
    assert pace(100, 150, 50, now - 100, now - 50, 50).endswith("ETA 1.7 min")  # a resumed run counts its own steps
    assert pace(50, 150, 0, now - 100, now - 49, 1).startswith("1.00 steps/s")  # 49 steps since the line of step 1
    assert pace(1, 150, 0, now - 1, now - 1, 0).startswith("0.00 steps/s")  # the first line: no pace yet


def test_nan_loss_stops_with_a_message():
    with pytest.raises(UserError, match="diverged at step 7"):
        stop_if_diverged(torch.tensor(math.nan), 7, "runs", torch.device("cpu"))
    stop_if_diverged(torch.tensor(1.0), 7, "runs", torch.device("cpu"))  # a finite loss goes on


def test_training_into_a_nan_stops_and_keeps_the_last_good_checkpoint(data, monkeypatch, capsys):
    """A loss that turns NaN at step 5 (of a real tiny run, checkpoints every 2 steps): the command
    exits 2 with one line, and vqvae-last.pt is the step-4 checkpoint with finite weights."""
    import train
    import train_vqvae
    work, root = data
    real_loss, calls = train_vqvae.total_loss, []

    def loss_turning_nan(*args):
        calls.append(1)
        loss, parts = real_loss(*args)
        return (loss * math.nan if len(calls) > 5 else loss), parts  # steps 0..4 finite, then NaN
    monkeypatch.setattr(train_vqvae, "total_loss", loss_turning_nan)
    monkeypatch.chdir(work)
    monkeypatch.setattr("sys.argv", ["train.py", "vqvae", "--k", "3", "--steps", "50", "--data", str(root),
                                     "--out", "nan-run", *TINY_FLAGS])
    with pytest.raises(SystemExit) as stop:
        run_main(train.main)
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "diverged at step 5" in error[0] and "nan-run" in error[0], error
    checkpoint = torch.load(work / "nan-run" / "vqvae-last.pt", weights_only=True)
    assert checkpoint["step"] == 4  # written before step 5's forward pass, never after the NaN
    assert all(torch.isfinite(value).all() for value in checkpoint["model"].values() if value.is_floating_point())


def start_training(work, data):
    command = [sys.executable, str(ROOT / "train.py"), "vqvae", "--k", "3", "--steps", "100000", "--data", str(data),
               "--out", "runs", *TINY_FLAGS[:-2], "--eval-every", "5", "--overwrite"]
    return subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


def wait_for_checkpoint(path, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, "no checkpoint written"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    work = tmp_path_factory.mktemp("interrupt")
    return work, write_synthetic_dataset(work / "data", sample_rate=RATE, seed=0, num_tracks=(2, 1, 1))


def test_ctrl_c_saves_and_says_how_to_resume(data):
    work, root = data
    process = start_training(work, root)
    wait_for_checkpoint(work / "runs" / "vqvae-last.pt")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "--resume" in out and "Traceback" not in err
    checkpoint = torch.load(work / "runs" / "vqvae-last.pt", weights_only=True)
    assert checkpoint["step"] >= 5 and f"interrupted at step {checkpoint['step']}" in out


KILLED_INSIDE_A_SAVE = """
import os, signal, sys
import torch
import train
from cli import run_main
saves, real_save = [], torch.save

def save_then_die(obj, path, *args, **kwargs):
    saves.append(path)
    if len(saves) == 3:  # step 4's first checkpoint write: half a file, then kill -9 from inside the write
        with open(path, "wb") as handle:
            handle.write(b"half a checkpoint")
            handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, path, *args, **kwargs)

torch.save = save_then_die
sys.argv = ["train.py"] + sys.argv[1:]
run_main(train.main)
"""


def test_kill_9_inside_a_save_leaves_the_last_checkpoints_loadable(data):
    """The process is killed (SIGKILL, no cleanup) in the middle of writing a checkpoint at step 4:
    both checkpoints written at step 2 are still whole and load, and nothing half-written took a
    checkpoint's name."""
    work, root = data
    command = [sys.executable, "-c", KILLED_INSIDE_A_SAVE, "vqvae", "--k", "3", "--steps", "50", "--data", str(root),
               "--out", "killed", *TINY_FLAGS]
    result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert result.returncode == -signal.SIGKILL, result.stderr
    for name in ("vqvae.pt", "vqvae-last.pt"):
        checkpoint = torch.load(work / "killed" / name, weights_only=True)
        assert checkpoint["kind"] == "vqvae" and checkpoint["step"] == 2, name
    leftovers = [p.name for p in (work / "killed").iterdir() if p.name not in ("vqvae.pt", "vqvae-last.pt", "vqvae-log.csv")]
    assert len(leftovers) == 1, leftovers  # the temporary file the kill interrupted (the next run deletes it)


def test_same_seed_gives_the_same_first_losses(data):
    """Same seed, same machine: the same synthetic bytes (test_synth) and the same losses."""
    work, root = data
    logs = {}
    for out, seed in [("seed-a", "0"), ("seed-b", "0"), ("seed-c", "1")]:
        command = [sys.executable, str(ROOT / "train.py"), "vqvae", "--k", "3", "--steps", "3", "--data", str(root),
                   "--out", out, *TINY_FLAGS, "--seed", seed]
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300,
                                env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr
        logs[out] = (work / out / "vqvae-log.csv").read_text()
    assert "step" in logs["seed-a"] and logs["seed-a"] == logs["seed-b"]
    assert logs["seed-a"] != logs["seed-c"]


def test_curves_draws_the_two_logs_it_is_given_and_refuses_others_in_one_line(tmp_path):
    """docs/curves.py (the README's "is my run on track?"): a PNG from a VQ-VAE log and a BERT log as
    train.py writes them; a missing log, a swapped pair or one log alone is one line and exit 2."""
    from test_cli import assert_one_line_error, run
    (tmp_path / "vqvae-log.csv").write_text("step,loss,val_loss,val_si_sdr_db\n1,7.9,,\n50,1.7,,\n250,,0.5,3.1\n")
    (tmp_path / "bert-log.csv").write_text("step,loss,cross_entropy,latent,val_cross_entropy,val_latent\n"
                                           "1,24.0,13.7,1.0,,\n250,,,,4.9,0.33\n")
    curves = ROOT / "docs" / "curves.py"
    drawn = run(curves, "vqvae-log.csv", "bert-log.csv", "-o", "mine.png", cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "mine.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_one_line_error(run(curves, "runs/vqvae-log.csv", "bert-log.csv", cwd=tmp_path), "runs/vqvae-log.csv")
    assert_one_line_error(run(curves, "bert-log.csv", "vqvae-log.csv", cwd=tmp_path), "bert-log.csv", "val_si_sdr_db")
    assert_one_line_error(run(curves, "vqvae-log.csv", cwd=tmp_path), "two logs")
