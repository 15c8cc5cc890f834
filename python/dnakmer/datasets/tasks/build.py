"""Genome-biology fine-tuning tasks built from a genome and its GFF3/GTF annotation.

Three tasks, as in DNABERT's fine-tuning benchmarks, but reproducible from any
annotated genome:

``promoter``
    Windows ``-upstream .. +downstream`` around every distinct transcription start
    (first base of a transcript's first exon, strand-aware; DNABERT's Prom300 is
    ``upstream=249, downstream=50``), label 1, against as many background windows
    (label 0) drawn from the same split farther than ``min_distance`` from any
    annotated transcript or gene start, optionally matched in GC content.
``splice``
    Windows centred on the exon-intron boundaries of multi-exon transcripts: donors
    (label 1; the intron's first two bases sit at ``width // 2``) and acceptors (label 2;
    the intron's last two bases end at ``width // 2``), against decoys (label 0): GT
    or AG junctions, in the same orientation, that are not annotated boundaries on
    either strand. Three classes of equal size per split.
``coding``
    Non-overlapping windows inside CDS, read on the CDS strand (label 1), against
    windows outside every gene, transcript, exon and CDS (label 0), balanced per split.

Common rules: windows touching a non-ACGT base are dropped; '-' strand windows are
reverse-complemented; every window lies inside one split region (contiguous blocks or
whole records), so no base is shared between splits; the same inputs, parameters and
seed give byte-identical output.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dnakmer import _core
from dnakmer._io import write_text
from dnakmer.datasets.annotation import Annotation, read_annotation
from dnakmer.datasets.store import load_arrays, read_manifest, write_dataset
from dnakmer.datasets.tasks.genome_line import SPLITS, GenomeLine, assign_split_regions
from dnakmer.datasets.tasks.intervals import gc_fraction
from dnakmer.datasets.tasks.windows import (
    Windows,
    balance,
    coding_windows,
    promoter_windows,
    splice_windows,
)
from dnakmer.exceptions import AnnotationError, DatasetError
from dnakmer.genome import Genome
from dnakmer.tokenizer import KmerTokenizer

__all__ = ["LABEL_NAMES", "TASKS", "TaskDataset", "build_task"]

TaskName = Literal["promoter", "splice", "coding"]
TASKS: tuple[str, ...] = ("promoter", "splice", "coding")
LABEL_NAMES: dict[str, list[str]] = {
    "promoter": ["background", "promoter"],
    "splice": ["non_site", "donor", "acceptor"],
    "coding": ["intergenic", "coding"],
}
TASK_KIND = "dnakmer.task"
EMPTY_REASON = {
    "promoter": "no transcript (exons grouped by Parent / transcript_id) yields a window",
    "splice": "no intron of a multi-exon transcript yields a window",
    "coding": "no CDS or no intergenic stretch is as long as the window",
}
BASES = np.frombuffer(b"ATCG", dtype=np.uint8)


@dataclass(frozen=True)
class TaskDataset:
    """Samples of an annotation task, as NumPy columns plus their manifest.

    Attributes
    ----------
    columns : dict of str to numpy.ndarray
        ``sequence`` (n, width) uint8, codes A=0 T=1 C=2 G=3, read 5'->3' on
        ``strand``; ``input_ids`` (n, n_tokens + 2) ``tokenizer.dtype``, ``[CLS]``
        k-mers ``[SEP]`` (only when built with a tokenizer); ``labels`` (n,) int64;
        ``record`` (n,) str; ``start`` (n,) int64, 0-based start of the window on the
        forward strand (it covers ``[start, start + width)``); ``strand`` (n,) '+' or
        '-'; ``split`` (n,) 'train', 'dev' or 'test'.
    manifest : dict
        Task, label names, parameters, input paths and SHA-256, split regions, counts
        per split and label, dropped windows and skipped features by reason, and
        task statistics (splice-site dinucleotides, GC per label).
    """

    columns: dict[str, np.ndarray]
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return len(self.columns["labels"])

    def split(self, name: str) -> dict[str, np.ndarray]:
        """The columns of the samples in split ``name`` ('train', 'dev' or 'test')."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        mask = self.columns["split"] == name
        return {k: v[mask] for k, v in self.columns.items()}

    def sequences(self, rows: np.ndarray | None = None) -> list[str]:
        """Window sequences as uppercase text (all rows, or those in ``rows``)."""
        seqs = self.columns["sequence"] if rows is None else self.columns["sequence"][rows]
        return [bytes(BASES[s]).decode() for s in seqs]

    def save(self, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the dataset directory (``<field>.npy``, ``samples.parquet``,
        ``manifest.json``) atomically; see :func:`dnakmer.datasets.store.write_dataset`."""
        return write_dataset(out_dir, self.columns, self.manifest, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TaskDataset:
        """Read a directory written by :meth:`save` (arrays loaded into memory)."""
        manifest = read_manifest(path)
        if manifest.get("kind") != TASK_KIND:
            raise ValueError(f"{path} holds a {manifest.get('kind')!r} dataset, not a task")
        arrays = load_arrays(path, mmap=False)
        check_values(Path(path), manifest, arrays)
        return cls(arrays, manifest)

    def write_dnabert_tsv(
        self, out_dir: str | os.PathLike[str], *, kmer: int | Literal["auto"] | None = "auto"
    ) -> list[Path]:
        """DNABERT's fine-tuning files: ``train.tsv``, ``dev.tsv`` and, when the test
        split is not empty, ``test.tsv``; header ``sequence\\tlabel``.

        Parameters
        ----------
        kmer : int, "auto" or None
            Write each sequence as space-joined overlapping k-mers (DNABERT's own
            files, read by its ``DnaPromProcessor``); "auto" uses the k of the
            tokenizer the dataset was built with, else 6; None writes the raw sequence.

        Returns
        -------
        list of Path
        """
        k: int | None = (
            int((self.manifest.get("tokenizer") or {}).get("k", 6)) if kmer == "auto" else kmer
        )
        if k is not None and not 1 <= k <= self.manifest["window_length"]:
            raise ValueError(f"kmer must be between 1 and the window length, got {k}")
        paths = []
        for name in SPLITS:
            rows = np.flatnonzero(self.columns["split"] == name)
            if name == "test" and len(rows) == 0:
                continue
            lines = ["sequence\tlabel"]
            for seq, label in zip(self.sequences(rows), self.columns["labels"][rows], strict=True):
                if k is not None:
                    seq = " ".join(seq[i : i + k] for i in range(len(seq) - k + 1))
                lines.append(f"{seq}\t{label}")
            paths.append(write_text(Path(out_dir) / f"{name}.tsv", "\n".join(lines) + "\n"))
        return paths


def _check_parameters(
    task: str,
    width: int,
    fractions: tuple[float, float, float],
    split_by: str,
    block_size: int,
    min_distance: int,
) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if width < 4 or (task == "splice" and width % 2):
        raise ValueError(f"window length must be >= 4 (and even for splice), got {width}")
    if any(f < 0 for f in fractions[1:]) or fractions[1] + fractions[2] >= 1:
        raise ValueError(
            f"dev and test fractions must be >= 0 and sum below 1, got "
            f"{fractions[1]} and {fractions[2]}"
        )
    if split_by == "block" and block_size < width:
        raise ValueError(f"block_size ({block_size}) must be at least the window length ({width})")
    if min_distance < 0:
        raise ValueError(f"min_distance must be >= 0, got {min_distance}")


def _tokenize(windows: np.ndarray, tokenizer: KmerTokenizer) -> np.ndarray:
    """``[CLS]`` k-mer ids ``[SEP]`` per row, as BertTokenizer would give for the
    space-joined k-mers of each window."""
    n_tokens = tokenizer.n_tokens(windows.shape[1])
    out = np.empty((len(windows), n_tokens + 2), dtype=tokenizer.dtype)
    out[:, 0] = tokenizer.cls_token_id
    out[:, -1] = tokenizer.sep_token_id
    for i, row in enumerate(windows):
        out[i, 1:-1] = tokenizer.encode_codes(row)
    return out


def _columns(
    line: GenomeLine, windows: Windows, width: int, tokenizer: KmerTokenizer | None
) -> dict[str, np.ndarray]:
    seqs = line.windows(windows.start, width, windows.minus)
    rec = line.record_of(windows.start)
    names = np.asarray(line.genome.names, dtype=str)
    columns = {"sequence": seqs}
    if tokenizer is not None:
        columns["input_ids"] = _tokenize(seqs, tokenizer)
    columns |= {
        "labels": windows.label.astype(np.int64),
        "record": names[rec] if len(names) else np.zeros(0, dtype="<U1"),
        "start": windows.start - line.offsets[rec],
        "strand": np.where(windows.minus, "-", "+").astype("<U1"),
        "split": np.asarray(SPLITS, dtype="<U5")[windows.split],
    }
    return columns


def _merged_regions(regions: list[tuple[str, int, int, int]]) -> list[list[Any]]:
    """Adjacent blocks of one record and split joined: ``[record, start, end, split]``."""
    merged: list[list[Any]] = []
    for record, start, end, code in regions:
        last = merged[-1] if merged else None
        if last and last[0] == record and last[2] == start and last[3] == SPLITS[code]:
            last[2] = end
        else:
            merged.append([record, int(start), int(end), SPLITS[code]])
    return merged


def _counts(task: str, windows: Windows) -> dict[str, dict[str, int]]:
    return {
        split: {
            name: int(((windows.split == s) & (windows.label == lab)).sum())
            for lab, name in enumerate(LABEL_NAMES[task])
        }
        for s, split in enumerate(SPLITS)
    }


def _open_inputs(
    genome: Genome | str | os.PathLike[str],
    annotation: Annotation | str | os.PathLike[str],
    annotation_format: Literal["auto", "gff3", "gtf"],
    strict: bool,
) -> tuple[Genome, str, Annotation]:
    g = genome if isinstance(genome, Genome) else Genome.open(genome, sha256=True)
    genome_sha = g.sha256 or _core.sha256_file(g.path)
    if isinstance(annotation, Annotation):
        ann = annotation.restrict_to(g, strict=strict)
    else:
        ann = read_annotation(annotation, format=annotation_format, genome=g, strict=strict)
    return g, genome_sha, ann


def check_values(path: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """:class:`DatasetError` naming the file whose values a task dataset cannot hold:
    labels outside its label names, split names or strands it does not use, per-split
    and per-label counts that differ from the manifest, windows of another width or
    alphabet, token ids beyond the tokenizer's vocabulary, starts off their record."""

    def bad(field: str, what: str) -> DatasetError:
        f = path / (f"{field}.npy" if field in arrays else "manifest.json")
        return DatasetError(f"{f}: {what}", path=str(f))

    for field in ("labels", "sequence", "split", "strand", "record", "start"):
        if field not in arrays:
            raise bad("manifest", f"a task dataset needs the field {field!r}")
    names = manifest.get("label_names")
    if not isinstance(names, list) or len(names) < 2:
        raise bad("manifest", f"label_names must list at least two labels, not {names!r}")
    labels = np.asarray(arrays["labels"])
    n = len(labels)
    if n and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= len(names)):
        raise bad("labels", f"labels outside 0 .. {len(names) - 1} ({', '.join(names)})")
    split = np.asarray(arrays["split"])
    unknown = sorted(set(np.unique(split).tolist()) - set(SPLITS))
    if unknown:
        raise bad("split", f"split names {unknown} (a task uses {', '.join(SPLITS)})")
    if n and not np.isin(arrays["strand"], ("+", "-")).all():
        raise bad("strand", "strands other than '+' and '-'")
    counts = {
        s: {name: int(((split == s) & (labels == i)).sum()) for i, name in enumerate(names)}
        for s in SPLITS
    }
    if counts != manifest.get("counts"):
        raise bad("labels", f"{counts} samples per split and label, the manifest says "
                  f"{manifest.get('counts')}")  # fmt: skip
    seq = np.asarray(arrays["sequence"])
    width = manifest.get("window_length")
    if seq.ndim != 2 or (width is not None and seq.shape[1] != width):
        raise bad("sequence", f"shape {seq.shape}, not (samples, {width})")
    if n and int(seq.max()) > 3:
        raise bad("sequence", "base codes other than 0-3 (A, T, C, G)")
    records = (manifest.get("genome") or {}).get("records") or {}
    starts = np.asarray(arrays["start"])
    if n and records:
        lengths = np.array([records.get(str(r), -1) for r in arrays["record"]])
        if (lengths < 0).any():
            raise bad("record", "record names the genome in the manifest does not have")
        if (starts < 0).any() or (starts + seq.shape[1] > lengths).any():
            raise bad("start", "windows that start or end outside their record")
    if "input_ids" in arrays:
        ids = np.asarray(arrays["input_ids"])
        vocab = (manifest.get("tokenizer") or {}).get("vocab_size")
        if ids.ndim != 2 or len(ids) != n:
            raise bad("input_ids", f"shape {ids.shape}, not ({n}, tokens)")
        if n and vocab is not None and int(ids.max()) >= vocab:
            raise bad("input_ids", f"token id {int(ids.max())} beyond the vocabulary ({vocab})")


