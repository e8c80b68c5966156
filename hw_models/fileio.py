"""Crash-safe file output and bounded file input shared by every package.

Output: nothing half-written, no debris, ordinary permissions.

* A file is written into a temporary name beside its target, flushed to the disk
  (``fsync``) and renamed over it only when complete, then the folder's entry is
  synced too: an error, an interrupt or a power cut never leaves a truncated file.
* Temporary names are recognisable and carry the writer's process id:
  ``.<name>.memsim-tmp-<pid>-<random>``. A process killed with ``kill -9`` cannot
  clean up, so every later write beside the same target first removes the temporaries
  of processes that no longer run (:func:`sweep_stale`): debris never accumulates.
* Temporary files are created private (0600); before the rename they get the
  permissions a plain ``open(path, "w")`` would give (0666 less the umask).
  Directories likewise (0777 less the umask).
* A target that is a symbolic link is written *through* (the link stays, the file
  or folder it points to is replaced), as ``open(path, "w")`` would; errors name the
  path the user gave, never a temporary name. A read-only target is refused
  (``PermissionError``), as ``open(path, "w")`` would, although a rename could
  replace it.
* A folder is replaced in one atomic step (:func:`replace_dir`): Linux's
  ``renameat2(RENAME_EXCHANGE)`` swaps the new and the old folder; where that is not
  available the old folder is first renamed to a recognisable trash name, and the
  next write restores it if the process died before the new folder took its place.

Input: :func:`read_bytes_bounded` reads a user-named file of any kind (trace, stats,
results) with a size ceiling, refusing FIFOs, devices and folders.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

#: the marker in every temporary name this module creates
TEMP_MARK = "memsim-tmp"
_TRASH_MARK = "memsim-old"
_TEMP_RE = re.compile(rf"^\.(?P<name>.+)\.(?P<kind>{TEMP_MARK}|{_TRASH_MARK})-(?P<pid>\d+)-\w+$")


def _as_target(err: OSError, target: Path) -> OSError:
    """The same error, naming the file the user asked for instead of a temporary name."""
    return type(err)(err.errno, err.strerror, str(target)) if err.errno else err


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def temp_name(target: Path, kind: str = TEMP_MARK) -> Path:
    """A fresh recognisable temporary path beside ``target`` (not created)."""
    return target.parent / f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def sweep_stale(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries left beside ``target`` by processes that no longer run.

    A trash folder (the old copy of a folder being replaced) is renamed back to
    ``target`` instead when ``target`` is missing: the replacing process died between
    its two renames. Returns what was removed or restored.
    """
    t = Path(target)
    try:
        entries = list(os.scandir(t.parent))
    except OSError:
        return []
    done = []
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or m["name"] != t.name or _pid_alive(int(m["pid"])):
            continue
        p = Path(entry.path)
        try:
            if m["kind"] == _TRASH_MARK and not os.path.lexists(t):
                os.rename(p, t)
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            continue
        done.append(p)
    return done


def resolve_target(path: str | os.PathLike[str]) -> Path:
    """Where writing ``path`` lands: the path itself, or what a symbolic link points to."""
    p = Path(path)
    if p.is_symlink():
        return p.resolve(strict=False)
    return p


def _check_writable(real: Path, shown: Path) -> None:
    """Refuse to replace a read-only file (no write permission bit, or none for us).

    The permission bits are checked too because ``os.access`` says yes to root.
    """
    try:
        st = real.stat()
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        return
    if not st.st_mode & 0o222 or not os.access(real, os.W_OK):
        raise PermissionError(errno.EACCES, "the file is read-only", str(shown))


def _mkstemp(target: Path, shown: Path) -> tuple[int, Path]:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(target)
        tmp = temp_name(target)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        raise _as_target(err, shown) from None
    return fd, tmp


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """``fsync`` every file and folder under ``root`` (before it is renamed into place)."""
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[IO[Any]], object], *, binary: bool = False
) -> Path:
    """Call ``write(file_object)`` on a temporary file, then rename it over ``path``.

    ``path`` may be a symbolic link (the file it points to is replaced); a read-only
    existing file is refused with ``PermissionError`` naming ``path``.
    """
    shown = Path(path)
    target = resolve_target(shown)
    _check_writable(target, shown)
    fd, tmp = _mkstemp(target, shown)
    try:
        if binary:
            with os.fdopen(fd, "wb") as fb:
                write(fb)
                fb.flush()
                os.fsync(fb.fileno())
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as ft:
                write(ft)
                ft.flush()
                os.fsync(ft.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        try:
            os.replace(tmp, target)
        except OSError as err:
            raise _as_target(err, shown) from None
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return shown


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text))


