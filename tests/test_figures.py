"""Figures that read without the text: integer ticks for k and Markov order, a y axis
that fits the accuracies, every reference line in the legend; and the next-k-mer
comparison's note on why an interval over seeds is empty."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import polars as pl
import pytest

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt

from dnakmer import plots
from dnakmer.datasets.baselines import baselines_figure
from dnakmer.probes.nextkmer import (
    BASELINE_NOTE,
    ONE_SEED_NOTE,
    accuracy_vs_k_figure,
    comparison_table,
)


def _baselines(ks: list[int], orders: list[int]) -> pl.DataFrame:
    rows = []
    for k in ks:
        rows.append({"baseline": "uniform", "order": None, "k": k, "accuracy": 4.0**-k})
        rows.append({"baseline": "prior", "order": None, "k": k, "accuracy": 1.3 * 4.0**-k})
        rows += [
            {"baseline": "markov", "order": m, "k": k, "accuracy": (1.4 + 0.05 * m) * 4.0**-k}
            for m in orders
        ]
    metrics = {"top5_accuracy": 0.9, "mcc": 0.1, "macro_f1": 0.2, "cross_entropy_bits": 2.0}
    return pl.DataFrame(rows).with_columns(
        *(pl.lit(v).alias(name) for name, v in metrics.items()), n_test=pl.lit(4000)
    )


def _runs(ks: list[int], seeds: int) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"k": k, "init": init, "seed": s, "test_accuracy": 1.5 * 4.0**-k + 0.001 * s,
             "test_top5_accuracy": 0.9, "test_mcc": 0.1, "test_macro_f1": 0.2,
             "test_cross_entropy_bits": 2.0, "test_majority_share": 0.3}
            for k in ks
            for init in ("pretrained", "random")
            for s in range(seeds)
        ]
    )  # fmt: skip


def _tick_values(ax: object) -> list[float]:
    return [float(t) for t in ax.get_xticks()]  # type: ignore[attr-defined]


def test_accuracy_vs_k_has_integer_k_ticks_a_linear_axis_and_every_line_named() -> None:
    table = comparison_table(_runs([1, 2], 1), _baselines([1, 2], [0, 1, 2]), "m")
    fig = accuracy_vs_k_figure(table, ["m"])
    try:
        ax = fig.axes[0]
        assert _tick_values(ax) == [1.0, 2.0]
        # Accuracies 0.06 to 0.4: a linear axis from 0, not a log axis running empty.
        assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0.0
        assert ax.get_ylim()[1] < 0.5
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        for name in ("fine-tuned from pretrained weights", "fine-tuned from random init",
                     "best Markov chain", "class prior"):  # fmt: skip
            assert name in labels
        assert any(label.startswith("chance") for label in labels)
    finally:
        plt.close(fig)


def test_accuracy_vs_k_one_panel_per_model_and_log_axis_over_wide_ranges() -> None:
    base = _baselines([2, 3, 4, 5, 6], [0, 2])
    table = pl.concat(
        [comparison_table(_runs([2, 3, 4, 5, 6], 1), base, m) for m in ("a", "b")]
    ).unique(["k", "predictor"], keep="first")
    fig = accuracy_vs_k_figure(table, ["b", "a"])
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert [ax.get_title() for ax in visible] == ["b", "a"]
        assert _tick_values(visible[0]) == [2.0, 3.0, 4.0, 5.0, 6.0]
        # 4^-2 to 4^-6 spans a factor of 256: log axis over the data only.
        ax = visible[0]
        assert ax.get_yscale() == "log"
        low, high = ax.get_ylim()
        assert 4.0**-6 / 2 < low < 4.0**-6 and high < 1.0
    finally:
        plt.close(fig)


def test_baselines_figure_has_integer_k_and_order_ticks() -> None:
    fig = baselines_figure(_baselines([1, 2], [0, 1, 2, 3]))
    try:
        ax_k, ax_m = fig.axes
        assert _tick_values(ax_k) == [1.0, 2.0]
        assert _tick_values(ax_m) == [0.0, 1.0, 2.0, 3.0]
        assert "class prior" in [t.get_text() for t in ax_k.get_legend().get_texts()]
        assert any("prior" in t.get_text() for t in ax_m.get_legend().get_texts())
    finally:
        plt.close(fig)


def test_integer_ticks_and_accuracy_axis() -> None:
    fig, ax = plt.subplots()
    try:
        assert plots.integer_ticks(ax, [3, 1, 2, 2]) == [1, 2, 3]
        assert _tick_values(ax) == [1.0, 2.0, 3.0]
        assert plots.accuracy_axis(ax, [0.06, 0.3, None]) == "linear"
        assert ax.get_ylim() == pytest.approx((0.0, 0.3 * 1.12))
        assert plots.accuracy_axis(ax, [0.001, 0.3, 0.0]) == "log"
    finally:
        plt.close(fig)


def test_span_position_figure_leaves_out_one_position_schemes(tmp_path: Path) -> None:
    single = pl.DataFrame(
        {"scheme": ["single"] * 2, "control": ["none", "di"], "span_pos": [0, 0],
         "model_top1": [1.0, 1.0], "rule_top1": [1.0, 1.0]}
    )  # fmt: skip
    path = tmp_path / "span.png"
    path.write_bytes(b"stale")
    assert plots.span_position_accuracy(single, path) is None
    assert not path.exists()
    spans = pl.DataFrame(
        {"scheme": ["dnabert"] * 3, "control": ["none"] * 3, "span_pos": [0, 1, 2],
         "model_top1": [0.3, 0.32, 0.31], "rule_top1": [0.33, 0.34, 0.3]}
    )  # fmt: skip
    assert plots.span_position_accuracy(pl.concat([single, spans]), path) == path
    assert path.read_bytes().startswith(b"\x89PNG")


def test_model_vs_rule_draws_intervals_for_one_scheme(tmp_path: Path) -> None:
    summary = pl.DataFrame(
        {"scheme": ["single"], "control": ["none"], "n": [300], "model_top1": [1.0],
         "rule_top1": [1.0], "agreement": [1.0], "consistency": [1.0],
         "nt_acc_hidden": [None]}
    )  # fmt: skip
    assert plots.model_vs_rule(summary, tmp_path / "m.png").read_bytes().startswith(b"\x89PNG")


def test_one_seed_comparison_says_why_the_seed_interval_is_empty() -> None:
    base = _baselines([2], [0, 1])
    one = comparison_table(_runs([2], 1), base, "m")
    model = one.filter(pl.col("predictor") == "m (pretrained)").row(0, named=True)
    assert model["accuracy_ci95"] is None and model["ci_note"] == ONE_SEED_NOTE
    assert model["accuracy_ci95_test"] == pytest.approx(
        1.96 * np.sqrt(model["accuracy"] * (1 - model["accuracy"]) / 4000), rel=1e-3
    )
    assert "accuracy_ci95_test" in ONE_SEED_NOTE
    prior = one.filter(pl.col("predictor") == "prior").row(0, named=True)
    assert prior["accuracy_ci95"] is None and prior["ci_note"] == BASELINE_NOTE
    three = comparison_table(_runs([2], 3), base, "m")
    model = three.filter(pl.col("predictor") == "m (pretrained)").row(0, named=True)
    assert model["accuracy_ci95"] is not None and model["ci_note"] is None
