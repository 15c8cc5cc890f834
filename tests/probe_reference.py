"""Plain-Python definitions that the vectorized probe and embedding code must match."""

from __future__ import annotations

import itertools

import numpy as np

BASES = "ATCG"


def visible_reference(masked: list[bool], k: int) -> list[bool]:
    """Nucleotide j is visible when some unmasked token i has i <= j < i + k."""
    n = len(masked)
    return [any(not masked[i] and i <= j < i + k for i in range(n)) for j in range(n + k - 1)]


def kmer_index_reference(seq: str) -> int:
    return ["".join(p) for p in itertools.product(BASES, repeat=len(seq))].index(seq)


def rule_reference(true: str, visible: list[bool], counts: dict[str, int]) -> str:
    """Most frequent k-mer matching every visible base (first in DNABERT order on ties)."""
    best, best_count = "", -1
    for p in itertools.product(BASES, repeat=len(true)):
        cand = "".join(p)
        matches = all(not v or c == t for c, t, v in zip(cand, true, visible, strict=True))
        if matches and counts.get(cand, 0) > best_count:
            best, best_count = cand, counts.get(cand, 0)
    return best


def marginals_reference(probs: np.ndarray, k: int) -> np.ndarray:
    """P(base b at offset j) = sum of the probabilities of k-mers with b at j."""
    out = np.zeros((k, 4))
    for idx, p in enumerate(itertools.product(range(4), repeat=k)):
        for j, b in enumerate(p):
            out[j, b] += probs[idx]
    return out


def nucleotide_mean_reference(token_states: np.ndarray, k: int, stride: int) -> np.ndarray:
    """Mean of the states of the tokens covering each base, by loops."""
    n_tok, hidden = token_states.shape
    length = (n_tok - 1) * stride + k
    out = np.zeros((length, hidden))
    for j in range(length):
        cover = [i for i in range(n_tok) if i * stride <= j < i * stride + k]
        if cover:
            out[j] = token_states[cover].mean(axis=0)
    return out


def dinucleotide_counts(seq: np.ndarray) -> np.ndarray:
    counts = np.zeros((4, 4), dtype=int)
    for a, b in itertools.pairwise(seq.tolist()):
        counts[a, b] += 1
    return counts
