"""Variant effects for every tokenizer: zero-shot scores of masked language models,
in-silico mutation of fine-tuned classifiers, and scans of every substitution in a region.

**Zero-shot scores (masked LMs).** The base at a variant's position is hidden by masking
*every token that covers it*: for DNABERT's overlapping k-mers the k tokens whose k-mers
hold the base (the one starting at it and the k - 1 before it), for other tokenizers the
token or tokens that spell it. No unmasked token then spells the base. Each masked slot's
distribution over the model's DNA tokens gives a distribution over A, C, G and T at the
base (the mass of the tokens whose letter at the base's offset is that base; see
:mod:`dnakmer.probes.masked_bases`), and the slots' estimates are **averaged**. Why a
mixture and not a product: the k estimates are read from the same visible context, so
they are not independent evidence; a product would count that evidence k times and be
k times too confident, and one slot the model reads badly (the k-mer whose edge holds
the base, seen only through a far neighbour) could veto the others. The score is

    score = ln P(alt) - ln P(ref)   (natural log; < 0: the model prefers the reference)

and one forward pass per position serves its three alternatives.

**The single-token mask, side by side.** What variant-effect toolkits do: mask the one
token around the base (of the tokens covering it, the one whose middle is nearest the
base) and read that slot alone. For overlapping k-mers the k - 1 unmasked tokens on each
side still spell the base, so the model reads the reference back (P(ref) near 1) and
the score says how well the model copies neighbours, not how the sequence constrains the
base. Where tokens do not overlap, one token covers the base and the two masks coincide.

**Classifiers** (``finetune classify``'s output): DNABERT's in-silico mutation. The
window centred on the position is classified with the reference base and with the
alternative, in batches; per class, ``delta = P(class | alt) - P(class | ref)``.

**Baseline.** The best of the genome's Markov chains of order 0 .. ``max_order`` (the
order whose probability of the reference bases is highest), given every base around the
position: ``markov_score = ln P(alt) - ln P(ref)`` under it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dnakmer.confidence import spearman_interval
from dnakmer.datasets.variants import BASES, Region, check_variants, parse_region, windows_around
from dnakmer.datasets.windows import genome_kmer_counts
from dnakmer.genome import Genome
from dnakmer.models import LoadedModel, forward_batches
from dnakmer.models.checkpoint import read_json
from dnakmer.probes.masked_bases import (
    encode_windows,
    markov_span_marginals,
    masked_slot_bases,
    shown_bases,
    token_base_spans,
    window_bases,
)
from dnakmer.progress import overall

__all__ = [
    "MASKS",
    "ScanResult",
    "VariantScores",
    "base_probabilities",
    "default_window",
    "markov_base_probabilities",
    "scan_region",
    "score_variants",
    "spearman",
]

MASKS = ("tokens", "single")
"""``"tokens"``: every token covering the base; ``"single"``: the one token around it."""

UNCOVERED = (
    "no token covers the position: its window ends in bases left over after the last whole "
    "token, or its record is shorter than a token"
)
UNSPELLED = (
    "the tokens do not spell the window base for base: an unknown token stands for "
    "several bases (e.g. an N)"
)
_CODE = {b: i for i, b in enumerate("ATCG")}  # the genome's base codes
_TO_ACGT = np.array([0, 2, 3, 1])  # code-order columns (A, T, C, G) -> A, C, G, T
_COLUMN_OF_CODE = _TO_ACGT.argsort()  # base code -> its column in A, C, G, T
_ROWS_PER_CHUNK = 512
_UNKNOWN_LIMIT_BASES = 1024


def default_window(loaded: LoadedModel, genome: Genome | None = None) -> int:
    """Bases per window when the user gives none.

    A classifier reads windows as long as those it was trained on (``results.json``). A
    masked LM reads windows as long as it was pretrained on when its folder says so
    (``history.json`` of ``dnakmer pretrain``), else the longest window its positions
    hold (at most 1,024 bases for models without a position limit). A BPE model
    pretrained on windows cut to a number of tokens reads windows that hold about as
    many tokens: their length is scaled by the tokens that 64 windows of ``genome``
    take (the median).

    Raises
    ------
    ValueError
        A classifier whose training windows had no single length (pass ``window``).
    """
    folder = loaded.path
    if loaded.is_classifier:
        results = folder / "results.json" if folder is not None else None
        if results is not None and results.is_file():
            source = (read_json(results).get("params") or {}).get("source") or {}
            if source.get("window_bases"):
                return window_bases(loaded, int(source["window_bases"]))
        raise ValueError(
            f"{loaded.name}: the length of the windows it was trained on is not recorded; "
            "give the window length in bases"
        )
    history = folder / "history.json" if folder is not None else None
    if history is not None and history.is_file():
        params = read_json(history).get("params") or {}
        trained = params.get("window_nt")
        if trained and loaded.encoder.kind == "batch" and params.get("max_tokens") and genome:
            return _bpe_window(loaded, genome, int(trained), int(params["max_tokens"]))
        if trained:
            return window_bases(loaded, int(trained))
    enc = loaded.encoder
    longest = enc.k if enc.kind == "greedy" else loaded.k if loaded.is_kmer else 1
    return window_bases(loaded, min(loaded.max_tokens * max(longest, 1), _UNKNOWN_LIMIT_BASES))


def _bpe_window(loaded: LoadedModel, genome: Genome, trained: int, tokens: int) -> int:
    """Bases of a window that takes about ``tokens`` tokens of a BPE model (median over
    64 windows of ``trained`` bases of ``genome``)."""
    from dnakmer.datasets.windows import sample_windows

    try:
        codes = sample_windows(genome, 64, trained, seed=0).codes
    except ValueError:  # a genome with no window that long
        return window_bases(loaded, trained)
    frame = sum(loaded.encoder.frame)
    taken = np.median(loaded.encoder.encode(codes).lengths - frame)
    return window_bases(loaded, max(1, min(trained, int(trained * tokens / max(taken, 1.0)))))


def _window(loaded: LoadedModel, window: int | None, genome: Genome) -> int:
    if window is None:
        return default_window(loaded, genome)
    if window < 1:
        raise ValueError(f"window must be at least 1 base, got {window}")
    return window


def _masks(
    spans: np.ndarray, offset: np.ndarray, which: str
) -> tuple[np.ndarray, np.ndarray]:
    """Tokens to mask per window (bool (n, T)) and how many cover the base."""
    s0, s1 = spans[..., 0], spans[..., 1]
    x = offset[:, None]
    covering = (s1 > s0) & (s0 <= x) & (s1 > x)
    n_cover = covering.sum(axis=1)
    if which == "tokens":
        return covering, n_cover
    if which != "single":
        raise ValueError(f"mask must be one of {MASKS}, got {which!r}")
    distance = np.where(covering, np.abs(2 * x - (s0 + s1 - 1)), np.iinfo(np.int64).max)
    single = np.zeros_like(covering)
    single[np.arange(len(spans)), distance.argmin(axis=1)] = True
    return single & covering, n_cover


def base_probabilities(
    loaded: LoadedModel,
    codes: np.ndarray,
    offset: np.ndarray,
    *,
    mask: str = "tokens",
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """A masked LM's probabilities of A, C, G and T at one base of each window.

    Parameters
    ----------
    codes : numpy.ndarray, shape (n, L), uint8
        Windows of base codes (A=0, T=1, C=2, G=3, 4 = other).
    offset : numpy.ndarray, shape (n,)
        The base of each window to hide.
    mask : {"tokens", "single"}
        Mask every token covering the base, or only the one around it (see the module
        docstring).

    Returns
    -------
    probs : numpy.ndarray, shape (n, 4), float64
        Columns A, C, G, T; rows sum to 1 (NaN where no token covers the base: a
        window shorter than a token).
    tokens_masked : numpy.ndarray, shape (n,), int64
        Tokens that cover the base (all masked with ``"tokens"``, one of them with
        ``"single"``); 0 where none does (the base is left over after a window's whole
        tokens, or the record is shorter than a token), -1 where the window's tokens do
        not spell its bases one for one (an unknown token standing for several bases).
        Such rows have NaN probabilities.

    Raises
    ------
    RuntimeError
        With ``mask="tokens"``, an unmasked token still spells the base.
    """
    if not loaded.has_mlm_head:
        raise ValueError(f"{loaded.name}: the model has no masked-LM head")
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    offset = np.asarray(offset, dtype=np.int64)
    n, length = codes.shape
    probs = np.empty((n, 4))
    covering = np.empty(n, dtype=np.int64)
    for lo in range(0, n, _ROWS_PER_CHUNK):
        part = slice(lo, min(lo + _ROWS_PER_CHUNK, n))
        ids, attn = encode_windows(loaded, codes[part])
        spans = token_base_spans(loaded, ids, attn)
        masked, covering[part] = _masks(spans, offset[part], mask)
        # dnakmer's k-mers are placed by position (a stride-k window may leave its last
        # bases uncovered); other tokens by their texts, which must spell the window
        unspelled = (spans[..., 1].max(axis=1) != length) & (loaded.encoder.kind != "kmer")
        if unspelled.any():
            masked[unspelled] = False
            covering[part][unspelled] = -1
        local = np.arange(part.stop - lo)
        if mask == "tokens" and shown_bases(spans, masked, length)[local, offset[part]].any():
            raise RuntimeError(f"{loaded.name}: an unmasked token still spells a hidden base")
        total, count = masked_slot_bases(loaded, ids, attn, masked, spans, length, batch_size)
        with np.errstate(invalid="ignore", divide="ignore"):
            at = total[local, offset[part]] / count[local, offset[part]][:, None]
        probs[part] = at[:, _TO_ACGT]
    return probs, covering


def markov_base_probabilities(
    codes: np.ndarray, offset: np.ndarray, counts: np.ndarray, order: int
) -> np.ndarray:
    """P(A, C, G, T) at one base of each window under an order-``order`` Markov chain,
    given every base around it; NaN where fewer than ``order`` bases (or a non-ACGT base
    among them) lie on either side.

    Parameters
    ----------
    counts : numpy.ndarray, shape (4 ** (order + 1),)
        The genome's (order+1)-mer counts (:func:`dnakmer.datasets.windows.genome_kmer_counts`).
    """
    codes = np.asarray(codes)
    offset = np.asarray(offset, dtype=np.int64)
    n, length = codes.shape
    out = np.full((n, 4), np.nan)
    ok = (offset >= order) & (offset + order < length)
    if order and ok.any():
        idx = np.flatnonzero(ok)
        around = codes[idx[:, None], offset[idx, None] + np.arange(-order, order + 1)[None, :]]
        ok[idx[(around.max(axis=1) > 3)]] = False
    idx = np.flatnonzero(ok)
    if len(idx):
        marg = markov_span_marginals(codes[idx], offset[idx], 1, counts, order)[:, 0, :]
        out[idx] = marg[:, _TO_ACGT]
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Spearman's rank correlation of the pairs where both are finite, with its 95 %
    Fisher z interval: ``{"rho", "ci95", "n"}`` (``rho`` None for fewer than 3 pairs or a
    constant side)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3:
        return {"rho": None, "ci95": [-1.0, 1.0], "n": n}
    rx = pl.Series(x[ok]).rank("average").to_numpy()
    ry = pl.Series(y[ok]).rank("average").to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return {"rho": None, "ci95": [-1.0, 1.0], "n": n}
    rho = float(np.corrcoef(rx, ry)[0, 1])
    return {"rho": rho, "ci95": list(spearman_interval(rho, n)), "n": n}


# -- scoring VCF variants ------------------------------------------------------------


@dataclass
class VariantScores:
    """Every allele of a VCF with its reference check and, where scored, its scores.

    Attributes
    ----------
    table : polars.DataFrame
        The columns of :func:`dnakmer.datasets.variants.check_variants`, then for a masked
        LM: ``tokens_masked``, ``p_a`` .. ``p_t`` (the base's probabilities with every
        covering token masked), ``p_ref``, ``p_alt``, ``score``; the same with the
        single-token mask (``single_`` prefix); ``markov_p_ref``, ``markov_p_alt``,
        ``markov_score``. For a classifier: ``p_ref_<class>``, ``p_alt_<class>``,
        ``delta_<class>`` per class and ``score`` (the delta of the chosen class).
        Scores are null on skipped rows.
    params : dict
    """

    table: pl.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts (records, alleles, scored, skipped by reason) and, for a masked LM, per
        mask: mean P(ref), median score and the rank correlation (95 % interval) of the
        scores with the Markov chain's."""
        t = self.table
        scored = t.filter(pl.col("status") == "scored")
        reasons = (
            t.filter(pl.col("status") == "skipped")
            .group_by(pl.col("reason").str.split(":").list.first().alias("reason"))
            .len()
            .sort(["len", "reason"], descending=[True, False])
        )
        out: dict[str, Any] = {
            "model": self.params.get("model_name"),
            "kind": self.params.get("kind"),
            "records": int(t["line"].n_unique()) if t.height else 0,
            "alleles": t.height,
            "scored": scored.height,
            "skipped": {r["reason"]: int(r["len"]) for r in reasons.iter_rows(named=True)},
        }
        if self.params.get("kind") == "masked_lm" and scored.height:
            markov = scored["markov_score"].to_numpy()
            masks = {}
            for name, prefix in (("tokens", ""), ("single", "single_")):
                score = scored[f"{prefix}score"].to_numpy()
                masks[name] = {
                    "mean_p_ref": float(scored[f"{prefix}p_ref"].mean()),  # type: ignore[arg-type]
                    "median_score": float(np.median(score)),
                    "markov_spearman": spearman(score, markov),
                }
            out["masks"] = masks
            out["markov_order"] = self.params.get("markov_order")
        elif self.params.get("kind") == "classifier" and scored.height:
            delta = scored["score"].to_numpy()
            out["label"] = self.params.get("label")
            out["mean_abs_delta"] = float(np.abs(delta).mean())
            out["max_abs_delta"] = float(np.abs(delta).max())
        return out

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """``scores.parquet``, ``scores.tsv``, ``summary.json``, ``summary.md`` and (masked
        LMs) ``scores.png``: written to a staging folder and moved into ``out_dir`` only
        when all are complete, under the folder's lock (a second writer is refused)."""
        from dnakmer._io import output_lock, staged_files, write_json, write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        with output_lock(out), staged_files(out) as tmp:
            self.table.write_parquet(tmp / "scores.parquet")
            self.table.write_csv(
                tmp / "scores.tsv", separator="\t", null_value="", float_precision=6
            )
            write_json(tmp / "summary.json", {"params": self.params, **summary})
            write_text(tmp / "summary.md", summary_markdown(summary, self.params))
            if summary.get("masks"):
                from dnakmer.plots import variant_scores

                scored = self.table.filter(pl.col("status") == "scored")
                variant_scores(scored, tmp / "scores.png")
        return out


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def summary_markdown(summary: dict[str, Any], params: dict[str, Any]) -> str:
    """The summary as a short Markdown report: what was scored, what was skipped and
    why, and (masked LMs) the two masks side by side."""
    lines = [
        f"# Variant scores: {summary.get('model')}",
        "",
        f"{summary['records']} VCF records, {summary['alleles']} alleles: "
        f"{summary['scored']} scored, {summary['alleles'] - summary['scored']} skipped.",
        "",
    ]
    if summary["skipped"]:
        lines += ["| skipped because | alleles |", "| --- | ---: |"]
        lines += [f"| {r} | {n} |" for r, n in summary["skipped"].items()]
        lines.append("")
    masks = summary.get("masks")
    if masks:
        lines += [
            f"Windows of {params.get('window')} bases centred on each variant. "
            "score = ln P(alt) - ln P(ref) at the variant's base; the Markov column is the "
            f"genome's order-{summary.get('markov_order')} chain (the best of orders "
            f"0-{params.get('max_order')}) given the same surrounding bases.",
            "",
            "| mask | mean P(ref) | median score | Spearman with Markov | 95 % CI | n |",
            "| --- | ---: | ---: | ---: | --- | ---: |",
        ]
        label = {
            "tokens": "every token covering the base",
            "single": "one token (as toolkits do)",
        }
        for name, m in masks.items():
            sp = m["markov_spearman"]
            lines.append(
                f"| {label[name]} | {_fmt(m['mean_p_ref'])} | {_fmt(m['median_score'])} | "
                f"{_fmt(sp['rho'])} | {_fmt(sp['ci95'][0])} to {_fmt(sp['ci95'][1])} | "
                f"{sp['n']} |"
            )
        lines += [
            "",
            "With one token masked, its unmasked overlapping neighbours still spell the "
            "reference base, so a model that learned to read them gives the reference a "
            "probability near 1 whatever the context: the scores then measure the leak, "
            "not the variant. Masking every covering token hides the base.",
        ]
        if params.get("tokens_overlap") is False:
            lines.append(
                "This model's tokens do not overlap: one token covers each base, and the "
                "two masks are the same."
            )
    elif summary.get("label") is not None:
        lines += [
            f"score = P({summary['label']} | alt) - P({summary['label']} | ref), windows of "
            f"{params.get('window')} bases centred on each variant; mean |score| "
            f"{_fmt(summary.get('mean_abs_delta'), 4)}, largest "
            f"{_fmt(summary.get('max_abs_delta'), 4)}.",
        ]
    return "\n".join(lines) + "\n"


