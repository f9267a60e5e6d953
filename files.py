"""Files that are never left half-written, and errors that read as one line.

Every command of audio-mlm writes its outputs (audio, token files, checkpoints) through
`atomic_write`: the data goes to a temporary name in the same folder and is renamed over the
target only once it is complete, so a crash or a `kill -9` never leaves a partial file and never
destroys the previous good one (rename is atomic on POSIX file systems).

Nothing is replaced silently either: `refuse_existing` stops a command before it does any work
when an output it would write already exists, unless the user passed `--overwrite`.

`UserError` is the one exception type the command-line tools turn into a one-line message and
exit code 2 (see `cli.py`); its text always names the file and the problem.
"""
import contextlib
import os
from pathlib import Path


class UserError(Exception):
    """A problem with what the user gave us (a file, a flag); printed as one line, exit code 2."""


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    The temporary name keeps the suffix, so libraries that pick a format from the extension
    (soundfile, numpy) still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def refuse_existing(paths, overwrite, hint="pass --overwrite to replace it"):
    """UserError naming the first of `paths` that exists, unless `overwrite` is set."""
    if overwrite:
        return
    for path in paths:
        if Path(path).exists():
            raise UserError(f"{path}: already exists; {hint}")
