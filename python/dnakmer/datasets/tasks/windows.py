"""Positive and negative windows of the annotation tasks, in global coordinates.

Each ``*_windows`` function returns a :class:`Windows` (one row per sample: global
start, strand, label, split) and a dict of statistics for the manifest. Sequences are
extracted later, in one pass, by :meth:`GenomeLine.windows`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import polars as pl

from dnakmer.datasets.annotation import Annotation
from dnakmer.datasets.tasks.genome_line import SPLITS, GenomeLine
from dnakmer.datasets.tasks.intervals import (
    as_intervals,
    containing_interval,
    gc_fraction,
    intersect_intervals,
    merge_intervals,
    subtract_intervals,
    tile_windows,
)

__all__ = ["Windows", "balance", "coding_windows", "promoter_windows", "splice_windows"]

A, T, C, G = 0, 1, 2, 3
GC_BINS = 20


@dataclass(frozen=True)
class Windows:
    """Samples before sequence extraction: parallel 1-D arrays."""

    start: np.ndarray  # int64, global coordinate of the window's leftmost base
    minus: np.ndarray  # bool, window read on the reverse strand
    label: np.ndarray  # int64
    split: np.ndarray  # int8, index into SPLITS

    @classmethod
    def of(
        cls, start: np.ndarray, minus: np.ndarray, label: int, split: int | np.ndarray
    ) -> Windows:
        """Windows sharing one label, in one split or in per-window splits."""
        n = len(start)
        return cls(
            np.asarray(start, dtype=np.int64),
            np.asarray(minus, dtype=bool),
            np.full(n, label, dtype=np.int64),
            np.broadcast_to(np.asarray(split, dtype=np.int8), (n,)).copy(),
        )

    @classmethod
    def concat(cls, parts: list[Windows]) -> Windows:
        if not parts:
            return cls.of(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), 0, 0)
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def take(self, idx: np.ndarray) -> Windows:
        return Windows(self.start[idx], self.minus[idx], self.label[idx], self.split[idx])

    def sorted(self) -> Windows:
        """Ordered by split, position, strand and label: a deterministic layout."""
        return self.take(np.lexsort((self.label, self.minus, self.start, self.split)))


def _subsample(n_keep: int, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n_keep`` of ``idx`` at random, in their original order."""
    if n_keep >= len(idx):
        return idx
    return np.sort(rng.choice(idx, size=n_keep, replace=False))


def balance(windows: Windows, n_labels: int, seed: int) -> tuple[Windows, int]:
    """Every label equally frequent within each split, by subsampling the larger
    classes (when negatives ran short in a small split); and how many were dropped."""
    keep = []
    for code in range(len(SPLITS)):
        in_split = windows.split == code
        per_label = [np.flatnonzero(in_split & (windows.label == lab)) for lab in range(n_labels)]
        n = min(len(idx) for idx in per_label)
        rng = np.random.default_rng([seed, 5, code])
        keep += [_subsample(n, idx, rng) for idx in per_label]
    kept = np.sort(np.concatenate(keep))
    return windows.take(kept), len(windows.start) - len(kept)


def _random_strands(n: int, minus_fraction: float, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n) < minus_fraction


def _strand_sites(frame: pl.DataFrame, line: GenomeLine, column: str) -> tuple[np.ndarray, ...]:
    """Record index, global position of ``column`` and minus flag per row."""
    rec = line.record_index(frame["seqid"])
    pos = line.offsets[rec] + frame[column].to_numpy().astype(np.int64)
    return rec, pos, (frame["strand"] == "-").to_numpy()


def _gene_starts(annotation: Annotation, line: GenomeLine) -> np.ndarray:
    """Global starts of gene-like features (both ends when unstranded)."""
    genes = annotation.features.filter(pl.col("type").str.ends_with("gene"))
    rec = line.record_index(genes["seqid"])
    start = line.offsets[rec] + genes["start"].to_numpy()
    last = line.offsets[rec] + genes["end"].to_numpy() - 1
    strand = genes["strand"].to_numpy()
    return np.concatenate([start[strand != "-"], last[strand != "+"]])


