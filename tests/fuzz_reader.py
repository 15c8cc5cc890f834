"""Fuzzing of the FASTA / gzip / BGZF reader and the tokenizer with hostile byte streams.

Each case is a FASTA document (records of IUPAC codes, soft-masking, gaps, blank lines,
CRLF, a byte-order mark) damaged by a few random mutations (flipped, inserted, deleted
or repeated bytes, NULs, stray '>' and CRs, non-UTF-8 bytes, a cut), stored plain,
as gzip of one or more members or as BGZF, whose compressed bytes may be damaged too.
Every reader must then either give exactly what the pure-Python reference gives for the
decompressed bytes (``fasta_reference.parse_fasta``): the same names and sequences
(``Genome.open`` on one and two threads, the file split at record headers), the same
token ids (``tokenize_fasta`` and ``tokenize_genome`` against ``KmerTokenizer.encode``
of the reference sequence), or raise a typed error (``DnakmerError`` or ``OSError``)
where the reference rejects the bytes (for a damaged container also a
``CompressionError`` where Python's gzip module is more lenient). A panic, another
exception type, accepting bytes the reference rejects, or any difference is a failure.

    python tests/fuzz_reader.py --seconds 600      # a long run; prints cases and rates
    python tests/fuzz_reader.py --seed 1234 --cases 1   # one case again

``tests/test_fuzz.py`` runs a few hundred cases in the test suite.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fasta_reference import (
    BOM,
    ReferenceFastaError,
    bgzf_compress,
    gzip_members,
    parse_fasta,
)

SEQ = "ACGTACGTACGTacgtNNnRYKMSWBDHVUXrykm-*."
NAME = "abcXYZ019_.|:"
HOSTILE = [b"\x00", b">", b"\r", b"\n", b"\n>", b"\xff", b"\xc3\x28", b" ", b"\t", b">\n",
           b"@", b"+", b"\x1f\x8b", b"\xef\xbb\xbf", b"1", b"\x7f"]  # fmt: skip


@dataclass
class Case:
    seed: int
    container: str
    data: bytes  # what is written to the file
    raw: bytes | None  # the decompressed bytes, or None when they cannot be decompressed
    damaged: bool = False  # the compressed bytes themselves were damaged
    compared: int = 0


def document(rng: random.Random) -> bytes:
    newline = rng.choice(["\n", "\n", "\r\n"])
    out = [newline] * rng.randint(0, 2)
    for i in range(rng.randint(1, 6)):
        name = "".join(rng.choice(NAME) for _ in range(rng.randint(1, 8))) + str(i)
        desc = (" " + "".join(rng.choice("abc =;,\t") for _ in range(rng.randint(0, 10)))
                if rng.random() < 0.4 else "")  # fmt: skip
        out.append(f">{name}{desc}{newline}")
        length = rng.choice([0, 1, 5, rng.randint(0, 300), rng.randint(300, 5000)])
        seq = "".join(rng.choice(SEQ) for _ in range(length))
        width = rng.randint(1, 120)
        for j in range(0, len(seq), width):
            out.append(seq[j : j + width] + newline)
            if rng.random() < 0.05:
                out.append(rng.choice(["", "  ", "\t"]) + newline)
    text = "".join(out)
    if rng.random() < 0.5 and text.endswith(newline):
        text = text[: -len(newline)]
    data = text.encode()
    return (BOM + data) if rng.random() < 0.05 else data


def mutate(rng: random.Random, data: bytes, n: int) -> bytes:
    b = bytearray(data)
    for _ in range(n):
        at = rng.randint(0, len(b))
        kind = rng.randrange(6)
        if kind == 0 and b:  # flip a byte
            i = min(at, len(b) - 1)
            b[i] = rng.randrange(256)
        elif kind == 1:  # insert a hostile byte string
            b[at:at] = rng.choice(HOSTILE)
        elif kind == 2:  # delete a stretch
            del b[at : at + rng.randint(1, 40)]
        elif kind == 3 and b:  # repeat a stretch (duplicate names, doubled headers)
            lo = rng.randint(0, len(b) - 1)
            b[at:at] = b[lo : lo + rng.randint(1, 200)]
        elif kind == 4:  # cut the file
            del b[at:]
        else:  # random bytes
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(b)


def make_case(seed: int) -> Case:
    rng = random.Random(seed)
    raw = document(rng)
    if rng.random() < 0.7:
        raw = mutate(rng, raw, rng.randint(1, 3))
    container = rng.choices(["plain", "gzip", "bgzf"], weights=[6, 2, 2])[0]
    if container == "plain":
        return Case(seed, container, raw, raw)
    if container == "gzip":
        data = gzip_members(raw, rng.randint(1, 3))
    else:
        data = bgzf_compress(raw, block_size=rng.choice([64, 500, 4096, 65280]),
                             eof_block=rng.random() < 0.9)  # fmt: skip
    if rng.random() < 0.3:  # damage the compressed stream
        data = mutate(rng, data, 1)
        try:
            raw2: bytes | None = gzip.decompress(data)
        except (OSError, EOFError, zlib.error, ValueError):
            raw2 = None
        return Case(seed, container, data, raw2, damaged=True)
    return Case(seed, container, data, raw)


def check(case: Case, tmp: Path) -> str | None:
    """None when every reader behaves; else what went wrong. ``case.compared`` is set to
    the readers whose output was compared with the reference."""
    import numpy as np

    import dnakmer

    path = tmp / f"case.{'fa' if case.container == 'plain' else 'fa.gz'}"
    path.write_bytes(case.data)
    expected: list | None = None
    reason = None
    if case.raw is not None:
        try:
            expected = parse_fasta(case.raw)
        except ReferenceFastaError as e:
            reason = e.reason
    tok = dnakmer.KmerTokenizer(3)
    reads = {
        "genome 1 thread": lambda: dnakmer.Genome.open(path, threads=1),
        "genome 2 threads": lambda: dnakmer.Genome.open(path, threads=2),
        "tokenize_fasta": lambda: dnakmer.tokenize_fasta(path, tok, threads=2),
        "tokenize_genome": lambda: dnakmer.tokenize_genome(
            path, tok, tmp / "out", threads=2, overwrite=True
        ),
    }
    import warnings

    case.compared = 0
    for what, read in reads.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a BGZF file without its end block
                got = read()
        except (dnakmer.DnakmerError, OSError) as e:
            # A damaged container may be refused where Python's gzip module is lenient
            # (BGZF block sizes and flags, bytes after the last member): stricter, not wrong.
            lenient = case.damaged and isinstance(e, dnakmer.CompressionError)
            if expected is not None and not lenient:
                return f"{what}: raised {type(e).__name__}: {e}, the reference reads it"
            continue
        except BaseException as e:  # a panic is a BaseException
            if isinstance(e, KeyboardInterrupt):
                raise
            return f"{what}: {type(e).__name__}: {e}"
        if expected is None:
            return f"{what}: accepted bytes the reference rejects ({reason or 'not gzip'})"
        names = [r.name for r in expected]
        if what.startswith("genome"):
            if got.names != names or [got.fetch(n) for n in names] != [
                r.sequence for r in expected
            ]:
                return f"{what}: records differ from the reference"
        elif what == "tokenize_fasta":
            if list(got) != names:
                return f"{what}: names differ"
            for r in expected:
                want = tok.encode(r.sequence)
                if not np.array_equal(got[r.name], want):
                    return f"{what}: ids of {r.name!r} differ"
        else:
            recs = got["records"]
            if [x["name"] for x in recs] != names:
                return f"{what}: names differ"
            for x, r in zip(recs, expected, strict=True):
                ids = np.load(tmp / "out" / x["file"])
                if not np.array_equal(ids, tok.encode(r.sequence)):
                    return f"{what}: ids of {r.name!r} differ"
        case.compared += 1
    return None


def run(seeds: range | list[int], tmp: Path, deadline: float | None = None) -> dict:
    os.environ["DNAKMER_SPLIT_MIN_BYTES"] = "64"  # plain files split at record headers
    stats: dict = {"cases": 0, "failures": [], "read": 0, "rejected": 0}
    for seed in seeds:
        if deadline is not None and time.monotonic() > deadline:
            break
        case = make_case(seed)
        problem = check(case, tmp)
        stats["cases"] += 1
        stats["read" if case.compared else "rejected"] += 1
        if problem is not None:
            stats["failures"].append((seed, case.container, problem))
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--cases", type=int, default=10**9)
    args = parser.parse_args()
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        stats = run(range(args.seed, args.seed + args.cases), Path(tmp),
                    deadline=start + args.seconds)  # fmt: skip
    elapsed = time.monotonic() - start
    print(f"{stats['cases']} cases in {elapsed:.0f} s ({stats['cases'] / elapsed:.1f}/s), "
          f"seeds {args.seed}..{args.seed + stats['cases'] - 1}: "
          f"{stats['read']} read and compared with the reference, {stats['rejected']} "
          "rejected by every reader with a typed error; "
          f"{len(stats['failures'])} failures")  # fmt: skip
    for seed, container, problem in stats["failures"][:20]:
        print(f"  seed {seed} ({container}): {problem}")
    sys.exit(1 if stats["failures"] else 0)


if __name__ == "__main__":
    main()
