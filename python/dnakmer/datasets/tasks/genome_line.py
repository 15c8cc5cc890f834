"""A genome seen as one coordinate line, with its split regions, for task building.

Records are laid end to end ("global" coordinates: record ``i`` occupies
``[offset[i], offset[i] + length[i])``), so interval sets and window samplers work on
the whole genome at once. No interval ever crosses a record boundary: every set is
built from per-record intervals, and every window must lie inside one interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from dnakmer.datasets.tasks.intervals import (
    as_intervals,
    containing_interval,
    extract_windows,
    intersect_intervals,
    merge_intervals,
)
from dnakmer.genome import Genome

__all__ = ["SPLITS", "GenomeLine", "assign_split_regions"]

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class GenomeLine:
    """Records of ``genome`` end to end, their ACGT-only intervals and split regions.

    Attributes
    ----------
    genome : Genome
    offsets : (n_records + 1,) int64 array
        Global start of each record, then the total length.
    acgt : (m, 2) int64 array
        Maximal ACGT-only intervals of each record, global coordinates.
    regions : list of (m, 2) int64 arrays
        Per split (``SPLITS`` order) the global intervals assigned to it, joined
        within a record, never across records.
    """

    genome: Genome
    offsets: np.ndarray
    acgt: np.ndarray
    regions: list[np.ndarray]

    @classmethod
    def build(cls, genome: Genome, regions: list[tuple[str, int, int, int]]) -> GenomeLine:
        """Lay out ``genome`` with split ``regions`` from :func:`assign_split_regions`."""
        lengths = np.asarray(genome.lengths, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        acgt = [
            genome.acgt_intervals(name).astype(np.int64) + offsets[i]
            for i, name in enumerate(genome.names)
        ]
        index = {name: i for i, name in enumerate(genome.names)}
        per_split = []
        for split in range(len(SPLITS)):
            rows = [
                (offsets[index[r]] + s, offsets[index[r]] + e)
                for r, s, e, c in regions
                if c == split
            ]
            per_split.append(merge_intervals(np.asarray(rows, dtype=np.int64)))
        # Merging joins intervals that touch across a record boundary; cut them again.
        records = as_intervals(offsets[:-1], offsets[1:])
        acgt_cut = intersect_intervals(merge_intervals(np.concatenate(acgt)), records)
        regions_cut = [intersect_intervals(r, records) for r in per_split]
        return cls(genome, offsets, acgt_cut, regions_cut)

    def record_index(self, seqids: pl.Series) -> np.ndarray:
        """Index of each record name in the genome."""
        index = {name: i for i, name in enumerate(self.genome.names)}
        return np.array([index[s] for s in seqids.to_list()], dtype=np.int64)

    def record_of(self, global_starts: np.ndarray) -> np.ndarray:
        """Record index of each global position."""
        return np.searchsorted(self.offsets, global_starts, side="right") - 1

    def allowed(self, split: int) -> np.ndarray:
        """Global intervals where windows of ``split`` may lie: its regions, ACGT only."""
        return intersect_intervals(self.regions[split], self.acgt)

    def place(
        self, starts: np.ndarray, width: int, records: np.ndarray
    ) -> tuple[np.ndarray, dict[str, int]]:
        """The split of each window (-1 when dropped) and drop counts by reason.

        ``records`` is the index of each window's intended record, so a window
        hanging over either end of its record is ``out_of_record``, not silently
        moved to a neighbour.
        """
        starts = np.asarray(starts, dtype=np.int64)
        records = np.asarray(records, dtype=np.int64)
        outside = (starts < self.offsets[records]) | (starts + width > self.offsets[records + 1])
        non_acgt = ~outside & (containing_interval(starts, width, self.acgt) < 0)
        split = np.full(len(starts), -1, dtype=np.int8)
        for code, region in enumerate(self.regions):
            split[containing_interval(starts, width, region) >= 0] = code
        split[outside | non_acgt] = -1
        crosses = ~outside & ~non_acgt & (split < 0)
        drops = {
            "out_of_record": int(outside.sum()),
            "non_acgt": int(non_acgt.sum()),
            "crosses_split": int(crosses.sum()),
        }
        return split, drops

    def windows(self, starts: np.ndarray, width: int, minus: np.ndarray) -> np.ndarray:
        """``(n, width)`` uint8 codes of global windows, reverse-complemented where
        ``minus``; one record's codes are held in memory at a time."""
        starts = np.asarray(starts, dtype=np.int64)
        out = np.zeros((len(starts), width), dtype=np.uint8)
        rec = self.record_of(starts)
        for r in np.unique(rec):
            rows = np.flatnonzero(rec == r)
            codes = self.genome.codes(self.genome.names[r])
            local = starts[rows] - self.offsets[r]
            out[rows] = extract_windows(codes, local, width, np.asarray(minus)[rows])
        return out


def _split_counts(n_units: int, fractions: tuple[float, float, float]) -> list[int]:
    """Units per split: each non-zero fraction gets at least one, train the rest."""
    dev = max(round(fractions[1] * n_units), 1 if fractions[1] > 0 else 0)
    test = max(round(fractions[2] * n_units), 1 if fractions[2] > 0 else 0)
    return [n_units - dev - test, dev, test]


def assign_split_regions(
    names: list[str],
    lengths: list[int],
    *,
    split_by: str,
    block_size: int,
    fractions: tuple[float, float, float],
    seed: int,
) -> list[tuple[str, int, int, int]]:
    """Cut the genome into split regions: ``(record, start, end, split_code)`` rows.

    ``split_by="block"`` cuts every record into ``block_size`` blocks and deals them
    to the splits in a seeded random order; ``"record"`` deals whole records, each to
    the split furthest below its share of the genome length.

    Raises
    ------
    ValueError
        Too few blocks or records to give every split with a non-zero fraction at
        least one, and train at least one.
    """
    rng = np.random.default_rng([seed, 0x5E11])
    if split_by == "block":
        units = [
            (name, start, min(start + block_size, length))
            for name, length in zip(names, lengths, strict=True)
            for start in range(0, length, block_size)
        ]
    elif split_by == "record":
        units = [(name, 0, length) for name, length in zip(names, lengths, strict=True)]
    else:
        raise ValueError(f"split_by must be 'block' or 'record', got {split_by!r}")
    counts = _split_counts(len(units), fractions)
    if counts[0] < 1:
        what = f"{block_size:,} bp blocks" if split_by == "block" else "records"
        raise ValueError(
            f"the genome has only {len(units)} {what}: too few for train/dev/test "
            f"fractions {fractions}"
            + ("; lower block_size" if split_by == "block" else "; use split_by='block'")
        )
    order = rng.permutation(len(units))
    if split_by == "block":
        codes = np.repeat(np.arange(3), counts)
        split_of = {int(u): int(c) for u, c in zip(order, codes, strict=True)}
    else:
        total = float(sum(lengths))
        targets = [f * total for f in (1 - fractions[1] - fractions[2], *fractions[1:])]
        assigned = [0.0, 0.0, 0.0]
        split_of = {}
        for rank, u in enumerate(order):
            remaining = len(order) - rank
            empty = [c for c in range(3) if targets[c] > 0 and assigned[c] == 0]
            # Keep a record for every split still empty while records remain.
            pool = empty if len(empty) >= remaining else range(3)
            code = max(pool, key=lambda c: targets[c] - assigned[c])
            split_of[int(u)] = code
            assigned[code] += units[int(u)][2]
    return [(n, s, e, split_of[i]) for i, (n, s, e) in enumerate(units)]
