"""The next-k-mer dataset builder on real genomes (tests/data)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import dnakmer
from dnakmer import KmerTokenizer, RecordNotFoundError
from dnakmer.datasets import nextkmer
from dnakmer.datasets.nextkmer import NextKmerDataset, build, kmer_to_label, label_to_kmer
from reference_nextkmer import kmer_label, revcomp

DATA = Path(__file__).parent / "data"
LAMBDA = DATA / "lambda_phage.fa.gz"
FLY4 = DATA / "dmel_chr4.fa.gz"
PHIX = DATA / "phix174.fa"


@pytest.fixture(scope="module")
def lam() -> dnakmer.Genome:
    return dnakmer.Genome.open(LAMBDA, sha256=True)


@pytest.fixture(scope="module")
def fly() -> dnakmer.Genome:
    return dnakmer.Genome.open(FLY4)


@pytest.fixture(scope="module")
def two_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """phiX174 and lambda as one two-record FASTA."""
    path = tmp_path_factory.mktemp("fa") / "two.fa"
    lam_text = gzip.decompress(LAMBDA.read_bytes()).decode()
    path.write_text(PHIX.read_text() + lam_text)
    return path


def span_text(g: dnakmer.Genome, name: str, start: int, strand: int, ctx: int, k: int) -> str:
    text = g.fetch(name, start, start + ctx + k).upper()
    return revcomp(text) if strand == -1 else text


def test_tokens_and_labels_equal_fetched_bases(lam: dnakmer.Genome) -> None:
    tok = KmerTokenizer(4, stride=2)
    ds = build(lam, 3, 30, tok, n_train=300, n_val=50, n_test=50, strand="both", seed=3)
    assert ds.input_ids.shape == (400, 2 + 14) and ds.input_ids.dtype == np.uint16
    assert set(np.unique(ds.strand)) == {-1, 1}
    name = lam.names[0]
    for i in range(len(ds)):
        text = span_text(lam, name, int(ds.start[i]), int(ds.strand[i]), 30, 3)
        row = ds.input_ids[i]
        assert row[0] == tok.cls_token_id and row[-1] == tok.sep_token_id
        assert row[1:-1].tolist() == tok.encode(text[:30]).tolist()
        assert ds.labels[i] == kmer_label(text[30:])
        assert label_to_kmer(ds.labels[i], 3) == text[30:]


def test_any_vocabulary_order(lam: dnakmer.Genome, tmp_path: Path) -> None:
    """Token ids come from the tokenizer's vocabulary; labels keep the default order."""
    kmers = KmerTokenizer(3).vocab[5:]
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                                   *reversed(kmers)]) + "\n")  # fmt: skip
    tok = KmerTokenizer.from_vocab(tmp_path / "vocab.txt")
    ds = build(lam, 2, 12, tok, n_train=200, n_val=0, n_test=20, strand="both", seed=8)
    name = lam.names[0]
    for i in range(len(ds)):
        text = span_text(lam, name, int(ds.start[i]), int(ds.strand[i]), 12, 2)
        assert ds.input_ids[i, 1:-1].tolist() == tok.encode(text[:12]).tolist()
        assert ds.input_ids[i, 1] == 5 + 63 - kmer_label(text[:3])
        assert ds.labels[i] == kmer_label(text[12:])


def test_minus_strand_definition(lam: dnakmer.Genome) -> None:
    ds = build(lam, 2, 6, None, n_train=40, n_val=0, n_test=0, strand="-", seed=1)
    name = lam.names[0]
    for i in range(len(ds)):
        s = int(ds.start[i])
        context = revcomp(lam.fetch(name, s + 2, s + 2 + 6))
        label = revcomp(lam.fetch(name, s, s + 2))
        assert ds.input_ids[i].tolist() == [{"A": 0, "T": 1, "C": 2, "G": 3}[b] for b in context]
        assert ds.labels[i] == kmer_to_label(label)


def test_no_window_touches_n_runs(fly: dnakmer.Genome) -> None:
    ds = build(fly, 4, 200, None, n_train=3000, n_val=500, n_test=500, seed=5, block_size=20_000)
    assert ds.input_ids.dtype == np.uint8 and ds.input_ids.shape == (4000, 200)
    assert int(ds.input_ids.max()) <= 3
    name = fly.names[0]
    intervals = fly.acgt_intervals(name)
    assert len(intervals) > 1, "fly chr4 has N runs"
    ends = ds.start.astype(np.int64) + 204
    starts = ds.start.astype(np.int64)
    which = np.searchsorted(intervals[:, 0].astype(np.int64), starts, "right") - 1
    assert (which >= 0).all()
    assert (ends <= intervals[which, 1].astype(np.int64)).all()
    for i in range(0, len(ds), 97):
        text = fly.fetch(name, int(ds.start[i]), int(ends[i])).upper()
        assert set(text) <= set("ACGT")
        assert ds.labels[i] == kmer_label(text[200:])


