"""The pieces of a training loop that the VQ-VAE and BERT loops (train_vqvae.py, train_bert.py) share.

Each is one step of the fixed order the loops follow (as nanoGPT's): set the learning rate,
evaluate + checkpoint, forward, stop on a NaN, backward + clip + step, log. Checkpoints hold
the whole training state (`training_state`), so `--resume` continues the same loss curve.
"""
import csv
import math
import signal
import sys
import time

import torch

import distributed
from cli import add_device_flag, add_overwrite_flag
from files import UserError

RERUN_HINT = "pass --resume to continue that run, --overwrite to start over, or use another --out"


def catch_ctrl_c():
    """Ctrl-C sets a flag instead of killing the run: the loop finishes its step, saves, and stops."""
    interrupted = []
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    return interrupted


WARMUP_STEPS = 100  # linear warmup of the learning rate


def add_run_arguments(parser, name, default_steps, out_help):
    """The flags of a training run that both models take: its length, seed, device, output, resume."""
    parser.add_argument("--steps", type=int, default=None, help=f"training steps (default {default_steps})")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between validation + checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="random seed (model init and sampling)")
    add_device_flag(parser)
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="mixed precision: auto = bf16 on CPUs/GPUs that support it, fp16 + grad scaler on older GPUs (T4)")
    parser.add_argument("--out", default="runs", help=out_help)
    parser.add_argument("--resume", action="store_true", help=f"continue from OUT/{name}-last.pt")
    add_overwrite_flag(parser, f"OUT/{name}.pt (start afresh)")


def check_run_arguments(args, default_steps, limits):
    """One-line errors for run flags below their minimum: `limits` is [(flag, value, lowest)].
    Sets args.steps (`default_steps` unless given) and args.steps_given."""
    args.steps_given = args.steps is not None
    args.steps = args.steps if args.steps_given else default_steps
    for name, value, low in [("--steps", args.steps, 1), ("--eval-every", args.eval_every, 1), *limits]:
        if value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
    if not args.lr > 0:
        raise UserError(f"--lr must be positive, got {args.lr}")


def pace(step, total, first, started, last_log, last_step):
    """The end of a log line: steps/s since the last line (at `last_step`, time `last_log`) and the time
    left at the run's pace so far (the run began at step `first`, time `started`)."""
    now = time.time()
    rate = (step - last_step) / (now - last_log) if step > last_step + 1 else 0.0
    left = (total - step) * (now - started) / max(1, step - first) / 60
    return f"{rate:.2f} steps/s | ETA {left:.1f} min"


def set_learning_rate(optimizer, step, args):
    lr = learning_rate(step, args.steps, args.lr, WARMUP_STEPS)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def append_csv(path, columns, row):
    """Append one row to a CSV training log (header written when the file is new); plot it with
    any spreadsheet or pandas. Missing columns are left empty."""
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in row.items()})


def silent(*args, **kwargs):
    """The `print` of ranks other than 0: only rank 0 logs."""


def optimizer_step(loss, model, optimizer, scaler):
    """Backward (scaled when fp16 needs it), clip the gradient norm to 1, optimizer step.

    Clipping keeps away the late blow-ups that an unclipped run at lr 1e-3 showed while its
    training loss still looked fine.
    """
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()


def stop_if_diverged(loss, step, out, device):
    """A NaN or inf loss (on any rank) stops training; the checkpoints written so far are kept."""
    if distributed.any_rank(not torch.isfinite(loss), device):
        raise UserError(f"training diverged at step {step} (loss {loss.item()}); "
                        f"the last good checkpoint is kept in {out}")


def training_state(model, optimizer, scaler, step, best_val):
    """What every checkpoint holds besides its model-specific keys: enough to resume exactly."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "step": step, "best_val_loss": best_val, "torch_rng": torch.get_rng_state()}


def restore(checkpoint, model, optimizer, scaler, args, path, log):
    """Load a `training_state` back for --resume; returns (step, best validation loss). Without --steps
    the run keeps the schedule it had; flags changed since are named in the log (`changed_flags`)."""
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scaler.load_state_dict(checkpoint["scaler"])
    torch.set_rng_state(checkpoint["torch_rng"])
    saved_args = checkpoint.get("args", {})
    if not args.steps_given:  # the schedule it had; a --steps given extends it
        args.steps = saved_args.get("steps", args.steps)
    log(f"resuming from {path} at step {checkpoint['step']}")
    if changes := changed_flags(saved_args, args):
        log(f"note: resuming with changed flags: {'; '.join(changes)}")
    return checkpoint["step"], checkpoint["best_val_loss"]


# flags that may change between a run and its --resume without changing what is trained
RESUME_FREE_FLAGS = {"resume", "overwrite", "steps", "steps_given", "device", "dtype",
                     "eval_every", "out", "command"}


def changed_flags(saved_args, args):
    """Training flags that differ from the run being resumed, as "--lr 0.002 -> 0.001" strings: allowed
    (model settings are checked against the saved config and refused), but the curve will not
    continue smoothly after them."""
    return [f"--{name.replace('_', '-')} {saved_args.get(name)} -> {value}" for name, value in sorted(vars(args).items())
            if name not in RESUME_FREE_FLAGS and name in saved_args and saved_args[name] != value]


def report_stop(stopped, step, started, last_path, best_path, best_val):
    """The last lines of a run: how to resume after Ctrl-C (exit 130), or where the model is."""
    minutes = (time.time() - started) / 60
    if stopped:
        print(f"interrupted at step {step} after {minutes:.1f} min; checkpoint saved to {last_path}. "
              f"Continue with the same command plus --resume.")
        sys.exit(130)
    print(f"trained to step {step} in {minutes:.1f} min; best validation loss {best_val:.4f}, that model is {best_path}")
    return minutes


def learning_rate(step, total_steps, peak, warmup):
    """Linear warmup, then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
