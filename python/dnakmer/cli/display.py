"""What commands show: a progress bar fed by :mod:`dnakmer.progress`, and tables in one
style (numbers rounded to what they support, intervals as ``low to high``)."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["cell", "interval", "print_table", "showing_progress"]


@contextlib.contextmanager
def showing_progress(enabled: bool = True) -> Iterator[None]:
    """One progress bar on stderr for the work reported inside the block (forward
    passes, training steps: label, done of total, ETA and a status such as the loss).
    Off with ``enabled=False`` (``--quiet``) and when stderr is not a terminal."""
    from dnakmer.progress import listening

    if not enabled or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def listener(label: str, done: int, total: int | None, note: str) -> None:
        if label not in tasks:
            for old in tasks.values():  # earlier work is over: keep one bar
                bar.update(old, visible=False)
            tasks[label] = bar.add_task(label, total=total, note=note)
        bar.update(tasks[label], completed=done, total=total, note=note)

    with bar, listening(listener):
        yield


def interval(low: float | None, high: float | None, digits: int = 3) -> str:
    """``0.280 to 0.312``; empty when unknown."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"{low:.{digits}f} to {high:.{digits}f}"


def cell(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded to ``digits`` decimals, counts with thousands
    separators, missing values empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value + 0.0 if round(value, digits) else 0.0:.{digits}f}"  # no "-0.000"
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return interval(*value, digits=digits)
    return str(value)


def print_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    digits: int | dict[str, int] = 3,
    caption: str | None = None,
) -> None:
    """Print ``rows`` (dicts) as one table: the first column and text left, numbers right,
    ``headers`` renaming columns, ``caption`` a sentence under it saying what the
    numbers mean."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    names = headers or {}
    for i, col in enumerate(columns):
        values = [row.get(col) for row in rows if row.get(col) not in (None, "")]
        text = i == 0 or (values and all(isinstance(v, str) for v in values))
        table.add_column(names.get(col, col), justify="left" if text else "right")
    def places(col: str) -> int:
        return digits if isinstance(digits, int) else digits.get(col, 3)

    for row in rows:
        table.add_row(*(cell(row.get(c), places(c)) for c in columns))
    Console(width=None if sys.stdout.isatty() else 200, highlight=False).print(table)
