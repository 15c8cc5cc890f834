"""Progress of long work, reported from any layer and shown by whoever listens.

Library code calls :func:`report` as work advances (forward passes over windows,
training steps); nothing is shown unless a caller listens with :func:`listening`, as
the command line does with a progress bar. The listener is a context variable, so work
in other threads or processes reports to nobody unless they listen themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["Listener", "listening", "overall", "report", "reporter", "stage"]

Listener = Callable[[str, int, "int | None", str], None]
"""Called as ``listener(label, done, total, note)``: ``done`` of ``total`` units (None:
unknown) of the work named ``label``; ``note`` a short status (e.g. the current loss)."""

_listener: ContextVar[Listener | None] = ContextVar("dnakmer_progress", default=None)
_stage: ContextVar[str] = ContextVar("dnakmer_progress_stage", default="")


@contextlib.contextmanager
def listening(listener: Listener | None) -> Iterator[None]:
    """Send the progress reported inside the block to ``listener`` (None: to nobody)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Name the work inside the block: reports made in it are labelled ``name``."""
    token = _stage.set(name)
    try:
        yield
    finally:
        _stage.reset(token)


def report(label: str, done: int, total: int | None = None, note: str = "") -> None:
    """Tell the listener, if any, that ``done`` of ``total`` units of ``label`` are done
    (labelled with the enclosing :func:`stage`'s name when there is one)."""
    listener = _listener.get()
    if listener is not None:
        name = _stage.get()
        listener(f"{name}: {label}" if name else label, done, total, note)


@contextlib.contextmanager
def overall(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Count work made of several smaller pieces as one: the block gets ``advance(n)``
    to report ``n`` more units of ``label``, and the pieces' own reports are not shown."""
    listener = _listener.get()
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if listener is not None:
            listener(label, done, total, "")

    advance(0)
    token = _listener.set(None)
    try:
        yield advance
    finally:
        _listener.reset(token)


def reporter(label: str) -> Callable[[int, int], None] | None:
    """A ``callback(done, total)`` for code that takes one (e.g. reading a file: bytes
    read of the file's size) that reports ``label`` to the listener; None when nobody
    listens, so that no callback costs anything."""
    listener = _listener.get()
    if listener is None:
        return None
    name = _stage.get()
    full = f"{name}: {label}" if name else label

    def callback(done: int, total: int) -> None:
        listener(full, done, total, "")

    return callback
