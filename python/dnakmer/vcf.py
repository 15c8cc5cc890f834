"""Reading variants: :func:`read_vcf` turns a VCF file into one row per data record."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import polars as pl

from dnakmer import _core
from dnakmer.progress import reporter

__all__ = ["VCF_SCHEMA", "read_vcf"]

VCF_SCHEMA = pl.Schema(
    {
        "line": pl.Int64,
        "chrom": pl.Utf8,
        "pos": pl.Int64,
        "id": pl.Utf8,
        "ref": pl.Utf8,
        "alt": pl.Utf8,
    }
)
"""The columns of :func:`read_vcf`'s table, in order."""


def read_vcf(
    path: str | os.PathLike[str],
    *,
    threads: int | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> pl.DataFrame:
    """The data records of a VCF file (plain, gzip or BGZF), as written, in file order.

    Nothing is interpreted: REF and ALT are the file's text, so a multi-allelic ALT stays
    one string (``"T,G"``) and a symbolic one stays ``"<DEL>"``. The header must run from
    ``##fileformat=VCFv4.x`` to the ``#CHROM`` line, and every data line needs at least
    the 8 tab-separated columns CHROM to INFO, none empty. CRLF line endings, blank lines
    and a leading byte-order mark are accepted. A FIFO is read once, as a stream.

    Parameters
    ----------
    path : str or os.PathLike
        VCF file.
    threads : int, optional
        Decompression threads for gzip / BGZF input (default: ``DNAKMER_NUM_THREADS`` or
        all cores).
    progress : callable, optional
        Called as ``progress(bytes_read, file_size)`` every few MB (default: reports to
        :mod:`dnakmer.progress` when something listens there).

    Returns
    -------
    polars.DataFrame
        One row per data record, with the columns of :data:`VCF_SCHEMA`:

        - ``line`` (Int64): 1-based line of the record in the decompressed text, header
          lines counted;
        - ``chrom`` (Utf8): CHROM;
        - ``pos`` (Int64): POS, 1-based, from 1 to 2**63 - 1;
        - ``id``, ``ref``, ``alt`` (Utf8): ID, REF and ALT (``"."`` when missing).

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        The file cannot be opened.
    dnakmer.exceptions.VcfFormatError
        The file is not VCF (no header, a bad header line, a data line with too few or
        empty columns, a POS that is not a position from 1), or its gzip / BGZF stream
        is corrupt or truncated. ``path``, ``line`` and ``record`` (the CHROM of the bad
        record, when known) say where.

    Warns
    -----
    UserWarning
        A BGZF file without its end-of-file block (it may have been cut short).

    Examples
    --------
    >>> table = read_vcf(vcf_path)
    >>> table.row(0, named=True)
    {'line': 6, 'chrom': 'chr1', 'pos': 10, 'id': 'rs1', 'ref': 'A', 'alt': 'T,<DEL>'}
    """
    if progress is None:
        progress = reporter(f"reading {os.path.basename(os.fspath(path))}")
    columns, summary = _core.read_vcf(os.fspath(path), threads=threads, progress=progress)
    if summary["bgzf_eof_missing"]:
        # As Genome does: a BGZF file cut at a block boundary reads cleanly but for this.
        warnings.warn(
            f"{os.fspath(path)}: BGZF file has no end-of-file block; it may be truncated",
            stacklevel=2,
        )
    return pl.DataFrame({name: columns[name] for name in VCF_SCHEMA}, schema=VCF_SCHEMA)
