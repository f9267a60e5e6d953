"""files.py: atomic writes, what a killed writer leaves and who cleans it, output checks."""
import os
import subprocess
import sys

import pytest

from files import UserError, atomic_write, check_writable, refuse_existing


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash in the middle")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_the_temporary_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.{int(dead.stdout)}.tmp.wav"  # what `kill -9` during a write leaves behind
    stale.write_bytes(b"partial")
    alive = tmp_path / f".out.{os.getppid()}.tmp.wav"  # a writer that still runs: left alone
    alive.write_bytes(b"in progress")
    other = tmp_path / f".other.{int(dead.stdout)}.tmp.wav"  # another output's: not ours to touch
    other.write_bytes(b"partial")
    with atomic_write(tmp_path / "out.wav") as tmp:
        tmp.write_bytes(b"complete")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.wav", alive.name, other.name])


def test_output_checks(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.wav").write_bytes(b"x")
    with pytest.raises(UserError, match="is a directory"):
        check_writable([tmp_path / "folder"])
    with pytest.raises(UserError, match="file.wav: is a file"):
        check_writable([tmp_path / "file.wav" / "bass.wav"])
    check_writable([tmp_path / "new" / "deeper" / "bass.wav"])  # folders that do not exist yet are made
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        refuse_existing([tmp_path / "new.wav", tmp_path / "file.wav"], overwrite=False)
    refuse_existing([tmp_path / "file.wav"], overwrite=True)