def _label_index(loaded: LoadedModel, label: str | None) -> int:
    names = loaded.label_names
    if label is None:
        return len(names) - 1
    if label in names:
        return names.index(label)
    raise ValueError(f"{loaded.name}: no class {label!r} (classes: {', '.join(names)})")


def _class_probs(
    loaded: LoadedModel, codes: np.ndarray, batch_size: int
) -> np.ndarray:
    """Softmax of a classifier over windows of bases, (n, num_labels)."""
    import torch

    ids, attn = encode_windows(loaded, codes)
    parts = [
        torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
        for _, out in forward_batches(loaded, ids, attn, batch_size=batch_size)
    ]
    return np.concatenate(parts).astype(np.float64)


def score_variants(
    loaded: LoadedModel,
    genome: Genome | str | os.PathLike[str],
    variants: pl.DataFrame,
    *,
    window: int | None = None,
    batch_size: int = 32,
    max_order: int = 6,
    label: str | None = None,
    single: bool = True,
) -> VariantScores:
    """Score every SNV of ``variants`` with a masked LM (zero-shot) or a classifier.

    Parameters
    ----------
    loaded : LoadedModel
        A masked LM of any tokenizer, or a sequence classifier from ``finetune classify``.
    genome : Genome or path
        The reference the VCF was called against.
    variants : polars.DataFrame
        :func:`dnakmer.vcf.read_vcf`'s table (``chrom``, ``pos``, ``ref``, ``alt``, ...).
    window : int, optional
        Bases per window, centred on each variant (default :func:`default_window`).
    max_order : int
        Markov orders 0 .. ``max_order`` are fitted on the genome; the best is the baseline.
    label : str, optional
        A classifier's class whose probability change is ``score`` (default: the last
        class, the positive one of a two-class task).
    single : bool
        Also score with the single-token mask (masked LMs).

    Returns
    -------
    VariantScores
    """
    g = genome if isinstance(genome, Genome) else Genome.open(genome)
    checked = check_variants(g, variants)
    length = _window(loaded, window, g)
    scored = checked.filter(pl.col("status") == "scored")
    sites = scored.select("chrom", "pos").unique(maintain_order=True)
    params: dict[str, Any] = {
        "model": str(loaded.path),
        "model_name": loaded.name,
        "genome": str(g.path),
        "window": length,
        "tokenizer": loaded.encoder.kind,
    }
    if loaded.is_classifier:
        params |= {"kind": "classifier"}
        table = _classifier_scores(loaded, g, checked, scored, length, batch_size, label, params)
        return VariantScores(table, params)
    if not loaded.has_mlm_head:
        raise ValueError(f"{loaded.name}: neither a masked LM nor a classifier")
    params |= {"kind": "masked_lm", "max_order": max_order}
    keys: list[pl.DataFrame] = []
    windows: list[tuple[np.ndarray, np.ndarray]] = []
    p_tok: list[np.ndarray] = []
    p_one: list[np.ndarray] = []
    n_tok: list[np.ndarray] = []
    with overall("variant positions", sites.height * (2 if single else 1)) as advance:
        for chrom, part in sites.group_by("chrom", maintain_order=True):
            pos0 = part["pos"].to_numpy().astype(np.int64) - 1
            codes, offset = windows_around(g, str(chrom[0]), pos0, length)
            probs, covering = base_probabilities(
                loaded, codes, offset, mask="tokens", batch_size=batch_size
            )
            advance(len(pos0))
            if single and (covering > 1).any():
                p_one.append(
                    base_probabilities(
                        loaded, codes, offset, mask="single", batch_size=batch_size
                    )[0]
                )
            else:
                p_one.append(probs)  # one token covers each base: the two masks coincide
            if single:
                advance(len(pos0))
            keys.append(part)
            windows.append((codes, offset))
            p_tok.append(probs)
            n_tok.append(covering)
    params["tokens_overlap"] = any(bool((n > 1).any()) for n in n_tok)
    counts = {m: genome_kmer_counts(g, m + 1) for m in range(max_order + 1)}
    params["markov_order"], markov = _markov_for(windows, counts)
    site_frame = _site_frame(keys, p_tok, p_one, n_tok, markov)
    table = _join_alleles(checked, site_frame, single)
    uncovered = (pl.col("status") == "scored") & (pl.col("tokens_masked") <= 0)
    table = table.with_columns(
        pl.when(uncovered).then(pl.lit("skipped")).otherwise(pl.col("status")).alias("status"),
        pl.when(uncovered & (pl.col("tokens_masked") == 0))
        .then(pl.lit(UNCOVERED))
        .when(uncovered)
        .then(pl.lit(UNSPELLED))
        .otherwise(pl.col("reason"))
        .alias("reason"),
    )
    computed = table.columns[len(checked.columns) :]
    table = table.with_columns(
        pl.when(pl.col("status") == "scored").then(pl.col(c)).otherwise(None).alias(c)
        for c in computed
    )
    return VariantScores(table, params)


