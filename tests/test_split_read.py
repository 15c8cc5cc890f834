"""Plain FASTA on several threads: the file is cut at record headers and the pieces are
tokenized in parallel. Wherever the cuts fall, the result must be exactly that of one
stream: the same records in the same order, the same ids, files and manifest."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

import dnakmer
from dnakmer import _core

DATA = Path(__file__).parent / "data"
GENOMES = ["phix174.fa", "lambda_phage.fa.gz", "yeast_chrI.fa.gz", "dmel_chr4.fa.gz"]


def _records() -> list[tuple[str, bytes]]:
    """(name, sequence) of every record of the real genomes in tests/data, original case."""
    out = []
    for name in GENOMES:
        data = (DATA / name).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        for block in data.split(b"\n>"):
            header, _, seq = block.lstrip(b">").partition(b"\n")
            out.append((header.split()[0].decode(), seq.replace(b"\n", b"").replace(b"\r", b"")))
    return out


def _write(path: Path, records: list[tuple[str, bytes]], rng: random.Random) -> Path:
    """FASTA with a random line width and line ending per record."""
    with open(path, "wb") as f:
        for name, seq in records:
            width = rng.choice([50, 60, 70, 80, 1000])
            eol = b"\r\n" if rng.random() < 0.2 else b"\n"
            f.write(b">" + name.encode() + b" description" + eol)
            for i in range(0, len(seq), width):
                f.write(seq[i : i + width] + eol)
            if rng.random() < 0.1:
                f.write(eol)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The four real genomes in one file, and the same bases as ~300 contigs."""
    rng = random.Random(5)
    folder = tmp_path_factory.mktemp("split")
    records = _records()
    contigs = []
    for name, seq in records:
        at = 0
        while at < len(seq):
            n = rng.randint(1, 12_000)
            contigs.append((f"{name}_{len(contigs)}", seq[at : at + n]))
            at += n
    # A record name that sanitises to the same file name as another one.
    contigs.insert(7, ("ctg/1", b"ACGTNNACGT"))
    contigs.insert(150, ("ctg_1", b"acgtacgtac"))
    return {
        "genomes": _write(folder / "genomes.fa", records, rng),
        "contigs": _write(folder / "contigs.fa", contigs, rng),
    }


def _read(path: Path, threads: int) -> tuple[list, dict]:
    return _core.tokenize_fasta(str(path), dnakmer.KmerTokenizer(6), threads=threads)


@pytest.mark.parametrize("which", ["genomes", "contigs"])
@pytest.mark.parametrize("threads", [2, 3, 8])
def test_pieces_read_in_parallel_equal_one_stream(
    inputs: dict[str, Path], which: str, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = inputs[which]
    want, want_summary = _read(path, 1)
    assert want_summary["pieces"] == 1
    monkeypatch.setenv("DNAKMER_SPLIT_MIN_BYTES", "4096")
    got, summary = _read(path, threads)
    # Records spread over several pieces (a piece inside a long record holds none).
    assert summary["pieces"] > (1 if which == "genomes" else threads)
    assert {k: v for k, v in summary.items() if k != "pieces"} == {
        k: v for k, v in want_summary.items() if k != "pieces"
    }
    assert [r[0] for r in got] == [r[0] for r in want]
    for (name, ids, bases, unk), (_, want_ids, want_bases, want_unk) in zip(got, want, strict=True):
        assert ids.dtype == want_ids.dtype == np.uint16
        np.testing.assert_array_equal(ids, want_ids, err_msg=name)
        assert (bases, unk) == (want_bases, want_unk)


def test_records_match_encode_of_their_sequence(
    inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DNAKMER_SPLIT_MIN_BYTES", "4096")
    tok = dnakmer.KmerTokenizer(6)
    got, summary = _core.tokenize_fasta(str(inputs["genomes"]), tok, threads=4)
    assert summary["pieces"] > 1
    for (name, ids, bases, _), (ref_name, seq) in zip(got, _records(), strict=True):
        assert name == ref_name and bases == len(seq)
        np.testing.assert_array_equal(ids, tok.encode(seq))


def test_to_disk_in_parallel_equals_one_stream(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = dnakmer.KmerTokenizer(6)
    one = dnakmer.tokenize_genome(inputs["contigs"], tok, tmp_path / "one", threads=1)
    monkeypatch.setenv("DNAKMER_SPLIT_MIN_BYTES", "4096")
    par = dnakmer.tokenize_genome(inputs["contigs"], tok, tmp_path / "par", threads=3)
    assert par == one
    names = [r["file"] for r in one["records"]]
    assert (names[7], names[150]) == ("ctg_1.npy", "ctg_1_2.npy")
    for folder in ("one", "par"):
        listed = sorted(p.name for p in (tmp_path / folder).iterdir())
        assert listed == sorted([*names, "manifest.json"])
    for name in names:
        assert (tmp_path / "par" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    assert json.loads((tmp_path / "par" / "manifest.json").read_text()) == par


def test_a_failure_in_a_late_piece_leaves_nothing(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = inputs["contigs"].read_bytes()
    cut = text.rindex(b"\n>", 0, len(text) * 9 // 10)
    bad = tmp_path / "bad.fa"
    bad.write_bytes(text[:cut] + b"\nACGT!\n" + text[cut:])
    line = text[:cut].count(b"\n") + 2
    monkeypatch.setenv("DNAKMER_SPLIT_MIN_BYTES", "4096")
    for threads in (1, 3):
        out = tmp_path / f"out{threads}"
        with pytest.raises(dnakmer.FastaFormatError) as info:
            dnakmer.tokenize_genome(bad, dnakmer.KmerTokenizer(6), out, threads=threads)
        assert info.value.line == line
        assert "invalid sequence character '!' at column 5" in str(info.value)
        assert list(out.iterdir()) == []


def test_large_plain_files_are_split_by_default(tmp_path: Path) -> None:
    # Five copies of the genomes under other names: 8 MB, above the 4 MiB threshold.
    records = [(f"{name}_{i}", seq) for i in range(5) for name, seq in _records()]
    path = _write(tmp_path / "big.fa", records, random.Random(1))
    assert path.stat().st_size > 4 << 20
    _, two = _read(path, 2)
    _, one = _read(path, 1)
    assert two["pieces"] > 1 and one["pieces"] == 1
    assert two["records"] == one["records"] == len(records)


@pytest.mark.parametrize("which", ["genomes", "contigs"])
def test_genome_open_in_parallel_equals_one_stream(
    inputs: dict[str, Path], which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = inputs[which]
    one = dnakmer.Genome.open(path, threads=1)
    monkeypatch.setenv("DNAKMER_SPLIT_MIN_BYTES", "4096")
    par = dnakmer.Genome.open(path, threads=3)
    assert par.names == one.names and par.lengths == one.lengths
    assert par.descriptions == one.descriptions
    assert par.stats().equals(one.stats())
    for name in one.names:
        assert par.fetch(name) == one.fetch(name)
        np.testing.assert_array_equal(par.codes(name), one.codes(name))
        np.testing.assert_array_equal(par.acgt_intervals(name), one.acgt_intervals(name))
    # Against the file itself: every record, case kept.
    if which == "genomes":
        for name, seq in _records():
            assert par.fetch(name) == seq.decode()
