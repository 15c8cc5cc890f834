"""The next-k-mer benchmark for models: fine-tune on datasets of several k, with several
seeds, pretrained and random-init, and put the results next to the baselines."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dnakmer import progress
from dnakmer._io import atomic_open, write_json
from dnakmer.confidence import Z95, position
from dnakmer.training.finetune import data_from_dataset, finetune, load_results, seed_summary
from dnakmer.training.trainer import TrainOptions

__all__ = [
    "BASELINE_NOTE",
    "CONSTANT_SHARE",
    "ONE_SEED_NOTE",
    "PROBE_SUFFIX",
    "accuracy_interval",
    "accuracy_vs_k_figure",
    "add_probe_rows",
    "benchmark_model",
    "comparison_table",
    "degenerate_reason",
    "linear_probe",
    "plot_accuracy_vs_k",
    "with_ci_note",
    "with_degenerate",
]

PROBE_SUFFIX = "linear probe"
"""Predictor names of the frozen-encoder probes: ``"<model> linear probe (<init>)"``."""


def _run_dir(out: Path, k: int, init: str, seed: int) -> Path:
    return out / f"k{k}" / init / f"seed{seed}"


def benchmark_model(
    model_dir: str | os.PathLike[str],
    data_dirs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    inits: Sequence[str] = ("pretrained", "random"),
    seeds: Sequence[int] = (0,),
    options: TrainOptions | None = None,
    freeze_encoder: bool = False,
    resume: bool = False,
    on_run: Callable[[int, int, str], None] | None = None,
    pooling: str = "last",
    trust_remote_code: bool = False,
) -> pl.DataFrame:
    """Fine-tune ``model_dir`` on every next-k-mer dataset, for each init and seed.

    Any model family: a dataset of raw bases (``nextkmer build --raw``) is tokenized with
    the model's own tokenizer, so models of different vocabularies are scored on the same
    windows, labels and splits.

    Runs go to ``out_dir/k{K}/{init}/seed{S}``; with ``resume``, finished runs are kept
    and an interrupted one continues from its last complete checkpoint. ``on_run`` is
    called before each run with (runs done, runs in all, ``"k=K init seed S"``).

    The head reads the last token's hidden state by default (``pooling="last"``): the
    bases that follow a window depend most on its end, and a head over ``[CLS]``
    (``pooling="cls"``, as Hugging Face's classifier) collapses to the class prior on
    small budgets (see :mod:`dnakmer.models.pooling`).

    Returns
    -------
    polars.DataFrame
        One row per (k, init, seed) with every ``test_*`` metric.
    """
    from dnakmer.datasets.nextkmer import NextKmerDataset
    from dnakmer.models import load_tokenizer

    out = Path(out_dir)
    tok = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    base = options or TrainOptions()
    rows = []
    total = len(data_dirs) * len(inits) * len(seeds)
    for data_dir in data_dirs:
        k = NextKmerDataset.load(data_dir).k
        data = data_from_dataset(data_dir, tok, model=Path(model_dir).name)
        for init in inits:
            for seed in seeds:
                if on_run is not None:
                    on_run(len(rows), total, f"k={k} {init} seed {seed}")
                run = _run_dir(out, k, init, seed)
                if resume and (run / "results.json").exists():
                    metrics = load_results(run)["metrics"]
                else:
                    opts = TrainOptions(**{**base.__dict__, "seed": seed})
                    name = f"run {len(rows) + 1}/{total}, k={k} {init} seed {seed}"
                    with progress.stage(name):
                        metrics = finetune(
                            data,
                            model_dir,
                            run,
                            init=init,
                            options=opts,
                            freeze_encoder=freeze_encoder,
                            resume=resume,
                            pooling=pooling,
                            trust_remote_code=trust_remote_code,
                        ).metrics
                rows.append(
                    {"k": k, "init": init, "seed": seed}
                    | {m: v for m, v in metrics.items() if m.startswith("test_")}
                )
    return pl.DataFrame(rows)


def _pooled_states(
    loaded: Any,
    ids: np.ndarray,
    mask: np.ndarray,
    pooling: str,
    batch_size: int,
    frame: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """Last-layer states of ``ids`` pooled per row (float64, (n, hidden))."""
    import torch

    from dnakmer.models import forward_batches
    from dnakmer.models.pooling import pool_hidden

    mask = np.asarray(mask, dtype=np.int64)
    out = np.empty((len(ids), loaded.model.config.hidden_size), dtype=np.float64)
    for rows, output in forward_batches(
        loaded, ids, mask, batch_size=batch_size, encoder_only=True
    ):
        hidden = output[0].float()
        pooled = pool_hidden(
            hidden, torch.as_tensor(mask[rows], device=hidden.device), pooling, frame
        )
        out[rows] = pooled.cpu().numpy()
    return out


def linear_probe(
    model_dir: str | os.PathLike[str],
    data_dirs: Sequence[str | os.PathLike[str]],
    *,
    inits: Sequence[str] = ("pretrained", "random"),
    pooling: str = "last",
    seed: int = 0,
    batch_size: int = 64,
    device: str | None = "cpu",
    trust_remote_code: bool = False,
) -> pl.DataFrame:
    """Next-k-mer prediction from the frozen encoder: a logistic regression on its states.

    Fine-tuning changes every weight, so a random-init model can learn from the training
    windows what a pretrained one brought along. A linear probe keeps the encoder as it
    is and asks what its representation already holds: the pooled last-layer state of
    each window (``pooling``, as for fine-tuning) is standardised and a multinomial
    logistic regression (L2, C = 1) is fitted on the training windows and scored on the
    test windows, with the metrics of :func:`dnakmer.training.finetune.classification_metrics`.
    ``"random"`` probes the same architecture with fresh weights (drawn with ``seed``):
    the control that tells what pretraining put there.

    Returns
    -------
    polars.DataFrame
        One row per (k, init) with ``seed`` and every ``test_*`` metric, as
        :func:`benchmark_model`.
    """
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from dnakmer.datasets.nextkmer import NextKmerDataset
    from dnakmer.models import load, random_init
    from dnakmer.training.finetune import _reduce_logits, classification_metrics

    bad = [i for i in inits if i not in ("pretrained", "random")]
    if bad:
        raise ValueError(f"inits must be 'pretrained' or 'random', got {bad}")
    loaded = load(model_dir, device=device, trust_remote_code=trust_remote_code)
    rows = []
    for init in inits:
        model = loaded if init == "pretrained" else random_init(loaded, seed)
        for data_dir in data_dirs:
            k = NextKmerDataset.load(data_dir).k
            data = data_from_dataset(data_dir, loaded.tokenizer, model=loaded.name)
            if "test" not in data.ids:
                raise ValueError(f"{data_dir}: a linear probe needs a test split")
            states = {
                s: _pooled_states(
                    model, data.ids[s], data.mask(s), pooling, batch_size, data.frame
                )
                for s in ("train", "test")
            }
            scaler = StandardScaler().fit(states["train"])
            y_train = np.asarray(data.labels["train"], dtype=np.int64)
            y_test = np.asarray(data.labels["test"], dtype=np.int64)
            clf = LogisticRegression(C=1.0, max_iter=2000)
            # As many BLAS threads as torch uses: on matrices this small, threads that
            # torch or another process already keeps busy make the fit 5 times slower.
            with threadpool_limits(torch.get_num_threads(), user_api="blas"):
                clf.fit(scaler.transform(states["train"]), y_train)
            # Classes absent from the training windows get (almost) no probability.
            logp = np.full((len(y_test), data.num_labels), -30.0)
            logp[:, clf.classes_] = clf.predict_log_proba(scaler.transform(states["test"]))
            reduced = _reduce_logits(data.num_labels)(
                torch.from_numpy(logp), torch.from_numpy(y_test)
            )
            metrics = classification_metrics(y_test, reduced.numpy(), data.num_labels)
            rows.append(
                {"k": k, "init": init, "seed": seed} | {f"test_{m}": v for m, v in metrics.items()}
            )
    return pl.DataFrame(rows)


def comparison_table(runs: pl.DataFrame, baselines: pl.DataFrame, model: str) -> pl.DataFrame:
    """Model (mean ± 95 % CI over seeds) next to the uniform, prior and best Markov
    baselines, per k and metric.

    Parameters
    ----------
    runs : DataFrame
        From :func:`benchmark_model`.
    baselines : DataFrame
        From :func:`dnakmer.datasets.baselines.baselines`, rows for each k.
    model : str
        Label of the model in the table.

    Returns
    -------
    polars.DataFrame
        Columns ``k``, ``predictor``, ``accuracy``, ``accuracy_ci95`` (half-width of the
        Student-t interval over seeds; null for one seed), ``accuracy_ci95_test``
        (half-width of the binomial interval over the ``n_test`` test windows),
        ``top5_accuracy``, ``mcc``, ``macro_f1``, ``cross_entropy_bits``,
        ``majority_share`` (models: mean share of test windows given the most common
        class), ``n_seeds``, ``n_test``, ``ci_note`` (why ``accuracy_ci95`` is empty,
        see :func:`with_ci_note`) and ``degenerate`` (models: why the run is DEGENERATE,
        see :func:`degenerate_reason`; null otherwise). The best Markov order is the one
        with the highest test accuracy at that k.
    """
    metrics = ["accuracy", "top5_accuracy", "mcc", "macro_f1", "cross_entropy_bits"]
    n_test = {
        int(k): int(n) for k, n in baselines.group_by("k").agg(pl.col("n_test").max()).iter_rows()
    }
    out = []
    for (k, init), group in runs.group_by(["k", "init"], maintain_order=True):
        summary = seed_summary(group.drop(["k", "init", "seed"]).to_dicts())
        vals = {r["metric"]: r for r in summary.to_dicts()}
        row = {"k": k, "predictor": f"{model} ({init})", "n_seeds": group.height}
        row |= {m: vals[m]["mean"] for m in [*metrics, "majority_share"] if m in vals}
        row["accuracy_ci95"] = vals["accuracy"]["ci95"] if "accuracy" in vals else None
        out.append(row)
    for k in runs["k"].unique().sort().to_list():
        at_k = baselines.filter(pl.col("k") == k)
        for name in ("uniform", "prior"):
            sub = at_k.filter(pl.col("baseline") == name)
            if sub.height:
                out.append(
                    {"k": k, "predictor": name, "n_seeds": 1} | {m: sub[m][0] for m in metrics}
                )
        markov = at_k.filter(pl.col("baseline") == "markov").sort("accuracy", descending=True)
        if markov.height:
            best = markov.row(0, named=True)
            out.append(
                {"k": k, "predictor": f"Markov order {best['order']}", "n_seeds": 1}
                | {m: best[m] for m in metrics}
            )
    for row in out:
        n = n_test.get(int(row["k"]))
        row["n_test"] = n
        if n and row.get("accuracy") is not None:
            p = float(row["accuracy"])
            row["accuracy_ci95_test"] = Z95 * float(np.sqrt(p * (1.0 - p) / n))
    schema = {
        "k": pl.Int64,
        "predictor": pl.String,
        "accuracy": pl.Float64,
        "accuracy_ci95": pl.Float64,
        "accuracy_ci95_test": pl.Float64,
        "top5_accuracy": pl.Float64,
        "mcc": pl.Float64,
        "macro_f1": pl.Float64,
        "cross_entropy_bits": pl.Float64,
        "majority_share": pl.Float64,
        "n_seeds": pl.Int64,
        "n_test": pl.Int64,
    }
    table = with_ci_note(pl.DataFrame(out, schema=schema)).sort(["k", "predictor"])
    return with_degenerate(table)


CONSTANT_SHARE = 0.9
"""A model that gives one answer for this share of its inputs is a constant predictor."""


def accuracy_interval(row: dict[str, Any]) -> tuple[float, float]:
    """95 % interval of a comparison row's accuracy: the wider of the interval over
    seeds and the binomial interval over the test windows, around the mean."""
    acc = row["accuracy"]
    half = max(row.get("accuracy_ci95") or 0.0, row.get("accuracy_ci95_test") or 0.0)
    return max(0.0, acc - half), min(1.0, acc + half)


def degenerate_reason(row: dict[str, Any], prior: float) -> str | None:
    """Why a model's comparison row is DEGENERATE, or None: it answers one class for
    :data:`CONSTANT_SHARE` of the test windows, or it is no better than the class prior
    ``prior`` (its interval reaches the prior and its MCC is below 0.01). No finding is
    drawn from such a run."""
    share = row.get("majority_share")
    if share is not None and share >= CONSTANT_SHARE:
        return (
            f"predicts one class for {share:.0%} of test windows (a constant predictor, "
            f"accuracy {row['accuracy']:.3f} vs class prior {prior:.3f})"
        )
    if position(prior, accuracy_interval(row)) != "higher" and (row.get("mcc") or 0.0) < 0.01:
        return (
            f"is no better than the class prior (accuracy {row['accuracy']:.3f} vs "
            f"{prior:.3f}, MCC {row.get('mcc') or 0.0:.3f})"
        )
    return None


def with_degenerate(table: pl.DataFrame) -> pl.DataFrame:
    """``table`` (:func:`comparison_table`) with a ``degenerate`` column: for each model
    row, :func:`degenerate_reason` against the class prior at its k (null otherwise)."""
    priors = {
        r["k"]: r["accuracy"] for r in table.filter(pl.col("predictor") == "prior").to_dicts()
    }
    reasons = [
        degenerate_reason(r, priors[r["k"]])
        if "(" in r["predictor"] and r["k"] in priors and r.get("accuracy") is not None
        else None
        for r in table.to_dicts()
    ]
    return table.with_columns(pl.Series("degenerate", reasons, dtype=pl.String))


ONE_SEED_NOTE = (
    "one seed: no interval over seeds; accuracy_ci95_test is the binomial interval over "
    "the test windows"
)
BASELINE_NOTE = (
    "baseline, fitted once: no interval over seeds; accuracy_ci95_test is the binomial "
    "interval over the test windows"
)


def with_ci_note(table: pl.DataFrame) -> pl.DataFrame:
    """``table`` (:func:`comparison_table`) with a ``ci_note`` column that says why
    ``accuracy_ci95`` (the interval over seeds) is empty: :data:`ONE_SEED_NOTE` for a
    model run with one seed, :data:`BASELINE_NOTE` for a baseline; null where there is an
    interval over seeds. Tables written before the column existed get it too."""
    model = pl.col("predictor").str.contains(r"\(")
    note = (
        pl.when(pl.col("accuracy_ci95").is_not_null())
        .then(None)
        .when(model)
        .then(pl.lit(ONE_SEED_NOTE))
        .otherwise(pl.lit(BASELINE_NOTE))
    )
    return table.with_columns(note.cast(pl.String).alias("ci_note"))


def add_probe_rows(
    table: pl.DataFrame, probes: pl.DataFrame, baselines: pl.DataFrame, model: str
) -> pl.DataFrame:
    """``table`` (:func:`comparison_table`) with the rows of :func:`linear_probe` runs,
    named ``"<model> linear probe (<init>)"``."""
    name = f"{model} {PROBE_SUFFIX}"
    rows = comparison_table(probes, baselines, name)
    rows = rows.filter(pl.col("predictor").str.starts_with(f"{name} ("))
    return pl.concat([table, rows]).sort(["k", "predictor"])


def _model_of(predictor: str) -> str:
    """``"m linear probe (random)"`` -> ``"m"``."""
    name = predictor.rsplit(" (", 1)[0]
    return name.removesuffix(f" {PROBE_SUFFIX}")


_SERIES = (
    # (predictor suffix, legend label, line style, colour, filled marker)
    ("(pretrained)", "fine-tuned from pretrained weights", "-o", "tab:blue", True),
    ("(random)", "fine-tuned from random init", "-o", "tab:blue", False),
    (f"{PROBE_SUFFIX} (pretrained)", "linear probe, pretrained encoder", "--s", "tab:orange", True),
    (f"{PROBE_SUFFIX} (random)", "linear probe, random-init encoder", "--s", "tab:orange", False),
)
_BASELINE_LINES = (
    # (predictor prefix, legend label, line style, colour)
    ("Markov order", "best Markov chain", "-^", "tab:green"),
    ("prior", "class prior", "--", "black"),
    ("uniform", "chance (uniform guessing, $4^{-k}$)", ":", "grey"),
)


def _half_width(sub: pl.DataFrame) -> np.ndarray:
    """The wider of the seed and test-window 95 % half-widths (as the findings use)."""
    seeds = sub["accuracy_ci95"].fill_null(0.0).to_numpy()
    test = (
        sub["accuracy_ci95_test"].fill_null(0.0).to_numpy()
        if "accuracy_ci95_test" in sub.columns
        else np.zeros(sub.height)
    )
    return np.maximum(seeds, test)


def accuracy_vs_k_figure(table: pl.DataFrame, models: Sequence[str] | None = None) -> Any:
    """The figure of :func:`plot_accuracy_vs_k` (a matplotlib ``Figure``, not saved)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dnakmer.plots import accuracy_axis, integer_ticks

    preds = table.filter(pl.col("predictor").str.contains(r"\("))
    found = list(dict.fromkeys(_model_of(p) for p in preds["predictor"].to_list()))
    names = [m for m in models or () if m in found] + [
        m for m in found if m not in (models or ())
    ] or [""]
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(max(6.5, 3.4 * ncols + 0.6), 2.9 * nrows + 1.4), sharey=True,
        squeeze=False, layout="constrained",
    )  # fmt: skip
    ks = table["k"].unique().sort().to_list()
    values: list[float] = []
    handles: dict[str, Any] = {}
    lines: dict[str, Any] = {}
    for ax, name in zip(axes.flat, names, strict=False):
        for prefix, label, style, colour in _BASELINE_LINES:
            sub = table.filter(pl.col("predictor").str.starts_with(prefix)).sort("k")
            if sub.height:
                (line,) = ax.plot(sub["k"], sub["accuracy"], style, color=colour, lw=1.2,
                                  ms=5, zorder=1)  # fmt: skip
                lines.setdefault(label, line)
                values += sub["accuracy"].to_list()
        present = [s for s in _SERIES if f"{name} {s[0]}" in preds["predictor"]]
        for i, (suffix, label, style, colour, filled) in enumerate(present):
            sub = preds.filter(pl.col("predictor") == f"{name} {suffix}").sort("k")
            acc = sub["accuracy"].to_numpy()
            half = _half_width(sub)
            # Side by side around each k, so that the intervals do not hide each other.
            x = sub["k"].to_numpy() + (i - (len(present) - 1) / 2) * 0.06
            bars = ax.errorbar(
                x, acc, yerr=[np.minimum(half, acc), half], fmt=style, color=colour, capsize=3,
                ms=5, markerfacecolor=colour if filled else "white", zorder=2,
            )  # fmt: skip
            handles.setdefault(label, bars)
            values += list(acc + half) + [a for a in acc - half if a > 0]
        ax.set_title(name or "model", fontsize=10)
        integer_ticks(ax, ks)
        ax.set_xlabel("k (bases predicted)")
        ax.grid(axis="y", color="0.9", lw=0.6)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    scale = accuracy_axis(axes[0, 0], values)
    for ax in axes[:, 0]:
        ax.set_ylabel("test accuracy" + (" (log scale)" if scale == "log" else ""))
    fig.suptitle("Next-k-mer prediction: test accuracy with 95 % intervals", fontsize=11)
    handles |= lines  # models first, then the reference lines
    fig.legend(
        list(handles.values()), list(handles), loc="outside lower center",
        ncol=min(3 if ncols > 1 else 2, len(handles)), fontsize=8, frameon=False,
    )  # fmt: skip
    return fig


