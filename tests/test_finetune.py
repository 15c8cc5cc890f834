"""Fine-tuning with tiny models on real genomes: data loading, metrics, resume, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dnakmer import Genome, KmerTokenizer
from dnakmer.datasets import nextkmer
from dnakmer.training.finetune import (
    classification_metrics,
    data_from_dataset,
    data_from_tsv,
    finetune,
    last_complete_checkpoint,
    seed_summary,
)
from dnakmer.training.pretrain import ModelShape, _bert_mlm, save_tokenizer_files

pytest.importorskip("torch")
DATA = Path(__file__).parent / "data"
TINY = ModelShape(hidden=32, layers=1, heads=2, intermediate=64, dropout=0.0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    tok = KmerTokenizer(3)
    _bert_mlm(tok, TINY, 64, seed=0).save_pretrained(out)
    save_tokenizer_files(out, tok, "overlapping", 64)
    return out


@pytest.fixture(scope="module")
def nextkmer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nk") / "k1"
    ds = nextkmer.build(
        DATA / "lambda_phage.fa.gz",
        1,
        34,
        KmerTokenizer(3),
        n_train=400,
        n_val=64,
        n_test=64,
        seed=0,
    )
    ds.save(out)
    return out


def test_tsv_with_spaced_kmers_equals_raw(tmp_path: Path) -> None:
    seq = Genome.open(DATA / "phix174.fa").fetch("NC_001422", 0, 400)
    tok = KmerTokenizer(3)
    windows = [seq[i : i + 40] for i in range(0, 400, 40)]
    spaced = [" ".join(w[j : j + 3] for j in range(len(w) - 2)) for w in windows]
    labels = ["pos", "neg"] * 5
    (tmp_path / "train.tsv").write_text(
        "sequence\tlabel\n"
        + "".join(f"{s}\t{lab}\n" for s, lab in zip(spaced, labels, strict=True))
    )
    (tmp_path / "dev.tsv").write_text(
        "sequence\tlabel\n"
        + "".join(f"{w}\t{lab}\n" for w, lab in zip(windows, labels, strict=True))
    )
    data = data_from_tsv(tmp_path / "train.tsv", tmp_path / "dev.tsv", tok)
    np.testing.assert_array_equal(data.ids["train"], data.ids["val"])
    np.testing.assert_array_equal(data.ids["val"], tok.encode_batch(windows)["input_ids"])
    assert data.label_names == ["neg", "pos"]
    assert data.labels["train"].tolist() == [1, 0] * 5
    (tmp_path / "bad.tsv").write_text("seq\tlab\nACGT\t1\n")
    with pytest.raises(ValueError, match="header"):
        data_from_tsv(tmp_path / "bad.tsv", tmp_path / "dev.tsv", tok)


def test_dataset_vocab_must_match_model(nextkmer_dir: Path) -> None:
    data = data_from_dataset(nextkmer_dir, KmerTokenizer(3))
    assert data.num_labels == 4
    assert set(data.ids) == {"train", "val", "test"}
    assert data.ids["train"].shape == (400, 34 - 3 + 1 + 2)
    with pytest.raises(ValueError, match="different vocabulary"):
        data_from_dataset(
            nextkmer_dir, KmerTokenizer(3, 1).from_vocab(_shuffled_vocab(nextkmer_dir.parent))
        )


def _shuffled_vocab(where: Path) -> Path:
    tokens = KmerTokenizer(3).vocab
    body = tokens[:5] + tokens[5:][::-1]
    path = where / "shuffled_vocab.txt"
    path.write_text("\n".join(body) + "\n")
    return path


def test_metrics_match_sklearn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3)) + np.eye(3)[y] * 1.5
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    top = np.argsort(-logp, axis=1)
    reduced = np.concatenate([top, logp[np.arange(200), y][:, None] / np.log(2), logp], axis=1)
    got = classification_metrics(y, reduced, 3)
    pred = top[:, 0]
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["mcc"] == pytest.approx(matthews_corrcoef(y, pred))
    assert got["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert got["auc"] == pytest.approx(roc_auc_score(y, np.exp(logp), multi_class="ovr"))
    assert got["cross_entropy_bits"] == pytest.approx(-logp[np.arange(200), y].mean() / np.log(2))


def test_seed_summary_is_student_t_interval() -> None:
    table = seed_summary([{"test_accuracy": a} for a in (0.5, 0.6, 0.7)])
    row = table.row(0, named=True)
    assert row["mean"] == pytest.approx(0.6)
    # t(0.975, 2) = 4.3027; sd = 0.1; n = 3
    assert row["ci95"] == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-5)


def test_finetune_writes_best_model_and_results(
    model_dir: Path, nextkmer_dir: Path, tmp_path: Path
) -> None:
    from dnakmer.training.trainer import TrainOptions

    data = data_from_dataset(nextkmer_dir, KmerTokenizer(3))
    opts = TrainOptions(
        max_steps=12, batch_size=16, eval_every=4, log_every=4, learning_rate=5e-3, quiet=True
    )
    result = finetune(data, model_dir, tmp_path, options=opts)
    assert {"val_accuracy", "test_accuracy", "test_auc", "test_cross_entropy_bits"} <= set(
        result.metrics
    )
    # Four bases with lambda's composition: a trained head beats 2 bits of cross-entropy.
    assert result.metrics["test_cross_entropy_bits"] < 2.0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["metrics"]["test_accuracy"] == result.metrics["test_accuracy"]
    assert saved["params"]["num_labels"] == 4
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(tmp_path, local_files_only=True)
    assert last_complete_checkpoint(tmp_path / "checkpoints").name == "checkpoint-12"


def _cli(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dnakmer",
        "finetune",
        "nextkmer",
        "--model",
        str(model),
        "--data",
        str(data),
        "--out",
        str(out),
        "--init",
        "pretrained",
        "--max-steps",
        "16",
        "--batch-size",
        "8",
        "--eval-every",
        "4",
        "--orders",
        "0-2",
        "--lr",
        "5e-3",
        "--quiet",
        *extra,
    ]


def test_resume_after_sigkill_matches_uninterrupted_run(
    model_dir: Path, nextkmer_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run(
        _cli(model_dir, nextkmer_dir, tmp_path / "full"), check=True, env=env, capture_output=True
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli(model_dir, nextkmer_dir, killed),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = killed / "k1" / "pretrained" / "seed0" / "checkpoints" / "checkpoint-8" / "COMPLETE"
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert marker.exists()
    assert not (killed / "k1" / "pretrained" / "seed0" / "results.json").exists()
    subprocess.run(
        _cli(model_dir, nextkmer_dir, killed, "--resume"), check=True, env=env, capture_output=True
    )
    full = pl.read_parquet(tmp_path / "full" / "runs.parquet")
    resumed = pl.read_parquet(killed / "runs.parquet")
    for col in ("test_accuracy", "test_cross_entropy_bits", "test_loss"):
        assert resumed[col][0] == pytest.approx(full[col][0], abs=1e-6), col


def test_two_processes_agree_with_one(model_dir: Path, nextkmer_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    one = _cli(model_dir, nextkmer_dir, tmp_path / "one")
    one[one.index("--batch-size") + 1] = "8"
    subprocess.run(one, check=True, env=env, capture_output=True)
    two = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        *_cli(model_dir, nextkmer_dir, tmp_path / "two")[1:],
    ]
    two[two.index("--batch-size") + 1] = "4"
    proc = subprocess.run(two, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = pl.read_parquet(tmp_path / "one" / "runs.parquet")
    b = pl.read_parquet(tmp_path / "two" / "runs.parquet")
    assert b["test_loss"][0] == pytest.approx(a["test_loss"][0], rel=1e-4)
    assert b["test_accuracy"][0] == pytest.approx(a["test_accuracy"][0], abs=1 / 64)


def test_gradient_accumulation_matches_a_larger_batch(
    model_dir: Path, nextkmer_dir: Path, tmp_path: Path
) -> None:
    """Batch 4 x 2 accumulation steps trains like batch 8: the loss is averaged over the
    accumulated micro-batches, not summed (which would double gradients and logged loss)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    one = _cli(model_dir, nextkmer_dir, tmp_path / "one")
    accum = _cli(model_dir, nextkmer_dir, tmp_path / "accum", "--grad-accum", "2")
    accum[accum.index("--batch-size") + 1] = "4"
    for cmd in (one, accum):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    a = pl.read_parquet(tmp_path / "one" / "runs.parquet")
    b = pl.read_parquet(tmp_path / "accum" / "runs.parquet")
    assert b["test_loss"][0] == pytest.approx(a["test_loss"][0], rel=1e-3)
    logged = [
        [
            e["loss"]
            for e in json.loads((d / "k1" / "pretrained" / "seed0" / "results.json").read_text())[
                "log_history"
            ]
            if "loss" in e
        ]
        for d in (tmp_path / "one", tmp_path / "accum")
    ]
    assert logged[1] == pytest.approx(logged[0], rel=1e-3)


