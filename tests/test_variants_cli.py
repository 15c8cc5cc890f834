"""Variant scoring end to end: a classifier from fine-tuning scored against plain
transformers, and the ``variants score`` / ``variants scan`` commands on real genomes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dnakmer import Genome, KmerTokenizer
from dnakmer.data import demo_genome, demo_models_dir

pytest.importorskip("torch")
DATA = Path(__file__).parent / "data"
YEAST = DATA / "yeast_chrI.fa.gz"


def _kmers(seq: str, k: int) -> str:
    return " ".join(seq[i : i + k] for i in range(len(seq) - k + 1))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A promoter classifier fine-tuned for a few steps from a tiny 3-mer model."""
    from dnakmer.datasets.tasks import build_task
    from dnakmer.training.finetune import data_from_dataset, finetune
    from dnakmer.training.pretrain import ModelShape, _bert_mlm, save_tokenizer_files
    from dnakmer.training.trainer import TrainOptions

    root = tmp_path_factory.mktemp("classifier")
    tok = KmerTokenizer(3)
    base = root / "base"
    _bert_mlm(
        tok, ModelShape(hidden=32, layers=1, heads=2, intermediate=64, dropout=0.0), 64, seed=0
    ).save_pretrained(base)
    save_tokenizer_files(base, tok, "overlapping", 64)
    task = build_task(YEAST, DATA / "yeast_chrI.gff.gz", "promoter", tokenizer=tok,
                      upstream=39, downstream=20, seed=0)  # fmt: skip
    task.save(root / "promoter")
    data = data_from_dataset(root / "promoter", tok)
    opts = TrainOptions(max_steps=8, batch_size=16, eval_every=4, log_every=4, quiet=True)
    finetune(data, base, root / "out", options=opts)
    return root / "out"


def _snvs(genome: Genome, n: int, seed: int, edge: bool = True) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    name, length = genome.names[0], genome.lengths[0]
    pos = rng.integers(1, length + 1, n)
    if edge:
        pos[:3] = [1, 2, length]
    rows = []
    for p in pos:
        ref = genome.fetch(name, int(p) - 1, int(p)).upper()
        if ref not in "ACGT":
            continue
        alt = [b for b in "ACGT" if b != ref][int(rng.integers(0, 3))]
        rows.append({"chrom": name, "pos": int(p), "ref": ref, "alt": alt})
    return pl.DataFrame(rows)


def test_classifier_scores_equal_plain_transformers(classifier: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, BertTokenizer

    from dnakmer.datasets.variants import windows_around
    from dnakmer.models import load
    from dnakmer.probes.variant_effects import default_window, score_variants

    loaded = load(classifier, device="cpu")
    assert loaded.is_classifier and loaded.label_names == ["background", "promoter"]
    assert default_window(loaded) == 60
    genome = Genome.open(YEAST)
    snvs = _snvs(genome, 12, seed=3)
    result = score_variants(loaded, genome, snvs)
    table = result.table
    assert table["status"].to_list() == ["scored"] * snvs.height
    assert result.params["label"] == "promoter"

    model = AutoModelForSequenceClassification.from_pretrained(classifier).eval()
    hf = BertTokenizer(str(classifier / "vocab.txt"), do_lower_case=False)
    name = genome.names[0]
    for row in table.iter_rows(named=True):
        codes, offset = windows_around(genome, name, np.array([row["pos"] - 1]), 60)
        ref = "".join("ATCGN"[c] for c in codes[0])
        assert ref[offset[0]] == row["ref"]
        alt = ref[: offset[0]] + row["alt"] + ref[offset[0] + 1 :]
        probs = []
        for seq in (ref, alt):
            enc = hf(_kmers(seq, 3), return_tensors="pt")
            assert hf.unk_token_id not in enc["input_ids"][0].tolist()
            with torch.no_grad():
                probs.append(torch.softmax(model(**enc).logits, -1)[0].numpy())
        assert row["delta_promoter"] == pytest.approx(probs[1][1] - probs[0][1], abs=1e-5)
        assert row["p_ref_background"] == pytest.approx(probs[0][0], abs=1e-5)
        assert row["score"] == row["delta_promoter"]


def test_classifier_scan_matches_its_variant_scores(classifier: Path) -> None:
    from dnakmer.models import load
    from dnakmer.probes.variant_effects import scan_region, score_variants

    loaded = load(classifier, device="cpu")
    genome = Genome.open(YEAST)
    name = genome.names[0]
    scan = scan_region(loaded, genome, f"{name}:1001-1012", label="background")
    assert scan.scores.shape == (12, 4)
    ref = genome.fetch(name, 1000, 1012).upper()
    for i, base in enumerate(ref):
        assert scan.scores[i, "ACGT".index(base)] == 0.0
    rows = scan.table.head(6)
    snvs = rows.select(
        pl.lit(name).alias("chrom"), pl.col("position").alias("pos"), "ref", "alt"
    )
    scored = score_variants(loaded, genome, snvs, label="background").table
    np.testing.assert_allclose(scored["score"].to_numpy(), rows["score"].to_numpy(), atol=1e-5)


def _vcf(path: Path, rows: list[str], name: str) -> Path:
    header = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={name}>",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    text = "\n".join(header + rows) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dnakmer", *args], capture_output=True, text=True, cwd=cwd,
        timeout=600,
    )  # fmt: skip


