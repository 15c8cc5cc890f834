"""Figures for the masked-token and embedding analyses (matplotlib, Agg backend).

Every function takes a table the analysis returned and a PNG path, writes the figure
atomically and returns the path. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "accuracy_axis",
    "integer_ticks",
    "masked_bases",
    "model_vs_rule",
    "pretraining_curves",
    "probe_curves",
    "projection_grid",
    "scan_heatmap",
    "span_position_accuracy",
    "variant_scores",
]


def _figure(n_panels: int = 1, ncols: int = 1, size: float = 4.0) -> tuple[Any, np.ndarray]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    nrows = -(-n_panels // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, 0.8 * size * nrows), squeeze=False
    )
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, axes


def integer_ticks(ax: Any, values: Any, axis: str = "x") -> list[int]:
    """Ticks at the integers in ``values`` (k, Markov order, layer): no fractional ticks
    between two values. Returns the ticks."""
    ticks = sorted({int(v) for v in values})
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks)
    lo, hi = (ticks[0], ticks[-1]) if ticks else (0, 1)
    pad = 0.5 if hi == lo else min(0.5, 0.15 * (hi - lo))
    (ax.set_xlim if axis == "x" else ax.set_ylim)(lo - pad, hi + pad)
    return ticks


LOG_RANGE = 10.0
"""Accuracies spanning more than this factor are drawn on a log axis."""


def accuracy_axis(ax: Any, values: Any) -> str:
    """A y axis for accuracies: linear from 0 when the positive values span at most
    :data:`LOG_RANGE` (a factor of 10), otherwise logarithmic over the data's range with
    plain decimal tick labels (0.001, 0.01, 0.1). Returns the scale."""
    from matplotlib.ticker import FuncFormatter

    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], float)
    if v.size == 0 or v.max() <= LOG_RANGE * v.min():
        ax.set_ylim(0.0, (v.max() if v.size else 1.0) * 1.12)
        return "linear"
    ax.set_yscale("log")
    ax.set_ylim(v.min() / 1.5, v.max() * 1.5)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: ""))
    return "log"


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    import matplotlib.pyplot as plt

    from dnakmer._io import atomic_open

    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


_CONTROL_NAMES = {
    "none": "real sequence",
    "di": "dinucleotide-shuffled",
    "mono": "mononucleotide-shuffled",
}


def span_position_accuracy(by_pos: pl.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """Top-1 accuracy of model (solid) and neighbour rule (dashed) by position inside
    the masked span; one panel per scheme, one colour per control.

    A scheme whose span holds one token (``single``) has nothing to draw against
    position and gets no panel (:func:`model_vs_rule` shows it); with no scheme left, no
    figure is written (an earlier one at ``path`` is removed) and None is returned."""
    spans = by_pos.group_by("scheme", maintain_order=True).agg(pl.col("span_pos").n_unique())
    schemes = spans.filter(pl.col("span_pos") > 1)["scheme"].to_list()
    if not schemes:
        Path(path).unlink(missing_ok=True)
        return None
    fig, axes = _figure(len(schemes), ncols=min(3, len(schemes)), size=4.6)
    for ax, scheme in zip(axes.flat, schemes, strict=False):
        sub = by_pos.filter(pl.col("scheme") == scheme)
        for i, control in enumerate(sub["control"].unique(maintain_order=True).to_list()):
            d = sub.filter(pl.col("control") == control).sort("span_pos")
            colour = f"C{i}"
            name = {"none": "real", "di": "di-shuffled", "mono": "mono-shuffled"}.get(
                control, control
            )
            ax.plot(d["span_pos"], d["model_top1"], "o-", color=colour, label=f"model, {name}")
            ax.plot(
                d["span_pos"],
                d["rule_top1"],
                "s--",
                color=colour,
                alpha=0.6,
                label=f"neighbour rule, {name}",
            )
        integer_ticks(ax, sub["span_pos"].to_list())
        ax.set_title(f"{scheme} masking: accuracy along the masked span", fontsize=10)
        ax.set_xlabel("token position inside the masked span (0 = first)")
        ax.set_ylabel("top-1 accuracy on masked tokens")
        top = max(sub["model_top1"].max() or 0.0, sub["rule_top1"].max() or 0.0)  # type: ignore[operator]
        ax.set_ylim(0, min(1.0, 1.6 * float(top)) or 1.0)  # type: ignore[arg-type]
        ax.grid(axis="y", color="0.9", lw=0.6)
        ax.legend(fontsize=7, loc="upper center", ncol=2)
    return _save(fig, path)


_MASK_METRICS = {
    "model_top1": "model top-1",
    "rule_top1": "neighbour rule top-1",
    "agreement": "model and rule agree",
    "consistency": "model agrees with every visible base",
    "nt_acc_hidden": "model's hidden bases right",
}


def model_vs_rule(summary: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Bars of model top-1 and rule top-1 (with 95 % Wilson intervals over the masked
    tokens), agreement, consistency and hidden-base accuracy per scheme and control, and
    one base in four (dotted) for the hidden bases."""
    from dnakmer.confidence import wilson_interval

    metrics = [m for m in _MASK_METRICS if m in summary.columns]
    labels = [
        f"{s} masking\n{_CONTROL_NAMES.get(c, c)}"
        for s, c in zip(summary["scheme"], summary["control"], strict=True)
    ]
    fig, axes = _figure(1, size=max(5.0, 1.2 * len(labels) + 2.5))
    ax = axes[0, 0]
    x = np.arange(len(labels))
    width = 0.8 / len(metrics)
    n = summary["n"].to_numpy() if "n" in summary.columns else None
    for i, m in enumerate(metrics):
        values = summary[m].fill_null(np.nan).to_numpy().astype(float)
        err = None
        if n is not None and m in ("model_top1", "rule_top1"):
            ci = np.array([wilson_interval(v * k, int(k)) for v, k in zip(values, n, strict=True)])
            err = np.clip(np.vstack([values - ci[:, 0], ci[:, 1] - values]), 0.0, None)
        ax.bar(x + (i - len(metrics) / 2 + 0.5) * width, values, width,
               yerr=err, capsize=2, label=_MASK_METRICS[m])  # fmt: skip
    if "nt_acc_hidden" in metrics:
        ax.axhline(0.25, color="0.4", ls=":", lw=1, label="one base in four (hidden bases)")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of masked tokens (bases for hidden bases)")
    ax.set_title("Model vs neighbour rule on masked tokens (bars: 95 % intervals)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    return _save(fig, path)


def projection_grid(
    coords: np.ndarray,
    colours: dict[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> Path:
    """Scatter of 2-D ``coords`` (n, 2) once per colouring (categorical if integer)."""
    fig, axes = _figure(len(colours), ncols=min(4, len(colours)), size=3.2)
    for ax, (name, values) in zip(axes.flat, colours.items(), strict=False):
        categorical = np.issubdtype(values.dtype, np.integer)
        sc = ax.scatter(
            coords[:, 0], coords[:, 1], c=values, s=3, cmap="tab10" if categorical else "viridis"
        )
        if categorical:
            handles, _ = sc.legend_elements()
            names = ["A", "T", "C", "G"][: len(handles)]
            ax.legend(handles, names, fontsize=6, markerscale=0.6)
        else:
            fig.colorbar(sc, ax=ax)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def probe_curves(table: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Linear-probe accuracy vs layer for each target, and vs distance for each layer,
    with chance levels dotted."""
    fig, axes = _figure(2, ncols=2)
    own = table.filter(pl.col("target") == "own")
    ax = axes[0, 0]
    for off in sorted(own["offset"].unique().to_list()):
        d = own.filter(pl.col("offset") == off).sort("layer")
        ax.plot(d["layer"], d["accuracy"], "o-", label=f"own nt {off}")
    ax.plot(
        own.group_by("layer").agg(pl.col("chance").mean()).sort("layer")["layer"],
        own.group_by("layer").agg(pl.col("chance").mean()).sort("layer")["chance"],
        "k:",
        label="chance",
    )
    integer_ticks(ax, own["layer"].to_list())
    ax.set_xlabel("layer")
    ax.set_ylabel("probe accuracy")
    ax.set_title("identity: the token's own nucleotides")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3)
    ctx = table.filter(pl.col("target") != "own")
    ax = axes[0, 1]
    for i, layer in enumerate(sorted(ctx["layer"].unique().to_list())):
        d = (
            ctx.filter(pl.col("layer") == layer)
            .group_by("distance")
            .agg(pl.col("accuracy").mean(), pl.col("chance").mean())
            .sort("distance")
        )
        ax.plot(d["distance"], d["accuracy"], "o-", color=f"C{i}", label=f"layer {layer}")
        ax.plot(d["distance"], d["chance"], ":", color=f"C{i}")
    ax.plot([], [], ":", color="0.3", label="chance (dotted, colour of its layer)")
    integer_ticks(ax, ctx["distance"].to_list())
    ax.set_xlabel("distance outside the token (nt)")
    ax.set_ylabel("probe accuracy")
    ax.set_title("context: nucleotides outside the token")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3)
    return _save(fig, path)


def pretraining_curves(curves: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Masked-LM training loss, held-out loss and held-out masked-token accuracy vs
    optimizer step, one line per model.

    ``curves`` has columns ``model``, ``step``, ``quantity`` (``loss``, ``eval_loss``,
    ``eval_mlm_accuracy``) and ``value``, as from :func:`dnakmer.training.pretrain.history_curve`.
    """
    panels = (
        ("loss", "training loss"),
        ("eval_loss", "held-out loss"),
        ("eval_mlm_accuracy", "held-out masked-token accuracy"),
    )
    fig, axes = _figure(len(panels), ncols=len(panels), size=3.6)
    for ax, (quantity, title) in zip(axes.flat, panels, strict=False):
        for i, model in enumerate(curves["model"].unique(maintain_order=True).to_list()):
            d = curves.filter((pl.col("model") == model) & (pl.col("quantity") == quantity))
            if d.height:
                d = d.sort("step")
                ax.plot(d["step"], d["value"], "o-", ms=2.5, color=f"C{i}", label=model)
        ax.set_xlabel("optimizer step")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    return _save(fig, path)


def masked_bases(table: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Accuracy on the same hidden bases for every model (filled: pretrained, hollow:
    its random-init twin; bars: 95 % intervals), the best Markov chain (dashed) and one
    base in four (dotted). ``table`` has ``model``, ``accuracy``, ``ci_low``, ``ci_high``,
    ``random_init``, ``random_low``, ``random_high``, ``markov``, ``markov_order``."""
    fig, axes = _figure(1, size=5.0)
    ax = axes[0, 0]
    n = table.height
    y = np.arange(n)[::-1].astype(float)
    acc = table["accuracy"].to_numpy()
    err = np.vstack([acc - table["ci_low"].to_numpy(), table["ci_high"].to_numpy() - acc])
    ax.errorbar(acc, y + 0.12, xerr=err, fmt="o", color="C0", capsize=3, label="pretrained")
    if "random_init" in table.columns and table["random_init"].null_count() < n:
        r = table["random_init"].to_numpy().astype(float)
        rerr = np.vstack(
            [r - table["random_low"].to_numpy(), table["random_high"].to_numpy() - r]
        )
        ax.errorbar(r, y - 0.12, xerr=rerr, fmt="o", mfc="none", color="C1", capsize=3,
                    label="random init")  # fmt: skip
    markov = float(table["markov"][0])
    ax.axvline(markov, color="0.3", ls="--",
               label=f"best Markov chain (order {int(table['markov_order'][0])})")  # fmt: skip
    ax.axvline(0.25, color="0.6", ls=":", label="one base in four")
    ax.set_yticks(y, table["model"].to_list())
    ax.set_xlabel("accuracy on the hidden bases")
    ax.set_title(
        "Masked bases: accuracy, same bases\nfor every model (95 % intervals)", fontsize=10
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8)
    return _save(fig, path)


def variant_scores(table: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Zero-shot variant scores of a masked LM with the two masks side by side. Left:
    the probability of the reference base (every covering token masked vs one token).
    Right: each mask's score against the Markov chain's log-ratio, with Spearman's rho.
    ``table`` is the scored rows of ``VariantScores.table``."""
    fig, axes = _figure(2, ncols=2, size=4.6)
    left, right = axes[0, 0], axes[0, 1]
    bins = np.linspace(0.0, 1.0, 41)
    masks = (
        ("", "every covering token masked", "C0"),
        ("single_", "one token masked (as toolkits do)", "C3"),
    )
    markov = table["markov_score"].to_numpy().astype(float)
    for prefix, name, color in masks:
        p_ref = table[f"{prefix}p_ref"].to_numpy().astype(float)
        left.hist(p_ref, bins=bins, alpha=0.55, color=color, label=name)
        score = table[f"{prefix}score"].to_numpy().astype(float)
        ok = np.isfinite(score) & np.isfinite(markov)
        rho = float("nan")
        if ok.sum() > 2:
            rx = pl.Series(score[ok]).rank("average").to_numpy()
            ry = pl.Series(markov[ok]).rank("average").to_numpy()
            if rx.std() > 0 and ry.std() > 0:
                rho = float(np.corrcoef(rx, ry)[0, 1])
        right.scatter(markov[ok], score[ok], s=5, alpha=0.35, color=color,
                      label=f"{name}: Spearman {rho:.2f}")  # fmt: skip
    left.set_xlabel("P(reference base)")
    left.set_ylabel("variants")
    left.set_title("How sure the model is of the reference", fontsize=10)
    left.legend(fontsize=7, loc="upper center")
    right.axhline(0.0, color="0.6", lw=0.8)
    right.set_xlabel("Markov chain: ln P(alt) - ln P(ref)")
    right.set_ylabel("model: ln P(alt) - ln P(ref)")
    right.set_title("Model score against sequence statistics", fontsize=10)
    right.legend(fontsize=7, loc="lower right", markerscale=3)
    return _save(fig, path)


SCAN_PANEL = 100
"""Positions per row of the scan heat map (up to 20 rows; longer regions are drawn in
20 rows of more positions each)."""


def scan_heatmap(
    scores: np.ndarray,
    reference: str,
    first: int,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    colorbar: str = "score",
) -> Path:
    """Heat map of a scan: positions along the sequence (wrapped into rows), the four
    bases A, C, G, T down each row, the reference base marked with a dot; blue below 0
    (the substitution lowers the score), red above.

    Parameters
    ----------
    scores : numpy.ndarray, shape (n, 4)
        Columns A, C, G, T (NaN at positions that were not scored).
    reference : str
        The region's bases (n letters).
    first : int
        1-based genome coordinate of the first position.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    n = len(scores)
    per_row = max(1, n) if n <= SCAN_PANEL else max(SCAN_PANEL, -(-n // 20))
    n_rows = max(1, -(-n // per_row))
    finite = scores[np.isfinite(scores)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = limit or 1.0
    fig, axes = plt.subplots(
        n_rows, 1, figsize=(min(16.0, 3.0 + per_row * 0.12), 1.2 + 1.0 * n_rows), squeeze=False
    )
    image = None
    for r in range(n_rows):
        ax = axes[r, 0]
        lo, hi = r * per_row, min(n, (r + 1) * per_row)
        block = np.full((4, per_row), np.nan)
        block[:, : hi - lo] = scores[lo:hi].T
        extent = (first + lo - 0.5, first + lo + per_row - 0.5, 3.5, -0.5)
        image = ax.imshow(block, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                          interpolation="nearest", extent=extent)  # fmt: skip
        if hi - lo <= 250:
            xs = [first + i for i in range(lo, hi) if reference[i] in "ACGT"]
            ys = ["ACGT".index(reference[i]) for i in range(lo, hi) if reference[i] in "ACGT"]
            ax.scatter(xs, ys, s=6 if per_row > 100 else 10, color="black", marker="o")
        ax.set_yticks(range(4), list("ACGT"))
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("position (reference base: dot)")
    if title:
        axes[0, 0].set_title(title, fontsize=10)
    fig.subplots_adjust(left=0.05, right=0.9, top=0.9 if title else 0.95, hspace=0.5)
    if image is not None:
        fig.colorbar(image, cax=fig.add_axes((0.92, 0.15, 0.012, 0.7)), label=colorbar)
    from dnakmer._io import atomic_open

    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
