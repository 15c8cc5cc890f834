"""Bases to a model's input ids, for any tokenizer.

Every model of a comparison sees the same bases: dataset windows are cut in bases first
(rows of base codes, A=0, T=1, C=2, G=3, 4 = any other base) and each model tokenizes
them with its own tokenizer here, so no token can reach past a window's last base.

Three ways, chosen by :func:`encoder_for`, all giving what the model's own tokenizer
gives for the same bases (checked on sample rows at every call):

``kmer``
    dnakmer's Rust k-mer tokenizer (DNABERT's overlapping k-mers, non-overlapping
    k-mers), ``[CLS] ... [SEP]``.
``greedy``
    Tokenizers that read fixed-length k-mers from the left and the remaining bases one
    by one (Nucleotide Transformer's ``EsmTokenizer``; ``k = 1`` is a character
    tokenizer): computed with NumPy from the vocabulary, after checking the rule
    against the tokenizer on probe sequences of every remainder length.
``batch``
    Any other Hugging Face tokenizer (BPE ``tokenizer.json`` as in GROVER and
    DNABERT-2, WordPiece): the tokenizer's own batch call, on the bases as one string
    per row (separated by spaces when the vocabulary holds single bases as words, as a
    character ``vocab.txt`` does). Rows of different token counts are padded, with an
    attention mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dnakmer.tokenizer import KmerTokenizer, encode_code_rows

__all__ = ["BaseEncoder", "Encoded", "codes_to_text", "encoder_for"]

_LETTERS = np.frombuffer(b"ATCGN", dtype=np.uint8)
_ROWS_PER_CALL = 8192
_CHECK_ROWS = 16


def codes_to_text(codes: np.ndarray, sep: str = "") -> list[str]:
    """Rows of base codes as strings (``sep`` between bases), without a loop per row.

    Parameters
    ----------
    codes : numpy.ndarray of uint8, shape (n, L)
        A=0, T=1, C=2, G=3, 4 = N.
    sep : str
        ``""`` or one character put between bases.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (rows, bases), got shape {codes.shape}")
    if codes.size and int(codes.max()) > 4:
        raise ValueError("base codes must be 0-4 (A, T, C, G, N)")
    n, length = codes.shape
    letters = _LETTERS[codes]
    if sep and length > 1:
        if len(sep) != 1:
            raise ValueError("sep must be one character")
        spaced = np.full((n, 2 * length - 1), ord(sep), dtype=np.uint8)
        spaced[:, ::2] = letters
        letters = spaced
    width = letters.shape[1]
    if width == 0:
        return [""] * n
    return np.ascontiguousarray(letters).view(f"S{width}").ravel().astype(str).tolist()


@dataclass
class Encoded:
    """Input ids and attention mask of equal-length base rows.

    ``input_ids`` is (n, T) int64 padded with the model's pad id; ``attention_mask``
    (n, T) uint8 is 1 on real tokens (special tokens included)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per row, special tokens included."""
        return self.attention_mask.sum(axis=1)


