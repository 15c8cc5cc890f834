"""Pure-Python reference of the k-mer tokenizer: the oracle for the Rust kernels.

It follows the definition directly, one k-mer at a time, with no rolling state:

- DNABERT's vocabulary is ``[PAD] [UNK] [CLS] [SEP] [MASK]`` then the 4^k k-mers in
  ``itertools.product("ATCG", repeat=k)`` order; any ``vocab.txt`` maps a token to its
  0-based line number;
- token ``i`` covers bases ``[i*stride, i*stride + k)``; a trailing partial k-mer is
  dropped; lowercase reads as uppercase; a k-mer that is not in the vocabulary (it holds
  N, an IUPAC code or a symbol) is ``[UNK]``;
- a batch row is ``[CLS] ids [SEP]`` padded with ``[PAD]``, truncated so that it holds at
  most ``max_length`` tokens including the two special ones.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def dnabert_vocab(k: int) -> list[str]:
    """DNABERT's vocabulary for ``k``, token text by id."""
    return [*SPECIAL_TOKENS, *("".join(p) for p in itertools.product("ATCG", repeat=k))]


def kmer_words(seq: str, k: int, stride: int = 1) -> list[str]:
    """The uppercase k-mers that make the tokens of ``seq``."""
    upper = seq.upper()
    return [upper[i : i + k] for i in range(0, len(upper) - k + 1, stride)]


def n_tokens(length: int, k: int, stride: int = 1) -> int:
    """Number of tokens of a sequence of ``length`` bases (counted, not computed)."""
    return sum(1 for _ in range(0, length - k + 1, stride))


@dataclass
class ReferenceTokenizer:
    """A k-mer tokenizer over an explicit vocabulary (token text by id)."""

    vocab: list[str]
    stride: int = 1

    def __post_init__(self) -> None:
        self.ids = {tok: i for i, tok in enumerate(self.vocab)}
        kmers = [t for t in self.vocab if not t.startswith("[")]
        self.k = len(kmers[0])
        self.pad, self.unk, self.cls, self.sep, self.mask = (
            self.ids[t] for t in SPECIAL_TOKENS
        )

    @classmethod
    def dnabert(cls, k: int, stride: int = 1) -> ReferenceTokenizer:
        return cls(dnabert_vocab(k), stride)

    def encode(self, seq: str) -> list[int]:
        """Token ids of ``seq`` without special tokens."""
        return [self.ids.get(w, self.unk) for w in kmer_words(seq, self.k, self.stride)]

    def offsets(self, n: int) -> list[tuple[int, int]]:
        """Base interval ``[start, end)`` of each of ``n`` tokens."""
        return [(i * self.stride, i * self.stride + self.k) for i in range(n)]

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        """Token texts joined by spaces, as ``BertTokenizer.decode`` on k-mers."""
        words = [self.vocab[i] for i in ids]
        if skip_special_tokens:
            words = [w for w in words if not (w.startswith("[") and w.endswith("]"))]
        return " ".join(words)

    def batch_rows(
        self,
        seqs: list[str],
        max_length: int = 512,
        add_special_tokens: bool = True,
        truncation: bool = True,
    ) -> list[list[int]]:
        """Unpadded rows of a batch."""
        rows = []
        n_special = 2 if add_special_tokens else 0
        for seq in seqs:
            ids = self.encode(seq)
            if truncation:
                ids = ids[: max_length - n_special]
            rows.append([self.cls, *ids, self.sep] if add_special_tokens else ids)
        return rows

    def encode_batch(
        self,
        seqs: list[str],
        max_length: int = 512,
        add_special_tokens: bool = True,
        padding: str = "longest",
        truncation: bool = True,
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Padded ``(input_ids, attention_mask)`` as lists of equal-length rows."""
        rows = self.batch_rows(seqs, max_length, add_special_tokens, truncation)
        width = max((len(r) for r in rows), default=0)
        if padding == "max_length":
            width = max(width, max_length)
        ids = [r + [self.pad] * (width - len(r)) for r in rows]
        mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
        return ids, mask


def bert_ids(bert_tokenizer: object, seq: str, k: int, stride: int = 1) -> list[int]:
    """Ids that ``transformers.BertTokenizer`` gives for the space-joined k-mers."""
    words = " ".join(kmer_words(seq, k, stride))
    out: list[int] = bert_tokenizer(words, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    return out