def build_task(
    genome: Genome | str | os.PathLike[str],
    annotation: Annotation | str | os.PathLike[str],
    task: TaskName,
    *,
    tokenizer: KmerTokenizer | None = None,
    window: int | None = None,
    upstream: int = 249,
    downstream: int = 50,
    min_distance: int = 1000,
    gc_matched: bool = False,
    starts_from: Literal["transcript", "gene"] = "transcript",
    canonical_only: bool = False,
    split_by: Literal["block", "record"] = "block",
    block_size: int = 10_000,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    annotation_format: Literal["auto", "gff3", "gtf"] = "auto",
    strict: bool = False,
) -> TaskDataset:
    """Build a fine-tuning task from a genome and its annotation (see module docs).

    Parameters
    ----------
    genome : Genome or path
        FASTA file or an open :class:`Genome`.
    annotation : Annotation or path
        GFF3 or GTF file (plain, gzip or BGZF) or an :class:`Annotation`.
    task : {"promoter", "splice", "coding"}
    tokenizer : KmerTokenizer, optional
        Also store ``input_ids`` (``[CLS]`` k-mers ``[SEP]``).
    window : int, optional
        Window length for ``splice`` (default 400, even) and ``coding`` (default 300).
        ``promoter`` windows are ``upstream + 1 + downstream`` long.
    upstream, downstream : int
        Promoter bases before and after the transcription start (which is included).
    min_distance : int
        Promoter background windows keep every base farther than this from any start.
    gc_matched : bool
        Draw promoter background windows with the promoters' GC histogram (20 bins).
    starts_from : {"transcript", "gene"}
        Promoter anchors: the first base of every transcript (exons grouped by
        Parent / transcript_id; mRNA, ncRNA, tRNA, ...) or of every stranded
        gene-like feature (type ``gene``, ``pseudogene``, ``ncRNA_gene``, ...).
    canonical_only : bool
        Splice: keep only GT donors and AG acceptors.
    split_by : {"block", "record"}
    block_size : int
        Length of the contiguous blocks dealt to splits when ``split_by="block"``.
    dev_fraction, test_fraction : float
        Shares of blocks (or of genome length, by record) for dev and test.
    seed : int
    annotation_format : {"auto", "gff3", "gtf"}
    strict : bool
        Features past the end of their record are an error, not a counted skip.

    Returns
    -------
    TaskDataset

    Raises
    ------
    ValueError
        A bad parameter, named.
    AnnotationError
        Malformed annotation, or one that does not belong to the genome.
    """
    width = (
        upstream + downstream + 1
        if task == "promoter"
        else window or (400 if task == "splice" else 300)
    )
    fractions = (1 - dev_fraction - test_fraction, dev_fraction, test_fraction)
    if starts_from not in ("transcript", "gene"):
        raise ValueError(f"starts_from must be 'transcript' or 'gene', got {starts_from!r}")
    if upstream < 0 or downstream < 0:
        raise ValueError(f"upstream and downstream must be >= 0, got {upstream}, {downstream}")
    _check_parameters(task, width, fractions, split_by, block_size, min_distance)
    g, genome_sha, ann = _open_inputs(genome, annotation, annotation_format, strict)
    regions = assign_split_regions(
        g.names, g.lengths, split_by=split_by, block_size=block_size, fractions=fractions, seed=seed
    )
    line = GenomeLine.build(g, regions)
    options: dict[str, Any] = {"seed": seed}
    if task == "promoter":
        options |= {
            "upstream": upstream,
            "downstream": downstream,
            "min_distance": min_distance,
            "gc_matched": gc_matched,
            "starts_from": starts_from,
        }
        windows, stats = promoter_windows(line, ann, **options)
    elif task == "splice":
        options |= {"canonical_only": canonical_only}
        windows, stats = splice_windows(line, ann, width=width, **options)
    else:
        windows, stats = coding_windows(line, ann, width=width, **options)
    windows, unbalanced = balance(windows, len(LABEL_NAMES[task]), seed)
    stats.setdefault("dropped", {})["balancing"] = unbalanced
    if len(windows.label) == 0:
        raise AnnotationError(
            f"{ann.path}: no {task} windows on {g.path}: {EMPTY_REASON[task]} "
            f"(annotation counts {ann.counts()}, dropped windows {stats.get('dropped', {})})",
            path=ann.path,
        )
    columns = _columns(line, windows, width, tokenizer)
    gc = gc_fraction(columns["sequence"])
    stats["gc_mean_by_label"] = {
        name: float(gc[columns["labels"] == lab].mean())
        if (columns["labels"] == lab).any()
        else None
        for lab, name in enumerate(LABEL_NAMES[task])
    }
    splits = {
        "by": split_by,
        "block_size": block_size if split_by == "block" else None,
        "fractions": dict(zip(SPLITS, fractions, strict=True)),
        "regions": _merged_regions(regions),
    }
    inputs = {"genome": g, "genome_sha256": genome_sha, "annotation": ann, "tokenizer": tokenizer}
    manifest = _manifest(task, width, options, inputs, splits, windows, stats)
    return TaskDataset(columns, manifest)


def _manifest(
    task: str,
    width: int,
    params: dict[str, Any],
    inputs: dict[str, Any],
    splits: dict[str, Any],
    windows: Windows,
    stats: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to trace a task dataset to its inputs and rebuild it."""
    g, ann, tokenizer = inputs["genome"], inputs["annotation"], inputs["tokenizer"]
    return {
        "kind": TASK_KIND,
        "task": task,
        "label_names": LABEL_NAMES[task],
        "window_length": width,
        "params": params,
        "genome": {
            "path": os.path.abspath(g.path),
            "sha256": inputs["genome_sha256"],
            "records": dict(zip(g.names, g.lengths, strict=True)),
        },
        "annotation": {
            "path": os.path.abspath(ann.path),
            "sha256": ann.sha256,
            "format": ann.format,
            "counts": ann.counts(),
            "skipped": ann.skipped,
        },
        "tokenizer": None
        if tokenizer is None
        else {
            "k": tokenizer.k,
            "stride": tokenizer.stride,
            "vocab_size": tokenizer.vocab_size,
            "vocab_sha256": hashlib.sha256(tokenizer.vocab_text().encode()).hexdigest(),
        },
        "splits": splits,
        "counts": _counts(task, windows),
        **stats,
    }