def spans_disjoint(ds: NextKmerDataset) -> None:
    span = ds.context_nt + ds.k
    held = np.flatnonzero(ds.split != 0)
    for rec in np.unique(ds.record):
        train = np.sort(ds.start[(ds.split == 0) & (ds.record == rec)].astype(np.int64))
        other = np.sort(ds.start[held][ds.record[held] == rec].astype(np.int64))
        if len(train) == 0 or len(other) == 0:
            continue
        # The nearest held-out span on either side of each train span must not overlap it.
        i = np.searchsorted(other, train)
        left = other[np.clip(i - 1, 0, None)]
        right = other[np.clip(i, None, len(other) - 1)]
        assert not ((np.abs(train - left) < span) | (np.abs(train - right) < span)).any()


def test_block_split_spans_are_disjoint(fly: dnakmer.Genome) -> None:
    ds = build(fly, 6, 100, None, n_train=20_000, n_val=3000, n_test=3000, seed=9,
               block_size=5000, strand="both")  # fmt: skip
    spans_disjoint(ds)
    areas = ds.manifest["areas"]
    assert {len(areas[s]) for s in ("val", "test")} == {round(0.1 * 270)}
    owner = {}
    for split_code, s in enumerate(("train", "val", "test")):
        for _rec, a, b in areas[s]:
            owner[a // 5000] = split_code
            assert b - a <= 5000
    block_of = ds.start // 5000
    assert ((ds.start + 106 - 1) // 5000 == block_of).all(), "spans stay inside one block"
    assert all(owner[int(b)] == c for b, c in zip(block_of, ds.split, strict=True))


def test_record_split(two_records: Path) -> None:
    g = dnakmer.Genome.open(two_records)
    ds = build(g, 2, 50, KmerTokenizer(3), n_train=500, n_val=0, n_test=100, split="records",
               test_records=["NC_001422"], seed=2)  # fmt: skip
    names = np.array(ds.record_names)[ds.record]
    assert set(names[ds.split == 2]) == {"NC_001422"}
    assert set(names[ds.split == 0]) == {g.names[1]}
    with pytest.raises(RecordNotFoundError, match="chrZ"):
        build(g, 2, 50, None, n_train=5, n_val=0, n_test=5, split="records",
              test_records=["chrZ"])  # fmt: skip
    with pytest.raises(ValueError, match="more than one split"):
        build(g, 2, 50, None, n_train=5, n_val=5, n_test=5, split="records",
              val_records=["NC_001422"], test_records=["NC_001422"])  # fmt: skip
    with pytest.raises(ValueError, match="needs val_records"):
        build(g, 2, 50, None, n_train=5, n_val=5, n_test=0, split="records")


def test_dedup_removes_repeated_windows(tmp_path: Path) -> None:
    # A genome made of one 300-bp unit repeated: every window recurs in every block.
    rng = np.random.default_rng(0)
    unit = "".join(rng.choice(list("ACGT"), 300))
    (tmp_path / "rep.fa").write_text(">rep\n" + unit * 40 + "\n")
    g = dnakmer.Genome.open(tmp_path / "rep.fa")
    kw = dict(n_val=200, n_test=200, block_size=1200, seed=4)
    plain = build(g, 2, 20, None, n_train=300, **kw)
    assert plain.manifest["duplicates_rejected"] == 0
    deduped = build(g, 2, 20, None, n_train=10, dedup=True, **kw)
    assert deduped.manifest["duplicates_rejected"] > 0
    held = {
        deduped.input_ids[i].tobytes() + bytes([deduped.labels[i]])
        for i in np.flatnonzero(deduped.split != 0)
    }
    for i in deduped.indices("train"):
        assert deduped.input_ids[i].tobytes() + bytes([deduped.labels[i]]) not in held
    with pytest.raises(ValueError, match="exact duplicates"):
        build(g, 2, 20, None, n_train=9000, dedup=True, **kw)


def test_deterministic_and_seeded(lam: dnakmer.Genome, tmp_path: Path) -> None:
    kw = dict(n_train=2000, n_val=200, n_test=200, strand="both", dedup=True)
    a = build(lam, 4, 64, KmerTokenizer(6), seed=11, **kw)
    b = build(LAMBDA, 4, 64, KmerTokenizer(6), seed=11, threads=1, **kw)
    for f in nextkmer.FIELDS:
        assert np.array_equal(a.arrays[f], b.arrays[f]) and a.arrays[f].dtype == b.arrays[f].dtype
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    for f in [*nextkmer.FIELDS, "manifest"]:
        name = f"{f}.json" if f == "manifest" else f"{f}.npy"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    c = build(lam, 4, 64, KmerTokenizer(6), seed=12, **kw)
    assert not np.array_equal(a.start, c.start)
    # Draws are without replacement: no (start, strand) repeats within a split.
    keys = a.start.astype(np.int64) * 2 + (a.strand == -1)
    assert len(np.unique(keys)) == len(keys)


def test_save_load_and_readers(lam: dnakmer.Genome, tmp_path: Path) -> None:
    ds = build(lam, 3, 515, KmerTokenizer(6), n_train=300, n_val=30, n_test=60, seed=1)
    out = ds.save(tmp_path / "ds")
    m = json.loads((out / "manifest.json").read_text())
    assert m["kind"] == "dnakmer.nextkmer" and m["dnakmer_version"] == dnakmer.__version__
    assert m["genome"]["sha256"] == lam.sha256
    assert m["counts"] == {"train": 300, "val": 30, "test": 60}
    assert [sum(m["label_histogram"][s]) for s in ("train", "val", "test")] == [300, 30, 60]
    assert np.array_equal(m["label_histogram"]["test"], np.bincount(ds.labels[-60:], minlength=64))
    assert m["tokenizer"]["k"] == 6 and m["fields"]["input_ids"]["shape"] == [390, 512]
    back = NextKmerDataset.load(out)
    assert isinstance(back.input_ids, np.memmap)
    assert np.array_equal(back.input_ids, ds.input_ids) and back.k == 3
    assert back.open_genome().sha256 == lam.sha256
    table = pl.read_parquet(out / "samples.parquet")
    assert table.columns == list(nextkmer.FIELDS)
    assert table["input_ids"][5].to_list() == ds.input_ids[5].tolist()
    import pyarrow.parquet as pq

    assert pq.read_table(out / "samples.parquet").num_rows == 390
    import datasets

    hf = datasets.Dataset.from_parquet(str(out / "samples.parquet"))
    assert hf[7]["labels"] == int(ds.labels[7]) and hf[7]["input_ids"] == ds.input_ids[7].tolist()


def test_label_conversions() -> None:
    assert [label_to_kmer(x, 2) for x in (0, 1, 15)] == ["AA", "AT", "GG"]
    assert label_to_kmer(np.array([0, 7, 27]), 3) == ["AAA", "ATG", "TCG"]
    assert kmer_to_label("atg") == 7
    tok = KmerTokenizer(5)
    for label in (0, 1, 77, 1023):
        assert tok.kmer_ids[label] == tok.encode(label_to_kmer(label, 5))[0]
    with pytest.raises(ValueError, match="outside"):
        label_to_kmer(16, 2)
    with pytest.raises(ValueError, match="'N' at position 1"):
        kmer_to_label("AN")
    with pytest.raises(ValueError, match="between 1 and 8"):
        label_to_kmer(0, 9)


def test_bad_parameters(lam: dnakmer.Genome) -> None:
    small = dict(n_train=10, n_val=2, n_test=2)
    with pytest.raises(ValueError, match="k must be an integer between 1 and 8, got 0"):
        build(lam, 0, 20, None, **small)
    with pytest.raises(ValueError, match="context_nt = 5 is shorter than the tokenizer's k = 6"):
        build(lam, 2, 5, KmerTokenizer(6), **small)
    with pytest.raises(ValueError, match=r"multiple of the stride 4.*use context_nt = 18 or 22"):
        build(lam, 2, 20, KmerTokenizer(6, stride=4), **small)
    with pytest.raises(ValueError, match=r"n_test = 100000 but the test split holds only \d+ "):
        build(lam, 2, 20, None, n_train=10, n_val=2, n_test=100_000)
    with pytest.raises(ValueError, match="strand must be"):
        build(lam, 2, 20, None, strand="+-", **small)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_train must be a non-negative integer"):
        build(lam, 2, 20, None, n_train=-1, n_val=0, n_test=0)
    with pytest.raises(ValueError, match="leave none for train"):
        build(lam, 2, 20, None, block_size=30_000, **small)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        build(lam, 2, 20, None, val_fraction=1.5, **small)
    with pytest.raises(FileNotFoundError):
        build(DATA / "missing.fa", 2, 20, None, **small)
