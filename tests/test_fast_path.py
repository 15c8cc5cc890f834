"""The stride-1 block encoder and the joined-line FASTA path against a pure-Python
reference: sequences long enough to cross the encoder's 1,024-base blocks, with soft
masking, N runs, IUPAC codes and CRLF line ends, as real genomes have."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnakmer import KmerTokenizer, _core
from dnakmer.exceptions import FastaFormatError

DATA = Path(__file__).parent / "data"
UNK = 1
BLOCK = 1024


def kmer_index(kmer: str) -> int | None:
    """Canonical index in ``itertools.product('ATCG')`` order, None if not ACGT."""
    index = 0
    for base in kmer.upper():
        code = "ATCG".find(base)
        if code < 0:
            return None
        index = index * 4 + code
    return index


def reference_ids(seq: str, k: int, stride: int = 1, table: list[int] | None = None) -> list[int]:
    """What BertTokenizer gives for DNABERT's space-joined uppercase k-mers."""
    ids = []
    for start in range(0, len(seq) - k + 1, stride):
        index = kmer_index(seq[start : start + k])
        if index is None:
            ids.append(UNK)
        else:
            ids.append(table[index] if table is not None else index + 5)
    return ids


def read_fasta_records(text: str) -> dict[str, str]:
    """Minimal FASTA reader: name -> sequence with whitespace removed."""
    records: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            records[name] = ""
        elif name is not None:
            records[name] += "".join(line.split())
    return records


@st.composite
def genome_like(draw: st.DrawFn, max_runs: int = 8) -> str:
    """Long A/C/G/T runs (upper or lower case) separated by N runs and IUPAC codes."""
    parts = []
    for _ in range(draw(st.integers(1, max_runs))):
        run = draw(st.integers(0, 1500))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        bases = "".join(rng.choice(list("ACGT"), size=run))
        parts.append(bases.lower() if draw(st.booleans()) else bases)
        parts.append(draw(st.sampled_from(["", "N", "NNNNNNNNNN", "R", "y", "n" * 40, "-"])))
    return "".join(parts)


@settings(max_examples=40, deadline=None)
@given(seq=genome_like(), k=st.integers(1, 8))
def test_encode_matches_reference(seq: str, k: int) -> None:
    tok = KmerTokenizer(k)
    got = tok.encode(seq)
    assert got.dtype == np.dtype(tok.dtype)
    assert got.tolist() == reference_ids(seq, k)


@settings(max_examples=25, deadline=None)
@given(seq=genome_like(), k=st.integers(1, 8))
def test_encode_codes_matches_text(seq: str, k: int) -> None:
    codes = np.frombuffer(seq.upper().encode(), np.uint8)
    lut = np.full(256, 4, np.uint8)
    for code, base in enumerate(b"ATCG"):
        lut[base] = code
    tok = KmerTokenizer(k)
    assert tok.encode_codes(lut[codes]).tolist() == reference_ids(seq, k)


@settings(max_examples=15, deadline=None)
@given(seq=genome_like(max_runs=4), k=st.integers(2, 6), seed=st.integers(0, 1000))
def test_custom_vocab_order_uses_its_table(tmp_path_factory, seq: str, k: int, seed: int) -> None:
    kmers = ["".join(p) for p in itertools.product("ATCG", repeat=k)]
    order = np.random.default_rng(seed).permutation(len(kmers))
    lines = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(kmers[i] for i in order)]
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(lines) + "\n")
    table = [0] * len(kmers)
    for line_no, i in enumerate(order):
        table[i] = line_no + 5
    tok = KmerTokenizer.from_vocab(vocab)
    assert tok.encode(seq).tolist() == reference_ids(seq, k, table=table)


def write_fasta(path: Path, records: dict[str, str], width: int, newline: str = "\n") -> None:
    lines = []
    for name, seq in records.items():
        lines.append(f">{name} test record")
        lines.extend(seq[i : i + width] for i in range(0, len(seq), width))
    path.write_bytes((newline.join(lines) + newline).encode())


