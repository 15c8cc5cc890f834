"""Pure-Python reference for FASTA reading and the three container formats.

It is deliberately slow and obvious: the oracle that :class:`dnakmer.Genome` is
compared against. It also writes plain, multi-member gzip and BGZF files, so tests can
build every input the Rust reader accepts.

Reading rules (the behaviour the Rust parser must match):

- a leading UTF-8 byte-order mark is skipped;
- lines end at ``\\n``; a ``\\r`` before it is dropped (CRLF);
- a header line starts with ``>``; the record name is its first whitespace-delimited
  word, the description the rest, stripped; names are unique;
- before the first header only blank (whitespace-only) lines may appear;
- in sequence lines space, tab and CR are ignored; A/C/G/T, N, the IUPAC codes, U, X
  (either case) and ``-``, ``*``, ``.`` are sequence; any other byte is an error.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

BOM = b"\xef\xbb\xbf"
WHITESPACE = b" \t\r"
BASES = "ATCG"
IUPAC_OTHER = "NRYKMSWBDHVUX"
SYMBOLS = "-*."
SEQUENCE_CHARS = frozenset(
    (BASES + IUPAC_OTHER + BASES.lower() + IUPAC_OTHER.lower() + SYMBOLS).encode()
)
# The BGZF end-of-file marker: an empty block (SAM/BAM specification, section 4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


class ReferenceFastaError(ValueError):
    """A FASTA error as the reference sees it: 1-based line, record and reason."""

    def __init__(self, line: int, record: str | None, reason: str) -> None:
        super().__init__(f"line {line}: record {record!r}: {reason}")
        self.line = line
        self.record = record
        self.reason = reason


@dataclass
class Record:
    """One FASTA record: name, description and sequence text (case and symbols kept)."""

    name: str
    description: str = ""
    chunks: list[str] = field(default_factory=list)

    @property
    def sequence(self) -> str:
        return "".join(self.chunks)


def _parse_header(raw: bytes, line: int, seen: dict[str, int]) -> Record:
    raw = raw.removesuffix(b"\r")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReferenceFastaError(line, None, "header line is not valid UTF-8") from e
    if "\r" in text:
        raise ReferenceFastaError(line, None, "carriage return")
    if any(c != "\t" and (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0) for c in text):
        raise ReferenceFastaError(line, None, "control character")
    words = text.split(None, 1)
    if not words:
        raise ReferenceFastaError(line, None, "header line has no record name")
    name = words[0]
    if name in seen:
        raise ReferenceFastaError(line, name, "duplicate record name")
    seen[name] = line
    return Record(name, words[1].strip() if len(words) > 1 else "")


def parse_fasta(data: bytes) -> list[Record]:
    """Records of decompressed FASTA bytes, or :class:`ReferenceFastaError`."""
    data = data.removeprefix(BOM)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    records: list[Record] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if raw.startswith(b">"):
            records.append(_parse_header(raw[1:], number, seen))
            continue
        if not records:
            if raw.strip(WHITESPACE):
                raise ReferenceFastaError(number, None, "sequence before the first header")
            continue
        current = records[-1]
        for column, byte in enumerate(raw, start=1):
            if byte not in SEQUENCE_CHARS and byte not in WHITESPACE:
                raise ReferenceFastaError(
                    number, current.name, f"invalid byte 0x{byte:02x} at column {column}"
                )
        current.chunks.append(bytes(b for b in raw if b not in WHITESPACE).decode("ascii"))
    if not records:
        raise ReferenceFastaError(max(len(lines), 1), None, "no FASTA records found")
    return records


def base_codes(seq: str) -> list[int]:
    """Codes 0-3 for A/T/C/G (either case), 4 for anything else."""
    return [BASES.find(c) if c in "ATCGatcg" else 4 for c in seq.upper()]


def composition(seq: str) -> dict[str, int | float | None]:
    """Counts as ``Genome.stats`` reports them, and GC over non-N bases."""
    upper = seq.upper()
    counts: dict[str, int | float | None] = {b.lower(): upper.count(b) for b in "ACGT"}
    counts["n"] = upper.count("N")
    counts["other"] = len(seq) - sum(upper.count(b) for b in "ACGTN")
    counts["softmasked"] = sum(c.islower() for c in seq)
    non_n = len(seq) - upper.count("N")
    counts["gc"] = (upper.count("C") + upper.count("G")) / non_n if non_n else None
    return counts


def gzip_members(data: bytes, n_members: int = 1) -> bytes:
    """``data`` as ``n_members`` concatenated gzip members (reproducible: mtime 0)."""
    n_members = max(1, n_members)
    step = -(-len(data) // n_members) if data else 1
    parts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    return b"".join(gzip.compress(p, compresslevel=6, mtime=0) for p in parts)


def bgzf_block(payload: bytes) -> bytes:
    """One BGZF block holding ``payload`` (at most 64 KiB)."""
    assert len(payload) <= 65536
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    cdata = compressor.compress(payload) + compressor.flush()
    bsize = 18 + len(cdata) + 8 - 1
    header = struct.pack("<BBBBIBBHBBHH", 31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, bsize)
    return header + cdata + struct.pack("<II", zlib.crc32(payload), len(payload))


def bgzf_compress(data: bytes, block_size: int = 65280, eof_block: bool = True) -> bytes:
    """``data`` as BGZF blocks of ``block_size`` uncompressed bytes (htslib uses 65280)."""
    blocks = [bgzf_block(data[i : i + block_size]) for i in range(0, len(data), block_size)]
    return b"".join(blocks) + (BGZF_EOF if eof_block else b"")


# --- hypothesis strategies ------------------------------------------------------------

SEQ_ALPHABET = "ACGTACGTACGTacgtNNnRYKMSWBDHVUXrykm-*."
NAME = st.text("abcXYZ019_.|:", min_size=1, max_size=8)
DESCRIPTION = st.text("abc XYZ=;,\t", max_size=12)


@st.composite
def fasta_documents(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str, str]]]:
    """FASTA text with random line widths, blank lines, CRLF, case, IUPAC and symbols;
    returns the bytes and the ``(name, description, sequence)`` they must read as."""
    names = draw(st.lists(NAME, min_size=1, max_size=5, unique=True))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    out = [newline] * draw(st.integers(0, 2))
    records = []
    for name in names:
        description = draw(DESCRIPTION).strip()
        seq = draw(st.text(SEQ_ALPHABET, max_size=300))
        width = draw(st.integers(1, 80))
        out.append(f">{name}{' ' + description if description else ''}{newline}")
        for i in range(0, len(seq), width):
            out.append(seq[i : i + width] + newline)
            if draw(st.integers(0, 9)) == 0:
                out.append(newline)
        records.append((name, description, seq))
    text = "".join(out)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # the last line without its newline
    return text.encode(), records


def write_container(path: Path, data: bytes, container: str, split: int) -> None:
    """Write ``data`` plain, as ``split`` gzip members, or as BGZF in ``split`` blocks."""
    if container == "gzip":
        data = gzip_members(data, n_members=split)
    elif container == "bgzf":
        data = bgzf_compress(data, block_size=max(1, len(data) // split + 1))
    path.write_bytes(data)
