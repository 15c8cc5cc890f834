"""The statistics and sentences behind summary.md: every stated direction follows the
numbers (intervals, signs, degenerate models)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dnakmer.confidence import compare_intervals, position, spearman_interval, wilson_interval
from dnakmer.study.findings import (
    OVERVIEW_COLUMNS,
    embed_sentence,
    embedding_findings,
    interval_text,
    mask_findings,
    mask_sentence,
    nextkmer_findings,
    nextkmer_sentence,
    overview_table,
)


@pytest.mark.parametrize(("hits", "n"), [(38, 100), (0, 50), (50, 50), (3, 1000), (700, 2048)])
def test_wilson_interval_matches_scipy(hits: int, n: int) -> None:
    from scipy.stats import binomtest

    expected = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(hits, n)
    assert lo == pytest.approx(expected.low, abs=1e-12)
    assert hi == pytest.approx(expected.high, abs=1e-12)


def test_wilson_interval_of_nothing_is_everything() -> None:
    assert wilson_interval(5, 0) == (0.0, 1.0)


def test_wilson_interval_covers_the_true_proportion_about_95_percent() -> None:
    rng = np.random.default_rng(0)
    p, n, trials = 0.3, 200, 4000
    hits = rng.binomial(n, p, size=trials)
    covered = sum(lo <= p <= hi for lo, hi in (wilson_interval(h, n) for h in hits))
    assert 0.93 < covered / trials < 0.97


def test_spearman_interval_is_fisher_z() -> None:
    lo, hi = spearman_interval(-0.3, 4096)
    half = 1.959963984540054 / math.sqrt(4093)
    assert lo == pytest.approx(math.tanh(math.atanh(-0.3) - half))
    assert hi == pytest.approx(math.tanh(math.atanh(-0.3) + half))
    assert spearman_interval(0.5, 3) == (-1.0, 1.0)


def test_interval_comparisons() -> None:
    assert compare_intervals((0.3, 0.4), (0.1, 0.2)) == "higher"
    assert compare_intervals((0.1, 0.2), (0.3, 0.4)) == "lower"
    assert compare_intervals((0.1, 0.35), (0.3, 0.4)) == "overlapping"
    assert position(0.25, (0.3, 0.4)) == "higher"
    assert position(0.45, (0.3, 0.4)) == "lower"
    assert position(0.35, (0.3, 0.4)) == "overlapping"


def _mask_tokens(model_right: list[bool], rule_right: list[bool], preds: list[int]) -> pl.DataFrame:
    n = len(model_right)
    rows = {
        "scheme": ["dnabert"] * n,
        "control": ["none"] * n,
        "model_rank": [0 if r else 3 for r in model_right],
        "rule_rank": [0 if r else 2 for r in rule_right],
        "model_top1": preds,
        "agree": [a == b for a, b in zip(model_right, rule_right, strict=True)],
        "n_hidden": [1] * n,
        "nt_correct_hidden": [0] * n,
        "span_pos": [i % 6 for i in range(n)],
    }
    return pl.DataFrame(rows)


def _write_mask(folder: Path, real: pl.DataFrame, di: pl.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pl.concat([real, di.with_columns(control=pl.lit("di"))]).write_parquet(
        folder / "tokens.parquet"
    )
    return folder


def test_mask_finding_states_the_direction_its_numbers_show(tmp_path: Path) -> None:
    n = 400
    model = [i % 10 < 4 for i in range(n)]  # 0.40
    rule = [i % 10 < 4 or i % 10 == 9 for i in range(n)]  # 0.50
    real = _mask_tokens(model, rule, list(range(n)))
    di = _mask_tokens([i % 10 < 2 for i in range(n)], rule, list(range(n)))  # 0.20
    f = mask_findings(_write_mask(tmp_path / "m", real, di))
    assert f["model_top1"] == 0.4 and f["rule_top1"] == 0.5
    assert f["model_to_rule_ratio"] == pytest.approx(0.8)
    assert f["model_vs_rule"] == "lower" and f["di_vs_real"] == "lower"
    assert f["rule_explains"] == 1.0 and f["degenerate"] is None
    text = mask_sentence("m", f)
    assert "0.80 times the rule's accuracy, less than the neighbour rule" in text
    ends = [i for i in range(n) if i % 6 in (0, 5)]
    assert f["ends_n"] == len(ends)
    assert f["ends_model_top1"] == sum(model[i] for i in ends) / len(ends)
    assert f["inner_rule_top1"] == sum(rule[i] for i in range(n) if i % 6 not in (0, 5)) / (
        n - len(ends)
    )
    assert f"next to a visible neighbour, the model recovers {f['ends_model_top1']:.3f}" in text
    assert "lower than on real sequence: beyond the overlaps it uses the genome's" in text

    # Same accuracy on shuffled sequence: no claim that context is used.
    f = mask_findings(_write_mask(tmp_path / "same", real, real.clone()))
    assert f["di_vs_real"] == "overlapping"
    text = mask_sentence("same", f)
    assert "not distinguishable from real sequence: nothing beyond the overlaps" in text
    assert "statistics" not in text


def test_mask_finding_flags_a_degenerate_model(tmp_path: Path) -> None:
    n = 300
    rule = [i % 3 == 0 for i in range(n)]
    nothing = _mask_tokens([False] * n, rule, list(range(n)))
    f = mask_findings(_write_mask(tmp_path / "none", nothing, nothing.clone()))
    assert f["degenerate"] == "recovers none of the masked tokens"
    text = mask_sentence("none", f)
    assert "DEGENERATE" in text and "times the rule" not in text and "statistics" not in text

    constant = _mask_tokens([i % 50 == 0 for i in range(n)], rule, [7] * n)
    f = mask_findings(_write_mask(tmp_path / "const", constant, constant.clone()))
    assert f["majority_share"] == 1.0 and "constant predictor" in f["degenerate"]


def _embed_summary(folder: Path, rho: float, control: float, own: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sim = [
        {"relation": "hamming_distance", "value": rho},
        {"relation": "reverse_complement_pairs", "value": 0.1},
        {"relation": "random_pairs", "value": 0.0},
    ]
    probes = [
        {"layer": 2, "target": "own", "distance": 0, "accuracy": own, "chance": 0.27,
         "n_test": 400},
        {"layer": 2, "target": "left", "distance": 1, "accuracy": 0.28, "chance": 0.27,
         "n_test": 400},
    ]  # fmt: skip
    summary = {
        "kmer_similarity": sim,
        "kmer_similarity_random_init": [{"relation": "hamming_distance", "value": control}],
        "n_kmers": 4096,
        "probes": probes,
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_embedding_finding_reads_the_sign_and_the_control(tmp_path: Path) -> None:
    f = embedding_findings(_embed_summary(tmp_path / "a", -0.35, 0.002, 0.99))
    assert f["hamming_direction"] == "negative" and f["vs_control"] == "more negative"
    assert f["own_vs_chance"] == "higher" and f["neighbour_vs_chance"] == "overlapping"
    text = embed_sentence("a", f)
    assert "k-mers sharing bases lie closer" in text
    assert "more negative than the control: pretraining organised them by sequence" in text
    assert "(above chance, chance 0.270)" in text and "(at chance, chance 0.270)" in text

    # A correlation of +0.005 is no relation, however the sentence used to read it.
    f = embedding_findings(_embed_summary(tmp_path / "b", 0.005, 0.0, 0.28))
    assert f["hamming_direction"] == "none" and f["vs_control"] == "overlapping"
    text = embed_sentence("b", f)
    assert "no relation distinguishable from zero" in text and "lie closer" not in text
    assert "(not distinguishable from the control)" in text

    f = embedding_findings(_embed_summary(tmp_path / "c", 0.2, 0.0, 0.3))
    assert f["hamming_direction"] == "positive" and f["vs_control"] == "less negative"


def _comparison(pre: float, rand: float, share: float, mcc: float = 0.1) -> pl.DataFrame:
    n = 2000
    rows = []
    for name, acc, ms in (("m (pretrained)", pre, share), ("m (random)", rand, 0.2)):
        rows.append({"k": 2, "predictor": name, "accuracy": acc, "accuracy_ci95": None,
                     "accuracy_ci95_test": 1.96 * (acc * (1 - acc) / n) ** 0.5,
                     "mcc": mcc, "majority_share": ms, "n_test": n})  # fmt: skip
    for name, acc in (("prior", 0.086), ("uniform", 0.0625), ("Markov order 4", 0.12)):
        rows.append({"k": 2, "predictor": name, "accuracy": acc, "n_test": n})
    return pl.DataFrame(rows)


def test_nextkmer_finding_compares_with_intervals() -> None:
    [r] = nextkmer_findings(_comparison(0.15, 0.095, 0.3), "m")
    assert r["pretrained_vs_random"] == "higher"
    assert r["pretrained_vs_prior"] == "higher" and r["pretrained_vs_markov"] == "higher"
    assert r["random_vs_prior"] == "overlapping" and r["random_vs_markov"] == "lower"
    assert r["pretrained_degenerate"] is None
    text = nextkmer_sentence("m", r)
    assert "pretraining helps" in text and "above the class prior" in text
    assert "above the best Markov chain (order 4, 0.120)" in text

    [r] = nextkmer_findings(_comparison(0.118, 0.121, 0.3), "m")
    assert r["pretrained_vs_random"] == "overlapping" and r["pretrained_vs_markov"] == "overlapping"
    assert "no difference from pretraining" in nextkmer_sentence("m", r)


def test_nextkmer_finding_flags_a_constant_predictor() -> None:
    [r] = nextkmer_findings(_comparison(0.086, 0.086, 0.98, mcc=0.0), "m")
    assert "constant predictor" in r["pretrained_degenerate"]
    text = nextkmer_sentence("m", r)
    assert "pretrained model is DEGENERATE: it predicts one class for 98%" in text
    assert not any(w in text for w in ("helps", "hurts", "no difference"))

    [r] = nextkmer_findings(_comparison(0.088, 0.15, 0.5, mcc=0.0), "m")
    assert r["pretrained_degenerate"].startswith("is no better than the class prior")
    assert "it is no better than the class prior" in nextkmer_sentence("m", r)


def test_intervals_read_as_ranges_not_as_minus_signs() -> None:
    assert interval_text([0.28, 0.3123]) == "0.280\u20130.312"
    assert interval_text((-0.3496, -0.2946)) == "-0.350 to -0.295"
    assert interval_text((-0.1026, 0.0716)) == "-0.103 to 0.072"


def _overview_findings() -> dict:
    return {
        "masked_bases": {
            "over": {"status": "ran", "accuracy": 0.2959, "accuracy_ci95": [0.28, 0.3123],
                     "markov": 0.3128, "vs_markov": "overlapping"},
            "char": {"status": "ran", "accuracy": 0.2686, "accuracy_ci95": [0.2532, 0.2846],
                     "markov": 0.3128, "vs_markov": "lower"},
        },
        "masked_tokens": {
            "over": {"status": "ran", "model_top1": 0.3187, "model_top1_ci95": [0.3024, 0.3354],
                     "rule_top1": 0.3353, "model_vs_rule": "overlapping", "degenerate": None},
            "char": {"status": "skipped", "reason": "no overlap"},
        },
        "embeddings": {
            "over": {"hamming_spearman": -0.3224, "hamming_spearman_ci95": [-0.3496, -0.2946],
                     "vs_control": "more negative", "control_hamming_spearman": -0.0009},
            "char": {"probe_own_accuracy": 1.0, "probe_own_accuracy_ci95": [0.926, 1.0],
                     "own_vs_chance": "higher", "probe_own_chance": 0.3333},
        },
        "next_kmer": {
            "over": [{"k": 2, "pretrained": 0.0865, "pretrained_ci95": [0.0778, 0.0952],
                      "best_markov": 0.1125, "pretrained_vs_markov": "lower", "prior": 0.0862,
                      "pretrained_vs_prior": "overlapping", "pretrained_degenerate": None}],
            "char": [{"k": 2, "pretrained": 0.084, "pretrained_ci95": [0.0754, 0.0926],
                      "best_markov": 0.1125, "pretrained_vs_markov": "lower", "prior": 0.0862,
                      "pretrained_vs_prior": "overlapping",
                      "pretrained_degenerate": "is no better than the class prior"}],
        },
    }  # fmt: skip


def test_overview_cells_hold_number_interval_and_verdict() -> None:
    table = overview_table(["over", "char"], _overview_findings())
    assert table.columns == list(OVERVIEW_COLUMNS) == [
        "model", "masked tokens / bases", "token embeddings", "next k-mer"
    ]  # fmt: skip
    over, char = table.to_dicts()
    assert over["masked tokens / bases"] == (
        "bases 0.296 (0.280\u20130.312): level with Markov (0.313)\n"
        "tokens 0.319 (0.302\u20130.335): level with neighbour rule (0.335)"
    )
    assert over["token embeddings"] == (
        "rho -0.322 (-0.350 to -0.295): organised by sequence (random init -0.001)"
    )
    assert over["next k-mer"] == "k = 2: 0.086 (0.078\u20130.095): below Markov (0.113)"
    assert char["masked tokens / bases"].startswith("bases 0.269 (0.253\u20130.285): below Markov")
    assert char["masked tokens / bases"].endswith("tokens: rule does not apply (no overlap)")
    assert char["token embeddings"] == (
        "own bases by linear probe 1.000 (0.926\u20131.000): above chance (0.333)"
    )
    assert char["next k-mer"] == "k = 2: 0.084 (0.075\u20130.093): DEGENERATE (no finding)"
    # No terse fragments or dash-joined negative intervals anywhere.
    text = " ".join(str(v) for row in table.iter_rows() for v in row)
    assert "--" not in text and ": at it" not in text


def test_comparison_tables_mark_degenerate_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Every table that reports a fine-tuned model marks a collapsed run: the comparison
    table's ``degenerate`` column, and the ``finetune nextkmer`` console table."""
    import polars as pl

    from dnakmer.cli.train import _print_comparison
    from dnakmer.probes.nextkmer import degenerate_reason, with_degenerate

    base = {"k": 1, "accuracy_ci95": None, "n_seeds": 1, "n_test": 4000}
    table = pl.DataFrame([
        base | {"predictor": "prior", "accuracy": 0.30, "accuracy_ci95_test": 0.014,
                "mcc": 0.0, "majority_share": None},
        base | {"predictor": "m (pretrained)", "accuracy": 0.33, "accuracy_ci95_test": 0.015,
                "mcc": 0.08, "majority_share": 0.40},
        base | {"predictor": "m (random)", "accuracy": 0.30, "accuracy_ci95_test": 0.014,
                "mcc": 0.0, "majority_share": 0.95},
        base | {"predictor": "n (pretrained)", "accuracy": 0.305, "accuracy_ci95_test": 0.014,
                "mcc": 0.005, "majority_share": 0.5},
    ], infer_schema_length=None)  # fmt: skip
    marked = with_degenerate(table)
    reasons = dict(zip(marked["predictor"], marked["degenerate"], strict=True))
    assert reasons["prior"] is None and reasons["m (pretrained)"] is None
    assert reasons["m (random)"].startswith("predicts one class for 95% of test windows")
    assert reasons["n (pretrained)"].startswith("is no better than the class prior")
    assert degenerate_reason(table.row(1, named=True), 0.30) is None
    _print_comparison(marked.with_columns(top5_accuracy=pl.lit(0.9),
                                          cross_entropy_bits=pl.lit(1.9)))  # fmt: skip
    printed = capsys.readouterr().out
    assert printed.count("DEGENERATE │") == 2  # the two runs' cells
    assert len([x for x in printed.splitlines() if x.startswith("DEGENERATE: k = 1")]) == 2
    assert "DEGENERATE: k = 1, m (random) predicts one class for 95%" in printed
