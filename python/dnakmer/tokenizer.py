"""DNABERT-compatible k-mer tokenization backed by the Rust core."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dnakmer import _core
from dnakmer._io import output_lock, remove_stale_temporaries, sync_folder, write_json, write_text

__all__ = [
    "KmerTokenizer",
    "encode_code_rows",
    "model_tokenizer",
    "tokenize_fasta",
    "tokenize_genome",
]

MANIFEST = "manifest.json"
TOKENS_KIND = "dnakmer.tokens"


class KmerTokenizer(_core.KmerTokenizer):
    """Overlapping (or strided) k-mer tokenizer with DNABERT's vocabulary layout.

    Token ids equal what ``transformers.BertTokenizer(vocab.txt, do_lower_case=False)``
    gives for the space-joined uppercase k-mers: every k-mer touching a base other than
    A/C/G/T is ``[UNK]``; lowercase is read as uppercase.

    Parameters
    ----------
    k : int, default 6
        k-mer length, 1 to 8.
    stride : int, default 1
        Distance between token starts: 1 overlaps as DNABERT, ``k`` gives disjoint
        k-mers. Token ``i`` covers bases ``[i*stride, i*stride + k)``; a trailing
        partial k-mer is dropped.
    vocab : path, optional
        A ``vocab.txt``; see :meth:`from_vocab`.
    threads : int, optional
        Threads for :meth:`encode_batch` (default ``DNAKMER_NUM_THREADS`` or all cores).

    Notes
    -----
    Ids come as the smallest unsigned NumPy dtype that holds the vocabulary
    (``uint8`` for k <= 3, ``uint16`` for k <= 7, ``uint32`` for k = 8), handed over
    without copying. Embedding layers want int64: ``torch.from_numpy(ids).long()``
    (or ``ids.astype(np.int64)``).

    Examples
    --------
    >>> tok = KmerTokenizer(6)
    >>> tok.encode("AAAAAATN").tolist()
    [5, 6, 1]
    >>> tok.decode([2, 5, 6, 3])
    '[CLS] AAAAAA AAAAAT [SEP]'
    """

    @classmethod
    def from_vocab(
        cls, path: str | os.PathLike[str], stride: int = 1, *, threads: int | None = None
    ) -> KmerTokenizer:
        """Build a tokenizer from a ``vocab.txt`` holding the five special tokens
        (``[PAD] [UNK] [CLS] [SEP] [MASK]``) and all 4^k k-mers, in any order; other
        ``[BRACKETED]`` tokens are allowed. Ids are line numbers, as in BertTokenizer.

        Raises
        ------
        VocabError
            A k-mer missing or duplicated, a special token missing, or a line that is
            neither a k-mer nor a ``[BRACKETED]`` token.
        """
        return cls(None, stride, vocab=os.fspath(path), threads=threads)

    def save_vocab(self, path: str | os.PathLike[str]) -> Path:
        """Write the vocabulary as ``vocab.txt`` (into ``path`` if it is a directory).

        The file loads with ``transformers.BertTokenizer``. Returns the file's path.
        """
        p = Path(path)
        if p.is_dir():
            p = p / "vocab.txt"
        return write_text(p, self.vocab_text())

    @property
    def vocab_sha256(self) -> str:
        """SHA-256 of the vocabulary text (as :meth:`save_vocab` writes it)."""
        return hashlib.sha256(self.vocab_text().encode()).hexdigest()

    def __len__(self) -> int:
        return self.vocab_size


def encode_code_rows(tok: _core.KmerTokenizer, codes: np.ndarray) -> np.ndarray:
    """``[CLS] k-mers [SEP]`` ids of equal-length rows of base codes.

    Parameters
    ----------
    tok : KmerTokenizer
    codes : numpy.ndarray of uint8, shape (n, L)
        A=0, T=1, C=2, G=3, 4 = any other base.

    Returns
    -------
    numpy.ndarray, shape (n, tok.n_tokens(L) + 2), dtype ``tok.dtype``
    """
    out = np.empty((len(codes), tok.n_tokens(codes.shape[1]) + 2), dtype=np.dtype(tok.dtype))
    out[:, 0], out[:, -1] = tok.cls_token_id, tok.sep_token_id
    for i in range(len(codes)):
        out[i, 1:-1] = tok.encode_codes(np.ascontiguousarray(codes[i], dtype=np.uint8))
    return out


def model_tokenizer(folder: str | os.PathLike[str]) -> KmerTokenizer | None:
    """The k-mer tokenizer of a checkpoint folder, or None if it has no k-mer vocabulary.

    ``vocab.txt`` gives the tokens; the stride comes from ``dnakmer.json`` when present
    (written by ``dnakmer pretrain``), else 1 as in DNABERT.
    """
    from dnakmer.exceptions import ModelError, VocabError

    path = Path(folder)
    vocab = path / "vocab.txt"
    if not vocab.is_file():
        return None
    stride = 1
    meta = path / "dnakmer.json"
    if meta.is_file():
        try:
            info = json.loads(meta.read_bytes())
        except (UnicodeDecodeError, ValueError) as e:
            raise ModelError(f"{meta}: not valid JSON ({e})", str(meta)) from None
        stride = info.get("stride", 1) if isinstance(info, dict) else None
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
            raise ModelError(
                f"{meta}: stride must be a positive integer, not {stride!r}", str(meta)
            )
    try:
        return KmerTokenizer.from_vocab(vocab, stride)
    except VocabError:
        return None


def tokenize_fasta(
    path: str | os.PathLike[str],
    tokenizer: _core.KmerTokenizer,
    *,
    threads: int | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> dict[str, np.ndarray]:
    """Token ids of every record of a FASTA file, in memory.

    ``threads`` (default ``DNAKMER_NUM_THREADS`` or all cores) decompress gzip/BGZF
    input; a plain file of 4 MiB or more (``DNAKMER_SPLIT_MIN_BYTES``) is cut at record
    headers and its records are tokenized in parallel, with the same result as one
    thread (a single-record file gains nothing).

    Returns
    -------
    dict of str to numpy.ndarray
        Record name to 1-D ids (dtype ``tokenizer.dtype``, no special tokens).
    """
    records, summary = _core.tokenize_fasta(
        os.fspath(path), tokenizer, threads=threads, progress=progress
    )
    _warn_if_truncated(path, summary)
    return {name: ids for name, ids, _bases, _unk in records}


def _warn_if_truncated(path: str | os.PathLike[str], summary: dict[str, Any]) -> None:
    # As Genome does: a BGZF file cut at a block boundary reads cleanly but for the marker.
    if summary.get("bgzf_eof_missing"):
        warnings.warn(
            f"{os.fspath(path)}: BGZF file has no end-of-file block; it may be truncated",
            stacklevel=3,
        )


_INCOMPLETE = ".dnakmer-incomplete"
"""Written into a token output folder before its first record, removed after its
manifest: while it is there, the folder's record files belong to an unfinished run."""


