"""Variants against their genome: the reference check, one row per alternative allele
saying whether it can be scored and why not, regions, and the windows of bases around
positions.

A VCF record with several alternative alleles (``A -> C,T``) becomes one row per allele
(``allele`` 1, 2, ...; ``n_alleles``), as ``bcftools norm -m-`` would split it: each
single-nucleotide allele is scored on its own, the others are kept with the reason they
are not. Nothing is dropped: every allele of every record has a row.

Coordinates: ``pos`` is 1-based as in the VCF; regions are ``NAME:START-END``, 1-based
and inclusive, as samtools writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from dnakmer.exceptions import RecordNotFoundError
from dnakmer.genome import Genome

__all__ = [
    "BASES",
    "Region",
    "check_variants",
    "parse_region",
    "windows_around",
]

BASES = "ACGT"
"""Output order of bases (the genome's codes are A=0, T=1, C=2, G=3)."""
_CODE_TEXT = "ATCGN"
_SYMBOLIC = re.compile(r"[<>\[\]]")


def _skip_reason(
    ref: str, alt: str, genome_ref: str | None, chrom: str, pos: int, length: int | None
) -> str | None:
    """Why an allele cannot be scored (``"kind: detail"``), or None for a
    single-nucleotide variant that can."""
    if length is None:
        return f"record not in the genome: {chrom!r}"
    if pos < 1 or pos > length:
        return f"position outside the record: {pos:,} of {chrom!r} (1 to {length:,})"
    if genome_ref is not None and genome_ref != ref.upper():
        return f"REF does not match the genome: VCF {ref!r}, genome {genome_ref!r}"
    if alt in (".", ""):
        return "no alternative allele: '.'"
    if alt == "*":
        return "spanning-deletion allele: '*'"
    if _SYMBOLIC.search(alt):
        return f"symbolic or breakend allele: {alt!r}"
    if len(ref) != len(alt):
        kind = "insertion" if len(alt) > len(ref) else "deletion"
        return f"indel: {kind}, REF {len(ref)} bases, ALT {len(alt)}"
    if len(ref) > 1:
        return f"multi-nucleotide substitution: {len(ref)} bases"
    if ref.upper() not in BASES:
        return f"reference base not A, C, G or T: {ref!r}"
    if alt.upper() not in BASES:
        return f"ALT not A, C, G or T: {alt!r}"
    if alt.upper() == ref.upper():
        return f"ALT equals REF: {alt!r}"
    return None


def check_variants(genome: Genome, variants: pl.DataFrame) -> pl.DataFrame:
    """Every allele of ``variants`` checked against ``genome``.

    Parameters
    ----------
    genome : Genome
    variants : polars.DataFrame
        Columns ``chrom``, ``pos`` (1-based), ``ref``, ``alt`` (comma-separated alleles),
        and optionally ``line`` and ``id`` (as :func:`dnakmer.vcf.read_vcf` returns).

    Returns
    -------
    polars.DataFrame
        One row per allele, in file order: ``line``, ``chrom``, ``pos``, ``id``, ``ref``,
        ``alt`` (this allele), ``allele`` (1-based among the record's alleles),
        ``n_alleles``, ``genome_ref`` (the genome's bases under REF, upper case, N for
        any other letter; null where the position is not in the genome), ``ref_match``,
        ``status`` (``"scored"`` or ``"skipped"``) and ``reason`` (null when scored;
        ``"kind: detail"``, e.g. ``"indel: deletion, REF 3 bases, ALT 1"``).
    """
    frame = variants
    if "line" not in frame.columns:
        frame = frame.with_row_index("line", offset=1).with_columns(pl.col("line").cast(pl.Int64))
    if "id" not in frame.columns:
        frame = frame.with_columns(pl.lit(".").alias("id"))
    frame = (
        frame.select("line", "chrom", "pos", "id", "ref", "alt")
        .with_columns(pl.col("alt").str.split(","))
        .with_columns(pl.col("alt").list.len().cast(pl.Int32).alias("n_alleles"))
        .with_columns(
            pl.int_ranges(1, pl.col("n_alleles") + 1, dtype=pl.Int32).alias("allele")
        )
        .explode("alt", "allele")
    )
    lengths = dict(zip(genome.names, genome.lengths, strict=True))
    chroms = frame["chrom"].to_list()
    poss = frame["pos"].to_list()
    refs = frame["ref"].to_list()
    alts = frame["alt"].to_list()
    genome_refs: list[str | None] = [None] * frame.height
    codes_of: dict[str, np.ndarray] = {}
    for i, (chrom, pos, ref) in enumerate(zip(chroms, poss, refs, strict=True)):
        length = lengths.get(chrom)
        if length is None or pos < 1 or pos > length:
            continue
        if chrom not in codes_of:
            codes_of[chrom] = genome.codes(chrom)
        seq = codes_of[chrom][pos - 1 : pos - 1 + max(len(ref), 1)]
        genome_refs[i] = "".join(_CODE_TEXT[c] for c in seq)
    reasons = [
        _skip_reason(ref, alt, gref, chrom, pos, lengths.get(chrom))
        for chrom, pos, ref, alt, gref in zip(chroms, poss, refs, alts, genome_refs, strict=True)
    ]
    return frame.with_columns(
        pl.Series("genome_ref", genome_refs, dtype=pl.String),
        pl.Series("reason", reasons, dtype=pl.String),
    ).with_columns(
        (pl.col("genome_ref") == pl.col("ref").str.to_uppercase()).alias("ref_match"),
        pl.when(pl.col("reason").is_null())
        .then(pl.lit("scored"))
        .otherwise(pl.lit("skipped"))
        .alias("status"),
        pl.col("alt").str.to_uppercase(),
    ).select(
        "line", "chrom", "pos", "id", "ref", "alt", "allele", "n_alleles", "genome_ref",
        "ref_match", "status", "reason",
    )  # fmt: skip


@dataclass(frozen=True)
class Region:
    """A stretch of one record: 0-based, half-open ``[start, end)``."""

    name: str
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.name}:{self.start + 1}-{self.end}"

    def __len__(self) -> int:
        return self.end - self.start


