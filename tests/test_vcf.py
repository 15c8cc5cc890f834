"""``dnakmer.read_vcf`` against a pure-Python reference reader: random VCFs written plain,
gzip and BGZF read back identically; damaged data lines fail at the line (and CHROM)
the reference names; hostile bytes give ``VcfFormatError``, never a crash."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dnakmer
from dnakmer import VcfFormatError, read_vcf
from fasta_reference import bgzf_compress, gzip_members

# --- the reference reader -------------------------------------------------------------

BOM = b"\xef\xbb\xbf"
POS_MAX = 2**63 - 1
QUOTE_MAX = 60

Row = tuple[int, str, int, str, str, str]


class ReferenceVcfError(ValueError):
    """A VCF error as the reference sees it: 1-based line, CHROM (or None) and reason."""

    def __init__(self, line: int, record: str | None, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.record = record


def _chrom(columns: list[bytes]) -> str | None:
    """The CHROM an error names: the first column of a line with tabs, cut to 60 chars."""
    if len(columns) < 2 or not columns[0]:
        return None
    text = columns[0].decode("utf-8", "replace")
    return text[:QUOTE_MAX] + "..." if len(text) > QUOTE_MAX else text


def reference_read_vcf(data: bytes) -> list[Row]:
    """The ``(line, chrom, pos, id, ref, alt)`` rows of decompressed VCF text.

    Rules: a leading byte-order mark is skipped; lines end at ``\\n``, one ``\\r`` before
    it is dropped; blank lines are skipped. The header is the ``#`` lines from
    ``##fileformat=`` to ``#CHROM`` (what each header line says is checked by noodles, not
    modelled here). A data line is UTF-8 with at least 8 tab-separated columns, none
    empty, and not exactly 9 (FORMAT needs a sample); POS is ``+?[0-9]+`` from 1 to
    2**63 - 1; no ``#`` line follows the header.
    """
    data = data.removeprefix(BOM)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    rows: list[Row] = []
    header_lines = 0
    in_header = True
    for number, raw in enumerate(lines, 1):
        line = raw.removesuffix(b"\r")
        if not line:
            continue
        if in_header:
            if not line.startswith(b"#"):
                reason = "not a VCF file" if header_lines == 0 else "missing #CHROM"
                raise ReferenceVcfError(number, None, reason)
            if header_lines == 0 and not line.startswith(b"##fileformat="):
                raise ReferenceVcfError(number, None, "no ##fileformat line")
            header_lines += 1
            in_header = not line.startswith(b"#CHROM")
            continue
        if line.startswith(b"#"):
            raise ReferenceVcfError(number, None, "a header line after #CHROM")
        columns = line.split(b"\t")
        chrom = _chrom(columns)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise ReferenceVcfError(number, chrom, "not UTF-8") from None
        if len(columns) < 8 or b"" in columns or len(columns) == 9:
            raise ReferenceVcfError(number, chrom, "bad columns")
        pos = columns[1]
        if not re.fullmatch(rb"\+?[0-9]+", pos) or not 1 <= int(pos) <= POS_MAX:
            raise ReferenceVcfError(number, chrom, "bad POS")
        c, _, ident, ref, alt = (x.decode() for x in columns[:5])
        rows.append((number, c, int(pos), ident, ref, alt))
    if in_header:
        reason = "empty file" if header_lines == 0 else "missing #CHROM"
        raise ReferenceVcfError(len(lines) + 1, None, reason)
    return rows


def rows_of(table: pl.DataFrame) -> list[Row]:
    return list(table.iter_rows())


# --- writing VCFs ---------------------------------------------------------------------

CONTAINERS = ["plain", "gzip", "bgzf"]


def compress(data: bytes, container: str, split: int = 1) -> bytes:
    if container == "gzip":
        return gzip_members(data, n_members=split)
    if container == "bgzf":
        return bgzf_compress(data, block_size=max(1, len(data) // split + 1))
    return data


CHROM = st.text("abcXYZ019_.|:*-é", min_size=1, max_size=10).filter(
    lambda c: not c.startswith("#")
)
BASES = st.text("ACGTNacgtn", min_size=1, max_size=12)
SYMBOLIC = st.sampled_from(["<DEL>", "<INS:ME:ALU>", "<DUP>", "*", "A[chr2:5[", "<*>"])
ALT = st.one_of(st.just("."), st.lists(st.one_of(BASES, SYMBOLIC), min_size=1, max_size=3))
ID = st.one_of(st.just("."), st.text("rs0123456789;abc_", min_size=1, max_size=12))
QUAL = st.sampled_from([".", "0", "50", "12.5", "1e3"])
FILTER = st.sampled_from([".", "PASS", "q10", "q10;s50"])
INFO = st.sampled_from([".", "DP=3", "DP=10;AF=0.5", "SVTYPE=DEL;END=100", "DB;H2"])
POS = st.one_of(st.integers(1, 10**6), st.integers(1, POS_MAX))
SAMPLE = {"GT": st.sampled_from(["0/1", "1|0", "./.", "0"]),
          "GT:DP": st.sampled_from(["0/1:5", "1|1:.", "./.:0"])}  # fmt: skip


@st.composite
def vcf_documents(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, int, str, str, str]]]:
    """VCF text with a real header (contigs, INFO, FILTER, FORMAT, samples) and random
    records, CRLF or LF, blank lines; returns the bytes and the (chrom, pos, id, ref, alt)
    of each record in order."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    n_samples = draw(st.integers(0, 3))
    fmt = draw(st.sampled_from(sorted(SAMPLE)))
    contigs = draw(st.lists(st.text("abcXYZ019_", min_size=1, max_size=6), max_size=3,
                            unique=True))  # fmt: skip
    header = [
        f"##fileformat=VCFv4.{draw(st.sampled_from([1, 2, 3]))}",
        *(f"##contig=<ID={c},length=1000000>" for c in contigs),
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">',
        '##FILTER=<ID=q10,Description="Quality below 10">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
                  + (["FORMAT"] + [f"S{i}" for i in range(n_samples)] if n_samples else [])),
    ]  # fmt: skip
    lines = [h + newline for h in header]
    records = []
    for _ in range(draw(st.integers(0, 12))):
        chrom = draw(st.one_of(st.sampled_from(contigs), CHROM) if contigs else CHROM)
        pos, ident, ref, alt = draw(POS), draw(ID), draw(BASES), draw(ALT)
        alt_text = alt if isinstance(alt, str) else ",".join(alt)
        columns = [chrom, str(pos), ident, ref, alt_text, draw(QUAL), draw(FILTER), draw(INFO)]
        if n_samples:
            columns += [fmt] + [draw(SAMPLE[fmt]) for _ in range(n_samples)]
        lines.append("\t".join(columns) + newline)
        if draw(st.integers(0, 7)) == 0:
            lines.append(newline)
        records.append((chrom, pos, ident, ref, alt_text))
    text = "".join(lines)
    if draw(st.booleans()):
        text = text.removesuffix(newline)  # the last line without its line break
    return text.encode(), records


