"""Interval arithmetic and window sampling on one record, vectorised with NumPy.

An interval set is an ``(n, 2)`` int64 array of 0-based half-open ``[start, end)``
rows, sorted and non-overlapping ("merged"). A window of length ``w`` starting at
``s`` is ``[s, s + w)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "complement_intervals",
    "containing_interval",
    "extract_windows",
    "gc_fraction",
    "intersect_intervals",
    "merge_intervals",
    "sample_window_starts",
    "subtract_intervals",
    "tile_windows",
]

EMPTY = np.zeros((0, 2), dtype=np.int64)


def as_intervals(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Stack two 1-D coordinate arrays into an ``(n, 2)`` int64 interval array."""
    return np.stack([np.asarray(starts, np.int64), np.asarray(ends, np.int64)], axis=1)


def merge_intervals(intervals: np.ndarray) -> np.ndarray:
    """Sort ``intervals`` and merge the ones that overlap or touch; empty ones vanish.

    Parameters
    ----------
    intervals : (n, 2) int array, any order

    Returns
    -------
    (m, 2) int64 array, sorted and non-overlapping
    """
    iv = np.asarray(intervals, dtype=np.int64).reshape(-1, 2)
    iv = iv[iv[:, 1] > iv[:, 0]]
    if len(iv) == 0:
        return EMPTY.copy()
    iv = iv[np.lexsort((iv[:, 1], iv[:, 0]))]
    # A new group starts where the start lies past every end seen so far.
    running_end = np.maximum.accumulate(iv[:, 1])
    new_group = np.ones(len(iv), dtype=bool)
    new_group[1:] = iv[1:, 0] > running_end[:-1]
    group = np.cumsum(new_group) - 1
    starts = iv[new_group, 0]
    ends = np.zeros(len(starts), dtype=np.int64)
    np.maximum.at(ends, group, iv[:, 1])
    return as_intervals(starts, ends)


def intersect_intervals(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bases in both merged interval sets ``a`` and ``b``, as a merged set."""
    if len(a) == 0 or len(b) == 0:
        return EMPTY.copy()
    # For every interval of a, the range of b intervals that can overlap it.
    first = np.searchsorted(b[:, 1], a[:, 0], side="right")
    last = np.searchsorted(b[:, 0], a[:, 1], side="left")
    n_pairs = np.maximum(last - first, 0)
    a_idx = np.repeat(np.arange(len(a)), n_pairs)
    offsets = np.arange(n_pairs.sum()) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    b_idx = np.repeat(first, n_pairs) + offsets
    starts = np.maximum(a[a_idx, 0], b[b_idx, 0])
    ends = np.minimum(a[a_idx, 1], b[b_idx, 1])
    keep = ends > starts
    return as_intervals(starts[keep], ends[keep])


def complement_intervals(intervals: np.ndarray, length: int) -> np.ndarray:
    """Bases of ``[0, length)`` outside the merged set ``intervals``."""
    iv = np.clip(intervals, 0, length)
    bounds = np.concatenate([[0], iv.ravel(), [length]]).reshape(-1, 2)
    return bounds[bounds[:, 1] > bounds[:, 0]].astype(np.int64)


def subtract_intervals(a: np.ndarray, b: np.ndarray, length: int) -> np.ndarray:
    """Bases of merged set ``a`` outside merged set ``b`` (both within ``[0, length)``)."""
    return intersect_intervals(a, complement_intervals(b, length))


def containing_interval(starts: np.ndarray, width: int, intervals: np.ndarray) -> np.ndarray:
    """Index of the interval that wholly contains each window, or -1.

    Parameters
    ----------
    starts : (n,) int array
        Window starts; windows are ``[start, start + width)``.
    width : int
    intervals : (m, 2) int64 array, merged

    Returns
    -------
    (n,) int64 array
    """
    starts = np.asarray(starts, dtype=np.int64)
    if len(intervals) == 0:
        return np.full(len(starts), -1, dtype=np.int64)
    idx = np.searchsorted(intervals[:, 0], starts, side="right") - 1
    safe = np.maximum(idx, 0)
    inside = (idx >= 0) & (starts + width <= intervals[safe, 1])
    return np.where(inside, idx, -1)


def _start_ranges(intervals: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """First window start and number of window starts that fit in each interval."""
    counts = np.maximum(intervals[:, 1] - intervals[:, 0] - width + 1, 0)
    return intervals[:, 0], counts


def sample_window_starts(
    intervals: np.ndarray, width: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``n`` distinct window starts, uniform over all windows that fit in
    ``intervals``; sorted int64. Fewer come back when fewer windows fit."""
    first, counts = _start_ranges(intervals, width)
    total = int(counts.sum())
    if total == 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    picks = np.sort(rng.choice(total, size=min(n, total), replace=False).astype(np.int64))
    cum = np.cumsum(counts)
    which = np.searchsorted(cum, picks, side="right")
    return first[which] + picks - (cum[which] - counts[which])


def tile_windows(intervals: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """Non-overlapping windows filling each interval, the slack before the first
    window drawn at random; sorted int64 starts."""
    lengths = intervals[:, 1] - intervals[:, 0]
    n_tiles = lengths // width
    slack = lengths - n_tiles * width
    offsets = np.floor(rng.random(len(intervals)) * (slack + 1)).astype(np.int64)
    base = np.repeat(intervals[:, 0] + offsets, n_tiles)
    within = np.arange(n_tiles.sum()) - np.repeat(np.cumsum(n_tiles) - n_tiles, n_tiles)
    return np.sort(base + within * width)


def extract_windows(
    codes: np.ndarray, starts: np.ndarray, width: int, minus: np.ndarray
) -> np.ndarray:
    """Windows of a record's base codes, reverse-complemented where ``minus``.

    Parameters
    ----------
    codes : (L,) uint8 array
        Codes A=0, T=1, C=2, G=3 (complement = code ^ 1), 4 = any other base.
    starts : (n,) int array
    width : int
    minus : (n,) bool array

    Returns
    -------
    (n, width) uint8 array
    """
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(width, dtype=np.int64)
    windows = codes[idx]
    minus = np.asarray(minus, dtype=bool)
    flipped = windows[minus, ::-1]
    # Codes 0-3 complement by flipping the low bit; 4 (not ACGT) stays 4.
    windows[minus] = np.where(flipped < 4, flipped ^ 1, flipped)
    return windows


def gc_fraction(windows: np.ndarray) -> np.ndarray:
    """Fraction of C and G (codes 2 and 3) per row of an ``(n, w)`` code array."""
    if windows.shape[1] == 0:
        return np.zeros(len(windows))
    return np.asarray(((windows == 2) | (windows == 3)).mean(axis=1), dtype=np.float64)