def parse_region(text: str, genome: Genome) -> Region:
    """``NAME:START-END`` (1-based, inclusive; commas allowed in the numbers) or ``NAME``
    (the whole record) as a :class:`Region` of ``genome``.

    Raises
    ------
    RecordNotFoundError
        ``NAME`` is not a record of the genome.
    ValueError
        The coordinates are not numbers, are reversed or reach past the record.
    """
    name, sep, span = text.rpartition(":")
    if not sep or text in genome:
        name, sep, span = text, "", ""
    lengths = dict(zip(genome.names, genome.lengths, strict=True))
    if name not in lengths:
        raise RecordNotFoundError(
            f"record {name!r} is not in the genome (it has {', '.join(genome.names[:5])}"
            f"{', ...' if len(genome.names) > 5 else ''})",
            str(genome.path),
            record=name,
        )
    length = lengths[name]
    if not sep:
        return Region(name, 0, length)
    m = re.fullmatch(r"\s*([\d,]+)\s*-\s*([\d,]+)\s*", span)
    if m is None:
        raise ValueError(f"region {text!r}: write it as NAME:START-END, e.g. {name}:1001-2000")
    start, end = (int(x.replace(",", "")) for x in m.groups())
    if start < 1 or end < start:
        raise ValueError(f"region {text!r}: START must be at least 1 and at most END")
    if end > length:
        raise ValueError(f"region {text!r} reaches past the end of {name!r} ({length:,} bases)")
    return Region(name, start - 1, end)


def windows_around(
    genome: Genome, chrom: str, pos0: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``length`` bases of record ``chrom`` centred on each 0-based position.

    A window is shifted, never cut, where the record ends within half a window of the
    position; a record shorter than ``length`` gives windows of the whole record.

    Returns
    -------
    codes : numpy.ndarray, shape (n, min(length, record length)), uint8
        A=0, T=1, C=2, G=3, 4 = any other base.
    offset : numpy.ndarray, shape (n,), int64
        Where each position is in its window.
    """
    record = genome.lengths[genome.names.index(chrom)]
    width = min(length, record)
    pos0 = np.asarray(pos0, dtype=np.int64)
    start = np.clip(pos0 - width // 2, 0, record - width)
    if not len(start):
        return np.zeros((0, width), dtype=np.uint8), pos0 - start
    first = int(start.min())  # only the stretch the windows span is read
    codes = genome.codes(chrom, first, int(start.max()) + width)
    rows = codes[(start - first)[:, None] + np.arange(width)[None, :]]
    return np.ascontiguousarray(rows, dtype=np.uint8), pos0 - start
