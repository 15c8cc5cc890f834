"""Linear probes of frozen encoders on next-k-mer datasets, checked against a direct
transformers + scikit-learn computation, and the findings and sentences built on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dnakmer.datasets import nextkmer
from dnakmer.probes.nextkmer import linear_probe
from dnakmer.study.findings import nextkmer_findings, nextkmer_sentence

DATA = Path(__file__).parent / "data"


def _reference_accuracy(model_dir: Path, data_dir: Path) -> tuple[float, np.ndarray]:
    """Last-token states from plain transformers, standardised, logistic regression."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from transformers import BertModel

    from dnakmer.models import load
    from dnakmer.training.finetune import data_from_dataset

    tok = load(model_dir, device="cpu").tokenizer
    data = data_from_dataset(data_dir, tok)
    model = BertModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    states = {}
    for split in ("train", "test"):
        ids = torch.as_tensor(data.ids[split].astype(np.int64))
        sep = (ids != data.pad_token_id).sum(dim=1) - 1
        with torch.no_grad():
            hidden = model(input_ids=ids, attention_mask=(ids != data.pad_token_id).long())[0]
        states[split] = hidden[torch.arange(len(ids)), sep - 1].double().numpy()
    scaler = StandardScaler().fit(states["train"])
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(
        scaler.transform(states["train"]), data.labels["train"]
    )
    pred = clf.predict(scaler.transform(states["test"]))
    return float((pred == data.labels["test"]).mean()), pred


def test_probe_equals_a_direct_fit_on_last_token_states(tiny3_dir: Path, tmp_path: Path) -> None:
    ds = nextkmer.build(DATA / "lambda_phage.fa.gz", 2, 30, None, n_train=400, n_val=40,
                        n_test=300, seed=0)  # fmt: skip
    ds.save(tmp_path / "k2")
    rows = linear_probe(tiny3_dir, [tmp_path / "k2"], inits=("pretrained", "random"), seed=7)
    assert rows.select("k", "init", "seed").rows() == [(2, "pretrained", 7), (2, "random", 7)]
    expected, pred = _reference_accuracy(tiny3_dir, tmp_path / "k2")
    got = rows.row(0, named=True)
    assert got["test_accuracy"] == pytest.approx(expected, abs=1e-12)
    share = np.bincount(pred, minlength=16).max() / len(pred)
    assert got["test_majority_share"] == pytest.approx(share, abs=1e-12)
    assert {"test_mcc", "test_cross_entropy_bits", "test_top5_accuracy"} <= set(rows.columns)
    # The control has other weights (drawn with seed 7), so other states and another fit.
    assert rows["test_cross_entropy_bits"][1] != got["test_cross_entropy_bits"]
    with pytest.raises(ValueError, match="pretrained' or 'random"):
        linear_probe(tiny3_dir, [tmp_path / "k2"], inits=("frozen",))


def test_probe_of_the_nucleotide_model_reads_the_last_base(tmp_path: Path) -> None:
    from dnakmer.data import demo_genome, demo_models_dir

    ds = nextkmer.build(demo_genome(), 1, 36, None, n_train=3000, n_val=64, n_test=2000, seed=0)
    ds.save(tmp_path / "k1")
    row = linear_probe(demo_models_dir() / "nucleotide", [tmp_path / "k1"],
                       inits=("pretrained",)).row(0, named=True)  # fmt: skip
    train = ds.arrays["labels"][ds.arrays["split"] == 0].astype(np.int64)
    prior = float(np.bincount(train).max() / len(train))
    # The base before a position predicts it (E. coli: the prior is ~0.255, Markov order
    # 1 ~0.29): the state of the window's last token carries its base.
    assert row["test_accuracy"] > prior + 0.03
    assert row["test_mcc"] > 0.03 and row["test_majority_share"] < 0.9


