"""The next-k-mer benchmark (Sanabria, Hirsch & Poetsch 2024): given a window of DNA,
predict the next k bases as one of 4^k classes. The label never overlaps the input.

:func:`build` draws leakage-free train/val/test windows from any genome; the baselines
(uniform, class prior, Markov chains) are in :mod:`dnakmer.datasets.baselines`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from dnakmer import _core
from dnakmer.datasets.store import load_arrays, read_manifest, require_keys, write_dataset
from dnakmer.exceptions import DatasetError
from dnakmer.genome import Genome

__all__ = [
    "FIELDS",
    "KIND",
    "SPLITS",
    "NextKmerDataset",
    "build",
    "kmer_to_label",
    "label_to_kmer",
]

KIND = "dnakmer.nextkmer"
SPLITS = ("train", "val", "test")
FIELDS = ("input_ids", "labels", "record", "start", "strand", "split")
_BASES = "ATCG"
_MAX_BLOCK = 100_000


@overload
def label_to_kmer(label: int | np.integer[Any], k: int) -> str: ...
@overload
def label_to_kmer(label: Sequence[int] | np.ndarray, k: int) -> list[str]: ...
def label_to_kmer(label: Any, k: int) -> str | list[str]:
    """The k-mer text of a label (or of each label of an array).

    Labels number the 4^k k-mers in ``itertools.product("ATCG", repeat=k)`` order, the
    order of DNABERT's default vocabulary: label = Σ code(base_i)·4^(k-1-i) with
    A=0, T=1, C=2, G=3, so for k = 2 label 0 is ``AA``, 1 is ``AT`` and 15 is ``GG``.
    """
    _check_k(k)
    if np.ndim(label) > 0:
        return [label_to_kmer(int(x), k) for x in np.asarray(label).ravel()]
    value = int(label)
    if not 0 <= value < 4**k:
        raise ValueError(f"label {value} is outside [0, 4^{k}) for k = {k}")
    return "".join(_BASES[(value >> (2 * (k - 1 - i))) & 3] for i in range(k))


def kmer_to_label(kmer: str) -> int:
    """The label of an A/C/G/T k-mer (case-insensitive); inverse of :func:`label_to_kmer`."""
    text = kmer.upper()
    _check_k(len(text))
    value = 0
    for i, base in enumerate(text):
        code = _BASES.find(base)
        if code < 0:
            raise ValueError(f"k-mer {kmer!r} has {base!r} at position {i}; only A/C/G/T allowed")
        value = value * 4 + code
    return value


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= 8:
        raise ValueError(f"k must be an integer between 1 and 8, got {k!r}")


class NextKmerDataset:
    """Samples of the next-k-mer benchmark: arrays with one row per sample, plus the
    manifest that says how they were made.

    Attributes
    ----------
    arrays : dict of str to numpy.ndarray
        ``input_ids`` (n, T): token ids (dtype of the tokenizer, T = tokens of
        ``context_nt`` bases plus ``[CLS]``/``[SEP]`` if added), or with no tokenizer the
        context itself as uint8 codes (A=0, T=1, C=2, G=3; T = ``context_nt``);
        ``labels`` (n,) uint16: next k-mer (see :func:`label_to_kmer`);
        ``record`` (n,) uint32: index into ``record_names``;
        ``start`` (n,) uint64: leftmost ``+`` strand coordinate of the span
        ``[start, start + context_nt + k)``; ``strand`` (n,) int8: +1 or -1;
        ``split`` (n,) uint8: 0 = train, 1 = val, 2 = test.
    manifest : dict
        Genome path and sha256, every parameter, the seed, counts per split, the
        split areas and the label histogram per split.
    genome : Genome or None
        The genome the samples come from, when built in this process.
    """

    def __init__(
        self, arrays: dict[str, np.ndarray], manifest: dict[str, Any], genome: Genome | None = None
    ) -> None:
        missing = [f for f in FIELDS if f not in arrays]
        if missing:
            raise ValueError(f"next-k-mer dataset lacks the fields {missing}")
        self.arrays = arrays
        self.manifest = manifest
        self.genome = genome

    input_ids = property(lambda self: self.arrays["input_ids"], doc="(n, T) model input.")
    labels = property(lambda self: self.arrays["labels"], doc="(n,) uint16 next k-mer.")
    record = property(lambda self: self.arrays["record"], doc="(n,) uint32 record index.")
    start = property(lambda self: self.arrays["start"], doc="(n,) uint64 span start.")
    strand = property(lambda self: self.arrays["strand"], doc="(n,) int8 +1 / -1.")
    split = property(lambda self: self.arrays["split"], doc="(n,) uint8 split code.")

    @property
    def k(self) -> int:
        return int(self.manifest["k"])

    @property
    def context_nt(self) -> int:
        return int(self.manifest["context_nt"])

    @property
    def record_names(self) -> list[str]:
        return list(self.manifest["genome"]["records"])

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        c = self.manifest["counts"]
        return (
            f"NextKmerDataset(k={self.k}, context_nt={self.context_nt}, "
            f"train={c['train']}, val={c['val']}, test={c['test']}, "
            f"input_ids={self.input_ids.dtype}{list(self.input_ids.shape)})"
        )

    def indices(self, split: str) -> np.ndarray:
        """Row indices (int64) of one split: ``"train"``, ``"val"`` or ``"test"``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        return np.flatnonzero(self.split == SPLITS.index(split))

    def open_genome(self, path: str | os.PathLike[str] | None = None) -> Genome:
        """The source genome: the one in memory, else the file at ``path`` (default: the
        manifest's path), checked against the recorded sha256."""
        if self.genome is not None and path is None:
            return self.genome
        info = self.manifest["genome"]
        source = info["path"] if path is None else os.fspath(path)
        g = Genome.open(source, sha256=True)
        if g.sha256 != info["sha256"]:
            raise ValueError(
                f"{source} has sha256 {g.sha256}, but the dataset was built from "
                f"a file with sha256 {info['sha256']}"
            )
        self.genome = g
        return g

    def save(
        self, out_dir: str | os.PathLike[str], *, parquet: bool = True, overwrite: bool = False
    ) -> Path:
        """Write ``<field>.npy`` files, ``samples.parquet`` and ``manifest.json`` to
        ``out_dir`` atomically (see :func:`dnakmer.datasets.store.write_dataset`)."""
        return write_dataset(
            out_dir, self.arrays, self.manifest, parquet=parquet, overwrite=overwrite
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> NextKmerDataset:
        """Open a saved dataset; arrays are memory-mapped read-only unless ``mmap=False``."""
        manifest = read_manifest(path)
        if manifest.get("kind") != KIND:
            raise ValueError(f"{path} holds a {manifest.get('kind')!r} dataset, not {KIND!r}")
        arrays = load_arrays(path, list(FIELDS), mmap=mmap)
        check_values(Path(path), manifest, arrays)
        return cls(arrays, manifest)


_REQUIRED = ["k", "context_nt", "input", "genome.path", "genome.sha256", "genome.records"]
_REQUIRED += [f"counts.{s}" for s in SPLITS]


def check_values(path: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """:class:`DatasetError` naming the file whose values cannot come from the manifest's
    parameters: missing keys or fields, labels of another k, unknown split, strand or
    record codes, counts per split that differ, inputs of the wrong width or alphabet."""

    def bad(field: str, what: str) -> DatasetError:
        f = path / (f"{field}.npy" if field in arrays else "manifest.json")
        return DatasetError(f"{f}: {what}", path=str(f))

    require_keys(path, manifest, _REQUIRED)
    for field in FIELDS:
        if field not in arrays:
            raise bad("manifest", f"a next-k-mer dataset needs the field {field!r}")
    k, context = manifest["k"], manifest["context_nt"]
    if not isinstance(k, int) or not 1 <= k <= 8:
        raise bad("manifest", f"k must be an integer from 1 to 8, not {k!r}")
    n = len(arrays["labels"])
    top = int(arrays["labels"].max()) if n else 0
    if top >= 4**k:
        raise bad("labels", f"label {top} is outside [0, 4^{k}) for k = {k}")
    codes = np.bincount(np.asarray(arrays["split"], dtype=np.int64), minlength=3) if n else [0] * 3
    if len(codes) > 3:
        raise bad("split", "split codes other than 0 (train), 1 (val) and 2 (test)")
    counts = {s: int(c) for s, c in zip(SPLITS, codes, strict=True)}
    if counts != {s: manifest["counts"][s] for s in SPLITS}:
        raise bad("split", f"{counts} samples per split, the manifest says {manifest['counts']}")
    if n and not np.isin(arrays["strand"], (-1, 1)).all():
        raise bad("strand", "strands other than +1 and -1")
    if n and int(arrays["record"].max()) >= len(manifest["genome"]["records"]):
        raise bad("record", f"record index beyond the {len(manifest['genome']['records'])} records")
    ids = arrays["input_ids"]
    if ids.ndim != 2:
        raise bad("input_ids", f"{ids.ndim} dimensions, not 2 (samples x positions)")
    if manifest["input"] == "bases":
        if ids.shape[1] != context:
            raise bad("input_ids", f"{ids.shape[1]} bases per row, context_nt is {context}")
        if n and int(ids.max()) > 3:
            raise bad("input_ids", "base codes other than 0-3 (A, T, C, G)")
    else:
        vocab = (manifest.get("tokenizer") or {}).get("vocab_size")
        if n and vocab is not None and int(ids.max()) >= vocab:
            raise bad("input_ids", f"token id {int(ids.max())} beyond the vocabulary ({vocab})")


def _default_block_size(genome: Genome) -> int:
    """100 kb, but small enough that the genome has at least 20 blocks."""
    return max(1, min(_MAX_BLOCK, genome.total_length // 20))


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def build(
    genome: Genome | str | os.PathLike[str],
    k: int,
    context_nt: int,
    tokenizer: _core.KmerTokenizer | None = None,
    *,
    n_train: int = 100_000,
    n_val: int = 10_000,
    n_test: int = 10_000,
    split: Literal["blocks", "records"] = "blocks",
    val_records: Sequence[str] = (),
    test_records: Sequence[str] = (),
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    block_size: int | None = None,
    strand: Literal["+", "-", "both"] = "+",
    dedup: bool = False,
    add_special_tokens: bool = True,
    seed: int = 0,
    threads: int | None = None,
) -> NextKmerDataset:
    """Draw next-k-mer samples from a genome, without leakage between splits.

    Each sample is a record, a strand and a span of ``context_nt + k`` A/C/G/T bases
    (windows touching any other character are never drawn). The first ``context_nt``
    bases of the span, read on the sample's strand, are the model input; the last ``k``
    are the label, so the label never overlaps the input. On the ``+`` strand the
    context is ``genome[start : start + context_nt]`` and the label
    ``genome[start + context_nt : start + context_nt + k]``. A ``-`` strand sample is the
    reverse complement of the same ``+`` span: context = revcomp of
    ``genome[start + k : start + k + context_nt]``, label = revcomp of
    ``genome[start : start + k]``; ``start`` is always the span's leftmost ``+``
    coordinate.

    Parameters
    ----------
    genome : Genome or path
    k : int
        Label length, 1 to 8 (4^k classes).
    context_nt : int
        Context length in bases, so every tokenizer sees the same bases (DNABERT-6 with
        510 k-mers: 515).
    tokenizer : KmerTokenizer, optional
        Tokenizes the context. ``context_nt - tokenizer.k`` must be a multiple of the
        stride so the tokens reach the base before the label. Without it the context
        is stored as uint8 codes (A=0, T=1, C=2, G=3) for tokenizers applied later.
    n_train, n_val, n_test : int
        Samples per split, drawn without replacement (distinct start and strand).
    split : {"blocks", "records"}
        ``"records"``: ``val_records`` and ``test_records`` are held out whole, every
        other record is train. ``"blocks"``: every record is cut into ``block_size``
        blocks and a seeded choice of ``round(fraction · n_blocks)`` blocks (at least one
        for a fraction > 0) goes to val and to test. Spans never cross a block or record
        border, so no train span overlaps a val or test span.
    block_size : int, optional
        Default: 100,000, lowered to a twentieth of the genome for small genomes.
    strand : {"+", "-", "both"}
        Strands to draw from; with ``"both"`` each start gives two candidates.
    dedup : bool
        Redraw train samples whose whole span (as read on its strand) equals a val or
        test sample's exactly; genomes have repeats.
    add_special_tokens : bool
        Frame token rows as ``[CLS] ... [SEP]``, as DNABERT models expect.
    seed : int
        Same inputs and seed give byte-identical arrays on every platform.
    threads : int, optional
        Threads filling the arrays (default ``DNAKMER_NUM_THREADS`` or all cores).

    Returns
    -------
    NextKmerDataset
        Train samples, then val, then test; each split in random order.

    Raises
    ------
    ValueError
        Bad parameter, or a split with fewer candidate windows than requested.
    RecordNotFoundError
        A record of ``val_records`` / ``test_records`` that the genome lacks.
    """
    g = genome if isinstance(genome, _core.Genome) else Genome.open(genome, sha256=True)
    _check_k(k)
    _check_counts(context_nt=context_nt, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed)
    if seed >= 2**64:
        raise ValueError(f"seed must be below 2**64, got {seed}")
    if split == "records":
        for name, n, recs in (("val", n_val, val_records), ("test", n_test, test_records)):
            if n > 0 and not recs:
                raise ValueError(f"split='records' with n_{name} = {n} needs {name}_records")
    if isinstance(val_records, str) or isinstance(test_records, str):
        raise TypeError("val_records and test_records are lists of record names")
    size = _default_block_size(g) if block_size is None else block_size
    _check_counts(block_size=size)
    out = _core.nextkmer_windows(
        g, k=k, context_nt=context_nt, n_train=n_train, n_val=n_val, n_test=n_test,
        split=split, val_records=list(val_records), test_records=list(test_records),
        block_size=size, val_fraction=val_fraction, test_fraction=test_fraction,
        strand=strand, dedup=dedup, seed=seed, tokenizer=tokenizer,
        add_special_tokens=add_special_tokens, threads=threads,
    )  # fmt: skip
    arrays = {f: out[f] for f in FIELDS}
    params = {
        "k": k, "context_nt": context_nt, "strand": strand, "dedup": dedup, "seed": seed,
        "split": {
            "mode": split, "val_records": list(val_records), "test_records": list(test_records),
            "block_size": size if split == "blocks" else None,
            "val_fraction": val_fraction if split == "blocks" else None,
            "test_fraction": test_fraction if split == "blocks" else None,
        },
    }  # fmt: skip
    manifest = _manifest(g, params, tokenizer, add_special_tokens, out)
    return NextKmerDataset(arrays, manifest, g)


def _manifest(
    g: _core.Genome,
    params: dict[str, Any],
    tokenizer: _core.KmerTokenizer | None,
    add_special_tokens: bool,
    out: dict[str, Any],
) -> dict[str, Any]:
    names = g.names
    sha = g.sha256 or _core.sha256_file(g.path)
    labels, split_codes = out["labels"], out["split"]
    k = params["k"]
    histogram = {
        s: np.bincount(labels[split_codes == i], minlength=4**k).tolist()
        for i, s in enumerate(SPLITS)
    }
    tok = None
    if tokenizer is not None:
        import hashlib

        tok = {
            "k": tokenizer.k,
            "stride": tokenizer.stride,
            "vocab_size": tokenizer.vocab_size,
            "vocab_sha256": hashlib.sha256(tokenizer.vocab_text().encode()).hexdigest(),
            "add_special_tokens": add_special_tokens,
        }
    return {
        "kind": KIND,
        "genome": {
            "path": os.path.abspath(g.path),
            "sha256": sha,
            "records": names,
            "lengths": g.lengths,
        },
        **params,
        "input": "tokens" if tokenizer is not None else "bases",
        "tokenizer": tok,
        "input_ids_dtype": str(out["input_ids"].dtype),
        "label_order": "itertools.product('ATCG', repeat=k)",
        "split_codes": {s: i for i, s in enumerate(SPLITS)},
        "strand_codes": {"+": 1, "-": -1},
        "counts": {s: int((split_codes == i).sum()) for i, s in enumerate(SPLITS)},
        "available_windows": dict(zip(SPLITS, out["available"], strict=True)),
        "duplicates_rejected": out["duplicates_rejected"],
        "areas": {
            s: [[names[r], a, b] for r, a, b in out["areas"][i]] for i, s in enumerate(SPLITS)
        },
        "label_histogram": histogram,
    }
