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
from dnakmer.confidence import Z95
from dnakmer.training.finetune import data_from_dataset, finetune, load_results, seed_summary
from dnakmer.training.trainer import TrainOptions

__all__ = [
    "PROBE_SUFFIX",
    "add_probe_rows",
    "benchmark_model",
    "comparison_table",
    "linear_probe",
    "plot_accuracy_vs_k",
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
        class), ``n_seeds``, ``n_test``. The best Markov order is the one with the
        highest test accuracy at that k.
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
    return pl.DataFrame(out, schema=schema).sort(["k", "predictor"])


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


def plot_accuracy_vs_k(table: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """PNG of test accuracy vs k: models with 95 % CI error bars (the wider of the seed
    and test-window intervals), baselines as lines. Colour marks the model, a dashed line
    its linear probe, a hollow marker random init.

    The y axis is logarithmic (chance falls as 4^-k); lower error bars are clipped at the
    axis, and a model that got no test sample right is drawn at the bottom edge.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.2), constrained_layout=True)
    # The axis starts at half the smallest accuracy above zero; zeros sit on that edge.
    positive = table.filter(pl.col("accuracy") > 0)["accuracy"]
    floor = float(positive.min()) / 2 if positive.len() else 0.5 / 1000
    baselines = (
        ("best Markov", "Markov", "-s", "tab:green"),
        ("prior", "prior", "--x", "black"),
        ("uniform", "uniform", ":+", "grey"),
    )
    for label, prefix, style, colour in baselines:
        sub = table.filter(pl.col("predictor").str.starts_with(prefix)).sort("k")
        if sub.height:
            ax.plot(sub["k"], sub["accuracy"].clip(floor), style, color=colour, label=label)
    models = table.filter(pl.col("predictor").str.contains(r"\("))
    colours = ["tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:pink"]
    # Colour: the model; line: fine-tuned (solid) or linear probe (dashed); marker:
    # pretrained (filled) or random init (hollow).
    names = models["predictor"].unique().sort().to_list()
    bases = sorted({_model_of(n) for n in names})
    for name in names:
        sub = models.filter(pl.col("predictor") == name).sort("k")
        acc = sub["accuracy"].clip(floor).to_numpy()
        ci = np.maximum(
            sub["accuracy_ci95"].fill_null(0.0).to_numpy(),
            sub["accuracy_ci95_test"].fill_null(0.0).to_numpy()
            if "accuracy_ci95_test" in sub.columns
            else 0.0,
        )
        lower = np.minimum(ci, acc - floor)
        colour = colours[bases.index(_model_of(name)) % len(colours)]
        ax.errorbar(
            sub["k"],
            acc,
            yerr=[lower, ci],
            fmt="--o" if f" {PROBE_SUFFIX} (" in name else "-o",
            capsize=3,
            color=colour,
            markerfacecolor="none" if name.endswith("(random)") else colour,
            label=name,
        )
    ks = table["k"].unique().sort().to_list()
    ax.set_xticks(ks)
    ax.set(
        xlabel="k (next bases predicted)",
        ylabel="test accuracy",
        yscale="log",
        title="Next-k-mer prediction",
        ylim=(floor * 0.8, None),
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
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