def test_raw_base_dataset_is_tokenized_like_a_token_dataset(tmp_path: Path) -> None:
    tok = KmerTokenizer(3)
    common = dict(n_train=50, n_val=10, n_test=10, seed=5)
    nextkmer.build(DATA / "lambda_phage.fa.gz", 2, 34, None, **common).save(tmp_path / "bases")
    nextkmer.build(DATA / "lambda_phage.fa.gz", 2, 34, tok, **common).save(tmp_path / "tokens")
    from_bases = data_from_dataset(tmp_path / "bases", tok)
    from_tokens = data_from_dataset(tmp_path / "tokens", tok)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(from_bases.ids[split], from_tokens.ids[split])
        np.testing.assert_array_equal(from_bases.labels[split], from_tokens.labels[split])
    with pytest.raises(ValueError, match="needs the model's tokenizer"):
        data_from_dataset(tmp_path / "bases", None)


def test_classify_promoter_task_dataset(model_dir: Path, tmp_path: Path) -> None:
    from dnakmer.datasets.tasks import build_task
    from dnakmer.training.trainer import TrainOptions

    tok = KmerTokenizer(3)
    task = build_task(
        DATA / "yeast_chrI.fa.gz",
        DATA / "yeast_chrI.gff.gz",
        "promoter",
        tokenizer=tok,
        upstream=39,
        downstream=20,
        seed=0,
    )
    task.save(tmp_path / "promoter")
    data = data_from_dataset(tmp_path / "promoter", tok)
    assert data.num_labels == 2 and set(data.ids) >= {"train", "val"}
    assert data.ids["train"].shape[1] == 60 - 3 + 1 + 2
    opts = TrainOptions(max_steps=6, batch_size=16, eval_every=3, log_every=3, quiet=True)
    result = finetune(data, model_dir, tmp_path / "out", options=opts)
    assert 0.0 <= result.metrics["val_auc"] <= 1.0
    assert {"val_accuracy", "val_mcc", "val_macro_f1"} <= set(result.metrics)