def _markov_for(
    windows: list[tuple[np.ndarray, np.ndarray]], counts: dict[int, np.ndarray]
) -> tuple[int, np.ndarray]:
    """The best order over all sites (the highest mean log probability of the reference
    bases) and its probabilities (n_sites, 4), A, C, G, T."""
    if not windows:
        return 0, np.zeros((0, 4))
    probs = {
        m: np.concatenate([markov_base_probabilities(w, x, c, m) for w, x in windows])
        for m, c in counts.items()
    }
    truth = np.concatenate([w[np.arange(len(x)), x] for w, x in windows])
    ok = np.all([np.isfinite(p[:, 0]) for p in probs.values()], axis=0) & (truth < 4)
    if not ok.any():
        return 0, probs[0]
    column = _COLUMN_OF_CODE[truth[ok]]
    ll = {m: float(np.log(p[ok, column]).mean()) for m, p in probs.items()}
    best = max(ll, key=lambda m: (ll[m], -m))
    return best, probs[best]


def _site_frame(
    keys: list[pl.DataFrame],
    p_tok: list[np.ndarray],
    p_one: list[np.ndarray],
    n_tok: list[np.ndarray],
    markov: np.ndarray,
) -> pl.DataFrame:
    """One row per scored site: its tokens and the three sets of base probabilities."""
    prefixed = {"": p_tok, "single_": p_one, "markov_": [markov]}
    schema: dict[str, Any] = {"chrom": pl.String, "pos": pl.Int64, "tokens_masked": pl.Int64}
    schema |= {f"{x}p_{b.lower()}": pl.Float64 for x in prefixed for b in BASES}
    if not keys:
        return pl.DataFrame(schema=schema)
    data: dict[str, Any] = {"tokens_masked": np.concatenate(n_tok)}
    for prefix, parts in prefixed.items():
        p = np.concatenate(parts)
        data |= {f"{prefix}p_{b.lower()}": p[:, j] for j, b in enumerate(BASES)}
    return pl.concat(keys).hstack(pl.DataFrame(data)).cast(schema)  # type: ignore[arg-type]


