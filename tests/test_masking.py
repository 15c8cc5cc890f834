"""Masking schemes against direct reimplementations of their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dnakmer import KmerTokenizer
from dnakmer.training.masking import (
    IGNORE_INDEX,
    MaskingCollator,
    apply_mask,
    dnabert_span_mask,
    random_token_mask,
    span_offsets,
)


def reference_span_mask(maskable: np.ndarray, centres: np.ndarray, k: int) -> np.ndarray:
    left, right = span_offsets(k)
    out = np.zeros_like(maskable)
    for r, c in zip(*np.nonzero(centres), strict=True):
        lo, hi = max(0, c - left), min(maskable.shape[1], c + right + 1)
        out[r, lo:hi] = True
    return out & maskable


def test_span_offsets_follow_dnabert() -> None:
    # DNABERT's MASK_LIST: k=3 -> [-1, 1], k=4 -> [-1, 1, 2], k=5 -> [-2..2], k=6 -> [-2..3]
    assert span_offsets(3) == (1, 1)
    assert span_offsets(4) == (1, 2)
    assert span_offsets(5) == (2, 2)
    assert span_offsets(6) == (2, 3)
    assert span_offsets(1) == (0, 0)


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 4),
    length=st.integers(1, 60),
    p=st.floats(0, 0.3),
)
@example(k=8, seed=0, rows=1, length=3, p=0.0)  # a span wider than the row
@example(k=8, seed=1, rows=2, length=2, p=0.3)
def test_span_mask_equals_reference(k: int, seed: int, rows: int, length: int, p: float) -> None:
    maskable = np.random.default_rng(seed).random((rows, length)) < 0.9
    got = dnabert_span_mask(maskable, k, p, np.random.default_rng(seed + 1))
    centres = random_token_mask(maskable, p, np.random.default_rng(seed + 1))
    np.testing.assert_array_equal(got, reference_span_mask(maskable, centres, k))


def test_span_mask_rate_matches_dnabert() -> None:
    maskable = np.ones((200, 510), dtype=bool)
    frac = dnabert_span_mask(maskable, 6, 0.025, np.random.default_rng(0)).mean()
    # 1 - (1 - 0.025)^6 = 0.141
    assert 0.13 < frac < 0.15


def test_apply_mask_replacement_fractions() -> None:
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 4101, size=(100, 500))
    selected = rng.random(ids.shape) < 0.5
    out, labels = apply_mask(ids, selected, 4, np.arange(5, 4101), rng)
    assert (labels[~selected] == IGNORE_INDEX).all()
    assert (labels[selected] == ids[selected]).all()
    assert (out[~selected] == ids[~selected]).all()
    masked = (out[selected] == 4).mean()
    unchanged = (out[selected] == ids[selected]).mean()
    assert abs(masked - 0.8) < 0.01
    assert 0.09 < unchanged < 0.11  # 10 % kept plus ~0 % random draws of the same id


def _span_collator(tok: KmerTokenizer, **options: float) -> MaskingCollator:
    """DNABERT span masking of 6-mers; specials are ids 0-4 in DNABERT's layout."""
    return MaskingCollator(
        [0, 1, 2, 3, 4], tok.mask_token_id, tok.kmer_ids.astype(np.int64), scheme="span", k=6,
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


def test_collator_never_masks_specials_and_is_seeded_per_sample() -> None:
    tok = KmerTokenizer(6)
    seqs = ["ACGTTGCA" * 40, "GATTACA" * 30]
    enc = tok.encode_batch(seqs, max_length=128)
    rows = [
        {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "index": i}
        for i in range(2)
    ]
    specials = [
        tok.pad_token_id,
        tok.unk_token_id,
        tok.cls_token_id,
        tok.sep_token_id,
        tok.mask_token_id,
    ]
    coll = _span_collator(tok, probability=0.1, seed=3)
    batch = coll(rows)
    labels = batch["labels"].numpy()
    ids = enc["input_ids"].astype(np.int64)
    special_pos = np.isin(ids, specials)
    assert (labels[special_pos] == IGNORE_INDEX).all()
    assert (labels != IGNORE_INDEX).any()
    # Same sample, other batch composition: same mask.
    alone = coll([rows[1]])
    np.testing.assert_array_equal(alone["labels"].numpy()[0], labels[1])
    np.testing.assert_array_equal(alone["input_ids"].numpy()[0], batch["input_ids"].numpy()[1])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scheme"):
        MaskingCollator([0], 4, np.arange(5, 10), scheme="whole-word")
    with pytest.raises(ValueError, match="probability"):
        random_token_mask(np.ones((1, 3), bool), 1.5, np.random.default_rng(0))


def _span_runs(selected: np.ndarray) -> list[int]:
    """Lengths of the runs of selected positions in one row."""
    runs, n = [], 0
    for s in [*selected.tolist(), False]:
        if s:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_warmup_masks_single_tokens_then_spans_and_evaluation_always_spans() -> None:
    tok = KmerTokenizer(6)
    rng = np.random.default_rng(7)
    seqs = ["".join(rng.choice(list("ACGT"), 600)) for _ in range(64)]
    ids = tok.encode_batch(seqs, max_length=512)["input_ids"]
    rows = [{"input_ids": ids[i], "attention_mask": np.ones(512, np.int64), "index": i}
            for i in range(64)]  # fmt: skip
    coll = _span_collator(tok, probability=0.025, warmup_steps=10, warmup_probability=0.15)

    def runs(batch_rows: list[dict]) -> list[int]:
        selected = coll(batch_rows)["labels"].numpy() != IGNORE_INDEX
        return [n for row in selected for n in _span_runs(row)]

    warm = runs(rows)
    # Independent 15 % masking: most selected positions stand alone.
    assert np.mean(np.array(warm) == 1) > 0.7
    coll.batches = 10
    span = runs(rows)
    # DNABERT spans: every run is at least k = 6 tokens long (clipped only at the ends).
    assert np.mean(np.array(span) >= 6) > 0.95
    coll.batches = 0
    final = runs([r | {"final": True} for r in rows])
    assert final == span
    with pytest.raises(ValueError, match="warmup_steps"):
        MaskingCollator([0], 4, np.arange(5, 10), warmup_steps=-1)
