"""Atomic writes: all or nothing, with the permissions of an ordinary file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hw_models.fileio import atomic_write, atomic_write_text, make_temp_dir


def test_written_file_has_ordinary_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "sub" / "a.txt", "hello\n")
        d = make_temp_dir(tmp_path / "out")
    finally:
        os.umask(old)
    assert p.read_text() == "hello\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o644  # as open(..., "w") gives under umask 022
    assert stat.S_IMODE(d.stat().st_mode) == 0o755


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")

    def boom(f: object) -> None:
        f.write("partial")  # type: ignore[attr-defined]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
