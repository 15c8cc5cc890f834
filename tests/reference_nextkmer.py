"""Pure-Python reference of the next-k-mer kernels (sampling, labels, Markov chains).

Slow and obvious on purpose: the oracle the Rust core is compared against.
"""

from __future__ import annotations

import math
from itertools import product

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
CODE = {"A": 0, "T": 1, "C": 2, "G": 3}
COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}
SAMPLE_PURPOSE = 1


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class SplitMix64:
    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    @classmethod
    def stream(cls, seed: int, purpose: int) -> SplitMix64:
        return cls(mix64(seed ^ mix64(purpose + 1)))

    def next_u64(self) -> int:
        self.state = (self.state + GOLDEN_GAMMA) & MASK64
        return mix64(self.state)

    def below(self, n: int) -> int:
        m = self.next_u64() * n
        if (m & MASK64) < n:
            threshold = ((1 << 64) - n) % n
            while (m & MASK64) < threshold:
                m = self.next_u64() * n
        return m >> 64


class SparseShuffle:
    """Fisher-Yates over range(n), one element at a time."""

    def __init__(self, n: int) -> None:
        self.n, self.i, self.moved = n, 0, {}

    def next(self, rng: SplitMix64) -> int | None:
        if self.i == self.n:
            return None
        i = self.i
        j = i + rng.below(self.n - i)
        at_j = self.moved.get(j, j)
        at_i = self.moved.pop(i, i)
        if j != i:
            self.moved[j] = at_i
        self.i += 1
        return at_j


def revcomp(seq: str) -> str:
    return "".join(COMPLEMENT[b] for b in reversed(seq.upper()))


def kmer_label(kmer: str) -> int:
    value = 0
    for b in kmer.upper():
        value = value * 4 + CODE[b]
    return value


def acgt_intervals(seq: str) -> list[tuple[int, int]]:
    out, start = [], None
    for i, b in enumerate(seq + "$"):
        if b.upper() in CODE:
            start = i if start is None else start
        elif start is not None:
            out.append((start, i))
            start = None
    return out


def block_areas(lengths, block, val_f, test_f, seed):
    blocks = [(r, s, min(s + block, n)) for r, n in enumerate(lengths) for s in range(0, n, block)]
    n = len(blocks)

    def want(f):
        return max(1, math.floor(f * n + 0.5)) if f > 0 else 0

    n_val, n_test = want(val_f), want(test_f)
    if n_val + n_test >= n:
        raise ValueError("too few blocks")
    owner = [0] * n
    rng, shuffle = SplitMix64.stream(seed, 0), SparseShuffle(n)
    for i in range(n_val + n_test):
        owner[shuffle.next(rng)] = 1 if i < n_val else 2
    areas = [[], [], []]
    for b, area in enumerate(blocks):
        areas[owner[b]].append(area)
    return areas


def record_areas(names, lengths, val, test):
    owner = [0] * len(names)
    for code, group in ((1, val), (2, test)):
        for name in group:
            owner[names.index(name)] = code
    areas = [[], [], []]
    for r, code in enumerate(owner):
        areas[code].append((r, 0, lengths[r]))
    return areas


def candidates(seqs, areas, span):
    pieces = []
    for rec, a, b in areas:
        for s, e in acgt_intervals(seqs[rec]):
            s, e = max(s, a), min(e, b)
            if e >= s + span:
                pieces.extend((rec, p) for p in range(s, e - span + 1))
    return pieces


def oriented(seqs, rec, start, span, minus):
    text = seqs[rec][start : start + span].upper()
    return revcomp(text) if minus else text


def sample(seqs, areas, context_nt, k, counts, strand, dedup, seed):
    """Windows as (record, start, strand, split), train then val then test."""
    span = context_nt + k
    per = 2 if strand == "both" else 1
    cands = [candidates(seqs, a, span) for a in areas]
    for code in range(3):
        if counts[code] > len(cands[code]) * per:
            raise ValueError("not enough windows")
    drawn = [[], [], []]
    held_out = set()
    for code in (1, 2, 0):
        rng = SplitMix64.stream(seed, SAMPLE_PURPOSE + code)
        shuffle = SparseShuffle(len(cands[code]) * per)
        while len(drawn[code]) < counts[code]:
            index = shuffle.next(rng)
            if index is None:
                raise ValueError("duplicates exhausted train")
            rec, start = cands[code][index // per]
            minus = strand == "-" or (strand == "both" and index & 1 == 1)
            if dedup:
                seq = oriented(seqs, rec, start, span, minus)
                if code != 0:
                    held_out.add(seq)
                elif seq in held_out:
                    continue
            drawn[code].append((rec, start, -1 if minus else 1, code))
    return drawn[0] + drawn[1] + drawn[2]


def window_context_label(seqs, rec, start, strand, context_nt, k):
    text = oriented(seqs, rec, start, context_nt + k, strand == -1)
    return text[:context_nt], kmer_label(text[context_nt:])


def merged_spans(windows, span):
    out = []
    for rec, start in sorted(windows):
        if out and out[-1][0] == rec and start <= out[-1][2]:
            out[-1][2] = max(out[-1][2], start + span)
        else:
            out.append([rec, start, start + span])
    return out


def markov_counts(sequences, order):
    counts = [0] * 4 ** (order + 1)
    for seq in sequences:
        for i in range(len(seq) - order):
            counts[kmer_label(seq[i : i + order + 1])] += 1
    return counts


def markov_distribution(counts, order, history, k, alpha):
    """Probability of every k-mer (by label) after ``history`` by the chain rule."""
    probs = []
    for kmer in product("ATCG", repeat=k):
        text = history + "".join(kmer)
        p = 1.0
        for i in range(len(history), len(text)):
            ctx = kmer_label(text[i - order : i]) if order else 0
            row = counts[ctx * 4 : ctx * 4 + 4]
            p *= (row[CODE[text[i]]] + alpha) / (sum(row) + 4 * alpha)
        probs.append(p)
    return probs