def _pick(prefix: str, allele: str) -> pl.Expr:
    expr = pl.lit(None, dtype=pl.Float64)
    for b in BASES:
        expr = pl.when(pl.col(allele) == b).then(pl.col(f"{prefix}p_{b.lower()}")).otherwise(expr)
    return expr


def _join_alleles(checked: pl.DataFrame, sites: pl.DataFrame, single: bool) -> pl.DataFrame:
    """Per-allele columns from the per-site probabilities (null on skipped rows)."""
    table = checked.with_columns(pl.col("pos").cast(pl.Int64)).join(
        sites.with_columns(pl.lit("scored").alias("status")),
        on=["chrom", "pos", "status"],
        how="left",
        maintain_order="left",
    )
    table = table.with_columns(pl.col("ref").str.to_uppercase().alias("_ref"))
    out = []
    for prefix in ("", "single_", "markov_") if single else ("", "markov_"):
        p_ref, p_alt = _pick(prefix, "_ref"), _pick(prefix, "alt")
        out += [
            p_ref.alias(f"{prefix}p_ref"),
            p_alt.alias(f"{prefix}p_alt"),
            (p_alt.log() - p_ref.log()).alias(f"{prefix}score"),
        ]
    table = table.with_columns(out).drop("_ref")
    base = list(checked.columns)
    order = base + ["tokens_masked"] + [f"p_{b.lower()}" for b in BASES] + [
        "p_ref", "p_alt", "score",
    ]  # fmt: skip
    if single:
        order += [f"single_p_{b.lower()}" for b in BASES] + [
            "single_p_ref", "single_p_alt", "single_score",
        ]  # fmt: skip
    order += ["markov_p_ref", "markov_p_alt", "markov_score"]
    return table.select(order)


