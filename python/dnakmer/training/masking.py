"""Masked-language-model masking schemes, as NumPy functions and a torch data collator.

- :func:`dnabert_span_mask`: DNABERT's pretraining scheme for overlapping k-mers. Centres
  are drawn with probability ``centre_probability`` and each expands to ``k`` contiguous
  tokens ``c - floor((k-1)/2) ... c + ceil((k-1)/2)`` (for k = 6: c-2 ... c+3), so a masked
  k-mer cannot be read off its unmasked overlapping neighbours inside the span.
- :func:`random_token_mask`: BERT's scheme (each token with probability ``p``), used for
  non-overlapping k-mers and single nucleotides.

Both then apply BERT's 80/10/10 replacement in :func:`apply_mask`: of the selected
positions 80 % become ``[MASK]``, 10 % a random k-mer token, 10 % stay unchanged.
Special tokens (and padding) are never selected.

:class:`MaskingCollator` can start with a number of steps of random token masking before
its scheme takes over (``warmup_steps``). With span masking from the first step, a small
model trained on overlapping k-mers stays for thousands of steps at the loss of copying
the 10 % unchanged tokens: a span hides the nearest neighbours of most of its tokens, so
nothing rewards reading neighbours until embeddings and attention already do it. Random
masking leaves both neighbours of a masked k-mer visible and determines it completely;
once a model reads them, span masking extends the reading to farther tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MaskingCollator",
    "apply_mask",
    "dnabert_span_mask",
    "random_token_mask",
    "span_offsets",
]

IGNORE_INDEX = -100


def span_offsets(k: int) -> tuple[int, int]:
    """Offsets ``(left, right)`` of DNABERT's span around a centre: ``[c-left, c+right]``."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    left = (k - 1) // 2
    return left, k - 1 - left


def random_token_mask(
    maskable: np.ndarray, probability: float, rng: np.random.Generator
) -> np.ndarray:
    """Select each maskable position independently with ``probability``.

    Parameters
    ----------
    maskable : numpy.ndarray of bool, shape (batch, length)
        True where a token may be masked (not special, not padding).
    probability : float
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of bool, shape (batch, length)
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    return (rng.random(maskable.shape) < probability) & maskable


def dnabert_span_mask(
    maskable: np.ndarray, k: int, centre_probability: float, rng: np.random.Generator
) -> np.ndarray:
    """DNABERT's span masking: random centres, each widened to ``k`` contiguous tokens.

    Spans are clipped to the maskable region of each row, so ``[CLS]``/``[SEP]``/padding
    are never masked. With ``centre_probability`` = 0.025 and k = 6 about 14 % of tokens
    end up masked, as in DNABERT's pretraining.

    Returns
    -------
    numpy.ndarray of bool, shape (batch, length)
    """
    centres = random_token_mask(maskable, centre_probability, rng)
    left, right = span_offsets(k)
    mask = np.zeros_like(centres)
    length = maskable.shape[1]
    for shift in range(-left, right + 1):
        if abs(shift) >= length:
            continue  # a span wider than the row: this part of it falls outside
        if shift >= 0:
            mask[:, shift:] |= centres[:, : length - shift]
        else:
            mask[:, :shift] |= centres[:, -shift:]
    return mask & maskable


def apply_mask(
    input_ids: np.ndarray,
    selected: np.ndarray,
    mask_token_id: int,
    random_token_ids: np.ndarray,
    rng: np.random.Generator,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's replacement of selected positions.

    Returns
    -------
    masked_ids : numpy.ndarray of int64, shape like ``input_ids``
    labels : numpy.ndarray of int64
        The original id at selected positions, -100 elsewhere (ignored by the loss).
    """
    ids = input_ids.astype(np.int64, copy=True)
    labels = np.where(selected, ids, IGNORE_INDEX)
    draw = rng.random(ids.shape)
    to_mask = selected & (draw < mask_fraction)
    to_random = selected & (draw >= mask_fraction) & (draw < mask_fraction + random_fraction)
    ids[to_mask] = mask_token_id
    if to_random.any():
        ids[to_random] = rng.choice(random_token_ids, size=int(to_random.sum()))
    return ids, labels


