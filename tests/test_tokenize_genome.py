"""Whole-genome tokenization to disk and in memory, on real genomes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dnakmer
from dnakmer import Genome, KmerTokenizer, tokenize_fasta, tokenize_genome

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("k", [3, 6, 8])
def test_disk_output_matches_encode_of_fetched_records(tmp_path: Path, k: int) -> None:
    path = DATA / "yeast_chrI.fa.gz"
    tok = KmerTokenizer(k)
    manifest = tokenize_genome(path, tok, tmp_path / "out")
    genome = Genome.open(path)
    assert manifest["input"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["input"]["compression"] == "bgzf"
    assert manifest["vocab_sha256"] == tok.vocab_sha256
    assert manifest["dnakmer_version"] == dnakmer.__version__
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == manifest
    for rec in manifest["records"]:
        ids = np.load(tmp_path / "out" / rec["file"], mmap_mode="r")
        assert isinstance(ids, np.memmap)
        assert ids.dtype == np.dtype(tok.dtype)
        expected = tok.encode(genome.fetch(rec["name"]))
        np.testing.assert_array_equal(ids, expected)
        assert rec["n_tokens"] == len(expected) == genome.lengths[0] - k + 1
        assert rec["n_unk"] == int((expected == tok.unk_token_id).sum())
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_in_memory_equals_disk(tmp_path: Path) -> None:
    tok = KmerTokenizer(6, stride=6)
    mem = tokenize_fasta(DATA / "lambda_phage.fa.gz", tok)
    manifest = tokenize_genome(DATA / "lambda_phage.fa.gz", tok, tmp_path)
    (rec,) = manifest["records"]
    np.testing.assert_array_equal(mem[rec["name"]], np.load(tmp_path / rec["file"]))
    assert len(mem[rec["name"]]) == 48_502 // 6


def test_rerun_replaces_previous_output_but_protects_other_dirs(tmp_path: Path) -> None:
    out = tmp_path / "tok"
    tokenize_genome(DATA / "phix174.fa", KmerTokenizer(3), out)
    tokenize_genome(DATA / "phix174.fa", KmerTokenizer(3), out)  # the same run again
    # Another genome, or other settings, replace an earlier output only with overwrite.
    for path, tok in [(DATA / "lambda_phage.fa.gz", KmerTokenizer(3)),
                      (DATA / "phix174.fa", KmerTokenizer(4)),
                      (DATA / "phix174.fa", KmerTokenizer(3, 3))]:  # fmt: skip
        with pytest.raises(FileExistsError, match="another genome or other tokenizer"):
            tokenize_genome(path, tok, out)
    assert sorted(p.name for p in out.iterdir()) == ["NC_001422.npy", "manifest.json"]
    tokenize_genome(DATA / "lambda_phage.fa.gz", KmerTokenizer(3), out, overwrite=True)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gi_9626243_ref_NC_001416.1_.npy", "manifest.json"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        tokenize_genome(DATA / "phix174.fa", KmerTokenizer(3), other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_progress_callback_sees_whole_file(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    path = DATA / "yeast_chrI.fa.gz"
    tokenize_genome(path, KmerTokenizer(6), tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (path.stat().st_size, path.stat().st_size)


def test_progress_exception_aborts_without_partial_files(tmp_path: Path) -> None:
    def boom(done: int, total: int) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        tokenize_genome(DATA / "yeast_chrI.fa.gz", KmerTokenizer(6), tmp_path, progress=boom)
    assert list(tmp_path.iterdir()) == []


def test_import_is_light() -> None:
    code = (
        "import sys, dnakmer;"
        "print(','.join(m for m in ('torch', 'transformers', 'sklearn', 'matplotlib')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_arrays_are_owned_by_numpy_without_copy() -> None:
    ids = KmerTokenizer(6).encode("ACGT" * 1000)
    # Moved from Rust: NumPy does not own the buffer, a Rust capsule does.
    assert not ids.flags.owndata
    assert ids.base is not None
    assert ids.flags.writeable and ids.flags.c_contiguous