def atomic_temp_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary path beside ``path``, for writers that need a file name.

    The caller writes to it, then calls :func:`commit_temp_path` (or deletes it).
    """
    shown = Path(path)
    target = resolve_target(shown)
    _check_writable(target, shown)
    fd, tmp = _mkstemp(target, shown)
    os.close(fd)
    return tmp


def commit_temp_path(tmp: Path, path: str | os.PathLike[str]) -> Path:
    """Give ``tmp`` ordinary permissions, flush it to the disk and rename it over ``path``."""
    os.chmod(tmp, 0o666 & ~_umask())
    fsync_tree(tmp)
    target = resolve_target(path)
    try:
        os.replace(tmp, target)
    except OSError as err:
        raise _as_target(err, Path(path)) from None
    _fsync_dir(target.parent)
    return Path(path)


def make_temp_dir(path: str | os.PathLike[str]) -> Path:
    """A fresh directory beside ``path`` with ordinary permissions, to fill and rename
    (with :func:`replace_dir`). Stale temporaries of dead processes are swept first."""
    shown = Path(path)
    target = resolve_target(shown)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(target)
        tmp = temp_name(target)
        tmp.mkdir(mode=0o700)
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as err:
        raise _as_target(err, shown) from None
    return tmp


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> Callable[..., int] | None:
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically; False where the system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(tmp: Path, path: str | os.PathLike[str]) -> Path:
    """Put the filled folder ``tmp`` (from :func:`make_temp_dir`) in place of ``path``.

    An existing folder is swapped out in one atomic step where the system allows
    (``renameat2(RENAME_EXCHANGE)`` on Linux), then deleted; otherwise renamed to a
    trash name that :func:`sweep_stale` restores if the process dies before the new
    folder is in place. A symbolic link ``path`` is written through. On any error
    ``tmp`` is removed and the old folder is left as it was.
    """
    shown = Path(path)
    target = resolve_target(shown)
    try:
        fsync_tree(tmp)
        if not os.path.lexists(target):
            os.rename(tmp, target)
            _fsync_dir(target.parent)
            return shown
        if _exchange(tmp, target):
            _fsync_dir(target.parent)
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
            return shown
        trash = temp_name(target, _TRASH_MARK)
        os.rename(target, trash)
        os.rename(tmp, target)
        _fsync_dir(target.parent)
        shutil.rmtree(trash, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _as_target(err, shown) from None
    return shown


def read_bytes_bounded(path: str | os.PathLike[str], *, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` bytes.

    Raises :class:`hw_models.errors.SpecError` (one line naming the file) for a missing
    or unreadable file, a folder, a FIFO or device (``/dev/zero``), or a file larger
    than ``limit``; never reads more than ``limit + 1`` bytes, and never blocks on a
    FIFO. ``what`` names the kind of file in the message (``"trace"``, ``"stats"``).
    """
    from hw_models.errors import Problem, SpecError

    p = Path(path)

    def fail(msg: str) -> SpecError:
        return SpecError([Problem(what, f"{str(p)!r}: {msg}")])

    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise fail("file not found: the path does not exist") from None
    except OSError as err:
        raise fail(f"cannot read: {err.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO or device"
            raise fail(f"not a regular file ({kind})")
        if st.st_size > limit:
            raise fail(f"larger than the {what} size ceiling of {limit} bytes")
        try:  # the file may grow while read: never more than limit + 1 bytes
            raw = f.read(min(st.st_size, limit) + 1)
        except OSError as err:
            raise fail(f"cannot read: {err.strerror}") from None
    if len(raw) > limit:
        raise fail(f"larger than the {what} size ceiling of {limit} bytes")
    return raw
