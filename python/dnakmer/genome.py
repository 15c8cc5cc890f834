"""Reading genomes: :class:`Genome` holds a FASTA file in memory, 2 bits per base."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator

import polars as pl

from dnakmer import _core
from dnakmer.progress import reporter

__all__ = ["Genome"]

ProgressFn = Callable[[int, int], object]


class Genome(_core.Genome):
    """A genome read from FASTA (plain, gzip with any number of members, or BGZF).

    Bases are packed 2 bits each, with runs of non-ACGT characters and of lowercase
    (soft-masked) bases kept aside, so a 3.1 Gbp human genome takes about 0.8 GB.
    Coordinates are 0-based and half-open.

    Parameters
    ----------
    path : str or os.PathLike
        FASTA file.
    threads : int, optional
        Decompression threads (default: ``DNAKMER_NUM_THREADS`` or all cores).
    progress : callable, optional
        Called as ``progress(bytes_read, file_size)`` every few MB (default: reports to
        :mod:`dnakmer.progress` when something listens there).
    sha256 : bool
        Also compute the SHA-256 of the file (``.sha256``).

    Examples
    --------
    >>> g = Genome.open(example_path)
    >>> g.names, g.lengths
    (['NC_001416.1'], [48502])
    >>> g.fetch("NC_001416.1", 0, 12)
    'GGGCGGCGACCT'
    """

    def __new__(
        cls,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        progress: ProgressFn | None = None,
        sha256: bool = False,
    ) -> Genome:
        # Without a callback of its own, reading reports to dnakmer.progress (a bar on
        # the command line) when something listens.
        if progress is None:
            progress = reporter(f"reading {os.path.basename(os.fspath(path))}")
        return super().__new__(cls, path, threads=threads, progress=progress, sha256=sha256)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        progress: ProgressFn | None = None,
        sha256: bool = False,
    ) -> None:
        if self.bgzf_eof_missing:
            warnings.warn(
                f"{path}: BGZF file has no end-of-file block; it may be truncated",
                stacklevel=2,
            )

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        progress: ProgressFn | None = None,
        sha256: bool = False,
    ) -> Genome:
        """Read the FASTA file at ``path`` (see the class documentation)."""
        return cls(path, threads=threads, progress=progress, sha256=sha256)

    def stats(self) -> pl.DataFrame:
        """Per-record composition.

        Returns
        -------
        polars.DataFrame
            One row per record: ``name``, ``length``, counts ``a``, ``c``, ``g``, ``t``,
            ``n``, ``other`` (IUPAC codes other than N, and ``-``, ``*``, ``.``),
            ``softmasked`` (lowercase characters), and ``gc`` = (C + G) / (length - N),
            null for a record without non-N bases.
        """
        cols = self._stats_columns()
        schema = {"name": pl.String} | {
            c: pl.UInt64 for c in ("length", "a", "c", "g", "t", "n", "other", "softmasked")
        }
        df = pl.DataFrame(cols, schema=schema)
        denom = pl.col("length") - pl.col("n")
        gc = pl.when(denom > 0).then((pl.col("c") + pl.col("g")) / denom).otherwise(None)
        return df.with_columns(gc.cast(pl.Float64).alias("gc"))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)
