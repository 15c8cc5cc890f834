"""Sequence windows for probing models: seeded N-free sampling from a genome, k-mer
bookkeeping in code space (A=0, T=1, C=2, G=3, DNABERT's order) and sequence shuffles
that keep mono- or dinucleotide composition.

Everything works on ``uint8`` code arrays; no k-mer strings are built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dnakmer.genome import Genome

__all__ = [
    "Windows",
    "dinucleotide_shuffle",
    "genome_kmer_counts",
    "kmer_codes",
    "kmer_index",
    "mononucleotide_shuffle",
    "reverse_complement_codes",
    "sample_windows",
]


@dataclass
class Windows:
    """Equal-length sequence windows.

    Attributes
    ----------
    codes : numpy.ndarray, shape (n, length), uint8
        Base codes 0-3 (A, T, C, G).
    record : numpy.ndarray, shape (n,), int32
        Index into ``names``.
    start : numpy.ndarray, shape (n,), int64
        0-based start of each window in its record.
    names : list of str
        Record names.
    """

    codes: np.ndarray
    record: np.ndarray
    start: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def length(self) -> int:
        return int(self.codes.shape[1])


def sample_windows(
    genome: Genome,
    n_windows: int,
    length: int,
    *,
    seed: int = 0,
    ranges: Sequence[tuple[str, int, int]] | None = None,
) -> Windows:
    """Sample ``n_windows`` windows of ``length`` bases containing only A/C/G/T.

    A window start is drawn uniformly among all positions, over all records, where a
    window fits inside one maximal ACGT-only interval (so long records weigh more).
    ``ranges`` (record, start, end) restricts windows to lie inside those stretches,
    e.g. to keep held-out parts of a genome out of training.

    Raises
    ------
    ValueError
        ``n_windows`` < 1, ``length`` < 1, or no ACGT-only stretch is ``length`` long.
    """
    if n_windows < 1 or length < 1:
        raise ValueError(f"n_windows and length must be positive, got {n_windows}, {length}")
    index = {name: r for r, name in enumerate(genome.names)}
    if ranges is None:
        ranges = [(name, 0, n) for name, n in zip(genome.names, genome.lengths, strict=True)]
    recs, starts, ends = [], [], []
    for name, lo, hi in ranges:
        iv = genome.acgt_intervals(name).astype(np.int64)
        iv = np.stack([np.maximum(iv[:, 0], lo), np.minimum(iv[:, 1], hi)], axis=1)
        keep = (iv[:, 1] - iv[:, 0]) >= length
        recs.append(np.full(int(keep.sum()), index[name], dtype=np.int32))
        starts.append(iv[keep, 0])
        ends.append(iv[keep, 1])
    rec_of = np.concatenate(recs)
    iv_start = np.concatenate(starts)
    n_starts = np.concatenate(ends) - iv_start - length + 1
    if n_starts.sum() == 0:
        raise ValueError(f"{genome.path}: no N-free stretch of {length} bases to sample from")
    rng = np.random.default_rng(seed)
    flat = rng.integers(0, int(n_starts.sum()), size=n_windows)
    cum = np.cumsum(n_starts)
    which = np.searchsorted(cum, flat, side="right")
    offset = flat - (cum[which] - n_starts[which])
    record = rec_of[which]
    start = iv_start[which] + offset
    codes = np.empty((n_windows, length), dtype=np.uint8)
    for i, (r, s) in enumerate(zip(record.tolist(), start.tolist(), strict=True)):
        codes[i] = genome.codes(genome.names[r], s, s + length)
    return Windows(codes=codes, record=record, start=start, names=list(genome.names))


def kmer_codes(k: int) -> np.ndarray:
    """Base codes of every k-mer by canonical index, shape (4**k, k), uint8.

    Index ``sum(code[j] * 4**(k-1-j))``: DNABERT's ``itertools.product('ATCG')`` order.
    """
    idx = np.arange(4**k)
    shifts = 2 * np.arange(k - 1, -1, -1)
    return ((idx[:, None] >> shifts[None, :]) & 3).astype(np.uint8)


def kmer_index(codes: np.ndarray, k: int) -> np.ndarray:
    """Canonical index of the k-mer starting at every position.

    Parameters
    ----------
    codes : numpy.ndarray, shape (..., length), uint8, values 0-3

    Returns
    -------
    numpy.ndarray, shape (..., length - k + 1), int64
    """
    n = codes.shape[-1] - k + 1
    out = np.zeros((*codes.shape[:-1], n), dtype=np.int64)
    for j in range(k):
        out = (out << 2) | codes[..., j : j + n]
    return out


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """Reverse complement along the last axis (complement of code c is c ^ 1)."""
    return np.ascontiguousarray((codes ^ 1)[..., ::-1])


def genome_kmer_counts(genome: Genome, k: int) -> np.ndarray:
    """Occurrences of every k-mer (canonical index) in the genome's ACGT stretches.

    Returns
    -------
    numpy.ndarray, shape (4**k,), int64
    """
    from dnakmer.tokenizer import KmerTokenizer

    tok = KmerTokenizer(k)
    to_index = np.asarray(tok.id_to_kmer_index)
    counts = np.zeros(4**k, dtype=np.int64)
    for name in genome.names:
        ids = tok.encode_codes(genome.codes(name))
        idx = to_index[ids]
        counts += np.bincount(idx[idx >= 0], minlength=4**k)
    return counts


def mononucleotide_shuffle(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row permuted independently (base composition kept). Shape and dtype kept."""
    return rng.permuted(codes, axis=-1)


def dinucleotide_shuffle(seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random sequence with exactly the dinucleotide counts, first and last base of
    ``seq`` (Altschul & Erickson 1985: a random Eulerian walk of the transition graph).

    Parameters
    ----------
    seq : numpy.ndarray, shape (length,), uint8, values 0-3
    """
    seq = np.asarray(seq, dtype=np.uint8)
    if seq.size < 3:
        return seq.copy()
    first, last = int(seq[0]), int(seq[-1])
    edges: list[list[int]] = [[] for _ in range(4)]
    for a, b in zip(seq[:-1].tolist(), seq[1:].tolist(), strict=True):
        edges[a].append(b)
    last_edge = _random_arborescence(edges, last, rng)
    for v in range(4):
        rest = list(edges[v])
        if v in last_edge:
            rest.remove(last_edge[v])
        order = rng.permutation(len(rest))
        edges[v] = [rest[i] for i in order] + ([last_edge[v]] if v in last_edge else [])
    out = np.empty_like(seq)
    out[0] = first
    used = [0, 0, 0, 0]
    for i in range(1, seq.size):
        v = int(out[i - 1])
        out[i] = edges[v][used[v]]
        used[v] += 1
    return out


def _random_arborescence(
    edges: list[list[int]], root: int, rng: np.random.Generator
) -> dict[int, int]:
    """For every vertex but ``root`` with out-edges, a last out-edge such that these
    edges lead every vertex to ``root`` (retried until no cycle; 4 vertices)."""
    vertices = [v for v in range(4) if edges[v] and v != root]
    while True:
        choice = {v: edges[v][int(rng.integers(len(edges[v])))] for v in vertices}
        if all(_reaches(v, root, choice) for v in vertices):
            return choice


def _reaches(v: int, root: int, choice: dict[int, int]) -> bool:
    seen = set()
    while v != root:
        if v in seen or v not in choice:
            return False
        seen.add(v)
        v = choice[v]
    return True