def _write(folder: str, data: bytes, container: str, split: int = 1) -> Path:
    path = Path(folder) / f"v.vcf{'' if container == 'plain' else '.gz'}"
    path.write_bytes(compress(data, container, split))
    return path


# --- random valid VCFs ----------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=vcf_documents(), container=st.sampled_from(CONTAINERS), split=st.integers(1, 4))
def test_random_vcfs_read_back_exactly(doc, container: str, split: int) -> None:
    data, records = doc
    expected = reference_read_vcf(data)
    assert [r[1:] for r in expected] == records
    with tempfile.TemporaryDirectory() as folder:
        table = read_vcf(_write(folder, data, container, split), threads=1 + split % 2)
    assert table.schema == dnakmer.vcf.VCF_SCHEMA
    assert rows_of(table) == expected


def test_the_columns_and_their_types(tmp_path: Path) -> None:
    text = (
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=248956422>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNA1\n"
        "chr1\t10\trs1\tA\tT,<DEL>\t50\tPASS\tDP=3\tGT\t0/1\n"
        "chr1\t9223372036854775807\t.\tACGT\t.\t.\t.\t.\tGT\t./.\n"
    )
    path = tmp_path / "a.vcf"
    path.write_text(text)
    table = read_vcf(path)
    assert table.columns == ["line", "chrom", "pos", "id", "ref", "alt"]
    assert table.dtypes == [pl.Int64, pl.Utf8, pl.Int64, pl.Utf8, pl.Utf8, pl.Utf8]
    assert rows_of(table) == [(4, "chr1", 10, "rs1", "A", "T,<DEL>"),
                              (5, "chr1", POS_MAX, ".", "ACGT", ".")]  # fmt: skip
    columns, summary = dnakmer._core.read_vcf(str(path))
    assert columns["pos"].dtype == np.int64 and columns["line"].dtype == np.int64
    assert summary["compression"] == "plain" and summary["lines"] == 5


