"""``Genome`` against the pure-Python FASTA reference (tests/fasta_reference.py): real
genomes with their published statistics, and hypothesis-generated FASTA text written
plain, as multi-member gzip and as BGZF."""

from __future__ import annotations

import gzip
import os
import re
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dnakmer
from fasta_reference import (
    BGZF_EOF,
    NAME,
    ReferenceFastaError,
    base_codes,
    bgzf_compress,
    composition,
    fasta_documents,
    gzip_members,
    parse_fasta,
    write_container,
)

DATA = Path(__file__).parent / "data"

# /work/shared/data/README.md: length, N, soft-masked, GC over non-N bases, format.
REAL_GENOMES = {
    "phix174.fa": ("NC_001422", 5_386, 0, 0, 0.4476, "plain"),
    "lambda_phage.fa.gz": ("gi|9626243|ref|NC_001416.1|", 48_502, 0, 0, 0.4986, "gzip"),
    "yeast_chrI.fa.gz": ("NC_001133.9", 230_218, 0, 29_731, 0.3927, "bgzf"),
}
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _decompressed(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _acgt_intervals(seq: str) -> list[list[int]]:
    return [[m.start(), m.end()] for m in re.finditer("[ACGTacgt]+", seq)]


@pytest.mark.parametrize("file", sorted(REAL_GENOMES))
def test_real_genome_statistics(file: str) -> None:
    name, length, n, soft, gc, compression = REAL_GENOMES[file]
    genome = dnakmer.Genome.open(DATA / file, sha256=True)
    assert genome.names == [name]
    assert genome.lengths == [length]
    assert genome.compression == compression
    assert not genome.bgzf_eof_missing
    (row,) = genome.stats().to_dicts()
    assert (row["length"], row["n"], row["softmasked"]) == (length, n, soft)
    assert round(row["gc"], 4) == gc
    assert row["a"] + row["c"] + row["g"] + row["t"] + row["n"] + row["other"] == length
    assert genome.sha256 == dnakmer._core.sha256_file(DATA / file)


@pytest.mark.parametrize("file", sorted(REAL_GENOMES))
def test_real_genome_matches_reference(file: str) -> None:
    (record,) = parse_fasta(_decompressed(DATA / file))
    genome = dnakmer.Genome.open(DATA / file, threads=2)
    seq = record.sequence
    assert genome.fetch(record.name) == seq
    assert genome.descriptions == [record.description]
    assert genome.codes(record.name).tolist() == base_codes(seq)
    assert genome.acgt_intervals(record.name).tolist() == _acgt_intervals(seq)
    expected = composition(seq)
    (row,) = genome.stats().to_dicts()
    assert {key: row[key] for key in expected} == expected
    # Slices that straddle the 2-bit packing boundaries and soft-masked runs.
    for start, end in [(0, 1), (3, 9), (1001, 1004), (len(seq) - 7, len(seq))]:
        assert genome.fetch(record.name, start, end) == seq[start:end]
        assert genome.codes(record.name, start, end).tolist() == base_codes(seq[start:end])


def test_interval_and_record_errors() -> None:
    genome = dnakmer.Genome.open(DATA / "phix174.fa")
    with pytest.raises(ValueError, match=r"\[5000, 5387\) is outside record 'NC_001422'"):
        genome.fetch("NC_001422", 5000, 5387)
    with pytest.raises(ValueError, match="outside record"):
        genome.codes("NC_001422", 10, 9)
    with pytest.raises(dnakmer.RecordNotFoundError) as info:
        genome.fetch("chr1")
    assert isinstance(info.value, KeyError)
    assert info.value.record == "chr1"
    assert "no record named 'chr1'" in str(info.value)
    assert genome.fetch("NC_001422", 5386) == ""
    assert genome.codes("NC_001422", 0, 0).dtype == np.uint8


# --- hypothesis: random multi-record FASTA ------------------------------------------

@SETTINGS
@given(
    doc=fasta_documents(),
    container=st.sampled_from(["plain", "gzip", "bgzf"]),
    split=st.integers(1, 7),
    threads=st.sampled_from([1, 2, 3]),
    data=st.data(),
)
def test_random_fasta_reads_as_reference(doc, container, split, threads, data, tmp_path) -> None:
    raw, records = doc
    assert [(r.name, r.description, r.sequence) for r in parse_fasta(raw)] == records
    path = tmp_path / f"random.{container}"
    write_container(path, raw, container, split)
    # With 3 threads a plain file is cut at record headers into pieces as small as it
    # allows (the core does so from 4 MiB on), packed in parallel and joined.
    pieces = {"DNAKMER_SPLIT_MIN_BYTES": "2"} if threads == 3 else {}
    with mock.patch.dict(os.environ, pieces):
        genome = dnakmer.Genome.open(path, threads=threads)
    assert genome.compression == container
    assert genome.names == [name for name, _, _ in records]
    assert genome.descriptions == [d for _, d, _ in records]
    assert genome.lengths == [len(s) for _, _, s in records]
    stats = genome.stats().to_dicts()
    for (name, _, seq), row in zip(records, stats, strict=True):
        assert genome.fetch(name) == seq
        start = data.draw(st.integers(0, len(seq)))
        end = data.draw(st.integers(start, len(seq)))
        assert genome.fetch(name, start, end) == seq[start:end]
        assert genome.codes(name, start, end).tolist() == base_codes(seq[start:end])
        assert genome.acgt_intervals(name).tolist() == _acgt_intervals(seq)
        expected = composition(seq)
        assert {key: row[key] for key in expected} == expected


# --- hypothesis: broken FASTA fails where the reference says ------------------------

TOKENIZER = dnakmer.KmerTokenizer(2)
LINE = st.one_of(
    st.builds(lambda n: f">{n}", NAME),
    st.text("ACGTNacgt \t", max_size=20),
    st.text("ACGTN>1@#\x00\x7f", max_size=6),
    st.sampled_from(["", ">", "> ", "\r", ">a\x01", "  "]),
)


@SETTINGS
@given(lines=st.lists(LINE, max_size=8), newline=st.sampled_from(["\n", "\r\n"]))
def test_errors_match_reference(lines: list[str], newline: str, tmp_path: Path) -> None:
    raw = newline.join(lines).encode()
    path = tmp_path / "broken.fa"
    path.write_bytes(raw)
    try:
        expected = parse_fasta(raw)
    except ReferenceFastaError as ref:
        # Both sinks of the parser: the genome builder and the streaming tokenizer.
        for read in (dnakmer.Genome.open, lambda p: dnakmer.tokenize_fasta(p, TOKENIZER)):
            with pytest.raises(dnakmer.FastaFormatError) as info:
                read(path)
            if "no FASTA records" not in ref.reason:
                assert (info.value.line, info.value.record) == (ref.line, ref.record)
            assert info.value.path == str(path)
        return
    genome = dnakmer.Genome.open(path)
    assert genome.names == [r.name for r in expected]
    assert [genome.fetch(r.name) for r in expected] == [r.sequence for r in expected]
    assert list(dnakmer.tokenize_fasta(path, TOKENIZER)) == genome.names


@SETTINGS
@given(data=st.binary(max_size=400), prefix=st.sampled_from([b"", b">", b"\x1f\x8b"]))
def test_random_bytes_raise_typed_errors(data: bytes, prefix: bytes, tmp_path: Path) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(prefix + data)
    try:
        genome = dnakmer.Genome.open(path)
    except dnakmer.FastaFormatError as err:
        assert err.path == str(path)
        return
    assert parse_fasta(_decompressed(path))[0].name == genome.names[0]


def _pack(raw: bytes, bgzf: bool) -> bytearray:
    return bytearray(bgzf_compress(raw, block_size=97) if bgzf else gzip_members(raw, 2))


@SETTINGS
@given(
    doc=fasta_documents(),
    bgzf=st.booleans(),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=3),
)
def test_damaged_archives_fail_or_read_the_original(doc, bgzf, flips, tmp_path) -> None:
    """Flipped bits raise a typed error, or (when they hit a header field that readers
    ignore) leave the content intact: never a silent wrong answer."""
    raw, records = doc
    packed = _pack(raw, bgzf)
    for offset, mask in flips:
        packed[offset % len(packed)] ^= mask
    path = tmp_path / "damaged.gz"
    path.write_bytes(bytes(packed))
    try:
        genome = dnakmer.Genome.open(path)
    except dnakmer.FastaFormatError as err:
        assert err.path == str(path)
        return
    assert genome.names == [name for name, _, _ in records]
    assert [genome.fetch(name) for name in genome.names] == [seq for _, _, seq in records]