def plot_accuracy_vs_k(
    table: pl.DataFrame, path: str | os.PathLike[str], models: Sequence[str] | None = None
) -> Path:
    """PNG of test accuracy vs k, one panel per model: the model fine-tuned from its
    pretrained weights and from random init, and the linear probes of its frozen encoder
    (pretrained and random init), each with its 95 % interval (the wider of the seed and
    test-window intervals, as the findings use); the best Markov chain, the class prior
    and chance (uniform guessing) as lines. Ticks only at the k that were run; the y axis
    is linear from 0 unless accuracies span more than a factor of 10 (then logarithmic
    over the data's range, see :func:`dnakmer.plots.accuracy_axis`). Panels follow
    ``models`` (model labels), then any other model in ``table``.
    """
    import matplotlib.pyplot as plt

    fig = accuracy_vs_k_figure(table, models)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def write_comparison(
    table: pl.DataFrame, runs: pl.DataFrame, out_dir: str | os.PathLike[str]
) -> dict[str, Path]:
    """``comparison.parquet/.json``, ``runs.parquet`` and ``accuracy_vs_k.png``."""
    out = Path(out_dir)
    with atomic_open(out / "comparison.parquet", "wb") as f:
        table.write_parquet(f)
    with atomic_open(out / "runs.parquet", "wb") as f:
        runs.write_parquet(f)
    write_json(out / "comparison.json", table.to_dicts())
    return {
        "comparison": out / "comparison.parquet",
        "runs": out / "runs.parquet",
        "plot": plot_accuracy_vs_k(table, out / "accuracy_vs_k.png"),
    }