def _classifier_scores(
    loaded: LoadedModel,
    g: Genome,
    checked: pl.DataFrame,
    scored: pl.DataFrame,
    length: int,
    batch_size: int,
    label: str | None,
    params: dict[str, Any],
) -> pl.DataFrame:
    names = loaded.label_names
    chosen = _label_index(loaded, label)
    params["label"] = names[chosen]
    params["labels"] = names
    ref_p: list[np.ndarray] = []
    alt_p: list[np.ndarray] = []
    keys: list[pl.DataFrame] = []
    with overall("variant windows", 2 * scored.height) as advance:
        for chrom, part in scored.group_by("chrom", maintain_order=True):
            pos0 = part["pos"].to_numpy().astype(np.int64) - 1
            codes, offset = windows_around(g, str(chrom[0]), pos0, length)
            alt = codes.copy()
            alt[np.arange(len(pos0)), offset] = [_CODE[a] for a in part["alt"].to_list()]
            both = _class_probs(loaded, np.concatenate([codes, alt]), batch_size)
            ref_p.append(both[: len(pos0)])
            alt_p.append(both[len(pos0) :])
            keys.append(part.select("line", "allele"))
            advance(2 * len(pos0))
    data: dict[str, Any] = {}
    if keys:
        r, a = np.concatenate(ref_p), np.concatenate(alt_p)
        for j, name in enumerate(names):
            data[f"p_ref_{name}"] = r[:, j]
            data[f"p_alt_{name}"] = a[:, j]
            data[f"delta_{name}"] = a[:, j] - r[:, j]
        data["score"] = a[:, chosen] - r[:, chosen]
        per_row = pl.concat(keys).hstack(pl.DataFrame(data))
    else:
        schema = {"line": pl.Int64, "allele": pl.Int32, "score": pl.Float64}
        for name in names:
            schema |= {f"{p}_{name}": pl.Float64 for p in ("p_ref", "p_alt", "delta")}
        per_row = pl.DataFrame(schema=schema)
    return checked.join(
        per_row.with_columns(pl.col("line").cast(checked["line"].dtype)),
        on=["line", "allele"],
        how="left",
        maintain_order="left",
    )


