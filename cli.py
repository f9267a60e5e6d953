"""Shared command-line plumbing: one-line errors with exit code 2, device and precision choice,
and the types of flag values (a bad value is a one-line error naming the flag).

Every entry point (`train.py`, `infer.py`, `evaluate.py`, `bench.py`, `synth.py`) runs its `main` through `run_main`, which
turns a `UserError` (bad file, bad flag, mismatched checkpoint) into a single line on stderr and
exit code 2, with no traceback. Real bugs still raise with a full traceback.
"""
import argparse
import math
import sys

import torch

from files import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line (no usage block) and exits with code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_main(main):
    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # (training catches Ctrl-C itself, to save a checkpoint first)
        print("\ninterrupted: outputs not yet complete were not written", file=sys.stderr)
        sys.exit(130)


def add_device_flag(parser):
    """--device, as every command takes it; `pick_device` reads it."""
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run (auto = cuda if available)")


def add_overwrite_flag(parser, what):
    """--overwrite: without it, a command refuses to replace `what` (files.refuse_existing)."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} if it exists")


def pick_device(name):
    """'auto' -> cuda when available, else cpu. Asking for cuda without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is available (use --device cpu or auto)")
    return torch.device(name)


DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def amp_dtype(device, choice="auto"):
    """The mixed-precision dtype for a device, or None for plain fp32.

    `choice` is "auto", "fp32", "bf16" or "fp16" (the `--dtype` flag of train.py). "auto" picks
    bf16 on CUDA GPUs that compute in it natively (Ampere and later) and on CPUs with bf16
    units; fp16 on older GPUs such as the T4, where training needs a grad scaler; else fp32.
    """
    if choice != "auto":
        return DTYPES[choice]
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else None


def autocast(device, choice="auto"):
    """An autocast context for `device` (a torch.device or its name) with `amp_dtype(device, choice)`
    (disabled where that is None)."""
    device = torch.device(device)
    dtype = amp_dtype(device, choice)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def cpu_has_bf16():
    """True when the CPU runs bf16 matrix maths natively (AVX512-BF16 or AMX)."""
    try:
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


# ---- flag values: a bad one is a one-line error naming the flag ----

def flag_type(name, kind, valid):
    """An argparse `type`: text -> `kind`, refused unless finite and `valid` (argparse's message names it)."""
    def parse(text):
        value = kind(text)
        if not (math.isfinite(value) and valid(value)):
            raise ValueError(text)
        return value
    parse.__name__ = name  # "invalid positive_float value: '0'"
    return parse


positive_int = flag_type("positive_int", int, lambda value: value >= 1)
finite_float = flag_type("finite_float", float, lambda value: True)
non_negative_float = flag_type("non_negative_float", float, lambda value: value >= 0)
positive_float = flag_type("positive_float", float, lambda value: value > 0)


def number_list(text, flag, kind, valid, rule):
    """The value of a comma-separated flag: "1,4,8" -> (1, 4, 8) of `kind`, each passing `valid`;
    () when the flag is not given (None); a one-line error otherwise."""
    try:
        values = tuple(kind(item) for item in text.split(",")) if text is not None else ()
    except ValueError:
        raise UserError(f"{flag} must be comma-separated {'integers' if kind is int else 'numbers'}, got '{text}'") from None
    if not all(valid(value) for value in values):
        raise UserError(f"{flag} must be {rule}, got '{text}'")
    return values
