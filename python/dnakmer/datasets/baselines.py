"""Floors for the next-k-mer benchmark: uniform guessing, the training class prior and
Markov chains of order 0..12, each scored on the test split after fitting on train only.

Counting and prediction run in Rust; metrics come from scikit-learn.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dnakmer import _core
from dnakmer._io import atomic_open, write_json
from dnakmer.datasets.nextkmer import NextKmerDataset

__all__ = [
    "baselines",
    "baselines_figure",
    "plot_baselines",
    "prediction_metrics",
    "save_baselines",
]

# Above this many classes a dense confusion matrix (sklearn's MCC) would not fit memory.
_DENSE_CONFUSION_MAX = 4096


def _mcc(y: np.ndarray, pred: np.ndarray) -> float:
    """Multiclass MCC (Gorodkin's R_K), as sklearn's matthews_corrcoef, from marginals."""
    from sklearn.metrics import matthews_corrcoef

    if len(np.union1d(y, pred)) <= _DENSE_CONFUSION_MAX:
        return float(matthews_corrcoef(y, pred))
    # sklearn builds an n_labels² confusion matrix; R_K only needs its margins.
    s = float(len(y))
    c = float((y == pred).sum())
    t = np.bincount(y).astype(np.float64)
    p = np.bincount(pred).astype(np.float64)
    n = max(len(t), len(p))
    t, p = np.pad(t, (0, n - len(t))), np.pad(p, (0, n - len(p)))
    cov_ytyp = c * s - t @ p
    denom = np.sqrt((s * s - p @ p) * (s * s - t @ t))
    return 0.0 if denom == 0 else float(cov_ytyp / denom)


def prediction_metrics(y: np.ndarray, top: np.ndarray, log2p: np.ndarray) -> dict[str, float]:
    """Metrics of next-k-mer predictions.

    Parameters
    ----------
    y : (n,) int
        True labels.
    top : (n, m) int
        Predicted labels, best first (``m = min(5, 4^k)``); column 0 is the prediction.
    log2p : (n,) float
        log2 of the probability each model gave the true label.

    Returns
    -------
    dict
        ``accuracy``, ``top5_accuracy``, ``mcc`` (multiclass), ``macro_f1`` (over the
        labels present in ``y`` or the predictions) and ``cross_entropy_bits`` (mean
        -log2 p(true)).
    """
    from sklearn.metrics import accuracy_score, f1_score

    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(top[:, 0], dtype=np.int64)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        # Top-5 and cross-entropy from the exact best-5 list and p(true): sklearn's
        # top_k_accuracy_score and log_loss need an (n, 4^k) matrix (4^8 columns at k = 8).
        "top5_accuracy": float((top == y[:, None]).any(axis=1).mean()),
        "mcc": _mcc(y, pred),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "cross_entropy_bits": float(-np.mean(log2p)),
    }


def _uniform(y: np.ndarray, k: int, rng: np.random.Generator) -> dict[str, float]:
    n_classes = 4**k
    pred = rng.integers(0, n_classes, size=len(y))
    top = (pred[:, None] + np.arange(min(5, n_classes))) % n_classes
    return prediction_metrics(y, top, np.full(len(y), -2.0 * k))


def _prior(y: np.ndarray, y_train: np.ndarray, k: int, alpha: float) -> dict[str, float]:
    n_classes = 4**k
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
    p = (counts + alpha) / (counts.sum() + alpha * n_classes)
    order = np.argsort(-p, kind="stable")[: min(5, n_classes)]
    top = np.broadcast_to(order, (len(y), len(order)))
    return prediction_metrics(y, top, np.log2(p[y]))


def baselines(
    dataset: NextKmerDataset,
    markov_orders: Iterable[int] = range(13),
    *,
    ks: Iterable[int] | None = None,
    alpha: float = 1.0,
    genome: str | os.PathLike[str] | None = None,
    seed: int = 0,
    threads: int | None = None,
) -> pl.DataFrame:
    """Score the baselines on the test split, fitted on the train split only.

    For every ``k' <= k`` the task "predict the next k' bases" uses the first ``k'``
    bases of each label, so one dataset gives the whole accuracy-vs-k curve.

    - ``uniform``: a seeded uniformly random guess (expected accuracy 1/4^k');
      cross-entropy exactly 2k' bits.
    - ``prior``: the training label frequencies (add-alpha smoothed); always predicts the
      most frequent training k'-mer.
    - ``markov``: order-m chains counted over the union of the training spans (each
      base once, on each strand the training samples were drawn from),
      add-alpha smoothed, predicting the next k'-mer by the chain rule over the last m
      context bases. Top-5 lists are exact (best-first search of the 4^k' k-mers).

    Parameters
    ----------
    dataset : NextKmerDataset
        Needs train and test samples; its genome is reopened from the manifest
        (sha256-checked) if not in memory.
    markov_orders : iterable of int
        Orders 0..12; orders above ``context_nt`` are skipped with a warning.
    ks : iterable of int, optional
        Label lengths to report, default ``1..k``.
    alpha : float
        Add-alpha smoothing of the prior and the chains.
    genome : path, optional
        Where the source genome is now, if it moved since the dataset was built
        (checked against the manifest's sha256).
    seed : int
        Seed of the uniform guesses.
    threads : int, optional
        Scoring threads.

    Returns
    -------
    polars.DataFrame
        One row per baseline and k': ``baseline``, ``order`` (null unless Markov),
        ``k``, ``n_train``, ``n_test``, ``accuracy``, ``top5_accuracy``, ``mcc``,
        ``macro_f1``, ``cross_entropy_bits``.
    """
    k_full = dataset.k
    ks = list(range(1, k_full + 1)) if ks is None else sorted(set(ks))
    orders = sorted(set(markov_orders))
    bad_k = [k for k in ks if not 1 <= k <= k_full]
    if bad_k:
        raise ValueError(f"ks must lie in 1..{k_full} (the dataset's k), got {bad_k}")
    bad_orders = [m for m in orders if not 0 <= m <= 12]
    if bad_orders:
        raise ValueError(f"Markov orders must lie in 0..12, got {bad_orders}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    train, test = dataset.indices("train"), dataset.indices("test")
    if len(train) == 0 or len(test) == 0:
        raise ValueError(
            f"baselines need train and test samples; the dataset has {len(train)} train "
            f"and {len(test)} test samples"
        )
    labels = np.asarray(dataset.labels, dtype=np.int64)
    y_full, y_train_full = labels[test], labels[train]
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []

    def add(name: str, order: int | None, k: int, metrics: dict[str, float]) -> None:
        rows.append({"baseline": name, "order": order, "k": k, "n_train": len(train),
                     "n_test": len(test), **metrics})  # fmt: skip

    for k in ks:
        shift = 2 * (k_full - k)
        add("uniform", None, k, _uniform(y_full >> shift, k, rng))
        add("prior", None, k, _prior(y_full >> shift, y_train_full >> shift, k, alpha))
    skipped = [m for m in orders if m > dataset.context_nt]
    if skipped:
        warnings.warn(
            f"Markov orders {skipped} exceed context_nt = {dataset.context_nt}; skipped",
            stacklevel=2,
        )
    orders = [m for m in orders if m <= dataset.context_nt]
    if genome is not None:
        dataset.open_genome(genome)
    if orders:
        _markov_rows(dataset, orders, ks, alpha, threads, train, test, add)
    df = pl.DataFrame(rows, schema_overrides={"order": pl.Int64})
    rank = pl.col("baseline").replace_strict({"uniform": 0, "prior": 1, "markov": 2})
    return df.sort(["k", rank, "order"], nulls_last=False)


def _markov_rows(
    dataset: NextKmerDataset,
    orders: list[int],
    ks: list[int],
    alpha: float,
    threads: int | None,
    train: np.ndarray,
    test: np.ndarray,
    add: Any,
) -> None:
    genome = dataset.open_genome()
    k_full, ctx = dataset.k, dataset.context_nt
    rec = np.ascontiguousarray(dataset.record, dtype=np.uint32)
    start = np.ascontiguousarray(dataset.start, dtype=np.uint64)
    strand = np.ascontiguousarray(dataset.strand, dtype=np.int8)
    plus, minus = bool((strand[train] == 1).any()), bool((strand[train] == -1).any())
    y_full = np.asarray(dataset.labels, dtype=np.int64)[test]
    for m in orders:
        chain = _core.MarkovChain.fit_windows(
            genome, rec[train], start[train], ctx + k_full, m, plus=plus, minus=minus
        )
        for k in ks:
            log2p, top = chain.score_windows(
                genome, rec[test], start[test], strand[test],
                context_nt=ctx, k=k_full, k_eval=k, alpha=alpha, threads=threads,
            )  # fmt: skip
            add("markov", m, k, prediction_metrics(y_full >> (2 * (k_full - k)), top, log2p))
        del chain


def baselines_figure(df: pl.DataFrame) -> Any:
    """The figure of :func:`plot_baselines` (a matplotlib ``Figure``, not saved)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from dnakmer.plots import accuracy_axis, integer_ticks

    fig, (ax_k, ax_m) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    markov = df.filter(pl.col("baseline") == "markov")
    orders = markov["order"].unique().sort().to_list()
    ks = df["k"].unique().sort().to_list()
    cmap = plt.get_cmap("viridis", max(len(orders), 2))
    for name, style, label in (
        ("uniform", ":", "chance (uniform guessing)"),
        ("prior", "--", "class prior"),
    ):
        sub = df.filter(pl.col("baseline") == name).sort("k")
        ax_k.plot(sub["k"], sub["accuracy"], style, color="black", label=label)
    for i, m in enumerate(orders):
        sub = markov.filter(pl.col("order") == m).sort("k")
        ax_k.plot(sub["k"], sub["accuracy"], "-o", ms=3, color=cmap(i), label=f"Markov order {m}")
    integer_ticks(ax_k, ks)
    scale = accuracy_axis(ax_k, df["accuracy"].to_list())
    log = " (log scale)" if scale == "log" else ""
    ax_k.set(xlabel="k (bases predicted)", ylabel=f"test accuracy{log}",
             title="Every baseline by k")  # fmt: skip
    ax_k.legend(fontsize=7, ncol=2)
    for k in ks:
        sub = markov.filter(pl.col("k") == k).sort("order")
        (line,) = ax_m.plot(sub["order"], sub["accuracy"], "-o", ms=3, label=f"k = {k}")
        prior = df.filter((pl.col("baseline") == "prior") & (pl.col("k") == k))["accuracy"]
        if len(prior):
            ax_m.axhline(prior[0], ls="--", lw=0.8, color=line.get_color())
    if orders:
        integer_ticks(ax_m, orders)
    accuracy_axis(ax_m, df["accuracy"].to_list())
    handles, labels = ax_m.get_legend_handles_labels()
    handles.append(Line2D([], [], ls="--", lw=0.8, color="0.3"))
    labels.append("class prior (same colour as its k)")
    ax_m.legend(handles, labels, fontsize=7)
    ax_m.set(xlabel="Markov order (bases of context)", ylabel=f"test accuracy{log}",
             title="Markov chains by order")  # fmt: skip
    return fig


def plot_baselines(df: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """PNG of test accuracy vs k (uniform, prior, each Markov order) and vs Markov order
    (one line per k, its prior dashed in the same colour). Ticks only at the k and orders
    that were run; the y axis as :func:`dnakmer.plots.accuracy_axis` chooses (linear from
    0, or logarithmic when accuracies span more than a factor of 10)."""
    import matplotlib.pyplot as plt

    fig = baselines_figure(df)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def save_baselines(df: pl.DataFrame, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``baselines.json``, ``baselines.parquet`` and ``baselines.png`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": write_json(out / "baselines.json", df.to_dicts()),
        "png": plot_baselines(df, out / "baselines.png"),
    }
    with atomic_open(out / "baselines.parquet", "wb") as f:
        df.write_parquet(f)
    paths["parquet"] = out / "baselines.parquet"
    return paths