@settings(max_examples=20, deadline=None)
@given(
    seqs=st.lists(genome_like(max_runs=5), min_size=1, max_size=3),
    width=st.sampled_from([1, 7, 60, 61, 80, 5000]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_tokenize_fasta_matches_reference(tmp_path_factory, seqs, width, newline) -> None:
    path = tmp_path_factory.mktemp("fasta") / "g.fa"
    records = {f"chr{i}": s for i, s in enumerate(seqs)}
    write_fasta(path, records, width, newline)
    tok = KmerTokenizer(6)
    got, summary = _core.tokenize_fasta(str(path), tok, threads=1)
    assert summary["records"] == len(records)
    for (name, ids, bases, n_unk), (want_name, seq) in zip(got, records.items(), strict=True):
        want = reference_ids(seq, 6)
        assert name == want_name
        assert bases == len(seq)
        assert ids.tolist() == want
        assert n_unk == want.count(UNK)


def test_phix174_real_genome() -> None:
    """phiX174 (NC_001422, 5,386 bp, no N): first id is GAGTTT = 5 + 3285."""
    path = DATA / "phix174.fa"
    seq = read_fasta_records(path.read_text())["NC_001422"]
    tok = KmerTokenizer(6)
    ((name, ids, bases, n_unk),), _ = _core.tokenize_fasta(str(path), tok, threads=1)
    assert (name, bases, n_unk, ids.size) == ("NC_001422", 5386, 0, 5381)
    assert ids[0] == 3290
    assert ids.tolist() == reference_ids(seq, 6)
    assert tok.encode(seq).tolist() == ids.tolist()


def test_bad_character_past_first_block_is_located(tmp_path: Path) -> None:
    seq = "ACGT" * 700
    bad = seq[:2500] + "1" + seq[2501:]
    with pytest.raises(ValueError, match="position 2500"):
        KmerTokenizer(6).encode(bad)
    path = tmp_path / "bad.fa"
    path.write_text(">r\n" + "ACGT" * 15 + "\n" + "ACGTACGTAC1GT\n")
    with pytest.raises(FastaFormatError, match=r":3: .*column 11"):
        _core.tokenize_fasta(str(path), KmerTokenizer(6), threads=1)


def test_lines_spanning_block_boundaries_keep_context() -> None:
    """k-mers that straddle two 1,024-base blocks and two lines see both sides."""
    rng = np.random.default_rng(7)
    seq = "".join(rng.choice(list("ACGTacgt"), size=3 * BLOCK + 17))
    for k in (1, 6, 8):
        ids = KmerTokenizer(k).encode(seq)
        want = reference_ids(seq, k)
        assert ids.tolist() == want
        straddle = BLOCK - k + 1
        assert ids[straddle] == want[straddle]


def numpy_reference_ids(seq: bytes, k: int) -> np.ndarray:
    """Vectorised form of :func:`reference_ids` for sequences too long for a loop."""
    lut = np.full(256, 4, np.int64)
    for code, base in enumerate(b"ATCG"):
        lut[base] = lut[base | 0x20] = code
    codes = lut[np.frombuffer(seq, np.uint8)]
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    index = windows @ (4 ** np.arange(k - 1, -1, -1))
    return np.where((windows > 3).any(axis=1), UNK, index + 5)


def test_records_past_the_reserve_threshold(tmp_path: Path) -> None:
    """Records of over a million tokens take the reserved-buffer path; a short record
    after them starts clean."""
    rng = np.random.default_rng(11)
    big = np.frombuffer(b"ACGTacgt", np.uint8)[rng.integers(0, 8, 1_300_000)].copy()
    big[400_000:400_500] = ord("N")
    records = {"big": big.tobytes().decode(), "small": "ACGTNACGTACGTTT"}
    path = tmp_path / "two.fa"
    write_fasta(path, records, 60)
    got, _ = _core.tokenize_fasta(str(path), KmerTokenizer(6), threads=1)
    (_, big_ids, _, big_unk), (_, small_ids, _, _) = got
    want = numpy_reference_ids(big.tobytes(), 6)
    np.testing.assert_array_equal(big_ids, want)
    assert big_unk == int((want == UNK).sum()) == 505
    assert small_ids.tolist() == reference_ids(records["small"], 6)
