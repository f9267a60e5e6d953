"""Files that are never left half-written, and errors that read as one line.

`atomic_write` writes to a temporary name in the same folder (`.<name>.<pid>.tmp<suffix>`) and
renames it over the target only once complete (atomic on POSIX), so a crash or a `kill -9` never
leaves a partial output nor destroys the previous good one; the next write removes a killed run's
temporary. `refuse_existing` stops a command before any work when an output exists, unless
`--overwrite`. `UserError` is what `cli.run_main` prints as one line with exit code 2.
"""
import contextlib
import glob
import os
from pathlib import Path


class UserError(Exception):
    """A problem with what the user gave us (a file, a flag); printed as one line, exit code 2."""


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds. It keeps
    the suffix, so libraries that pick a format from it (soundfile, numpy) still do the right thing."""
    path = Path(path)
    made = [folder for folder in path.parents if not folder.exists()]  # innermost first
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
        for folder in made if not path.exists() else []:  # a failed write leaves no empty folder of its own
            try:
                folder.rmdir()
            except OSError:  # not empty: another output went there
                break


def remove_stale_temporaries(path):
    """Delete the temporaries (.<stem>.<pid>.tmp<suffix>) that killed processes left for `path`; one
    whose process still runs (another command writing the same output) is left alone."""
    for tmp in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{glob.escape(path.suffix)}"):
        pid = tmp.name[len(path.stem) + 2:-len(".tmp" + path.suffix)]
        if pid.isdigit() and not process_exists(int(pid)):
            tmp.unlink(missing_ok=True)


def process_exists(pid):
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True


def check_writable(paths):
    """UserError for an output path that is a folder, or lies under a file, before any work."""
    for path in map(Path, paths):
        if path.is_dir():
            raise UserError(f"{path}: is a directory, not an output file")
        for parent in path.parents:
            if parent.exists() and not parent.is_dir():
                raise UserError(f"{parent}: is a file, so {path} cannot be written there")


def refuse_existing(paths, overwrite, hint="pass --overwrite to replace it"):
    """UserError naming the first of `paths` that exists, unless `overwrite` is set."""
    if overwrite:
        return
    for path in paths:
        if Path(path).exists():
            raise UserError(f"{path}: already exists; {hint}")