def _same_run(previous: dict[str, Any], path: Path, tokenizer: KmerTokenizer) -> bool:
    """Whether an earlier token output was made from the same input file (path and
    size) with the same tokenizer (k, stride and vocabulary)."""
    source = previous.get("input")
    if not isinstance(source, dict):
        return False
    try:
        size = path.stat().st_size
    except OSError:
        return False
    vocab_sha = hashlib.sha256(tokenizer.vocab_text().encode()).hexdigest()
    return (
        source.get("path") == os.path.abspath(path)
        and source.get("bytes") == size
        and previous.get("k") == tokenizer.k
        and previous.get("stride") == tokenizer.stride
        and previous.get("vocab_sha256") == vocab_sha
    )


def _clear_previous_output(
    out: Path, overwrite: bool, path: Path, tokenizer: KmerTokenizer
) -> None:
    """Allow writing into ``out`` only if it is empty, or holds an earlier token output
    of the same input file and tokenizer, or ``overwrite`` is set. The earlier output's
    record files (and only those: plain ``.npy`` names inside ``out``, whatever its
    manifest says) are removed; so are the record files of a run that was killed before
    its manifest (the folder still carries that run's marker)."""
    entries = [p for p in out.iterdir() if not p.name.startswith(".")]
    if not entries:
        return
    if (out / _INCOMPLETE).is_file() and not (out / MANIFEST).exists():
        unfinished = [p for p in entries if _is_record_file_name(p.name) and p.is_file()]
        for p in unfinished:
            p.unlink(missing_ok=True)
        entries = [p for p in entries if p not in unfinished]
        if not entries:
            return
    manifest = out / MANIFEST
    previous: dict[str, Any] = {}
    if manifest.exists():
        try:
            previous = json.loads(manifest.read_text())
        except (OSError, ValueError):
            previous = {}
    if previous.get("kind") != TOKENS_KIND and not overwrite:
        raise FileExistsError(
            f"{out} is not empty and holds no earlier dnakmer token output; "
            "choose another directory or pass overwrite=True (--overwrite)"
        )
    if not overwrite and not _same_run(previous, path, tokenizer):
        raise FileExistsError(
            f"{out} holds the tokens of another genome or other tokenizer settings; "
            "choose another directory or pass overwrite=True (--overwrite) to replace them"
        )
    # Remove the manifest first: a crash below must not leave it pointing at new files.
    manifest.unlink(missing_ok=True)
    for rec in previous.get("records", []):
        name = str(rec.get("file", "")) if isinstance(rec, dict) else ""
        if _is_record_file_name(name):
            (out / name).unlink(missing_ok=True)


