"""Seeded benchmark inputs: genome-like FASTA, gzip and BGZF copies, the reference
tokenizers dnakmer is compared with, and the peak-RSS probe.

Used by ``bench_core.py``; nothing here is timed.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

LINE_WIDTH = 60
#: Bases generated per step: a multiple of the line width, ~8 MB of memory.
GEN_STEP = LINE_WIDTH * (1 << 17)
#: Uncompressed bytes per BGZF block (htslib uses the same limit).
BGZF_BLOCK = 0xFF00
#: The 28-byte empty block that ends every BGZF file.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _soft_mask(rng: np.random.Generator, n: int) -> np.ndarray:
    """Boolean mask of alternating unmasked / soft-masked stretches (~40 % masked)."""
    lengths = rng.integers(50, 900, size=n // 50 + 2)
    flags = (np.arange(lengths.size) % 5 < 2).astype(bool)
    return np.repeat(flags, lengths)[:n]


def _sequence_step(rng: np.random.Generator, n: int, telomere: bool) -> np.ndarray:
    """``n`` bases as ASCII: random ACGT, lowercase stretches, and N runs."""
    seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, size=n, dtype=np.uint8)]
    seq[_soft_mask(rng, n)] |= 0x20
    if telomere:
        seq[: min(10_000, n)] = ord("N")
    start = int(rng.integers(0, n))
    seq[start : start + int(rng.integers(100, 50_000))] = ord("N")
    return seq


def _as_lines(seq: np.ndarray, width: int) -> bytes:
    """Sequence bytes with a newline after every ``width`` bases (and at the end)."""
    full = seq.size // width * width
    body = np.empty((full // width, width + 1), np.uint8)
    body[:, :width] = seq[:full].reshape(-1, width)
    body[:, width] = ord("\n")
    tail = seq[full:].tobytes() + b"\n" if full < seq.size else b""
    return body.tobytes() + tail


def write_genome(path: Path, total_bases: int, records: int, seed: int) -> Path:
    """Write a seeded genome-like FASTA of ``records`` chromosomes, 60-column lines.

    Bases are uniform random A/C/G/T; about 40 % sit in lowercase (soft-masked)
    stretches of 50-900 bases; each chromosome starts with 10 kbp of N and every
    ~7.9 Mbp holds an N gap of 100 bp to 50 kbp. The file is written under a temporary
    name and renamed, so an interrupted run leaves no partial input behind.
    """
    rng = np.random.default_rng(seed)
    tmp = path.with_name(path.name + ".partial")
    per_record = total_bases // records
    with open(tmp, "wb") as out:
        for r in range(records):
            length = per_record if r < records - 1 else total_bases - per_record * r
            out.write(f">chr{r + 1} synthetic seed={seed} length={length}\n".encode())
            for start in range(0, length, GEN_STEP):
                n = min(GEN_STEP, length - start)
                out.write(_as_lines(_sequence_step(rng, n, start == 0), LINE_WIDTH))
    tmp.replace(path)
    return path


def write_gzip(src: Path, dst: Path, level: int = 6) -> Path:
    """Single-member gzip copy of ``src``."""
    tmp = dst.with_name(dst.name + ".partial")
    with open(src, "rb") as f, gzip.open(tmp, "wb", compresslevel=level) as g:
        while chunk := f.read(1 << 24):
            g.write(chunk)
    tmp.replace(dst)
    return dst


def _bgzf_block(data: bytes, level: int) -> bytes:
    """One BGZF member: gzip header with the 6-byte ``BC`` extra field holding the
    block size minus one, raw deflate data, CRC-32 and input size."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    cdata = comp.compress(data) + comp.flush()
    bsize = 18 + len(cdata) + 8
    header = struct.pack("<4BI2BH2BHH", 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, 66, 67, 2, bsize - 1)
    return header + cdata + struct.pack("<II", zlib.crc32(data), len(data))


def write_bgzf(src: Path, dst: Path, level: int = 6) -> Path:
    """BGZF copy of ``src``: 65,280-byte blocks then the standard end-of-file block."""
    tmp = dst.with_name(dst.name + ".partial")
    with open(src, "rb") as f, open(tmp, "wb") as out:
        while chunk := f.read(BGZF_BLOCK):
            out.write(_bgzf_block(chunk, level))
        out.write(BGZF_EOF)
    tmp.replace(dst)
    return dst


def read_plain_bases(path: Path) -> str:
    """Concatenated sequence of every record of a small FASTA (for in-memory tests)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return "".join(line.strip() for line in f if not line.startswith(">"))


def seq2kmer(seq: str, k: int) -> str:
    """DNABERT's ``seq2kmer``: the overlapping k-mers of ``seq`` joined by spaces."""
    return " ".join(seq[x : x + k] for x in range(len(seq) + 1 - k))


def python_dict_ids(seq: str, k: int, vocab: dict[str, int], unk: int) -> list[int]:
    """The fastest pure-Python path: slice each k-mer and look it up in a dict."""
    get = vocab.get
    return [get(seq[i : i + k], unk) for i in range(len(seq) - k + 1)]


def seq2kmer_dict_ids(seq: str, k: int, vocab: dict[str, int], unk: int) -> list[int]:
    """``seq2kmer`` then a dict lookup per k-mer."""
    get = vocab.get
    return [get(t, unk) for t in seq2kmer(seq, k).split(" ")]


def numpy_ids(seq: bytes, k: int) -> np.ndarray:
    """Vectorised NumPy: codes by table, sliding window, dot product with powers of 4;
    windows touching a non-ACGT base become [UNK] (1). DNABERT layout: id = 5 + index."""
    table = np.full(256, 4, np.uint8)
    for code, base in enumerate(b"ATCG"):
        table[base] = table[base | 0x20] = code
    codes = table[np.frombuffer(seq, np.uint8)]
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    index = windows @ (4 ** np.arange(k - 1, -1, -1, dtype=np.int64))
    bad = np.lib.stride_tricks.sliding_window_view(codes > 3, k).any(axis=1)
    return np.where(bad, 1, index + 5).astype(np.uint16)


_RSS_WRAPPER = """
import json, resource, subprocess, sys
proc = subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True, text=True)
if proc.returncode:
    sys.exit(proc.stderr)
print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "child": proc.stdout.strip()}))
"""


def peak_rss(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter and return its peak RSS.

    A wrapper interpreter starts the measured one and reads
    ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, so no earlier child of this process can
    raise the number. Returns ``{"maxrss_kib": int, "child": <its stdout>}``.
    """
    env = dict(os.environ, DNAKMER_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"peak-RSS child failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)
