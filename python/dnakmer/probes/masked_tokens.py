"""Masked-token analysis: does a k-mer masked language model use sequence context, or
does it read masked tokens off their unmasked overlapping neighbours?

With overlapping k-mers, most nucleotides of a masked token are still visible in the
unmasked tokens around it. The *neighbour rule* reconstructs a masked token from exactly
those visible nucleotides, filling the hidden ones by the genome's k-mer frequencies. A
model that only learned the overlap rule scores like the rule and agrees with it; a model
that learned context does better on the hidden nucleotides.

The main function is :func:`mask_analysis`; :func:`visible_nucleotides` and
:func:`neighbour_rule_scores` are the exact building blocks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dnakmer.datasets.windows import (
    dinucleotide_shuffle,
    genome_kmer_counts,
    kmer_codes,
    kmer_index,
    mononucleotide_shuffle,
    sample_windows,
)
from dnakmer.genome import Genome
from dnakmer.models import LoadedModel, forward_batches

__all__ = [
    "MaskResult",
    "MaskScheme",
    "mask_analysis",
    "neighbour_rule_scores",
    "parse_scheme",
    "rule_skip_reason",
    "shuffle_windows",
    "visible_nucleotides",
]

CONTROLS = ("none", "mono", "di")


@dataclass(frozen=True)
class MaskScheme:
    """Mask ``span`` contiguous tokens; the span starts ``anchor`` tokens after the
    sampled centre token (DNABERT: k tokens, centre c covers c-2 ... c+3 for k = 6)."""

    name: str
    span: int
    anchor: int = 0


def parse_scheme(text: str, k: int) -> MaskScheme:
    """``"dnabert"``, ``"single"`` or ``"span:N"`` (N contiguous tokens) for k-mers."""
    if text == "dnabert":
        return MaskScheme("dnabert", k, -((k - 1) // 2))
    if text == "single":
        return MaskScheme("single", 1, 0)
    if text.startswith("span:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            n = 0
        if n >= 1:
            return MaskScheme(text, n, -((n - 1) // 2))
    raise ValueError(f"unknown masking scheme {text!r}: use 'dnabert', 'single' or 'span:N'")


def visible_nucleotides(masked: np.ndarray, k: int) -> np.ndarray:
    """Which nucleotides some unmasked token still shows (stride-1 k-mers).

    Parameters
    ----------
    masked : numpy.ndarray, shape (..., n_tokens), bool
        True where a token is masked.

    Returns
    -------
    numpy.ndarray, shape (..., n_tokens + k - 1), bool
        Nucleotide j is visible when an unmasked token covers it, i.e. some token
        ``t`` with ``j - k < t <= j`` is not masked.
    """
    unmasked = (~masked).astype(np.int32)
    n_tokens = masked.shape[-1]
    zero = np.zeros((*masked.shape[:-1], 1), dtype=np.int32)
    csum = np.concatenate([zero, np.cumsum(unmasked, axis=-1)], axis=-1)
    j = np.arange(n_tokens + k - 1)
    lo = np.clip(j - k + 1, 0, n_tokens)
    hi = np.clip(j + 1, 0, n_tokens)
    return (csum[..., hi] - csum[..., lo]) > 0


def neighbour_rule_scores(
    true_codes: np.ndarray, visible: np.ndarray, log_prior: np.ndarray
) -> np.ndarray:
    """The neighbour rule's score of every k-mer for each masked token.

    Parameters
    ----------
    true_codes : numpy.ndarray, shape (m, k), uint8
        The masked tokens' real nucleotides (only the visible ones are used).
    visible : numpy.ndarray, shape (m, k), bool
    log_prior : numpy.ndarray, shape (4**k,), float
        Log frequency of each k-mer in the genome (the fill for hidden nucleotides).

    Returns
    -------
    numpy.ndarray, shape (m, 4**k), float32
        ``log_prior`` for k-mers that match every visible nucleotide, ``-inf`` otherwise;
        the rule's prediction is the argmax.
    """
    k = true_codes.shape[1]
    table = kmer_codes(k)
    out = np.empty((len(true_codes), 4**k), dtype=np.float32)
    for lo in range(0, len(true_codes), 256):
        t, v = true_codes[lo : lo + 256], visible[lo : lo + 256]
        ok = np.all((table[None, :, :] == t[:, None, :]) | ~v[:, None, :], axis=2)
        out[lo : lo + 256] = np.where(ok, log_prior[None, :], -np.inf)
    return out


def shuffle_windows(codes: np.ndarray, control: str, seed: int) -> np.ndarray:
    """Windows unchanged (``"none"``), or each shuffled keeping its mononucleotide
    (``"mono"``) or dinucleotide (``"di"``) counts, with a seeded generator."""
    if control == "none":
        return codes
    rng = np.random.default_rng(seed)
    if control == "mono":
        return mononucleotide_shuffle(codes, rng)
    if control == "di":
        return np.stack([dinucleotide_shuffle(row, rng) for row in codes])
    raise ValueError(f"unknown control {control!r}: use one of {CONTROLS}")


@dataclass
class MaskResult:
    """Per-masked-token outcomes and their summaries.

    Attributes
    ----------
    tokens : polars.DataFrame
        One row per masked token: ``scheme``, ``control``, ``window``, ``token`` (index
        in the window), ``span_pos`` (0 = first masked token; the DNABERT scheme's centre
        token is at (k-1)//2), ``n_visible`` (of its k nucleotides), ``true_kmer``
        (canonical index), ``model_top1``, ``model_rank`` (0 = top-1), ``model_p_true``,
        ``rule_top1``, ``rule_rank``, ``agree`` (same top-1), ``consistent`` (the
        model's top-1 matches every visible nucleotide), ``nt_correct_visible`` /
        ``nt_correct_hidden`` (nucleotides whose marginal argmax is right) and
        ``n_hidden``.
    marginals : dict of str to numpy.ndarray, shape (m, k, 4), float32
        Per (scheme, control): probability of A, T, C, G at each nucleotide of each
        masked token (row order of ``tokens`` for that pair).
    params : dict
    """

    tokens: pl.DataFrame
    marginals: dict[str, np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self, by: tuple[str, ...] = ("scheme", "control")) -> pl.DataFrame:
        """Accuracies of model and rule, agreement, consistency and nucleotide
        accuracies, grouped by ``by`` (any of the ``tokens`` columns)."""
        t = self.tokens
        return (
            t.group_by(list(by))
            .agg(
                n=pl.len(),
                model_top1=(pl.col("model_rank") == 0).mean(),
                model_top5=(pl.col("model_rank") < 5).mean(),
                rule_top1=(pl.col("rule_rank") == 0).mean(),
                rule_top5=(pl.col("rule_rank") < 5).mean(),
                agreement=pl.col("agree").mean(),
                consistency=pl.col("consistent").mean(),
                nt_acc_visible=_ratio("nt_correct_visible", "n_visible"),
                nt_acc_hidden=_ratio("nt_correct_hidden", "n_hidden"),
            )
            .sort(list(by))
        )

    def save(self, out_dir: str | os.PathLike[str], *, plots: bool = True) -> Path:
        """Write ``tokens.parquet``, ``summary.json`` (overall, by span position, by
        visible nucleotides), ``marginals_<scheme>_<control>.npy`` and PNG plots."""
        from dnakmer._io import atomic_open, write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "tokens.parquet", "wb") as f:
            self.tokens.write_parquet(f)
        for key, arr in self.marginals.items():
            with atomic_open(out / f"marginals_{key}.npy", "wb") as f:
                np.save(f, arr, allow_pickle=False)
        write_json(
            out / "summary.json",
            {
                "params": self.params,
                "overall": self.summary().to_dicts(),
                "by_span_position": self.summary(("scheme", "control", "span_pos")).to_dicts(),
                "by_visible": self.summary(("scheme", "control", "n_visible")).to_dicts(),
            },
        )
        if plots:
            from dnakmer import plots as plotting

            plotting.span_position_accuracy(
                self.summary(("scheme", "control", "span_pos")),
                out / "accuracy_by_span_position.png",
            )
            plotting.model_vs_rule(self.summary(), out / "model_vs_rule.png")
        return out


def _ratio(num: str, den: str) -> pl.Expr:
    """Sum ratio, null (not NaN, which JSON cannot hold) when the denominator is 0."""
    total = pl.col(den).sum()
    return pl.when(total > 0).then(pl.col(num).sum() / total).otherwise(None)


def _mask_positions(
    n_windows: int, n_tokens: int, scheme: MaskScheme, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Start token of each window's masked span, leaving k unmasked tokens each side."""
    lo, hi = k, n_tokens - k - scheme.span
    if hi < lo:
        raise ValueError(
            f"windows of {n_tokens} tokens are too short for a {scheme.span}-token span "
            f"with {k} unmasked tokens on each side"
        )
    return rng.integers(lo, hi + 1, size=n_windows)


def _rank_of(scores: np.ndarray, true_idx: np.ndarray) -> np.ndarray:
    """Rank of the true k-mer (0 = top-1), ties broken by lower index as argmax does."""
    s_true = scores[np.arange(len(scores)), true_idx][:, None]
    idx = np.arange(scores.shape[1])[None, :]
    better = (scores > s_true) | ((scores == s_true) & (idx < true_idx[:, None]))
    return better.sum(axis=1)


def _base_marginals(probs: np.ndarray, k: int) -> np.ndarray:
    """(m, 4**k) k-mer probabilities -> (m, k, 4): P(base b at offset j), summing over
    k-mers (canonical index digits are the bases, first base most significant)."""
    cube = probs.reshape(len(probs), *([4] * k))
    out = np.empty((len(probs), k, 4), dtype=np.float32)
    for j in range(k):
        other = tuple(1 + a for a in range(k) if a != j)
        out[:, j, :] = cube.sum(axis=other)
    return out


def _model_kmer_probs(
    loaded: LoadedModel, inputs: np.ndarray, masked: np.ndarray, batch_size: int
) -> np.ndarray:
    """Softmax over the 4**k k-mer outputs at every masked token, shape (m, 4**k)."""
    import torch

    kmer_cols = torch.from_numpy(np.asarray(loaded.tokenizer.kmer_ids).astype(np.int64))
    parts = []
    for rows, out in forward_batches(loaded, inputs, batch_size=batch_size):
        logits = out.logits[:, 1:-1, :]  # drop [CLS] and [SEP]
        sel = torch.from_numpy(masked[rows]).to(logits.device)
        kmer_logits = logits[sel][:, kmer_cols.to(logits.device)].float()
        parts.append(torch.softmax(kmer_logits, dim=-1).cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, int(kmer_cols.numel())), np.float32)


def _score_windows(
    loaded: LoadedModel,
    codes: np.ndarray,
    span_start: np.ndarray,
    scheme: MaskScheme,
    log_prior: np.ndarray,
    batch_size: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Columns of the per-masked-token table for one (scheme, control), and marginals."""
    tok = loaded.tokenizer
    k = tok.k
    n, length = codes.shape
    n_tokens = length - k + 1
    ids = np.stack([tok.encode_codes(row) for row in codes])
    tpos = np.arange(n_tokens)[None, :]
    masked = (tpos >= span_start[:, None]) & (tpos < span_start[:, None] + scheme.span)
    inputs = np.empty((n, n_tokens + 2), dtype=ids.dtype)
    inputs[:, 0], inputs[:, -1] = tok.cls_token_id, tok.sep_token_id
    inputs[:, 1:-1] = np.where(masked, tok.mask_token_id, ids)
    w, t = np.nonzero(masked)
    cover = t[:, None] + np.arange(k)[None, :]
    true_codes = codes[w[:, None], cover]
    vis = visible_nucleotides(masked, k)[w[:, None], cover]
    true_kmer = kmer_index(codes, k)[w, t]
    rule = neighbour_rule_scores(true_codes, vis, log_prior)
    probs = _model_kmer_probs(loaded, inputs, masked, batch_size)
    model_top1 = probs.argmax(axis=1)
    marg = _base_marginals(probs, k)
    nt_ok = marg.argmax(axis=2) == true_codes
    rows = np.arange(len(w))
    cols = {
        "window": w.astype(np.int32),
        "token": t.astype(np.int32),
        "span_pos": (t - span_start[w]).astype(np.int32),
        "n_visible": vis.sum(axis=1).astype(np.int32),
        "n_hidden": (~vis).sum(axis=1).astype(np.int32),
        "true_kmer": true_kmer,
        "model_top1": model_top1.astype(np.int64),
        "model_rank": _rank_of(probs, true_kmer).astype(np.int32),
        "model_p_true": probs[rows, true_kmer].astype(np.float32),
        "rule_top1": rule.argmax(axis=1).astype(np.int64),
        "rule_rank": _rank_of(rule, true_kmer).astype(np.int32),
        "agree": model_top1 == rule.argmax(axis=1),
        "consistent": np.isfinite(rule[rows, model_top1]),
        "nt_correct_visible": (nt_ok & vis).sum(axis=1).astype(np.int32),
        "nt_correct_hidden": (nt_ok & ~vis).sum(axis=1).astype(np.int32),
    }
    return cols, marg


def rule_skip_reason(loaded: LoadedModel) -> str | None:
    """Why the masked-token analysis against the neighbour rule does not apply to a
    model (tokens that do not overlap, no masked-LM head), or None if it does. The study
    and ``dnakmer probe mask`` both follow it."""
    if not loaded.is_kmer:
        return (
            f"its tokens ({loaded.encoder.kind} tokenizer) do not overlap: a masked token "
            "has no visible bases in its neighbours, so the neighbour rule does not apply"
        )
    if loaded.tokenizer.k == 1:
        return (
            "single-nucleotide tokens share no bases with their neighbours, so the "
            "neighbour rule does not apply"
        )
    if loaded.tokenizer.stride != 1:
        return (
            f"k-mers do not overlap (stride {loaded.tokenizer.stride}): a masked token has "
            "no visible nucleotides in its neighbours, so the neighbour rule does not apply"
        )
    if not loaded.has_mlm_head:
        return "the checkpoint has no masked-LM head"
    return None


def mask_analysis(
    loaded: LoadedModel,
    genome: Genome | str | os.PathLike[str],
    *,
    schemes: tuple[str, ...] = ("dnabert", "single"),
    controls: tuple[str, ...] = CONTROLS,
    n_windows: int = 256,
    window_tokens: int = 64,
    seed: int = 0,
    batch_size: int = 32,
    prior_pseudocount: float = 1.0,
) -> MaskResult:
    """Masked-token accuracy of a k-mer MLM against the neighbour rule.

    Windows of ``window_tokens`` tokens (``window_tokens + k - 1`` bases, no N) are
    sampled with a seeded generator; in each, one span per scheme is masked at a seeded
    position with at least k unmasked tokens on each side. The same windows and span
    positions are used for every control, so the controls differ only by the shuffle.

    Parameters
    ----------
    loaded : LoadedModel
        A k-mer masked LM (:func:`dnakmer.models.load`).
    genome : Genome or path
    schemes : tuple of str
        ``"dnabert"`` (k contiguous tokens, centre c covers c-(k-1)//2 ...), ``"single"``
        or ``"span:N"``.
    controls : tuple of str
        ``"none"`` (real sequence), ``"mono"``, ``"di"`` (shuffled windows).
    prior_pseudocount : float
        Added to every k-mer count of the genome before taking logs for the rule.

    Returns
    -------
    MaskResult
    """
    if not loaded.is_kmer:
        raise ValueError("masked-token analysis needs a k-mer model (DNABERT-style vocab.txt)")
    if loaded.tokenizer.stride != 1:
        raise ValueError(
            f"the neighbour rule needs overlapping k-mers (stride 1); this model's "
            f"tokenizer has stride {loaded.tokenizer.stride}"
        )
    if not loaded.has_mlm_head:
        raise ValueError(f"{loaded.path}: the model has no masked-LM head")
    bad = [c for c in controls if c not in CONTROLS]
    if bad:
        raise ValueError(f"unknown control(s) {bad}: use {CONTROLS}")
    g = genome if isinstance(genome, Genome) else Genome.open(genome)
    k = loaded.k
    parsed = [parse_scheme(s, k) for s in schemes]
    if window_tokens + 2 > loaded.max_tokens:
        raise ValueError(f"window_tokens + 2 exceeds the model's {loaded.max_tokens} positions")
    windows = sample_windows(g, n_windows, window_tokens + k - 1, seed=seed)
    counts = genome_kmer_counts(g, k)
    log_prior = np.log(counts + prior_pseudocount)
    frames, marginals = [], {}
    for si, scheme in enumerate(parsed):
        rng = np.random.default_rng([seed, si])
        span_start = _mask_positions(n_windows, window_tokens, scheme, k, rng)
        for ci, control in enumerate(controls):
            codes = shuffle_windows(windows.codes, control, seed * 1000 + ci)
            cols, marg = _score_windows(loaded, codes, span_start, scheme, log_prior, batch_size)
            frames.append(
                pl.DataFrame(cols).with_columns(scheme=pl.lit(scheme.name), control=pl.lit(control))
            )
            marginals[f"{scheme.name.replace(':', '')}_{control}"] = marg
    params = {
        "model": str(loaded.path),
        "genome": str(g.path),
        "k": k,
        "schemes": list(schemes),
        "controls": list(controls),
        "n_windows": n_windows,
        "window_tokens": window_tokens,
        "seed": seed,
        "prior_pseudocount": prior_pseudocount,
    }
    tokens = pl.concat(frames).select("scheme", "control", pl.exclude("scheme", "control"))
    return MaskResult(tokens=tokens, marginals=marginals, params=params)
