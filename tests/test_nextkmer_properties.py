"""Property tests: the Rust sampling, labels and Markov chains against the pure-Python
reference (tests/reference_nextkmer.py) on small random genomes with N runs."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dnakmer
import reference_nextkmer as ref
from dnakmer import _core
from dnakmer.datasets.nextkmer import build

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Mostly ACGT with some lowercase and N runs, so ACGT intervals vary.
record_text = st.lists(
    st.sampled_from([*"ACGTACGTACGTacgtN", "NNNNN"]), min_size=0, max_size=120
).map("".join)

# Long A/C/G/T stretches, so most draws hold enough windows.
dense_records = st.lists(
    st.text("ACGTacgt" * 5 + "N", min_size=30, max_size=120), min_size=1, max_size=3
)


def write_genome(records: list[str]) -> tuple[dnakmer.Genome, list[str], list[str]]:
    names = [f"r{i}" for i in range(len(records))]
    text = "".join(f">{n}\n{s}\n" for n, s in zip(names, records, strict=True))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "g.fa"
        path.write_text(text)
        g = dnakmer.Genome.open(path, sha256=True)
    return g, names, records


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    records = draw(st.lists(record_text, min_size=1, max_size=4))
    k = draw(st.integers(1, 4))
    context_nt = draw(st.integers(1, 12))
    n_rec = len(records)
    if n_rec > 1 and draw(st.booleans()):
        order = draw(st.permutations(range(n_rec)))
        n_val = draw(st.integers(0, n_rec - 1))
        n_test = draw(st.integers(0, n_rec - 1 - n_val))
        split = {"split": "records", "val_records": [f"r{i}" for i in order[:n_val]],
                 "test_records": [f"r{i}" for i in order[n_val : n_val + n_test]]}  # fmt: skip
    else:
        split = {"split": "blocks", "block_size": draw(st.integers(5, 80)),
                 "val_fraction": draw(st.sampled_from([0.0, 0.1, 0.25])),
                 "test_fraction": draw(st.sampled_from([0.0, 0.2, 0.3]))}  # fmt: skip
    counts = [draw(st.integers(0, 40)) for _ in range(3)]
    return {
        "records": records, "k": k, "context_nt": context_nt, "split": split,
        "counts": counts, "strand": draw(st.sampled_from(["+", "-", "both"])),
        "dedup": draw(st.booleans()), "seed": draw(st.integers(0, 2**64 - 1)),
    }  # fmt: skip


def reference_windows(sc: dict) -> list[tuple[int, int, int, int]]:
    seqs, split = sc["records"], sc["split"]
    lengths = [len(s) for s in seqs]
    if split["split"] == "records":
        if (sc["counts"][1] and not split["val_records"]) or (
            sc["counts"][2] and not split["test_records"]
        ):
            raise ValueError("needs records")
        names = [f"r{i}" for i in range(len(seqs))]
        areas = ref.record_areas(names, lengths, split["val_records"], split["test_records"])
    else:
        areas = ref.block_areas(lengths, split["block_size"], split["val_fraction"],
                                split["test_fraction"], sc["seed"])  # fmt: skip
    return ref.sample(seqs, areas, sc["context_nt"], sc["k"], sc["counts"], sc["strand"],
                      sc["dedup"], sc["seed"])  # fmt: skip


@SETTINGS
@given(sc=scenarios())
def test_sampling_and_labels_match_reference(sc: dict) -> None:
    g, _names, seqs = write_genome(sc["records"])
    n_train, n_val, n_test = sc["counts"]
    kwargs = dict(n_train=n_train, n_val=n_val, n_test=n_test, strand=sc["strand"],
                  dedup=sc["dedup"], seed=sc["seed"], **sc["split"])  # fmt: skip
    try:
        want = reference_windows(sc)
    except ValueError:
        with pytest.raises(ValueError):
            build(g, sc["k"], sc["context_nt"], None, **kwargs)
        return
    ds = build(g, sc["k"], sc["context_nt"], None, **kwargs)
    got = list(zip(ds.record.tolist(), ds.start.tolist(), ds.strand.tolist(),
                   ds.split.tolist(), strict=True))  # fmt: skip
    assert got == want
    for i, (rec, start, strand, _split) in enumerate(want):
        context, label = ref.window_context_label(
            seqs, rec, start, strand, sc["context_nt"], sc["k"]
        )
        assert ds.input_ids[i].tolist() == [ref.CODE[b] for b in context]
        assert ds.labels[i] == label


@SETTINGS
@given(
    seqs=st.lists(st.text("ACGT", min_size=0, max_size=60), min_size=1, max_size=4),
    order=st.integers(0, 5),
)
def test_markov_counts_match_reference(seqs: list[str], order: int) -> None:
    arrays = [np.array([ref.CODE[b] for b in s], dtype=np.uint8) for s in seqs]
    chain = _core.MarkovChain.fit_codes(arrays, order)
    assert chain.counts.tolist() == ref.markov_counts(seqs, order)


@SETTINGS
@given(
    records=dense_records,
    order=st.integers(0, 4),
    k=st.integers(1, 3),
    alpha=st.sampled_from([0.5, 1.0]),
    seed=st.integers(0, 1000),
)
def test_markov_fit_and_scores_match_reference(
    records: list[str], order: int, k: int, alpha: float, seed: int
) -> None:
    g, _names, seqs = write_genome(records)
    context_nt = 6
    kw = dict(n_val=0, n_test=0, strand="both", seed=seed, block_size=10_000, val_fraction=0.0,
              test_fraction=0.0)  # fmt: skip
    try:
        ds = build(g, k, context_nt, None, n_train=12, **kw)
    except ValueError:
        assume(False)
        return
    span = context_nt + k
    train = [(int(r), int(s)) for r, s in zip(ds.record, ds.start, strict=True)]
    intervals = ref.merged_spans(train, span)
    texts = [seqs[r][a:b].upper() for r, a, b in intervals]
    want = ref.markov_counts(texts + [ref.revcomp(t) for t in texts], order)
    chain = _core.MarkovChain.fit_windows(g, ds.record, ds.start, span, order, minus=True)
    assert chain.counts.tolist() == want
    log2p, top = chain.score_windows(g, ds.record, ds.start, ds.strand, context_nt=context_nt,
                                     k=k, k_eval=k, alpha=alpha)  # fmt: skip
    assert top.shape == (len(ds), min(5, 4**k))
    for i in range(len(ds)):
        context, label = ref.window_context_label(
            seqs, int(ds.record[i]), int(ds.start[i]), int(ds.strand[i]), context_nt, k
        )
        probs = ref.markov_distribution(want, order, context, k, alpha)
        assert math.isclose(log2p[i], math.log2(probs[label]), rel_tol=1e-9)
        best = sorted(probs, reverse=True)[: top.shape[1]]
        # Ties may resolve differently by rounding; probabilities must agree in order.
        assert np.allclose([probs[j] for j in top[i]], best, rtol=1e-9)


@SETTINGS
@given(
    records=dense_records,
    token_k=st.integers(1, 6),
    stride=st.integers(1, 3),
    extra=st.integers(0, 6),
    k=st.integers(1, 3),
    special=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_token_rows_match_the_tokenizer(
    records: list[str], token_k: int, stride: int, extra: int, k: int, special: bool, seed: int
) -> None:
    g, _names, seqs = write_genome(records)
    context_nt = token_k + stride * extra
    tok = dnakmer.KmerTokenizer(token_k, stride)
    kw = dict(n_val=0, n_test=0, strand="both", seed=seed, block_size=10_000, val_fraction=0.0,
              test_fraction=0.0, add_special_tokens=special)  # fmt: skip
    try:
        ds = build(g, k, context_nt, tok, n_train=6, **kw)
    except ValueError:
        assume(False)
        return
    assert ds.input_ids.shape == (6, extra + 1 + 2 * special)
    for i in range(len(ds)):
        context, label = ref.window_context_label(
            seqs, int(ds.record[i]), int(ds.start[i]), int(ds.strand[i]), context_nt, k
        )
        row = ds.input_ids[i].tolist()
        if special:
            assert (row[0], row[-1]) == (tok.cls_token_id, tok.sep_token_id)
            row = row[1:-1]
        assert row == tok.encode(context).tolist()
        assert ds.labels[i] == label
