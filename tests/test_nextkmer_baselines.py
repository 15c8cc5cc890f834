"""Next-k-mer baselines, metrics and the ``dnakmer nextkmer`` commands."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import dnakmer
from dnakmer import _core
from dnakmer.cli import main
from dnakmer.datasets import baselines as nb
from dnakmer.datasets.baselines import baselines, prediction_metrics
from dnakmer.datasets.nextkmer import NextKmerDataset, build

DATA = Path(__file__).parent / "data"
YEAST = DATA / "yeast_chrI.fa.gz"
LAMBDA = DATA / "lambda_phage.fa.gz"


@pytest.fixture(scope="module")
def yeast_baselines() -> pl.DataFrame:
    g = dnakmer.Genome.open(YEAST, sha256=True)
    ds = build(g, 3, 64, None, n_train=40_000, n_val=0, n_test=8000, val_fraction=0.0,
               test_fraction=0.2, strand="both", seed=1)  # fmt: skip
    return baselines(ds, [0, 2, 4, 6])


def row(df: pl.DataFrame, name: str, k: int, order: int | None = None) -> dict:
    sub = df.filter((pl.col("baseline") == name) & (pl.col("k") == k))
    if order is not None:
        sub = sub.filter(pl.col("order") == order)
    assert len(sub) == 1
    return sub.row(0, named=True)


def test_markov_beats_prior_on_real_dna(yeast_baselines: pl.DataFrame) -> None:
    df = yeast_baselines
    assert len(df) == 3 * (2 + 4)
    assert df["n_test"].unique().to_list() == [8000]
    for k in (1, 2, 3):
        prior, markov = row(df, "prior", k), row(df, "markov", k, 4)
        sigma = math.sqrt(prior["accuracy"] * (1 - prior["accuracy"]) / 8000)
        assert markov["accuracy"] > prior["accuracy"] + 3 * sigma, k
        assert markov["cross_entropy_bits"] < prior["cross_entropy_bits"] < 2 * k
        assert row(df, "uniform", k)["cross_entropy_bits"] == 2 * k
        assert prior["mcc"] == 0.0  # a constant prediction carries no information


def test_markov_equals_uniform_rate_on_iid_sequence(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    seq = "".join(rng.choice(list("ACGT"), 300_000))
    (tmp_path / "iid.fa").write_text(">iid\n" + seq + "\n")
    ds = build(tmp_path / "iid.fa", 2, 32, None, n_train=60_000, n_val=0, n_test=20_000,
               val_fraction=0.0, test_fraction=0.3, seed=3)  # fmt: skip
    df = baselines(ds, [0, 3, 6], ks=[1, 2])
    for k in (1, 2):
        rate = 1 / 4**k
        sigma = math.sqrt(rate * (1 - rate) / 20_000)
        for m in (0, 3, 6):
            acc = row(df, "markov", k, m)["accuracy"]
            assert abs(acc - rate) < 4 * sigma, (k, m, acc)
            # No chain beats 2k bits on i.i.d. bases; higher orders pay for overfitting.
            assert row(df, "markov", k, m)["cross_entropy_bits"] > 2 * k - 0.01
        assert row(df, "markov", k, 0)["cross_entropy_bits"] == pytest.approx(2 * k, abs=0.01)
        assert abs(row(df, "uniform", k)["accuracy"] - rate) < 4 * sigma


def test_metrics_agree_with_sklearn_on_full_distributions() -> None:
    from sklearn.metrics import log_loss, matthews_corrcoef, top_k_accuracy_score

    rng = np.random.default_rng(0)
    n = 3000
    probs = rng.dirichlet(np.full(64, 0.3), size=n)
    y = np.array([rng.choice(64, p=p) for p in probs])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :5]
    log2p = np.log2(probs[np.arange(n), y])
    m = prediction_metrics(y, top, log2p)
    labels = range(64)
    assert m["top5_accuracy"] == pytest.approx(top_k_accuracy_score(y, probs, k=5, labels=labels))
    assert m["cross_entropy_bits"] == pytest.approx(log_loss(y, probs, labels=labels) / math.log(2))
    # The margin formula used above 4096 classes equals sklearn's MCC.
    pred = rng.integers(0, 300, 5000)
    truth = np.where(rng.random(5000) < 0.3, pred, rng.integers(0, 300, 5000))
    old = nb._DENSE_CONFUSION_MAX
    nb._DENSE_CONFUSION_MAX = 0
    try:
        assert nb._mcc(truth, pred) == pytest.approx(matthews_corrcoef(truth, pred), abs=1e-12)
    finally:
        nb._DENSE_CONFUSION_MAX = old


def test_bad_baseline_parameters(tmp_path: Path) -> None:
    ds = build(LAMBDA, 2, 8, None, n_train=100, n_val=0, n_test=0, test_fraction=0.0, seed=0)
    with pytest.raises(ValueError, match=r"need train and test samples; .* 100 train and 0 test"):
        baselines(ds)
    ds = build(LAMBDA, 2, 8, None, n_train=100, n_val=0, n_test=50, seed=0)
    with pytest.raises(ValueError, match=r"Markov orders must lie in 0\.\.12, got \[13\]"):
        baselines(ds, [13])
    with pytest.raises(ValueError, match=r"ks must lie in 1\.\.2"):
        baselines(ds, [1], ks=[3])
    with pytest.warns(UserWarning, match="exceed context_nt = 8"):
        df = baselines(ds, [2, 9])
    assert row(df, "markov", 2, 2)["n_test"] == 50
    with pytest.raises(ValueError, match="Markov order must be between 0 and 12, got 13"):
        _core.MarkovChain.fit_codes([], 13)


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_cli_build_and_baselines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    code = run_cli(["nextkmer", "build", str(LAMBDA), "--out", str(out), "--k", "2", "--context",
                    "40", "--token-k", "4", "--n-train", "3000", "--n-val", "100", "--n-test",
                    "500", "--strand", "both", "--seed", "5"])  # fmt: skip
    assert code == 0
    assert "3,000 train, 100 val, 500 test" in capsys.readouterr().out
    ds = NextKmerDataset.load(out)
    assert ds.input_ids.shape == (3600, 39) and ds.manifest["seed"] == 5
    assert run_cli(["nextkmer", "baselines", str(out), "--orders", "0-2,5"]) == 0
    printed = capsys.readouterr().out
    assert "markov" in printed and "prior" in printed
    table = pl.read_parquet(out / "baselines" / "baselines.parquet")
    assert sorted(table.filter(pl.col("baseline") == "markov")["order"].unique()) == [0, 1, 2, 5]
    assert json.loads((out / "baselines" / "baselines.json").read_text())[0]["k"] == 1
    assert (out / "baselines" / "baselines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # An out-of-range k is a usage error, caught where it is parsed.
    assert run_cli(["nextkmer", "build", str(LAMBDA), "--out", str(out), "--k", "0"]) == 2
    assert "Invalid value for '--k'" in capsys.readouterr().err


def test_cli_help_imports_no_heavy_libraries() -> None:
    code = (
        "import sys; from dnakmer.cli import app;"
        "import dnakmer.datasets.nextkmer, dnakmer.datasets.baselines;"
        "heavy = ('torch', 'transformers', 'sklearn', 'matplotlib');"
        "print([m for m in heavy if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
    help_text = subprocess.run(
        [sys.executable, "-m", "dnakmer", "nextkmer", "build", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "--context" in help_text and "--dedup" in help_text


def test_moved_genome_is_found_by_path_and_checked(tmp_path: Path) -> None:
    copy = tmp_path / "lambda.fa.gz"
    copy.write_bytes(LAMBDA.read_bytes())
    build(copy, 2, 16, None, n_train=500, n_val=0, n_test=100, seed=0).save(tmp_path / "ds")
    copy.unlink()
    ds = NextKmerDataset.load(tmp_path / "ds")
    with pytest.raises(FileNotFoundError):
        baselines(ds, [1])
    with pytest.raises(ValueError, match="sha256"):
        baselines(ds, [1], genome=DATA / "phix174.fa")
    df = baselines(ds, [1], genome=LAMBDA)
    assert row(df, "markov", 2, 1)["n_test"] == 100