def _table(probe: dict[str, tuple[float, float]] | None) -> pl.DataFrame:
    rows = [
        {"k": 1, "predictor": "m (pretrained)", "accuracy": 0.30, "mcc": 0.07,
         "majority_share": 0.3, "accuracy_ci95_test": 0.014, "n_test": 4000},
        {"k": 1, "predictor": "m (random)", "accuracy": 0.30, "mcc": 0.07,
         "majority_share": 0.3, "accuracy_ci95_test": 0.014, "n_test": 4000},
        {"k": 1, "predictor": "prior", "accuracy": 0.255, "n_test": 4000},
        {"k": 1, "predictor": "uniform", "accuracy": 0.25, "n_test": 4000},
        {"k": 1, "predictor": "Markov order 4", "accuracy": 0.34, "n_test": 4000},
    ]  # fmt: skip
    for init, (acc, mcc) in (probe or {}).items():
        rows.append({"k": 1, "predictor": f"m linear probe ({init})", "accuracy": acc,
                     "mcc": mcc, "majority_share": 0.3, "accuracy_ci95_test": 0.014,
                     "n_test": 4000})  # fmt: skip
    return pl.DataFrame(rows)


def test_probe_findings_and_sentence_follow_the_intervals() -> None:
    (none,) = nextkmer_findings(_table(None), "m")
    assert none["probe_pretrained_vs_random"] is None and none["probe_pretrained"] is None
    assert "Linear probe" not in nextkmer_sentence("m", none)

    (r,) = nextkmer_findings(_table({"pretrained": (0.30, 0.06), "random": (0.246, -0.01)}), "m")
    assert r["probe_pretrained_vs_random"] == "higher"
    assert r["probe_pretrained_vs_prior"] == "higher" and r["probe_pretrained_degenerate"] is None
    assert "no better than the class prior" in r["probe_random_init_degenerate"]
    text = nextkmer_sentence("m", r)
    assert "Linear probe of the frozen encoder: 0.300 pretrained" in text
    assert "the pretrained representation holds more" in text
    assert "the pretrained probe is above the class prior and below the best Markov chain" in text
    assert "the random-init control is no better than the class prior" in text
    assert "DEGENERATE" not in text

    (same,) = nextkmer_findings(_table({"pretrained": (0.30, 0.06), "random": (0.295, 0.05)}), "m")
    assert same["probe_pretrained_vs_random"] == "overlapping"
    assert "no difference from pretraining" in nextkmer_sentence("m", same).split("Linear")[1]

    (flat,) = nextkmer_findings(_table({"pretrained": (0.255, 0.0), "random": (0.30, 0.06)}), "m")
    text = nextkmer_sentence("m", flat)
    assert "pretrained probe is DEGENERATE" in text and "holds more" not in text


def test_cli_finetune_nextkmer_linear_probe(tiny3_dir: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from dnakmer.cli import app
    from dnakmer.probes.nextkmer import linear_probe as probe_fn

    nextkmer.build(DATA / "lambda_phage.fa.gz", 1, 30, None, n_train=300, n_val=32, n_test=200,
                   seed=0).save(tmp_path / "k1")  # fmt: skip
    args = ["finetune", "nextkmer", "--model", str(tiny3_dir), "--data", str(tmp_path / "k1"),
            "--out", str(tmp_path / "out"), "--max-steps", "4", "--batch-size", "8",
            "--eval-every", "2", "--orders", "0-1", "--device", "cpu", "--quiet",
            "--linear-probe"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    table = pl.read_parquet(tmp_path / "out" / "comparison.parquet")
    name = tiny3_dir.name
    probe = table.filter(pl.col("predictor").str.contains("linear probe"))
    assert probe["predictor"].to_list() == [f"{name} linear probe (pretrained)",
                                            f"{name} linear probe (random)"]  # fmt: skip
    # The same numbers as the library function with the command's seed and pooling.
    direct = probe_fn(tiny3_dir, [tmp_path / "k1"], pooling="last", seed=0)
    assert probe["accuracy"].to_list() == pytest.approx(direct["test_accuracy"].to_list())
    runs = pl.read_parquet(tmp_path / "out" / "runs.parquet")
    assert sorted(set(runs["protocol"])) == ["fine-tuned", "linear probe"]
    assert len(json.loads((tmp_path / "out" / "comparison.json").read_text())) == table.height
    assert "linear probe (pretrained)" in res.output