@dataclass
class MaskingCollator:
    """Batches ``{"input_ids", "attention_mask"}`` rows and masks them for MLM.

    Parameters
    ----------
    special_ids : sequence of int
        Ids never masked (``[PAD] [UNK] [CLS] [SEP] [MASK]``).
    mask_token_id : int
    kmer_token_ids : numpy.ndarray
        Ids drawn for the 10 % random replacement.
    scheme : {"span", "random"}
        DNABERT span masking (overlapping k-mers) or BERT's independent masking.
    k : int
        Span width for ``scheme="span"``.
    probability : float
        Centre probability (span) or token probability (random).
    seed : int
        Seed of the collator's own generator; each call advances it.
    warmup_steps : int
        Optimizer steps during which training batches use BERT's random token masking
        with ``warmup_probability`` instead of ``scheme``. Rows carrying ``"final": True``
        (evaluation rows) always use ``scheme``.
    warmup_probability : float
    grad_accum : int
        Batches per optimizer step.
    batches : int
        Training batches collated so far; batch ``b`` belongs to step
        ``b // grad_accum``. Counting batches, not reading the trainer's step, keeps the
        switch exact when the data loader collates ahead; a resumed run sets it from the
        checkpoint's step (:func:`dnakmer.training.pretrain.pretrain`).
    """

    special_ids: Sequence[int]
    mask_token_id: int
    kmer_token_ids: np.ndarray
    scheme: str = "random"
    k: int = 1
    probability: float = 0.15
    seed: int = 0
    warmup_steps: int = 0
    warmup_probability: float = 0.15
    grad_accum: int = 1
    batches: int = 0

    def __post_init__(self) -> None:
        if self.scheme not in ("span", "random"):
            raise ValueError(f"scheme must be 'span' or 'random', got {self.scheme!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must not be negative, got {self.warmup_steps}")
        self._rng = np.random.default_rng(self.seed)

    def mask_arrays(
        self,
        input_ids: np.ndarray,
        rng: np.random.Generator | None = None,
        warmup: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masked ids and labels (int64) for a (batch, length) id array; with ``warmup``,
        BERT's random token masking with ``warmup_probability``."""
        rng = self._rng if rng is None else rng
        maskable = ~np.isin(input_ids, np.asarray(self.special_ids))
        if warmup:
            selected = random_token_mask(maskable, self.warmup_probability, rng)
        elif self.scheme == "span":
            selected = dnabert_span_mask(maskable, self.k, self.probability, rng)
        else:
            selected = random_token_mask(maskable, self.probability, rng)
        return apply_mask(input_ids, selected, self.mask_token_id, self.kmer_token_ids, rng)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Collate rows; a row's ``index`` (sample number), when present, seeds its mask.

        Seeding by sample makes masks independent of batch composition, worker and
        process: a resumed run, or the same global batch split over several processes,
        masks exactly as an uninterrupted single-process run.
        """
        import torch

        ids = np.stack([np.asarray(r["input_ids"]) for r in rows])
        mask = np.stack([np.asarray(r["attention_mask"]) for r in rows]).astype(np.int64)
        warmup = False
        if not any(r.get("final") for r in rows):
            warmup = self.batches // max(self.grad_accum, 1) < self.warmup_steps
            self.batches += 1
        if all("index" in r for r in rows):
            parts = [
                self.mask_arrays(
                    ids[i : i + 1], np.random.default_rng([self.seed, int(r["index"])]), warmup
                )
                for i, r in enumerate(rows)
            ]
            masked = np.concatenate([p[0] for p in parts])
            labels = np.concatenate([p[1] for p in parts])
        else:
            masked, labels = self.mask_arrays(ids, warmup=warmup)
        return {
            "input_ids": torch.from_numpy(masked),
            "attention_mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(labels),
        }