def test_a_header_alone_is_an_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "h.vcf"
    path.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    table = read_vcf(path)
    assert table.height == 0 and table.schema == dnakmer.vcf.VCF_SCHEMA


# --- damaged data lines ---------------------------------------------------------------

BAD_POS = ["0", "-1", "x", "1.5", "+7", "007", "+0", "-0", " 5", "9223372036854775808",
           "18446744073709551616", "99999999999999999999999999", "1e3"]  # fmt: skip


def _damage(line: bytes, how: int, draw: st.DrawFn) -> bytes:
    columns = line.split(b"\t")
    if how == 0:  # a column dropped
        del columns[draw(st.integers(0, len(columns) - 1))]
    elif how == 1:  # a column emptied
        columns[draw(st.integers(0, len(columns) - 1))] = b""
    elif how == 2 and len(columns) > 1:
        columns[1] = draw(st.sampled_from(BAD_POS)).encode()
    elif how == 3:
        return b"#" + line
    elif how == 4:
        return line.replace(b"\t", b" ")
    elif how == 5:
        columns[draw(st.integers(0, len(columns) - 1))] += b"\xff"
    elif how == 6:
        columns.append(b"")
    else:
        columns = columns[:9]  # FORMAT without its samples, or 8 columns
    return b"\t".join(columns)


@st.composite
def damaged_documents(draw: st.DrawFn) -> bytes:
    data, _ = draw(vcf_documents())
    lines = data.split(b"\n")
    first_record = next(i for i, x in enumerate(lines) if x.startswith(b"#CHROM")) + 1
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(first_record, len(lines)))
        line = lines[i] if i < len(lines) else b"chr1\t5\t.\tA\tT\t.\t.\t."
        cr = b"\r" if line.endswith(b"\r") else b""
        damaged = _damage(line.removesuffix(b"\r"), draw(st.integers(0, 7)), draw) + cr
        lines[i:i + 1] = [damaged]
    return b"\n".join(lines)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=damaged_documents(), container=st.sampled_from(CONTAINERS))
def test_damaged_lines_fail_where_the_reference_says(data: bytes, container: str) -> None:
    try:
        expected: list[Row] | ReferenceVcfError = reference_read_vcf(data)
    except ReferenceVcfError as e:
        expected = e
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, data, container)
        if isinstance(expected, list):
            assert rows_of(read_vcf(path)) == expected
            return
        with pytest.raises(VcfFormatError) as err:
            read_vcf(path)
    e = err.value
    assert (e.path, e.line, e.record) == (str(path), expected.line, expected.record), str(e)
    assert str(e).startswith(f"{path}: line {expected.line}: ")


# --- bad files, one by one ------------------------------------------------------------

HEADER = (
    "##fileformat=VCFv4.2\n##contig=<ID=chr1>\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
)
GOOD = "chr1\t5\t.\tA\tT\t.\t.\t.\n"

