"""The tokenizer-independent masked-bases probe: exact Markov marginals, per-base
probabilities from token distributions, no base of the span left visible, and the
shipped models scored on the same E. coli bases."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from dnakmer.probes.masked_bases import _aligned, _anchored, markov_span_marginals

DATA = Path(__file__).parent / "data"


def _brute_markov(row: np.ndarray, start: int, span: int, probs: np.ndarray, m: int):
    """Posterior of each span base by enumerating every filling of the span."""
    out = np.zeros((span, 4))
    lo, hi = start - m, start + span + m
    for fill in itertools.product(range(4), repeat=span):
        seq = row.copy()
        seq[start : start + span] = fill
        p = 1.0
        for i in range(start, hi):
            state = 0
            for c in seq[i - m : i]:
                state = state * 4 + int(c)
            p *= probs[state, seq[i]]
        assert lo >= 0
        for j, c in enumerate(fill):
            out[j, c] += p
    return out / out.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_markov_span_marginals_equal_enumeration(order: int) -> None:
    rng = np.random.default_rng(order)
    counts = rng.integers(0, 50, size=4 ** (order + 1))
    probs = (counts.reshape(-1, 4) + 1.0) / (counts.reshape(-1, 4) + 1.0).sum(1, keepdims=True)
    codes = rng.integers(0, 4, size=(5, 20), dtype=np.uint8)
    start = rng.integers(order, 20 - order - 3 + 1, size=5)
    got = markov_span_marginals(codes, start, 3, counts, order)
    for i in range(5):
        want = _brute_markov(codes[i], int(start[i]), 3, probs, order)
        np.testing.assert_allclose(got[i], want, rtol=1e-9, atol=1e-12)


def test_aligned_slots_read_their_own_bases() -> None:
    texts = ["".join(p) for p in itertools.product("ATCG", repeat=2)]
    # Two slots covering bases 4-5 and 6-7 of a window: "GA" sure, then "TC" or "AC".
    probs = np.zeros((2, len(texts)))
    probs[0, texts.index("GA")] = 1.0
    probs[1, texts.index("TC")] = 0.5
    probs[1, texts.index("AC")] = 0.5
    total, count = _aligned(
        probs, texts, np.array([0, 0]), np.array([4, 6]), np.array([6, 8]), 1, 10
    )
    est = total[0, 4:8] / count[0, 4:8, None]
    want = [[0, 0, 0, 1], [1, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1, 0]]  # A T C G columns
    np.testing.assert_allclose(est, want)


def test_anchored_slots_ignore_where_inner_tokens_start() -> None:
    texts = ["A", "C", "GG", "TTT"]
    # One window, hidden stretch [2, 7) of 5 bases, three masked slots.
    probs = np.array([[0.0, 0.0, 1.0, 0.0], [0.25] * 4, [0.0, 0.0, 0.0, 1.0]])
    total, count = _anchored(
        probs, texts, np.array([0]), np.array([2]), np.array([7]), np.array([0]),
        np.array([2]), 1, 10,
    )  # fmt: skip
    assert count[0].tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    est = total[0, 2:7]
    # Left half (3 bases) from slot 1 ("GG"), right half from slot 3 ("TTT").
    assert "".join("ATCG"[i] for i in est.argmax(1)[:2]) == "GG"
    np.testing.assert_allclose(est[2], 0.25)  # no token of slot 1 reaches offset 2
    assert "".join("ATCG"[i] for i in est.argmax(1)[3:]) == "TT"


@pytest.fixture(scope="module")
def ecoli_results() -> dict[str, object]:
    pytest.importorskip("torch")
    from dnakmer.data import demo_genome, demo_models_dir
    from dnakmer.genome import Genome
    from dnakmer.models import load, random_init
    from dnakmer.probes.masked_bases import masked_base_analysis

    g = Genome.open(demo_genome())
    out = {}
    for name in ("overlapping-6mer", "nucleotide"):
        loaded = load(Path(demo_models_dir()) / name, device="cpu")
        for init, model in (("pretrained", loaded), ("random", random_init(loaded, 1))):
            out[name, init] = masked_base_analysis(
                model, g, n_windows=1024, window_bases=96, seed=0
            )
    return out


def test_span_is_hidden_from_every_unmasked_token(ecoli_results: dict) -> None:
    r = ecoli_results["overlapping-6mer", "pretrained"]
    assert r.params["masked_tokens_per_window"] == 6 + 6 - 1
    span = r.bases.filter(r.bases["in_span"])
    assert span.height == 1024 * 6
    probs = span.select("p_a", "p_t", "p_c", "p_g").to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_shipped_models_on_the_same_ecoli_bases(ecoli_results: dict) -> None:
    summaries = {key: r.summary() for key, r in ecoli_results.items()}
    markov = {s["markov_best"]["accuracy"] for s in summaries.values()}
    assert len(markov) == 1  # the same windows and spans for every model
    best = next(iter(summaries.values()))["markov_best"]
    assert best["order"] >= 2 and best["accuracy"] > 0.30
    for name in ("overlapping-6mer", "nucleotide"):
        trained = summaries[name, "pretrained"]["span"]
        random = summaries[name, "random"]["span"]
        # Pretraining taught something about bases: above its random-init twin.
        assert trained["ci95"][0] > random["accuracy"], name
        assert 0.22 < random["accuracy"] < 0.29
        assert trained["bits"] < random["bits"]