@SETTINGS
@given(doc=fasta_documents(), bgzf=st.booleans(), cut=st.integers(1, 10_000))
def test_truncated_archives_fail_or_read_complete_members(doc, bgzf, cut, tmp_path) -> None:
    """A cut archive raises CompressionError, unless the cut falls between gzip members
    or BGZF blocks: then it reads what gzip reads, and BGZF warns about the missing
    end-of-file block."""
    raw, _ = doc
    packed = bytes(_pack(raw, bgzf))
    packed = packed[: cut % len(packed)]
    path = tmp_path / "cut.gz"
    path.write_bytes(packed)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            genome = dnakmer.Genome.open(path)
    except dnakmer.FastaFormatError as err:
        assert err.path == str(path)
        return
    reference = parse_fasta(gzip.decompress(packed))
    assert genome.names == [r.name for r in reference]
    assert [genome.fetch(r.name) for r in reference] == [r.sequence for r in reference]
    if bgzf:
        assert genome.bgzf_eof_missing
        assert any("no end-of-file block" in str(w.message) for w in caught)


def test_bgzf_eof_marker_is_the_specified_block() -> None:
    assert gzip.decompress(BGZF_EOF) == b""
    assert dnakmer.Genome.open(DATA / "yeast_chrI.fa.gz").compression == "bgzf"


@pytest.mark.parametrize(("n", "base"), [(65_536, "C"), (70_000, "C"), (131_075, "a")])
def test_stats_of_a_long_single_base_line(tmp_path: Path, n: int, base: str) -> None:
    # One line of one base: the packed counting path once wrapped a 16-bit counter.
    path = tmp_path / "x.fa"
    path.write_text(f">x\n{base * n}\nAT\n")
    row = dnakmer.Genome.open(path).stats().row(0, named=True)
    counts = {b: row[b] for b in "acgt"}
    expected = {"a": 1, "c": 0, "g": 0, "t": 1} | {base.lower(): n + (base.lower() == "a")}
    assert counts == expected
    assert row["softmasked"] == (n if base.islower() else 0)