BAD_FILES = {
    "empty": (b"", 1, None, "empty file"),
    "binary": (b"\x00\x01\x02\xff\xfe garbage \x89PNG\r\n", 1, None, "not a VCF file"),
    "no header": (GOOD.encode(), 1, None, "not a VCF file"),
    "no #CHROM line": (b"##fileformat=VCFv4.2\n##contig=<ID=chr1>\n" + GOOD.encode(), 3, None,
                       "missing the #CHROM header line"),
    "header without #CHROM": (b"##fileformat=VCFv4.2\n", 2, None, "missing the #CHROM"),
    "no ##fileformat": (HEADER.split("\n", 1)[1].encode(), 1, None, "##fileformat"),
    "bad header line": (b"##fileformat=VCFv4.2\n##INFO=<ID=DP\n" + HEADER[21:].encode(), 2,
                        None, "bad header line"),
    "too few columns": ((HEADER + "chr1\t5\t.\tA\n").encode(), 4, "chr1",
                        "4 columns, but a VCF data line has at least 8"),
    "POS 0": ((HEADER + "chr1\t0\t.\tA\tT\t.\t.\t.\n").encode(), 4, "chr1", "POS is 0"),
    "POS negative": ((HEADER + "chr1\t-4\t.\tA\tT\t.\t.\t.\n").encode(), 4, "chr1",
                     "POS -4 is negative"),
    "POS not a number": ((HEADER + GOOD + "chr2\tx\t.\tA\tT\t.\t.\t.\n").encode(), 5, "chr2",
                         "POS 'x' is not a number"),
    "empty REF": ((HEADER + "chr1\t5\t.\t\tT\t.\t.\t.\n").encode(), 4, "chr1",
                  "column 4 (REF) is empty"),
    "CRLF with too few columns": ((HEADER + "chr1\t5\r\n").encode(), 4, "chr1", "2 columns"),
}  # fmt: skip
# What header lines say is checked by noodles only.
NOT_MODELLED = {"bad header line"}


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_name_file_and_line(tmp_path: Path, name: str, container: str) -> None:
    data, line, record, what = BAD_FILES[name]
    path = tmp_path / "bad.vcf"
    path.write_bytes(compress(data, container))
    with pytest.raises(VcfFormatError, match=re.escape(what)) as err:
        read_vcf(path)
    e = err.value
    assert isinstance(e, ValueError) and isinstance(e, dnakmer.DnakmerError)
    assert (e.path, e.line, e.record) == (str(path), line, record)
    assert str(e).startswith(f"{path}: line {line}: ")
    if name in NOT_MODELLED:
        return
    with pytest.raises(ReferenceVcfError) as ref:
        reference_read_vcf(data)
    assert (ref.value.line, ref.value.record) == (line, record)


@pytest.mark.parametrize("container", ["gzip", "bgzf"])
def test_a_truncated_stream_is_a_vcf_error(tmp_path: Path, container: str) -> None:
    body = "".join(f"chr1\t{i}\t.\tA\tG\t.\t.\t.\n" for i in range(1, 20_000))
    packed = compress((HEADER + body).encode(), container, split=1 if container == "gzip" else 8)
    path = tmp_path / "cut.vcf.gz"
    path.write_bytes(packed[: len(packed) // 2 + 7])
    with pytest.raises(VcfFormatError, match=f"{container} stream is truncated") as err:
        read_vcf(path)
    assert not isinstance(err.value, dnakmer.FastaFormatError)
    assert err.value.path == str(path) and err.value.line is not None and err.value.line > 3


def test_a_bgzf_file_without_its_end_block_warns(tmp_path: Path) -> None:
    path = tmp_path / "noeof.vcf.gz"
    path.write_bytes(bgzf_compress((HEADER + GOOD).encode(), eof_block=False))
    with pytest.warns(UserWarning, match="no end-of-file block"):
        assert read_vcf(path).height == 1


def test_missing_files_and_directories_are_os_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_vcf(tmp_path / "absent.vcf")
    with pytest.raises(IsADirectoryError):
        read_vcf(tmp_path)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400), container=st.sampled_from(CONTAINERS),
       prefix=st.sampled_from([b"", HEADER.encode(), b"##fileformat=VCFv4.2\n"]))  # fmt: skip
def test_hostile_bytes_give_a_table_or_a_vcf_error(data: bytes, container: str,
                                                   prefix: bytes) -> None:  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, prefix + data, container)
        try:
            table = read_vcf(path)
        except VcfFormatError as e:
            assert e.path == str(path) and e.line is not None and e.line >= 1
        else:
            assert rows_of(table) == reference_read_vcf(prefix + data)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
@pytest.mark.parametrize("content", [(HEADER + GOOD).encode(), b""])
def test_a_fifo_is_read_as_a_stream(tmp_path: Path, content: bytes) -> None:
    """Read once, like a regular file; an empty one is an empty file, not a hang."""
    fifo = tmp_path / "v.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(content)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    code = (
        "import sys, dnakmer\n"
        "try:\n"
        "    print(dnakmer.read_vcf(sys.argv[1]).rows())\n"
        "except dnakmer.VcfFormatError as e:\n"
        "    print('VcfFormatError', e.line, e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    writer.join(10)
    assert done.returncode == 0, done.stderr
    if content:
        assert done.stdout.strip() == "[(4, 'chr1', 5, '.', 'A', 'T')]"
    else:
        assert done.stdout.startswith("VcfFormatError 1 ") and "empty file" in done.stdout
