"""pytest-benchmark timings of the in-memory kernels (not part of the default test run).

Run with ``python -m pytest benches/test_bench_core.py`` on a release build. Each
benchmark checks its result against the vectorised NumPy reference computed once, so
a fast wrong answer fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bench_inputs as inputs
from dnakmer import KmerTokenizer, _core

BASES = 4_000_000
K = 6


@pytest.fixture(scope="module")
def sequence() -> bytes:
    """Seeded genome-like bases: soft-masked stretches and an N gap."""
    rng = np.random.default_rng(3)
    seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, BASES, dtype=np.uint8)].copy()
    seq[rng.integers(0, 2, BASES).astype(bool)] |= 0x20
    seq[1_000_000:1_020_000] = ord("N")
    return seq.tobytes()


@pytest.fixture(scope="module")
def expected(sequence: bytes) -> np.ndarray:
    return inputs.numpy_ids(sequence, K)


@pytest.fixture(scope="module")
def fasta(tmp_path_factory: pytest.TempPathFactory, sequence: bytes) -> Path:
    path = tmp_path_factory.mktemp("bench") / "bench.fa"
    width = inputs.LINE_WIDTH
    lines = [sequence[i : i + width] for i in range(0, len(sequence), width)]
    path.write_bytes(b">bench\n" + b"\n".join(lines) + b"\n")
    return path


def test_encode_bytes(benchmark, sequence: bytes, expected: np.ndarray) -> None:
    tok = KmerTokenizer(K)
    ids = benchmark(tok.encode, sequence)
    np.testing.assert_array_equal(ids, expected)


def test_encode_codes(benchmark, sequence: bytes, expected: np.ndarray) -> None:
    lut = np.full(256, 4, np.uint8)
    for code, base in enumerate(b"ATCG"):
        lut[base] = lut[base | 0x20] = code
    codes = lut[np.frombuffer(sequence, np.uint8)]
    tok = KmerTokenizer(K)
    ids = benchmark(tok.encode_codes, codes)
    np.testing.assert_array_equal(ids, expected)


def test_tokenize_fasta_one_thread(benchmark, fasta: Path, expected: np.ndarray) -> None:
    tok = KmerTokenizer(K)
    ((_, ids, bases, n_unk),), _ = benchmark(_core.tokenize_fasta, str(fasta), tok, threads=1)
    assert bases == BASES
    assert n_unk == int((expected == 1).sum())
    np.testing.assert_array_equal(ids, expected)


def test_encode_batch_512(benchmark, sequence: bytes, expected: np.ndarray) -> None:
    """DNABERT's training layout: 512-token rows with [CLS] and [SEP]."""
    span = 510 + K - 1
    windows = [sequence[i : i + span] for i in range(0, 200 * 510, 510)]
    tok = KmerTokenizer(K, threads=1)
    batch = benchmark(tok.encode_batch, windows, max_length=512)
    assert batch["input_ids"].shape == (200, 512)
    np.testing.assert_array_equal(batch["input_ids"][:, 1:-1].ravel(), expected[: 200 * 510])