def test_variants_score_command_writes_every_allele(tmp_path: Path) -> None:
    genome = Genome.open(demo_genome())
    name = genome.names[0]
    seq = genome.fetch(name, 0, 400).upper()
    rows = [
        f"{name}\t101\trs1\t{seq[100]}\t{'A' if seq[100] != 'A' else 'C'}\t.\tPASS\t.",
        f"{name}\t201\t.\t{seq[200]}\t{','.join(b for b in 'ACGT' if b != seq[200])}\t.\t.\t.",
        f"{name}\t301\t.\t{seq[300:303]}\t{seq[300]}\t.\t.\t.",
        f"{name}\t351\t.\t{'A' if seq[350] != 'A' else 'C'}\tG\t.\t.\t.",
        "other\t5\t.\tA\tC\t.\t.\t.",
        f"{name}\t9999999\t.\tA\tC\t.\t.\t.",
    ]
    vcf = _vcf(tmp_path / "calls.vcf.gz", rows, name)
    model = demo_models_dir() / "overlapping-6mer"
    out = tmp_path / "scores"
    done = _run("variants", "score", "--model", str(model), "--genome", str(demo_genome()),
                "--vcf", str(vcf), "--out", str(out), "--device", "cpu", "-q",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "6 VCF records, 8 alleles: 4 scored, 4 skipped" in done.stdout
    assert "Spearman with Markov" in done.stdout
    table = pl.read_parquet(out / "scores.parquet")
    tsv = pl.read_csv(out / "scores.tsv", separator="\t")
    assert table.height == tsv.height == 8
    assert table["status"].to_list() == ["scored"] * 4 + ["skipped"] * 4
    kinds = [r.split(":")[0] if r else None for r in table["reason"].to_list()]
    assert kinds[4:] == [
        "indel",
        "REF does not match the genome",
        "record not in the genome",
        "position outside the record",
    ]
    scored = table.filter(pl.col("status") == "scored")
    assert scored["tokens_masked"].to_list() == [6] * 4
    assert (scored["single_p_ref"] > 0.9).all()
    assert scored.filter(pl.col("line") == 5)["allele"].to_list() == [1, 2, 3]
    np.testing.assert_allclose(
        scored["score"].to_numpy(),
        np.log(scored["p_alt"].to_numpy()) - np.log(scored["p_ref"].to_numpy()),
        rtol=1e-9,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scored"] == 4 and summary["skipped"]["indel"] == 1
    assert (out / "scores.png").stat().st_size > 10_000
    assert "every token covering the base" in (out / "summary.md").read_text()
    assert not list(out.glob("*.tmp*"))


def test_variants_scan_command(tmp_path: Path) -> None:
    genome = Genome.open(demo_genome())
    name = genome.names[0]
    out = tmp_path / "scan"
    model = demo_models_dir() / "overlapping-6mer"
    done = _run("variants", "scan", "--model", str(model), "--genome", str(demo_genome()),
                "--region", f"{name}:2,001-2,150", "--out", str(out), "--device", "cpu", "-q",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{name}:2001-2150: 150 positions, 150 scored" in done.stdout
    assert "Least likely substitutions" in done.stdout
    scores = np.load(out / "scores.npy")
    assert scores.shape == (150, 4)
    ref = genome.fetch(name, 2000, 2150).upper()
    assert all(scores[i, "ACGT".index(b)] == 0.0 for i, b in enumerate(ref))
    table = pl.read_parquet(out / "scan.parquet")
    assert table.height == 450 and table["position"].min() == 2001
    assert (out / "heatmap.png").stat().st_size > 10_000
    bad = _run("variants", "scan", "--model", str(model), "--genome", str(demo_genome()),
               "--region", f"{name}:10-5", "--out", str(tmp_path / "bad"),
               cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 1 and "START must be at least 1 and at most END" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_a_scan_reports_its_progress_as_one_count() -> None:
    from dnakmer.models import load
    from dnakmer.probes.variant_effects import scan_region
    from dnakmer.progress import listening

    seen: list[tuple[str, int, int | None]] = []
    model = load(demo_models_dir() / "nucleotide", device="cpu")
    genome = Genome.open(demo_genome())
    with listening(lambda label, done, total, note: seen.append((label, done, total))):
        scan_region(model, genome, f"{genome.names[0]}:1-40")
    assert {label for label, _, _ in seen} == {"scan positions"}
    assert seen[0][1:] == (0, 40) and seen[-1][1:] == (40, 40)


def test_records_shorter_than_a_token_and_no_scoreable_variant(tmp_path: Path) -> None:
    from dnakmer.models import load
    from dnakmer.probes.variant_effects import scan_region, score_variants

    fasta = tmp_path / "g.fa"
    fasta.write_text(">short\nACGT\n>long\n" + "ACGTTGCAAGCTTAGC" * 8 + "\n")
    genome = Genome.open(fasta)
    model = load(demo_models_dir() / "overlapping-6mer", device="cpu")
    snvs = pl.DataFrame({"chrom": ["short", "long", "long"], "pos": [2, 40, 41],
                         "ref": ["C", "A", "C"], "alt": ["G", "T", "TT"]})  # fmt: skip
    table = score_variants(model, genome, snvs).table
    assert table["status"].to_list() == ["skipped", "scored", "skipped"]
    assert table["reason"][0].startswith("no token covers the position")
    assert table["tokens_masked"][1] == 6 and table["score"][0] is None
    none = score_variants(model, genome, snvs.tail(1))
    assert none.table["status"].to_list() == ["skipped"] and none.summary()["scored"] == 0
    none.save(tmp_path / "none")
    assert pl.read_parquet(tmp_path / "none" / "scores.parquet").height == 1
    scan = scan_region(model, genome, "long:1-20")
    assert np.isfinite(scan.scores).all() and scan.scores.shape == (20, 4)


def test_a_bad_vcf_is_one_error_line_and_writes_nothing(tmp_path: Path) -> None:
    vcf = _vcf(tmp_path / "bad.vcf", ["chr\tx\t.\tA\tC\t.\t.\t."], "chr")
    done = _run("variants", "score", "--model", str(demo_models_dir() / "nucleotide"),
                "--genome", str(demo_genome()), "--vcf", str(vcf), "--out", "o",
                cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {vcf}: line 4: POS 'x' is not a number (CHROM 'chr')"
    assert not (tmp_path / "o").exists()