def test_bed_intervals_with_strand_and_record_splits(tmp_path: Path) -> None:
    from dnakmer.training.finetune import data_from_bed

    genome = Genome.open(DATA / "yeast_chrI.fa.gz")
    name = genome.names[0]
    bed = tmp_path / "sites.bed"
    bed.write_text(
        "# two labelled intervals\n"
        f"{name}\t100\t160\tbound\t0\t+\n"
        f"{name}\t5000\t5060\tunbound\t0\t-\n"
    )
    tok = KmerTokenizer(3)
    data = data_from_bed(bed, DATA / "yeast_chrI.fa.gz", tok)
    assert data.label_names == ["bound", "unbound"]
    comp = str.maketrans("ACGTacgt", "TGCAtgca")
    minus = genome.fetch(name, 5000, 5060).translate(comp)[::-1]
    expected = tok.encode_batch([genome.fetch(name, 100, 160), minus])["input_ids"]
    np.testing.assert_array_equal(data.ids["train"], expected)
    assert data.labels["train"].tolist() == [0, 1]
    by_strand = data_from_bed(bed, DATA / "yeast_chrI.fa.gz", tok, label_column="strand")
    assert by_strand.label_names == ["+", "-"]
    with pytest.raises(ValueError, match="label_column"):
        data_from_bed(bed, DATA / "yeast_chrI.fa.gz", tok, label_column="thickStart")