def _gc_matched_starts(
    line: GenomeLine,
    tiles: np.ndarray,
    width: int,
    target_gc: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Starts, among the candidate ``tiles``, whose GC histogram (20 bins) matches
    ``target_gc``; and how many had to come from a neighbouring bin because their
    own ran out."""
    pool = tiles[_subsample(max(20 * len(target_gc), 2000), np.arange(len(tiles)), rng)]
    pool = pool[rng.permutation(len(pool))]
    pool_gc = gc_fraction(line.windows(pool, width, np.zeros(len(pool), dtype=bool)))
    pool_bin = np.minimum((pool_gc * GC_BINS).astype(np.int64), GC_BINS - 1)
    need = np.bincount(
        np.minimum((target_gc * GC_BINS).astype(np.int64), GC_BINS - 1), minlength=GC_BINS
    )
    queues = [np.flatnonzero(pool_bin == b).tolist() for b in range(GC_BINS)]
    chosen: list[int] = []
    unmatched = 0
    for b in range(GC_BINS):
        for _ in range(need[b]):
            # Own bin first, then ever further neighbours, lower before higher.
            for d in range(GC_BINS):
                src = next((x for x in (b - d, b + d) if 0 <= x < GC_BINS and queues[x]), None)
                if src is not None:
                    chosen.append(queues[src].pop())
                    unmatched += d > 0
                    break
    return np.sort(pool[np.asarray(chosen, dtype=np.int64)]), unmatched


def _annotated_starts(annotation: Annotation, starts_from: str) -> pl.DataFrame:
    """Distinct (seqid, strand, tss) of transcripts (span of their exons) or of
    stranded gene-like features, sorted."""
    if starts_from == "transcript":
        spans = annotation.transcripts()
    else:
        spans = annotation.features.filter(
            pl.col("type").str.ends_with("gene") & pl.col("strand").is_in(["+", "-"])
        )
    tss = pl.when(pl.col("strand") == "+").then(pl.col("start")).otherwise(pl.col("end") - 1)
    return spans.select("seqid", "strand", tss.alias("tss")).unique().sort("seqid", "tss", "strand")


def promoter_windows(
    line: GenomeLine,
    annotation: Annotation,
    *,
    upstream: int,
    downstream: int,
    min_distance: int,
    gc_matched: bool,
    starts_from: str,
    seed: int,
) -> tuple[Windows, dict[str, Any]]:
    """Windows ``-upstream .. +downstream`` around each distinct transcript (or gene)
    start (label 1) and as many background windows per split (label 0) farther than
    ``min_distance`` from every annotated transcript or gene start."""
    width = upstream + downstream + 1
    rec, tss, minus = _strand_sites(_annotated_starts(annotation, starts_from), line, "tss")
    starts = np.where(minus, tss - downstream, tss - upstream)
    split, drops = line.place(starts, width, rec)
    keep = split >= 0
    parts = [Windows.of(starts[keep], minus[keep], 1, split[keep])]
    _, tx_starts, _ = _strand_sites(_annotated_starts(annotation, "transcript"), line, "tss")
    every_start = np.concatenate([tx_starts, _gene_starts(annotation, line)])
    # Background avoids every start's neighbourhood and every promoter window itself
    # (which can reach past min_distance when upstream or downstream is larger).
    zones = merge_intervals(
        np.concatenate(
            [
                as_intervals(every_start - min_distance, every_start + min_distance + 1),
                as_intervals(starts, starts + width),
            ]
        )
    )
    gc_stats: dict[str, Any] = {"gc_matched": gc_matched, "unmatched_bin": 0}
    pos_gc = gc_fraction(line.windows(starts[keep], width, minus[keep])) if gc_matched else None
    for code in range(len(SPLITS)):
        in_split = split[keep] == code
        n = int(in_split.sum())
        rng = np.random.default_rng([seed, 1, code])
        eligible = subtract_intervals(line.allowed(code), zones, int(line.offsets[-1]))
        # Non-overlapping candidates: background windows never share bases.
        tiles = tile_windows(eligible, width, rng)
        if gc_matched:
            assert pos_gc is not None
            bg, unmatched = _gc_matched_starts(line, tiles, width, pos_gc[in_split], rng)
            gc_stats["unmatched_bin"] += unmatched
        else:
            bg = tiles[_subsample(n, np.arange(len(tiles)), rng)]
        minus_fraction = float(minus[keep][in_split].mean()) if n else 0.5
        parts.append(Windows.of(bg, _random_strands(len(bg), minus_fraction, rng), 0, code))
    windows = Windows.concat(parts).sorted()
    return windows, {"dropped": drops, "gc": gc_stats, "positives_found": len(tss)}


def _dinucleotide_sites(codes: np.ndarray, first: int, second: int, offset: int) -> np.ndarray:
    """Positions ``j`` with ``codes[j - offset] == first`` and the next base ``second``,
    where ``offset`` is 0 (pair right of the junction) or 2 (pair left of it)."""
    hits = np.flatnonzero((codes[:-1] == first) & (codes[1:] == second))
    return hits + offset


def _decoy_junctions(
    line: GenomeLine, n_needed: int, seed: int
) -> list[tuple[np.ndarray, bool, int]]:
    """GT/AG junctions on both strands: (global positions, minus, label kind).

    A genome holds about one candidate of each kind per 8 bp (two dinucleotides of 16,
    two strands), far more than the decoys needed; each is kept with the same
    probability (expecting 20 times the need, at least 10,000 per kind), so memory
    stays small on large genomes and the draw stays uniform.
    """
    per_kind = max(int(line.offsets[-1]) / 8, 1.0)
    keep = min(1.0, (20 * n_needed + 10_000) / per_kind)
    rng = np.random.default_rng([seed, 4])
    found: list[tuple[np.ndarray, bool, int]] = []
    for r, name in enumerate(line.genome.names):
        codes = line.genome.codes(name)
        off = int(line.offsets[r])
        for first, second, offset, minus, kind in (
            (G, T, 0, False, 1),  # + donor: GT right of the junction
            (A, C, 2, True, 1),  # - donor: rc(AC) = GT
            (A, G, 2, False, 2),  # + acceptor: AG left of the junction
            (C, T, 0, True, 2),  # - acceptor: rc(CT) = AG
        ):
            hits = _dinucleotide_sites(codes, first, second, offset)
            if keep < 1.0:
                hits = hits[rng.random(len(hits)) < keep]
            found.append((hits + off, minus, kind))
    return found


def _site_stats(
    line: GenomeLine, junction: np.ndarray, minus: np.ndarray, kind: np.ndarray
) -> dict[str, Any]:
    """Dinucleotides at every annotated donor (intron's first two bases) and acceptor
    (its last two), read on the transcript strand, and the canonical GT / AG shares."""
    names = [a + b for a in "ATCGN" for b in "ATCGN"]
    # The pair lies right of the junction for '+' donors and '-' acceptors.
    right = (kind == 1) != minus
    pairs = line.windows(np.where(right, junction, junction - 2), 2, minus).astype(np.int64)
    pair_index = 5 * pairs[:, 0] + pairs[:, 1]
    stats: dict[str, Any] = {}
    for name, k, canonical in (("donor", 1, "GT"), ("acceptor", 2, "AG")):
        found, n_found = np.unique(pair_index[kind == k], return_counts=True)
        counts = dict(
            sorted(
                ((names[f], int(c)) for f, c in zip(found, n_found, strict=True)),
                key=lambda kv: (-kv[1], kv[0]),
            )
        )
        total = int(n_found.sum())
        stats[name] = {
            "n": total,
            "dinucleotides": counts,
            "canonical_fraction": counts.get(canonical, 0) / total if total else None,
        }
    return stats


def splice_windows(
    line: GenomeLine,
    annotation: Annotation,
    *,
    width: int,
    canonical_only: bool,
    seed: int,
) -> tuple[Windows, dict[str, Any]]:
    """Windows centred on annotated donors (label 1) and acceptors (label 2) of
    multi-exon transcripts, and as many decoy GT/AG junctions (label 0), half
    donor-like and half acceptor-like, balanced per split."""
    half = width // 2
    introns = annotation.introns()
    rec, lo, minus = _strand_sites(introns, line, "start")
    hi = line.offsets[rec] + introns["end"].to_numpy()
    sites = (
        pl.DataFrame(
            {
                "rec": np.concatenate([rec, rec]),
                "junction": np.concatenate([np.where(minus, hi, lo), np.where(minus, lo, hi)]),
                "minus": np.concatenate([minus, minus]),
                "kind": np.repeat(np.array([1, 2], dtype=np.int64), len(rec)),
            }
        )
        .unique()
        .sort("junction", "minus", "kind")
    )
    starts = sites["junction"].to_numpy() - half
    kind = sites["kind"].to_numpy()
    split, drops = line.place(starts, width, sites["rec"].to_numpy())
    keep = split >= 0
    kept = Windows.of(starts[keep], sites["minus"].to_numpy()[keep], 0, split[keep])
    kept = Windows(kept.start, kept.minus, kind[keep], kept.split)
    stats = _site_stats(line, sites["junction"].to_numpy(), sites["minus"].to_numpy(), kind)
    if canonical_only:
        seqs = line.windows(kept.start, width, kept.minus)
        canonical = np.where(
            kept.label == 1,
            (seqs[:, half] == G) & (seqs[:, half + 1] == T),
            (seqs[:, half - 2] == A) & (seqs[:, half - 1] == G),
        )
        drops["non_canonical"] = int((~canonical).sum())
        kept = kept.take(np.flatnonzero(canonical))
    annotated = sites["junction"].to_numpy()
    n_needed = int(np.bincount(kept.label, minlength=3)[1:].min()) if len(kept.label) else 0
    decoys = [
        (j[~np.isin(j, annotated)], m, k) for j, m, k in _decoy_junctions(line, n_needed, seed)
    ]
    parts = []
    for code in range(len(SPLITS)):
        rng = np.random.default_rng([seed, 2, code])
        donors = np.flatnonzero((kept.split == code) & (kept.label == 1))
        acceptors = np.flatnonzero((kept.split == code) & (kept.label == 2))
        n = min(len(donors), len(acceptors))
        parts.append(
            kept.take(np.concatenate([_subsample(n, donors, rng), _subsample(n, acceptors, rng)]))
        )
        parts.append(_split_decoys(line, decoys, code, n, half, width, rng))
    return Windows.concat(parts).sorted(), {"dropped": drops, "sites": stats}


def _split_decoys(
    line: GenomeLine,
    decoys: list[tuple[np.ndarray, bool, int]],
    code: int,
    n: int,
    half: int,
    width: int,
    rng: np.random.Generator,
) -> Windows:
    """``n`` decoy windows in split ``code``: n // 2 donor-like, the rest acceptor-like
    (more of the other kind when one runs short)."""
    allowed = line.allowed(code)
    pools: dict[int, list[tuple[np.ndarray, bool]]] = {1: [], 2: []}
    for junctions, on_minus, kind in decoys:
        starts = junctions - half
        ok = containing_interval(starts, width, allowed) >= 0
        pools[kind].append((starts[ok], on_minus))
    flat = {
        k: (np.concatenate([s for s, _ in v]), np.concatenate([np.full(len(s), m) for s, m in v]))
        for k, v in pools.items()
    }
    want_donor = min(n // 2, len(flat[1][0]))
    want_acceptor = min(n - want_donor, len(flat[2][0]))
    want_donor = min(n - want_acceptor, len(flat[1][0]))
    parts = []
    for kind, want in ((1, want_donor), (2, want_acceptor)):
        starts, minus = flat[kind]
        pick = _subsample(want, np.arange(len(starts)), rng)
        parts.append(Windows.of(starts[pick], minus[pick], 0, code))
    return Windows.concat(parts)


def _genic_intervals(annotation: Annotation, line: GenomeLine) -> np.ndarray:
    """Global merged intervals covered by genes, transcripts (any RNA), exons, CDS,
    UTRs and codons, on either strand: what "intergenic" must avoid."""
    f = annotation.features
    genic = f.filter(
        pl.col("type").str.ends_with("gene")
        | pl.col("type").str.contains("RNA|UTR|codon|transcript|exon|CDS")
    )
    rec = line.record_index(genic["seqid"])
    tx = annotation.transcripts()
    tx_rec = line.record_index(tx["seqid"])
    starts = np.concatenate(
        [
            line.offsets[rec] + genic["start"].to_numpy(),
            line.offsets[tx_rec] + tx["start"].to_numpy(),
        ]
    )
    ends = np.concatenate(
        [line.offsets[rec] + genic["end"].to_numpy(), line.offsets[tx_rec] + tx["end"].to_numpy()]
    )
    return merge_intervals(as_intervals(starts, ends))


def coding_windows(
    line: GenomeLine,
    annotation: Annotation,
    *,
    width: int,
    seed: int,
) -> tuple[Windows, dict[str, Any]]:
    """Non-overlapping windows tiling CDS on their strand (label 1) and intergenic
    DNA (label 0), the larger class subsampled to the smaller per split."""
    cds = annotation.cds().filter(pl.col("strand").is_in(["+", "-"]))
    rec, start, minus = _strand_sites(cds, line, "start")
    end = line.offsets[rec] + cds["end"].to_numpy()
    by_strand = [
        merge_intervals(as_intervals(start[minus == m], end[minus == m])) for m in (False, True)
    ]
    intergenic = subtract_intervals(
        line.acgt, _genic_intervals(annotation, line), int(line.offsets[-1])
    )
    parts = []
    available = {}
    for code, split_name in enumerate(SPLITS):
        rng = np.random.default_rng([seed, 3, code])
        allowed = line.allowed(code)
        pos = [tile_windows(intersect_intervals(iv, allowed), width, rng) for iv in by_strand]
        pos_minus = np.repeat([False, True], [len(p) for p in pos])
        pos_starts = np.concatenate(pos)
        neg_starts = tile_windows(intersect_intervals(intergenic, allowed), width, rng)
        available[split_name] = {"coding": len(pos_starts), "intergenic": len(neg_starts)}
        n = min(len(pos_starts), len(neg_starts))
        p = _subsample(n, np.arange(len(pos_starts)), rng)
        q = _subsample(n, np.arange(len(neg_starts)), rng)
        minus_fraction = float(pos_minus.mean()) if len(pos_minus) else 0.5
        parts.append(Windows.of(pos_starts[p], pos_minus[p], 1, code))
        parts.append(Windows.of(neg_starts[q], _random_strands(n, minus_fraction, rng), 0, code))
    return Windows.concat(parts).sorted(), {"available_windows": available}
