"""Masked bases: how well a masked language model of any tokenizer fills in hidden bases,
next to the best Markov chain of the genome on the same bases.

The masked-token analysis (:mod:`dnakmer.probes.masked_tokens`) scores tokens, so its
numbers are not comparable across vocabularies. Here every model is asked about the same
bases: in each of the same seeded windows, a span of ``span`` bases at the same seeded
position is hidden by masking **every token that covers any of its bases** (for
overlapping k-mers that is ``span + k - 1`` tokens, so no unmasked neighbour shows a span
base). The model's distribution over its DNA tokens at each masked slot is turned into
probabilities of A, C, G and T at each base the slot covers: a slot aligned to the bases
it replaces gives base ``x`` at offset ``j`` the probability mass of the tokens whose
``j``-th base is A, C, G or T (among tokens at least ``j + 1`` long). Where several
masked slots cover a base (overlapping k-mers: k slots) their estimates are averaged: a
mixture, so that one confident slot cannot outvote the others, and so that the k
estimates (which share their evidence, being read from the same context) are not counted
as independent, as a product would.

Scored are the span's bases (hidden for every model alike) and, separately, every base
that no unmasked token shows. The baseline is an order-m Markov chain fitted on the
genome's (m+1)-mer counts and evaluated exactly on the same span given all the bases
around it (forward-backward over the span), for m = 0 .. ``max_order``: the best of them
is what sequence statistics alone achieve on those bases.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dnakmer.confidence import wilson_interval
from dnakmer.datasets.windows import genome_kmer_counts, sample_windows
from dnakmer.genome import Genome
from dnakmer.models import LoadedModel, forward_batches

__all__ = [
    "MaskedBaseResult",
    "encode_windows",
    "markov_span_marginals",
    "markov_span_table",
    "masked_base_analysis",
    "masked_slot_bases",
    "shown_bases",
    "token_base_spans",
]

_LETTERS = "ATCG"  # base code order: A=0, T=1, C=2, G=3
_STRIP = ("##", "Ġ", "▁")


def _token_text(token: str) -> str:
    for p in _STRIP:
        token = token.replace(p, "")
    return token


def dna_tokens(loaded: LoadedModel) -> tuple[np.ndarray, list[str]]:
    """Ids and texts of the model's tokens that spell bases (A/C/G/T only)."""
    tok = loaded.tokenizer
    if loaded.is_kmer:
        k = tok.k
        ids = np.asarray(tok.kmer_ids, dtype=np.int64)
        texts = [
            "".join(_LETTERS[(i >> (2 * (k - 1 - j))) & 3] for j in range(k))
            for i in range(4**k)
        ]
        return ids, texts
    special = set(getattr(tok, "all_special_ids", []))
    pairs = sorted(
        (i, _token_text(t))
        for t, i in tok.get_vocab().items()
        if i not in special and _token_text(t) and set(_token_text(t)) <= set("ACGT")
    )
    return np.array([i for i, _ in pairs], dtype=np.int64), [t for _, t in pairs]


