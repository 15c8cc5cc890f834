"""Interval arithmetic, window samplers and split regions against per-base brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotation_reference import reverse_complement
from dnakmer.datasets.tasks.genome_line import assign_split_regions
from dnakmer.datasets.tasks.intervals import (
    complement_intervals,
    containing_interval,
    extract_windows,
    gc_fraction,
    intersect_intervals,
    merge_intervals,
    sample_window_starts,
    subtract_intervals,
    tile_windows,
)

LENGTH = 200

raw_intervals = st.lists(
    st.tuples(st.integers(0, LENGTH), st.integers(0, 40)).map(lambda t: (t[0], min(t[0] + t[1],
                                                                                   LENGTH))),
    max_size=12,
)


def mask_of(intervals, length: int = LENGTH) -> np.ndarray:
    mask = np.zeros(length, dtype=bool)
    for s, e in intervals:
        mask[s:e] = True
    return mask


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True, the reference for a merged interval set."""
    runs, start = [], None
    for i, v in enumerate([*mask.tolist(), False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i))
            start = None
    return runs


def as_rows(iv: np.ndarray) -> list[tuple[int, int]]:
    return [(int(s), int(e)) for s, e in iv]


@settings(max_examples=150, deadline=None)
@given(raw_intervals, raw_intervals)
def test_set_operations_match_per_base_masks(a_raw, b_raw) -> None:
    a, b = merge_intervals(np.array(a_raw).reshape(-1, 2)), merge_intervals(
        np.array(b_raw).reshape(-1, 2))
    ma, mb = mask_of(a_raw), mask_of(b_raw)
    assert as_rows(a) == runs_of(ma)
    assert as_rows(intersect_intervals(a, b)) == runs_of(ma & mb)
    assert as_rows(complement_intervals(a, LENGTH)) == runs_of(~ma)
    assert as_rows(subtract_intervals(a, b, LENGTH)) == runs_of(ma & ~mb)


@settings(max_examples=150, deadline=None)
@given(raw_intervals, st.lists(st.integers(-10, LENGTH + 10), max_size=20), st.integers(1, 30))
def test_containing_interval_matches_brute_force(raw, starts, width) -> None:
    iv = merge_intervals(np.array(raw).reshape(-1, 2))
    got = containing_interval(np.array(starts, dtype=np.int64), width, iv)
    for s, idx in zip(starts, got, strict=True):
        expected = [i for i, (a, b) in enumerate(as_rows(iv)) if a <= s and s + width <= b]
        assert idx == (expected[0] if expected else -1)


@settings(max_examples=150, deadline=None)
@given(raw_intervals, st.integers(1, 30), st.integers(0, 50), st.integers(0, 2**32 - 1))
def test_samplers_stay_inside_and_are_distinct(raw, width, n, seed) -> None:
    iv = merge_intervals(np.array(raw).reshape(-1, 2))
    fits = [s for a, b in as_rows(iv) for s in range(a, b - width + 1)]
    starts = sample_window_starts(iv, width, n, np.random.default_rng(seed))
    assert len(starts) == min(n, len(fits))
    assert len(set(starts.tolist())) == len(starts)
    assert set(starts.tolist()) <= set(fits)
    assert (np.diff(starts) > 0).all()
    tiles = tile_windows(iv, width, np.random.default_rng(seed))
    assert len(tiles) == sum((b - a) // width for a, b in as_rows(iv))
    assert set(tiles.tolist()) <= set(fits)
    assert (np.diff(tiles) >= width).all()  # no two tiles overlap


def test_sampling_is_uniform_over_window_starts() -> None:
    iv = np.array([[0, 10], [100, 130]], dtype=np.int64)
    rng = np.random.default_rng(1)
    draws = np.concatenate([sample_window_starts(iv, 5, 3, rng) for _ in range(4000)])
    counts = np.bincount(draws, minlength=126)
    fits = [*range(0, 6), *range(100, 126)]
    assert counts[[i for i in range(126) if i not in fits]].sum() == 0
    expected = len(draws) / len(fits)
    assert np.abs(counts[fits] - expected).max() < 0.2 * expected


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ACGTN", min_size=1, max_size=60), st.data())
def test_extract_windows_matches_text_reverse_complement(seq, data) -> None:
    codes = np.frombuffer(seq.encode(), dtype=np.uint8).copy()
    codes = np.select([codes == ord(c) for c in "ATCG"], [0, 1, 2, 3], 4).astype(np.uint8)
    width = data.draw(st.integers(1, len(seq)))
    starts = data.draw(st.lists(st.integers(0, len(seq) - width), min_size=1, max_size=8))
    minus = data.draw(st.lists(st.booleans(), min_size=len(starts), max_size=len(starts)))
    got = extract_windows(codes, np.array(starts), width, np.array(minus))
    for row, s, m in zip(got, starts, minus, strict=True):
        text = seq[s:s + width]
        assert "".join("ATCGN"[c] for c in row) == (reverse_complement(text) if m else text)
    gc = [sum(ch in "GC" for ch in "".join("ATCGN"[c] for c in row)) / width for row in got]
    assert np.allclose(gc_fraction(got), gc)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50_000), min_size=1, max_size=5), st.integers(500, 20_000),
       st.integers(0, 1000))
def test_block_split_regions_partition_every_record(lengths, block_size, seed) -> None:
    names = [f"r{i}" for i in range(len(lengths))]
    fractions = (0.8, 0.1, 0.1)
    n_blocks = sum(-(-n // block_size) for n in lengths)
    if n_blocks < 3:
        with pytest.raises(ValueError, match="too few"):
            assign_split_regions(names, lengths, split_by="block", block_size=block_size,
                                 fractions=fractions, seed=seed)
        return
    regions = assign_split_regions(names, lengths, split_by="block", block_size=block_size,
                                   fractions=fractions, seed=seed)
    for name, length in zip(names, lengths, strict=True):
        rows = sorted((s, e) for r, s, e, _ in regions if r == name)
        assert rows[0][0] == 0 and rows[-1][1] == length
        assert all(a[1] == b[0] for a, b in itertools.pairwise(rows))
    per_split = np.bincount([c for *_, c in regions], minlength=3)
    assert per_split.min() >= 1
    assert per_split[1] == max(round(0.1 * n_blocks), 1)
    assert regions == assign_split_regions(names, lengths, split_by="block",
                                           block_size=block_size, fractions=fractions,
                                           seed=seed)


def test_record_split_gives_every_split_a_record() -> None:
    lengths = [1000, 200, 300, 5000, 50]
    regions = assign_split_regions([str(i) for i in range(5)], lengths, split_by="record",
                                   block_size=10, fractions=(0.6, 0.2, 0.2), seed=3)
    assert sorted(r for r, *_ in regions) == ["0", "1", "2", "3", "4"]
    assert {c for *_, c in regions} == {0, 1, 2}
    assert all(s == 0 and e == lengths[int(r)] for r, s, e, _ in regions)
    with pytest.raises(ValueError, match=r"only 2 records.*split_by='block'"):
        assign_split_regions(["a", "b"], [10, 10], split_by="record", block_size=10,
                             fractions=(0.8, 0.1, 0.1), seed=0)
