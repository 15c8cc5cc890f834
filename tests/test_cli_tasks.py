"""``dnakmer tasks build``: outputs, DNABERT files, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from annotation_reference import read_lines
from dnakmer.cli import main
from dnakmer.datasets.tasks import TaskDataset, build_task
from dnakmer.exceptions import AnnotationError

DATA = Path(__file__).parent / "data"
YEAST_FA, YEAST_GFF = DATA / "yeast_chrI.fa.gz", DATA / "yeast_chrI.gff.gz"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_build_writes_dataset_and_dnabert_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "prom"
    code, stdout, _ = run([
        "tasks", "build", str(YEAST_FA), "--gff", str(YEAST_GFF), "--task", "promoter",
        "--out", str(out), "--k", "4", "--dnabert-tsv", "--gc-matched", "--seed", "3",
    ], capsys)
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert f"train: {counts['train']['background']} background, " in stdout
    assert "wrote 200 windows of 300 bp" in stdout
    assert manifest["tokenizer"]["k"] == 4 and manifest["params"]["gc_matched"] is True
    ds = TaskDataset.load(out)
    direct = build_task(YEAST_FA, YEAST_GFF, "promoter", gc_matched=True, seed=3)
    assert np.array_equal(ds.columns["sequence"], direct.columns["sequence"])
    assert ds.columns["input_ids"].shape == (200, 300 - 4 + 1 + 2)
    train = (out / "train.tsv").read_text().splitlines()
    assert len(train) == 1 + sum(counts["train"].values())
    assert len(train[1].split("\t")[0].split(" ")[0]) == 4


def test_build_splice_raw_tsv_without_test_split(tmp_path: Path, capsys) -> None:
    out = tmp_path / "splice"
    code, _, _ = run([
        "tasks", "build", str(DATA / "dmel_chr4.fa.gz"), "--gff", str(DATA / "dmel_chr4.gff.gz"),
        "--task", "splice", "--out", str(out), "--window", "60", "--test-fraction", "0",
        "--dnabert-tsv", "--tsv-raw",
    ], capsys)
    assert code == 0
    assert not (out / "test.tsv").exists()
    row = (out / "dev.tsv").read_text().splitlines()[1].split("\t")
    assert len(row[0]) == 60 and set(row[0]) <= set("ACGT") and row[1] in "012"
    assert not (out / "input_ids.npy").exists()


def test_malformed_annotation_is_one_red_line(tmp_path: Path, capsys) -> None:
    lines = read_lines(YEAST_GFF)
    lines[20] = lines[20].replace("\t", " ", 1)
    bad = tmp_path / "bad.gff3"
    bad.write_text("\n".join(lines))
    code, _, err = run(["tasks", "build", str(YEAST_FA), "--gff", str(bad), "--task",
                        "coding", "--out", str(tmp_path / "o")], capsys)
    assert code == 1
    assert f"{bad}:21: expected 9 tab-separated columns, found 8" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_bad_option_values(tmp_path: Path, capsys) -> None:
    from typer.testing import CliRunner

    from dnakmer.cli import app

    result = CliRunner().invoke(app, ["tasks", "build", str(YEAST_FA), "--gff", str(YEAST_GFF),
                                      "--task", "tfbs", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "'tfbs' is not one of" in result.output
    code, _, err = run(["tasks", "build", str(YEAST_FA), "--gff", str(YEAST_GFF), "--task",
                        "splice", "--window", "7", "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "even for splice" in err


def test_annotation_without_usable_features(tmp_path: Path) -> None:
    gff = tmp_path / "genes_only.gff3"
    gff.write_text("##gff-version 3\nNC_001133.9\tt\tgene\t100\t2000\t.\t+\t.\tID=g1\n")
    for task in ("promoter", "splice", "coding"):
        with pytest.raises(AnnotationError, match=f"no {task} windows on"):
            build_task(YEAST_FA, gff, task)  # type: ignore[arg-type]


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from dnakmer.cli import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['tasks', 'build', '--help'])\n"
        "assert r.exit_code == 0 and '--gc-matched' in r.output, r.output\n"
        "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'matplotlib') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