def _is_record_file_name(name: str) -> bool:
    """Whether ``name`` can be a record file of a token output: a visible ``.npy`` name
    with no directory part (so a manifest can never point outside its folder)."""
    return (
        name.endswith(".npy")
        and not name.startswith(".")
        and Path(name).name == name
        and "/" not in name
        and "\\" not in name
    )


def tokenize_genome(
    path: str | os.PathLike[str],
    tokenizer: KmerTokenizer,
    out_dir: str | os.PathLike[str],
    *,
    threads: int | None = None,
    progress: Callable[[int, int], object] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Tokenize a whole genome to disk, one memory-mappable ``.npy`` per record.

    The file is streamed: memory stays bounded (a few MB) whatever the genome size.
    Every ``.npy`` is written under a temporary name and renamed when complete;
    ``manifest.json`` is written last, so its presence marks a finished output. If
    reading fails part-way (bad input, cancelled progress), the files of records already
    written are removed too, so the directory can be reused at once.

    Parameters
    ----------
    path : path
        FASTA file (plain, gzip or BGZF).
    tokenizer : KmerTokenizer
    out_dir : path
        Created if needed. Must be empty or hold an earlier token output of the same
        file (path and size) and tokenizer, which is replaced.
    threads : int, optional
        Threads (default ``DNAKMER_NUM_THREADS`` or all cores): decompression for
        gzip/BGZF input; for a plain file of 4 MiB or more, records read and written in
        parallel (the file is cut at record headers; the output is the same as with one
        thread).
    progress : callable, optional
        ``progress(bytes_read, file_size)``.
    overwrite : bool
        Write into a non-empty directory that holds other files, or the tokens of
        another genome or tokenizer.

    Returns
    -------
    dict
        The manifest: input path, size and sha256, compression, k, stride, vocab size
        and sha256, dtype, dnakmer version, and per record its name, file, bases,
        tokens and ``[UNK]`` tokens. Open a record with
        ``np.load(out_dir / rec["file"], mmap_mode="r")``.
    """


    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        _clear_previous_output(out, overwrite, Path(path), tokenizer)
        remove_stale_temporaries(out)
        try:
            write_text(out / _INCOMPLETE, "a dnakmer tokenize run that has not finished\n")
            # On error the core removes the records it wrote.
            records, summary = _core.tokenize_fasta_to_npy(
                os.fspath(path), tokenizer, os.fspath(out), threads=threads, progress=progress
            )
            try:
                manifest = _write_token_manifest(path, tokenizer, out, records, summary)
            except BaseException:
                # Interrupted (or failed) after the records were written: the folder is
                # left as it was found, with neither records nor manifest.
                (out / MANIFEST).unlink(missing_ok=True)
                for rec in records:
                    (out / rec["file"]).unlink(missing_ok=True)
                raise
        finally:
            (out / _INCOMPLETE).unlink(missing_ok=True)
    return manifest


def _write_token_manifest(
    path: str | os.PathLike[str],
    tokenizer: KmerTokenizer,
    out: Path,
    records: list[dict[str, Any]],
    summary: dict[str, Any],
) -> dict[str, Any]:
    _warn_if_truncated(path, summary)
    vocab_sha = hashlib.sha256(tokenizer.vocab_text().encode()).hexdigest()
    manifest: dict[str, Any] = {
        "kind": TOKENS_KIND,
        "dnakmer_version": _core.__version__,
        "input": {
            "path": os.path.abspath(os.fspath(path)),
            "sha256": summary["sha256"],
            "bytes": summary["file_size"],
            "compression": summary["compression"],
        },
        "k": tokenizer.k,
        "stride": tokenizer.stride,
        "vocab_size": tokenizer.vocab_size,
        "vocab_sha256": vocab_sha,
        "dtype": tokenizer.dtype,
        "counts": {
            "records": len(records),
            "bases": sum(r["bases"] for r in records),
            "tokens": sum(r["n_tokens"] for r in records),
            "unk_tokens": sum(r["n_unk"] for r in records),
        },
        "records": records,
    }
    sync_folder(out)  # the records reach the disk before the manifest that vouches for them
    write_json(out / MANIFEST, manifest)
    return manifest