# -- scanning a region -----------------------------------------------------------------


@dataclass
class ScanResult:
    """Every substitution of a region.

    Attributes
    ----------
    region : Region
    scores : numpy.ndarray, shape (n_positions, 4), float32
        Columns A, C, G, T: the score of each base at each position (0 at the reference
        base; NaN at positions whose reference base is not A, C, G or T, or that no
        token covers, see :func:`base_probabilities`).
    reference : str
        The region's bases.
    table : polars.DataFrame
        One row per position and alternative: ``position`` (1-based), ``ref``, ``alt``,
        ``score`` and, for masked LMs, ``p_ref``, ``p_alt``.
    params : dict
    """

    region: Region
    scores: np.ndarray
    reference: str
    table: pl.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """``scores.npy`` (the array), ``scan.parquet`` (the table), ``heatmap.png`` and
        ``summary.json``: moved into ``out_dir`` only when all are complete, under the
        folder's lock."""
        from dnakmer._io import output_lock, staged_files, write_json
        from dnakmer.plots import scan_heatmap

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with output_lock(out), staged_files(out) as tmp:
            np.save(tmp / "scores.npy", self.scores)
            self.table.write_parquet(tmp / "scan.parquet")
            scan_heatmap(
                self.scores,
                self.reference,
                self.region.start + 1,
                tmp / "heatmap.png",
                title=f"{self.params.get('model_name')}: {self.region}",
                colorbar=self.params.get("score_label", "score"),
            )
            write_json(tmp / "summary.json", {"params": self.params, **self.summary()})
        return out

    def summary(self) -> dict[str, Any]:
        """Positions scanned and skipped, and the most damaging substitution."""
        finite = np.isfinite(self.scores).all(axis=1)
        acgt = np.array([b in BASES for b in self.reference], dtype=bool)
        out: dict[str, Any] = {
            "region": str(self.region),
            "positions": len(self.scores),
            "scored": int(finite.sum()),
            "not_acgt": int((~acgt).sum()),
            "uncovered": int((acgt & ~finite).sum()),
        }
        if self.table.height:
            low = self.table.sort("score").row(0, named=True)
            out["lowest"] = {k: low[k] for k in ("position", "ref", "alt", "score")}
        return out


