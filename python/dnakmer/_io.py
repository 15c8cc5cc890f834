"""Atomic file output: write to a temporary sibling, fsync, rename into place."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from dnakmer.exceptions import OutputBusyError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; rename it to ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    # mkstemp creates 0600; give the file the mode open() would (0666 less the umask).
    os.fchmod(fd, 0o666 & ~_umask())
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def staged_files(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary folder inside ``out_dir``; on success its files are moved into
    ``out_dir`` (each move atomic), on failure it is removed with whatever it holds."""
    import shutil

    out = Path(out_dir)
    tmp = out / ".staged.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Folders each thread of this process holds the lock of, with how deep: a writer that
# calls another writer on the same folder does not lock itself out; another thread does.
_HELD: dict[tuple[int, int, int], int] = {}


@contextlib.contextmanager
def output_lock(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on the existing folder ``out_dir`` while writing into it:
    a second writer is refused at once with :class:`OutputBusyError` instead of mixing
    its files with the first one's. The lock goes with the process (``flock``), so a
    killed writer leaves no stale lock behind; nothing is written to hold it. Nested
    calls on the same folder in one thread share the outer lock."""
    out = Path(out_dir)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): nothing to hold
        yield out
        return
    fd = os.open(out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino, threading.get_ident())
    if key in _HELD:
        os.close(fd)
        _HELD[key] += 1
        try:
            yield out
        finally:
            _HELD[key] -= 1
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(
                f"{out} is being written by another dnakmer process; wait for it to finish "
                "or choose another output folder",
                path=str(out),
            ) from None
        _HELD[key] = 1
        try:
            yield out
        finally:
            del _HELD[key]
    finally:
        os.close(fd)  # releases the lock


# Hidden files a dnakmer writer keeps in its output folder until they are complete: record
# files under a temporary name, pieces of a parallel read, atomic_open's temporaries.
_TEMPORARY = (
    re.compile(r"\.dnakmer-\d+-\d+-\d+\.npy"),
    re.compile(r"\..+\.partial-\d+"),
    re.compile(r"\..+\.partial"),
)


def remove_stale_temporaries(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove the hidden temporary files that writers killed before they could clean up
    (``kill -9``, power loss) left in ``out_dir``; call only while holding
    :func:`output_lock`, when no other writer can own them. Only plain files directly in
    ``out_dir`` whose names dnakmer's writers use are touched. Returns what was removed."""
    removed = []
    for entry in os.scandir(out_dir):
        if entry.is_file(follow_symlinks=False) and any(
            p.fullmatch(entry.name) for p in _TEMPORARY
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def sync_folder(out_dir: str | os.PathLike[str]) -> None:
    """Put everything written into ``out_dir`` on disk, and the folder's entries: one
    ``syncfs`` of its file system (``sync`` where that call is missing) instead of an
    ``fsync`` per file, which costs a journal commit each (an hour for a million
    contigs). Call it once, before the file that marks the output complete."""
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            import ctypes

            syncfs = ctypes.CDLL(None, use_errno=True).syncfs
        except (AttributeError, OSError):
            os.sync()
        else:
            if syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), os.fspath(out_dir))
        os.fsync(fd)
    finally:
        os.close(fd)
