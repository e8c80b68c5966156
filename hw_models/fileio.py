"""Atomic file output shared by every package: nothing half-written, ordinary permissions.

A file is written into a temporary name beside its target and renamed over it only
when complete, so an error or an interrupt never leaves a truncated file. Temporary
files are created private (0600); before the rename they get the permissions a plain
``open(path, "w")`` would give (0666 less the umask). Directories likewise (0777 less
the umask).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _as_target(err: OSError, target: Path) -> OSError:
    """The same error, naming the file the user asked for instead of a temporary name."""
    return OSError(err.errno, err.strerror, str(target))


def _mkstemp(target: Path) -> tuple[int, str]:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise _as_target(err, target) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[IO[Any]], object], *, binary: bool = False
) -> Path:
    """Call ``write(file_object)`` on a temporary file, then rename it over ``path``."""
    target = Path(path)
    fd, tmp = _mkstemp(target)
    try:
        if binary:
            with os.fdopen(fd, "wb") as fb:
                write(fb)
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as ft:
                write(ft)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text))


def atomic_temp_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary path beside ``path``, for writers that need a file name.

    The caller writes to it, then calls :func:`commit_temp_path` (or deletes it).
    """
    fd, tmp = _mkstemp(Path(path))
    os.close(fd)
    return Path(tmp)


def commit_temp_path(tmp: Path, path: str | os.PathLike[str]) -> Path:
    """Give ``tmp`` ordinary permissions and rename it over ``path``."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
    return Path(path)


def make_temp_dir(path: str | os.PathLike[str]) -> Path:
    """A fresh directory beside ``path`` with ordinary permissions, to fill and rename."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as err:
        raise _as_target(err, target) from None
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp
