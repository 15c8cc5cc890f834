"""Type stubs of the compiled core (checked with ``python -m mypy.stubtest``)."""

import os
from collections.abc import Callable, Iterable
from typing import Any, Literal, final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__all__ = [
    "Genome",
    "KmerTokenizer",
    "MarkovChain",
    "__version__",
    "dnabert_vocab",
    "nextkmer_windows",
    "read_vcf",
    "sha256_file",
    "tokenize_fasta",
    "tokenize_fasta_to_npy",
]

__version__: str

_Progress = Callable[[int, int], object]
_Path = str | os.PathLike[str]

@disjoint_base
class Genome:
    def __new__(
        cls,
        path: _Path,
        *,
        threads: int | None = None,
        progress: _Progress | None = None,
        sha256: bool = False,
    ) -> Genome: ...
    @property
    def names(self) -> list[str]: ...
    @property
    def lengths(self) -> list[int]: ...
    @property
    def descriptions(self) -> list[str]: ...
    @property
    def path(self) -> str: ...
    @property
    def compression(self) -> Literal["plain", "gzip", "bgzf"]: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def bgzf_eof_missing(self) -> bool: ...
    @property
    def total_length(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    def fetch(self, name: str, start: int = 0, end: int | None = None) -> str: ...
    def codes(
        self, name: str, start: int = 0, end: int | None = None
    ) -> npt.NDArray[np.uint8]: ...
    def acgt_intervals(self, name: str) -> npt.NDArray[np.uint64]: ...
    def _stats_columns(self) -> dict[str, list[Any]]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: str, /) -> bool: ...

@disjoint_base
class KmerTokenizer:
    def __new__(
        cls,
        k: int | None = None,
        stride: int = 1,
        *,
        vocab: _Path | None = None,
        threads: int | None = None,
    ) -> KmerTokenizer: ...
    @property
    def k(self) -> int: ...
    @property
    def stride(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def dtype(self) -> Literal["uint8", "uint16", "uint32"]: ...
    @property
    def vocab(self) -> list[str]: ...
    @property
    def pad_token_id(self) -> int: ...
    @property
    def unk_token_id(self) -> int: ...
    @property
    def cls_token_id(self) -> int: ...
    @property
    def sep_token_id(self) -> int: ...
    @property
    def mask_token_id(self) -> int: ...
    @property
    def kmer_ids(self) -> npt.NDArray[np.uint32]: ...
    @property
    def id_to_kmer_index(self) -> npt.NDArray[np.int32]: ...
    def n_tokens(self, length: int) -> int: ...
    def encode(self, seq: str | bytes) -> npt.NDArray[np.unsignedinteger[Any]]: ...
    def encode_codes(
        self, codes: npt.NDArray[np.uint8]
    ) -> npt.NDArray[np.unsignedinteger[Any]]: ...
    def encode_batch(
        self,
        seqs: Iterable[str | bytes],
        max_length: int = 512,
        add_special_tokens: bool = True,
        padding: bool | Literal["longest", "max_length", "do_not_pad"] | None = None,
        truncation: bool = True,
        threads: int | None = None,
    ) -> dict[str, Any]: ...
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str: ...
    def offsets(self, n_tokens: int) -> npt.NDArray[np.uint64]: ...
    def token_to_id(self, token: str) -> int | None: ...
    def id_to_token(self, id: int) -> str | None: ...
    def vocab_text(self) -> str: ...

def tokenize_fasta(
    path: _Path,
    tokenizer: KmerTokenizer,
    *,
    threads: int | None = None,
    progress: _Progress | None = None,
    sha256: bool = False,
) -> tuple[list[tuple[str, npt.NDArray[np.unsignedinteger[Any]], int, int]], dict[str, Any]]: ...
def tokenize_fasta_to_npy(
    path: _Path,
    tokenizer: KmerTokenizer,
    out_dir: _Path,
    *,
    threads: int | None = None,
    progress: _Progress | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]: ...
def read_vcf(
    path: _Path,
    *,
    threads: int | None = None,
    progress: _Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]: ...
def sha256_file(path: _Path) -> str: ...
def dnabert_vocab(k: int) -> list[str]: ...

# --- next-k-mer benchmark -------------------------------------------------------------

def nextkmer_windows(
    genome: Genome,
    *,
    k: int,
    context_nt: int,
    n_train: int,
    n_val: int,
    n_test: int,
    split: Literal["records", "blocks"],
    val_records: list[str],
    test_records: list[str],
    block_size: int,
    val_fraction: float,
    test_fraction: float,
    strand: Literal["+", "-", "both"],
    dedup: bool,
    seed: int,
    tokenizer: KmerTokenizer | None = None,
    add_special_tokens: bool = True,
    threads: int | None = None,
) -> dict[str, Any]: ...
@final
class MarkovChain:
    @staticmethod
    def fit_windows(
        genome: Genome,
        record: npt.NDArray[np.uint32],
        start: npt.NDArray[np.uint64],
        span: int,
        order: int,
        *,
        plus: bool = True,
        minus: bool = False,
    ) -> MarkovChain: ...
    @staticmethod
    def fit_codes(sequences: list[npt.NDArray[np.uint8]], order: int) -> MarkovChain: ...
    @property
    def order(self) -> int: ...
    @property
    def counts(self) -> npt.NDArray[np.uint32]: ...
    def score_windows(
        self,
        genome: Genome,
        record: npt.NDArray[np.uint32],
        start: npt.NDArray[np.uint64],
        strand: npt.NDArray[np.int8],
        *,
        context_nt: int,
        k: int,
        k_eval: int,
        alpha: float = 1.0,
        threads: int | None = None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint32]]: ...