def encode_windows(loaded: LoadedModel, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Input ids and attention mask of windows of bases (rows of codes) for the model.

    Raises
    ------
    ValueError
        The windows take more tokens than the model's positions hold.
    """
    encoded = loaded.encoder.encode(codes)
    ids, mask = encoded.input_ids, encoded.attention_mask
    if ids.shape[1] > loaded.max_tokens:
        raise ValueError(
            f"{loaded.name}: windows of {np.shape(codes)[1]} bases take {ids.shape[1]} "
            f"tokens, the model holds {loaded.max_tokens}; use shorter windows"
        )
    return ids, mask


def token_base_spans(loaded: LoadedModel, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Bases ``[start, end)`` of the window that each input token spells.

    Parameters
    ----------
    ids, mask : numpy.ndarray, shape (n, T)
        Input ids and attention mask of whole windows (special tokens included).

    Returns
    -------
    numpy.ndarray, shape (n, T, 2), int64
        ``start == end`` for special and padding tokens. For tokenizers other than
        dnakmer's k-mers, from the tokens' texts (an unknown token counts one base): a row
        whose last end is not its window's length was not spelled base for base.
    """
    n, t = ids.shape
    out = np.zeros((n, t, 2), dtype=np.int64)
    if loaded.is_kmer:
        tok = loaded.tokenizer
        content = mask.sum(axis=1) - 2  # [CLS] ... [SEP]
        pos = np.arange(t)[None, :] - 1
        inside = (pos >= 0) & (pos < content[:, None])
        out[..., 0] = np.where(inside, pos * tok.stride, 0)
        out[..., 1] = np.where(inside, pos * tok.stride + tok.k, 0)
        return out
    tok = loaded.tokenizer
    special = set(getattr(tok, "all_special_ids", []))
    vocab = {i: _token_text(t) for t, i in tok.get_vocab().items() if i not in special}
    size = max(int(ids.max(initial=0)), max(vocab, default=0)) + 1
    length = np.zeros(size, dtype=np.int64)
    for i, text in vocab.items():
        length[i] = len(text)  # tokens of other letters (N, NNNNNN) count their bases too
    unk = getattr(tok, "unk_token_id", None)
    if unk is not None and 0 <= unk < size:
        length[unk] = 1  # one unknown character; where it stood for more, the spans
        # fall short of the window, which the callers check
    lens = length[ids] * (mask > 0)
    ends = np.cumsum(lens, axis=1)
    out[..., 0], out[..., 1] = ends - lens, ends
    return out


def markov_span_marginals(
    codes: np.ndarray, start: np.ndarray, span: int, counts: np.ndarray, order: int
) -> np.ndarray:
    """P(base) at each span position of an order-``order`` Markov chain, given every base
    outside the span (exact forward-backward over the hidden span).

    Parameters
    ----------
    codes : numpy.ndarray, shape (n, L), uint8
    start : numpy.ndarray, shape (n,)
        First hidden base of each window; ``order`` bases must precede it and follow
        the span.
    span : int
    counts : numpy.ndarray, shape (4 ** (order + 1),)
        (order+1)-mer counts of the genome (canonical index); one pseudocount is added.

    Returns
    -------
    numpy.ndarray, shape (n, span, 4), float64, rows summing to 1
    """
    m = order
    states = 4**m
    probs = (counts.reshape(states, 4) + 1.0) / (counts.reshape(states, 4) + 1.0).sum(
        axis=1, keepdims=True
    )
    n = len(codes)
    if m == 0:
        return np.broadcast_to(probs[0], (n, span, 4)).astype(np.float64).copy()
    rows = np.arange(n)
    weights = 4 ** np.arange(m - 1, -1, -1)
    left = codes[rows[:, None], start[:, None] - m + np.arange(m)[None, :]].astype(np.int64)
    right = codes[rows[:, None], start[:, None] + span + np.arange(m)[None, :]].astype(np.int64)
    rest = 4 ** (m - 1)
    p3 = probs.reshape(4, rest, 4)  # (first base, rest, next base)

    alphas = [np.zeros((n, states))]
    alphas[0][rows, left @ weights] = 1.0
    for _ in range(span):
        a = np.einsum("nfr,frc->nrc", alphas[-1].reshape(n, 4, rest), p3).reshape(n, states)
        alphas.append(a / a.sum(axis=1, keepdims=True))
    state = np.broadcast_to(np.arange(states), (n, states)).copy()
    beta = np.ones((n, states))
    for t in range(m):
        c = right[:, t][:, None]
        beta *= probs[state, c]
        state = (state * 4 + c) % states
    betas = [beta / beta.sum(axis=1, keepdims=True)]
    for _ in range(span):
        b = np.einsum("frc,nrc->nfr", p3, betas[0].reshape(n, rest, 4)).reshape(n, states)
        betas.insert(0, b / b.sum(axis=1, keepdims=True))
    out = np.empty((n, span, 4))
    for i in range(span):
        joint = np.einsum(
            "nfr,frc,nrc->nc",
            alphas[i].reshape(n, 4, rest),
            p3,
            betas[i + 1].reshape(n, rest, 4),
        )
        out[:, i] = joint / joint.sum(axis=1, keepdims=True)
    return out


@dataclass
class MaskedBaseResult:
    """Per-base outcomes of :func:`masked_base_analysis` and their summary.

    Attributes
    ----------
    bases : polars.DataFrame
        One row per scored base: ``window``, ``position`` (in the window), ``in_span``,
        ``true`` (code, A=0, T=1, C=2, G=3), ``p_a``, ``p_t``, ``p_c``, ``p_g``
        (the model's probabilities), ``correct`` (argmax is the true base).
    markov : polars.DataFrame
        Per order: accuracy on the span bases and mean log2 probability of the truth.
    params : dict
    """

    bases: pl.DataFrame
    markov: pl.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Accuracy (with 95 % Wilson interval) and bits per base on the span and on all
        hidden bases, the best Markov chain on the span, and the difference."""
        out: dict[str, Any] = {"model": self.params.get("model_name")}
        for name, frame in (
            ("span", self.bases.filter(pl.col("in_span"))),
            ("hidden", self.bases),
        ):
            n = frame.height
            hits = int(frame["correct"].sum()) if n else 0
            p_true = (
                frame.select(
                    pl.when(pl.col("true") == 0).then(pl.col("p_a"))
                    .when(pl.col("true") == 1).then(pl.col("p_t"))
                    .when(pl.col("true") == 2).then(pl.col("p_c"))
                    .otherwise(pl.col("p_g"))
                ).to_series().to_numpy()
                if n
                else np.zeros(0)
            )  # fmt: skip
            out[name] = {
                "n": n,
                "accuracy": hits / n if n else None,
                "ci95": list(wilson_interval(hits, n)),
                "bits": float(-np.log2(np.maximum(p_true, 1e-12)).mean()) if n else None,
            }
        best = self.markov.sort("accuracy", descending=True).row(0, named=True)
        n_span = out["span"]["n"]
        out["markov_best"] = {
            "order": int(best["order"]),
            "accuracy": float(best["accuracy"]),
            "ci95": list(wilson_interval(best["accuracy"] * n_span, n_span)),
            "bits": float(best["bits"]),
        }
        return out

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """``bases.parquet``, ``markov.parquet`` and ``summary.json`` (with the params)."""
        from dnakmer._io import atomic_open, write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in (("bases", self.bases), ("markov", self.markov)):
            with atomic_open(out / f"{name}.parquet", "wb") as f:
                frame.write_parquet(f)
        write_json(out / "summary.json", {"params": self.params, **self.summary()})
        return out


def window_bases(loaded: LoadedModel, wanted: int) -> int:
    """The longest window (at most ``wanted`` bases) whose tokens fit the model, counting
    one token per base for tokenizers whose token count depends on the bases."""
    limit = loaded.max_tokens
    enc = loaded.encoder
    n = wanted
    while n > 0:
        tokens = enc.n_tokens(n)
        if tokens is None:
            tokens = n + sum(enc.frame)
        if tokens <= limit:
            return n
        n -= 1
    raise ValueError(f"{loaded.name}: its {limit} positions hold no window")


def masked_base_analysis(
    loaded: LoadedModel,
    genome: Genome | str | os.PathLike[str],
    *,
    span: int = 6,
    n_windows: int = 512,
    window_bases: int = 128,
    margin: int = 24,
    max_order: int = 6,
    seed: int = 0,
    batch_size: int = 32,
    markov: pl.DataFrame | None = None,
) -> MaskedBaseResult:
    """Accuracy of any masked LM on hidden bases, next to the genome's Markov chains.

    Parameters
    ----------
    loaded : LoadedModel
        A masked LM of any tokenizer (k-mer, BPE, Nucleotide Transformer, characters).
    genome : Genome or path
    span : int
        Bases hidden per window.
    n_windows : int
        Windows (ACGT only) drawn with ``seed``; the same windows and span positions
        for every model given the same ``seed``, ``window_bases`` and ``margin``.
    window_bases : int
        Bases per window (lowered to what the model's positions hold, see
        :func:`window_bases`, so pass the common value when comparing models).
    margin : int
        Bases kept between the span and each end of the window.
    max_order : int
        Markov orders 0 .. ``max_order`` are fitted on the genome.
    markov : polars.DataFrame, optional
        The ``markov`` table of an earlier call with the same genome, windows and spans
        (same ``seed``, ``n_windows``, ``window_bases``, ``span``, ``margin``), e.g. for
        a random-init twin: reused instead of fitting the chains again.

    Returns
    -------
    MaskedBaseResult
    """
    if not loaded.has_mlm_head:
        raise ValueError(f"{loaded.name}: the model has no masked-LM head")
    mask_id = getattr(loaded.tokenizer, "mask_token_id", None)
    if mask_id is None:
        raise ValueError(f"{loaded.name}: its tokenizer has no mask token")
    if span < 1 or margin < max_order or margin < 1:
        raise ValueError(f"span must be >= 1 and margin >= max(1, max_order), got {span}, {margin}")
    length = window_bases
    if length < span + 2 * margin:
        raise ValueError(
            f"windows of {length} bases cannot hold a {span}-base span with {margin} bases "
            "on each side"
        )
    g = genome if isinstance(genome, Genome) else Genome.open(genome)
    codes, start = _windows_and_spans(g, n_windows, length, span, margin, seed)
    ids, mask = encode_windows(loaded, codes)
    spans = token_base_spans(loaded, ids, mask)
    s0, s1 = spans[..., 0], spans[..., 1]
    content = s1 > s0
    masked = content & (s0 < (start + span)[:, None]) & (s1 > start[:, None])
    shown = shown_bases(spans, masked, length)
    total, count = masked_slot_bases(loaded, ids, mask, masked, spans, length, batch_size)
    hidden = ~shown & (count > 0)
    in_span = np.zeros_like(hidden)
    in_span[np.arange(n_windows)[:, None], start[:, None] + np.arange(span)[None, :]] = True
    if not hidden[in_span].all():
        raise RuntimeError(f"{loaded.name}: a span base was left visible or unscored")
    w_h, x_h = np.nonzero(hidden)
    p = total[w_h, x_h] / count[w_h, x_h][:, None]
    truth = codes[w_h, x_h].astype(np.int64)
    bases = pl.DataFrame(
        {
            "window": w_h.astype(np.int32),
            "position": x_h.astype(np.int32),
            "in_span": in_span[w_h, x_h],
            "true": truth.astype(np.int8),
            "p_a": p[:, 0].astype(np.float32),
            "p_t": p[:, 1].astype(np.float32),
            "p_c": p[:, 2].astype(np.float32),
            "p_g": p[:, 3].astype(np.float32),
            "correct": p.argmax(axis=1) == truth,
        }
    )
    params = {
        "model": str(loaded.path),
        "model_name": loaded.name,
        "genome": str(g.path),
        "span": span,
        "n_windows": n_windows,
        "window_bases": length,
        "margin": margin,
        "max_order": max_order,
        "seed": seed,
        "tokenizer": loaded.encoder.kind,
        "masked_tokens_per_window": float(masked.sum(axis=1).mean()),
    }
    if markov is None:
        markov = _markov_rows(g, codes, start, span, max_order)
    return MaskedBaseResult(bases=bases, markov=markov, params=params)


def shown_bases(spans: np.ndarray, masked: np.ndarray, length: int) -> np.ndarray:
    """(n, length) bool: the bases that some unmasked token spells.

    Parameters
    ----------
    spans : numpy.ndarray, shape (n, T, 2)
        From :func:`token_base_spans`.
    masked : numpy.ndarray of bool, shape (n, T)
    length : int
        Bases per window.
    """
    s0, s1 = spans[..., 0], spans[..., 1]
    content = s1 > s0
    n = len(spans)
    visible = np.zeros((n, length + 1), dtype=np.int64)
    w_vis, t_vis = np.nonzero(content & ~masked)
    np.add.at(visible, (w_vis, s0[w_vis, t_vis]), 1)
    np.add.at(visible, (w_vis, np.minimum(s1[w_vis, t_vis], length)), -1)
    return np.cumsum(visible, axis=1)[:, :length] > 0


def masked_slot_bases(
    loaded: LoadedModel,
    ids: np.ndarray,
    mask: np.ndarray,
    masked: np.ndarray,
    spans: np.ndarray,
    length: int,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's estimates of A/T/C/G at every base that masked tokens cover.

    The tokens where ``masked`` is true are replaced by the mask token, the model runs
    once over every window, and each masked slot's distribution over the DNA tokens is
    turned into per-base probabilities (see the module docstring): summed over the slots
    that cover a base, with how many did.

    Parameters
    ----------
    ids, mask : numpy.ndarray, shape (n, T)
        Input ids and attention mask of the windows (unmasked).
    masked : numpy.ndarray of bool, shape (n, T)
    spans : numpy.ndarray, shape (n, T, 2)
        From :func:`token_base_spans`.
    length : int
        Bases per window.

    Returns
    -------
    total : numpy.ndarray, shape (n, length, 4)
        Sum of the slots' probabilities (code order A, T, C, G).
    count : numpy.ndarray, shape (n, length)
        Slots summed at each base; divide ``total`` by it for the mixture.
    """
    mask_id = getattr(loaded.tokenizer, "mask_token_id", None)
    if mask_id is None:
        raise ValueError(f"{loaded.name}: its tokenizer has no mask token")
    n = len(ids)
    s0, s1 = spans[..., 0], spans[..., 1]
    inputs = np.where(masked, mask_id, ids)
    vocab_ids, texts = dna_tokens(loaded)
    probs = _slot_probs(loaded, inputs, mask, masked, vocab_ids, batch_size)
    w_m, t_m = np.nonzero(masked)
    a, b = s0[w_m, t_m], s1[w_m, t_m]
    if loaded.encoder.kind != "batch":
        return _aligned(probs, texts, w_m, a, b, n, length)
    # The segmentation depends on the bases (BPE): where a later masked slot starts
    # would tell the true length of the tokens before it. Each base is read only
    # from the slot at the nearer edge of the hidden stretch, aligned at that edge.
    first = np.r_[True, w_m[1:] != w_m[:-1]]
    last = np.r_[w_m[1:] != w_m[:-1], True]
    h0 = np.minimum.reduceat(a, np.flatnonzero(first)) if len(a) else a
    h1 = np.maximum.reduceat(b, np.flatnonzero(first)) if len(b) else b
    return _anchored(
        probs, texts, w_m[first], h0, h1, np.flatnonzero(first), np.flatnonzero(last), n, length
    )


def _windows_and_spans(
    g: Genome, n_windows: int, length: int, span: int, margin: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The seeded windows (base codes) and the start of the hidden span in each."""
    codes = sample_windows(g, n_windows, length, seed=seed).codes
    rng = np.random.default_rng([seed, 7])
    start = rng.integers(margin, length - margin - span + 1, size=n_windows)
    return codes, start


def _markov_rows(
    g: Genome, codes: np.ndarray, start: np.ndarray, span: int, max_order: int
) -> pl.DataFrame:
    n_windows = len(codes)
    span_truth = codes[np.arange(n_windows)[:, None], start[:, None] + np.arange(span)[None, :]]
    rows = []
    for order in range(max_order + 1):
        marg = markov_span_marginals(codes, start, span, genome_kmer_counts(g, order + 1), order)
        p_true = np.take_along_axis(marg, span_truth[..., None].astype(np.int64), axis=2)[..., 0]
        rows.append(
            {
                "order": order,
                "accuracy": float((marg.argmax(axis=2) == span_truth).mean()),
                "bits": float(-np.log2(p_true).mean()),
            }
        )
    return pl.DataFrame(rows)


def markov_span_table(
    genome: Genome | str | os.PathLike[str],
    *,
    span: int = 6,
    n_windows: int = 512,
    window_bases: int = 128,
    margin: int = 24,
    max_order: int = 6,
    seed: int = 0,
) -> pl.DataFrame:
    """The ``markov`` table of :func:`masked_base_analysis` for the same arguments
    (per order 0 .. ``max_order``: accuracy on the span bases and mean log2 probability
    of the truth), without a model: computed once, it is passed to every model's call."""
    g = genome if isinstance(genome, Genome) else Genome.open(genome)
    codes, start = _windows_and_spans(g, n_windows, window_bases, span, margin, seed)
    return _markov_rows(g, codes, start, span, max_order)


def _spell(texts: list[str], j: int, from_end: bool) -> np.ndarray:
    """(tokens, 4): 1 where a token's base at offset ``j`` (from its start, or from its
    end) is A, T, C or G; rows of tokens shorter than ``j + 1`` are 0."""
    code = {c: i for i, c in enumerate(_LETTERS)}
    out = np.zeros((len(texts), 4))
    for r, text in enumerate(texts):
        if len(text) > j:
            out[r, code[text[len(text) - 1 - j] if from_end else text[j]]] = 1.0
    return out


def _estimate(probs: np.ndarray, spell: np.ndarray) -> np.ndarray:
    """P(base) given the slot's token reaches the offset (uniform if none can)."""
    mass = probs @ spell
    reach = mass.sum(axis=1, keepdims=True)
    return np.where(reach > 0, mass / np.maximum(reach, 1e-300), 0.25)


def _aligned(
    probs: np.ndarray,
    texts: list[str],
    w_m: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    n_windows: int,
    length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of per-slot estimates at every base each masked slot covers (slots
    whose bases do not depend on the sequence: k-mers, characters)."""
    total = np.zeros((n_windows, length, 4))
    count = np.zeros((n_windows, length))
    for j in range(max(len(t) for t in texts)):
        x = a + j
        ok = (x < b) & (x < length)
        if ok.any():
            np.add.at(total, (w_m[ok], x[ok]), _estimate(probs[ok], _spell(texts, j, False)))
            np.add.at(count, (w_m[ok], x[ok]), 1.0)
    return total, count


def _anchored(
    probs: np.ndarray,
    texts: list[str],
    windows: np.ndarray,
    h0: np.ndarray,
    h1: np.ndarray,
    slot_first: np.ndarray,
    slot_last: np.ndarray,
    n_windows: int,
    length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Estimates of each hidden stretch ``[h0, h1)`` read from its first slot (aligned
    at ``h0``) for its left half and from its last slot (aligned at ``h1``) for the rest."""
    total = np.zeros((n_windows, length, 4))
    count = np.zeros((n_windows, length))
    for j in range(int((h1 - h0).max(initial=0))):
        left = h0 + j
        ok = left < h0 + (h1 - h0 + 1) // 2
        if ok.any():
            est = _estimate(probs[slot_first[ok]], _spell(texts, j, False))
            total[windows[ok], left[ok]] = est
            count[windows[ok], left[ok]] = 1.0
        right = h1 - 1 - j
        ok = right >= h0 + (h1 - h0 + 1) // 2
        if ok.any():
            est = _estimate(probs[slot_last[ok]], _spell(texts, j, True))
            total[windows[ok], right[ok]] = est
            count[windows[ok], right[ok]] = 1.0
    return total, count


def _slot_probs(
    loaded: LoadedModel,
    inputs: np.ndarray,
    mask: np.ndarray,
    masked: np.ndarray,
    vocab_ids: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """Softmax over the model's DNA tokens at every masked slot, (m, len(vocab_ids))."""
    import torch

    cols = torch.from_numpy(vocab_ids)
    parts = []
    for rows, out in forward_batches(loaded, inputs, mask, batch_size=batch_size):
        logits = out.logits
        sel = torch.from_numpy(masked[rows]).to(logits.device)
        chosen = logits[sel][:, cols.to(logits.device)].float()
        parts.append(torch.softmax(chosen, dim=-1).cpu().numpy().astype(np.float64))
    return np.concatenate(parts) if parts else np.zeros((0, len(vocab_ids)))