def scan_region(
    loaded: LoadedModel,
    genome: Genome | str | os.PathLike[str],
    region: Region | str,
    *,
    window: int | None = None,
    batch_size: int = 32,
    label: str | None = None,
) -> ScanResult:
    """Score every position of ``region`` against its three alternatives.

    A masked LM scores ``ln P(alt) - ln P(ref)`` with every covering token masked (one
    forward pass per position); a classifier scores the change in the probability of
    ``label`` (four windows per position: the reference and each alternative).

    Parameters
    ----------
    region : Region or str
        ``NAME:START-END`` (1-based, inclusive) or ``NAME``.
    window, batch_size, label
        As in :func:`score_variants`.
    """
    g = genome if isinstance(genome, Genome) else Genome.open(genome)
    reg = region if isinstance(region, Region) else parse_region(region, g)
    length = _window(loaded, window, g)
    pos0 = np.arange(reg.start, reg.end, dtype=np.int64)
    reference = g.fetch(reg.name, reg.start, reg.end).upper()
    ref_codes = g.codes(reg.name, reg.start, reg.end)
    acgt = ref_codes < 4
    ref_col = _COLUMN_OF_CODE[np.minimum(ref_codes, 3)]
    scores = np.full((len(pos0), 4), np.nan, dtype=np.float32)
    params: dict[str, Any] = {
        "model": str(loaded.path),
        "model_name": loaded.name,
        "genome": str(g.path),
        "region": str(reg),
        "window": length,
        "tokenizer": loaded.encoder.kind,
    }
    idx = np.flatnonzero(acgt)
    p_all = None
    if loaded.is_classifier:
        chosen = _label_index(loaded, label)
        params |= {"kind": "classifier", "label": loaded.label_names[chosen]}
        params["score_label"] = f"change in P({params['label']})"
        with overall("scan windows", 4 * len(idx)) as advance:
            for lo in range(0, len(idx), _ROWS_PER_CHUNK):
                part = idx[lo : lo + _ROWS_PER_CHUNK]
                codes, offset = windows_around(g, reg.name, pos0[part], length)
                variants = np.repeat(codes[None], 4, axis=0)
                for c in range(4):
                    variants[c, np.arange(len(part)), offset] = c
                probs = _class_probs(
                    loaded, variants.reshape(-1, codes.shape[1]), batch_size
                )[:, chosen].reshape(4, len(part))
                ref_p = probs[ref_codes[part], np.arange(len(part))]
                scores[part] = (probs - ref_p[None, :]).T[:, _TO_ACGT]
                advance(4 * len(part))
    else:
        params |= {"kind": "masked_lm", "mask": "tokens"}
        params["score_label"] = "ln P(alt) - ln P(ref)"
        p_all = np.full((len(pos0), 4), np.nan)
        with overall("scan positions", len(idx)) as advance:
            for lo in range(0, len(idx), _ROWS_PER_CHUNK):
                part = idx[lo : lo + _ROWS_PER_CHUNK]
                codes, offset = windows_around(g, reg.name, pos0[part], length)
                p, _ = base_probabilities(loaded, codes, offset, batch_size=batch_size)
                p_all[part] = p
                advance(len(part))
        p_ref = np.take_along_axis(p_all, ref_col[:, None], axis=1)[:, 0]
        scores[:] = np.log(p_all) - np.log(p_ref)[:, None]
    scores[~acgt] = np.nan
    table = _scan_table(reg, reference, ref_col, acgt, scores, p_all)
    return ScanResult(reg, scores, reference, table, params)


def _scan_table(
    reg: Region,
    reference: str,
    ref_col: np.ndarray,
    acgt: np.ndarray,
    scores: np.ndarray,
    probs: np.ndarray | None,
) -> pl.DataFrame:
    scored = acgt & np.isfinite(scores).all(axis=1)
    rows, cols = np.nonzero(scored[:, None] & (np.arange(4)[None, :] != ref_col[:, None]))
    letters = np.array(list(BASES))
    data: dict[str, Any] = {
        "position": (reg.start + 1 + rows).astype(np.int64),
        "ref": np.array(list(reference))[rows] if len(reference) else np.array([], dtype=str),
        "alt": letters[cols],
        "score": scores[rows, cols].astype(np.float64),
    }
    if probs is not None:
        data["p_ref"] = probs[rows, ref_col[rows]]
        data["p_alt"] = probs[rows, cols]
    return pl.DataFrame(data)