def _special_frame(tok: Any, probe: str) -> tuple[list[int], list[int]]:
    """Ids the tokenizer puts before and after a sequence's own tokens."""
    plain = list(tok(probe, add_special_tokens=False)["input_ids"])
    full = list(tok(probe, add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start], full[start + len(plain) :]
    raise ValueError("the tokenizer's special tokens do not frame the sequence's tokens")


def _vocab(tok: Any) -> dict[str, int]:
    return dict(tok.get_vocab())


def _kmer_index_ids(vocab: dict[str, int], k: int) -> np.ndarray | None:
    """Ids of all 4^k k-mers by canonical index (A=0, T=1, C=2, G=3), or None if any
    is missing."""
    ids = np.empty(4**k, dtype=np.int64)
    for i in range(4**k):
        text = "".join("ATCG"[(i >> (2 * (k - 1 - j))) & 3] for j in range(k))
        if text not in vocab:
            return None
        ids[i] = vocab[text]
    return ids


class BaseEncoder:
    """Encodes rows of base codes for one model; see the module docstring.

    Attributes
    ----------
    kind : {"kmer", "greedy", "batch"}
    pad_token_id : int
    """

    def __init__(self, tokenizer: Any, name: str = "model") -> None:
        self.tokenizer = tokenizer
        self.name = name
        self.sep = ""
        self.k = 0
        if isinstance(tokenizer, KmerTokenizer):
            self.kind = "kmer"
            self.pad_token_id = int(tokenizer.pad_token_id)
            return
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            raise ValueError(f"{name}: its tokenizer has no padding token")
        self.pad_token_id = int(pad)
        self._prefix, self._suffix = _special_frame(tokenizer, "ACGTACGTAC")
        vocab = _vocab(tokenizer)
        singles = _kmer_index_ids(vocab, 1)
        for k in (6, 5, 4, 3, 2, 1) if singles is not None else ():
            ids = _kmer_index_ids(vocab, k)
            for sep in ("", " "):
                if ids is not None and self._greedy_matches(k, ids, singles, sep):
                    self.kind, self.k, self.sep = "greedy", k, sep
                    self._kmer_ids, self._single_ids = ids, singles
                    return
        self.kind = "batch"
        if not self._round_trips(""):
            if self._round_trips(" "):
                self.sep = " "
            else:
                raise ValueError(
                    f"{name}: its tokenizer does not reproduce DNA bases "
                    f"(ACGT became {tokenizer.tokenize('ACGTTGCA')})"
                )

    # -- the rule checks -------------------------------------------------------------

    def _greedy_ids(self, codes: np.ndarray, k: int, ids: np.ndarray, singles: np.ndarray):
        n, length = codes.shape
        full = length // k
        weights = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
        index = codes[:, : full * k].reshape(n, full, k).astype(np.int64) @ weights
        body = [ids[index], singles[codes[:, full * k :].astype(np.int64)]]
        pre = np.tile(np.asarray(self._prefix, dtype=np.int64), (n, 1))
        post = np.tile(np.asarray(self._suffix, dtype=np.int64), (n, 1))
        return np.concatenate([pre, *body, post], axis=1)

    def _greedy_matches(self, k: int, ids: np.ndarray, singles: np.ndarray, sep: str) -> bool:
        rng = np.random.default_rng(7)
        for length in range(1, 3 * k + 2):
            codes = rng.integers(0, 4, size=(8, length), dtype=np.uint8)
            want = self._own_ids(codes, sep)
            got = self._greedy_ids(codes, k, ids, singles)
            if [list(r) for r in got] != want:
                return False
        return True

    def _own_ids(self, codes: np.ndarray, sep: str) -> list[list[int]]:
        texts = codes_to_text(codes, sep)
        return [list(map(int, r)) for r in self.tokenizer(texts, verbose=False)["input_ids"]]

    def _round_trips(self, sep: str) -> bool:
        rng = np.random.default_rng(11)
        codes = rng.integers(0, 4, size=(4, 40), dtype=np.uint8)
        return all(
            self._token_text(row) == text
            for row, text in zip(self._own_ids(codes, sep), codes_to_text(codes), strict=True)
        )

    def _token_text(self, ids: list[int]) -> str:
        special = set(getattr(self.tokenizer, "all_special_ids", []))
        tokens = self.tokenizer.convert_ids_to_tokens([i for i in ids if i not in special])
        return "".join(t.removeprefix("##").replace("Ġ", "").replace("▁", "") for t in tokens)

    # -- encoding ------------------------------------------------------------------------

    @property
    def frame(self) -> tuple[int, int]:
        """Special tokens before and after a row's own tokens: (1, 1) for
        ``[CLS] ... [SEP]``, (1, 0) for the Nucleotide Transformer's ``<cls> ...``."""
        if self.kind == "kmer":
            return 1, 1
        return len(self._prefix), len(self._suffix)

    def n_tokens(self, n_bases: int) -> int | None:
        """Tokens (special tokens included) of a row of ``n_bases`` bases, or None when
        it depends on the bases (BPE)."""
        if self.kind == "kmer":
            return int(self.tokenizer.n_tokens(n_bases)) + 2
        if self.kind == "greedy":
            full = n_bases // self.k
            return len(self._prefix) + full + (n_bases - full * self.k) + len(self._suffix)
        return None

    def encode(self, codes: np.ndarray) -> Encoded:
        """Input ids and attention mask of equal-length rows of base codes.

        Parameters
        ----------
        codes : numpy.ndarray of uint8, shape (n, L)
            A=0, T=1, C=2, G=3, 4 = any other base.
        """
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"codes must be 2-D (rows, bases), got shape {codes.shape}")
        if self.kind == "kmer":
            ids = encode_code_rows(self.tokenizer, np.ascontiguousarray(codes, dtype=np.uint8))
            ids = ids.astype(np.int64)
            return Encoded(ids, np.ones(ids.shape, dtype=np.uint8))
        if self.kind == "greedy" and (codes.size == 0 or int(codes.max()) < 4):
            ids = self._greedy_ids(codes, self.k, self._kmer_ids, self._single_ids)
            out = Encoded(ids, np.ones(ids.shape, dtype=np.uint8))
        else:
            out = self._batch(codes)
        self._check(codes, out)
        return out

    def _batch(self, codes: np.ndarray) -> Encoded:
        tok = self.tokenizer
        side = getattr(tok, "padding_side", "right")
        tok.padding_side = "right"
        chunks = []
        try:
            for start in range(0, len(codes), _ROWS_PER_CALL):
                texts = codes_to_text(codes[start : start + _ROWS_PER_CALL], self.sep)
                enc = tok(
                    texts,
                    add_special_tokens=True,
                    padding="longest",
                    return_attention_mask=True,
                    return_tensors="np",
                    verbose=False,
                )
                chunks.append((enc["input_ids"], enc["attention_mask"]))
        finally:
            tok.padding_side = side
        width = max((c[0].shape[1] for c in chunks), default=0)
        ids = np.full((len(codes), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(codes), width), dtype=np.uint8)
        row = 0
        for chunk_ids, chunk_mask in chunks:
            n, w = chunk_ids.shape
            ids[row : row + n, :w] = chunk_ids
            mask[row : row + n, :w] = chunk_mask
            row += n
        return Encoded(ids, mask)

    def _check(self, codes: np.ndarray, out: Encoded) -> None:
        """The ids of a few rows equal the tokenizer's own."""
        rows = np.linspace(0, len(codes) - 1, min(len(codes), _CHECK_ROWS)).astype(int)
        if not len(rows):
            return
        want = self._own_ids(codes[rows], self.sep)
        for r, w in zip(rows, want, strict=True):
            got = out.input_ids[r][out.attention_mask[r].astype(bool)].tolist()
            if got != w:
                raise ValueError(
                    f"{self.name}: ids of row {r} differ from its tokenizer's own "
                    f"({got[:8]}... vs {w[:8]}...)"
                )


def encoder_for(loaded: Any) -> BaseEncoder:
    """The :class:`BaseEncoder` of a :class:`~dnakmer.models.LoadedModel`."""
    name = loaded.path.name if getattr(loaded, "path", None) else "model"
    return BaseEncoder(loaded.tokenizer, name)
