"""Reading genome annotations: GFF3 and GTF into polars tables of features, exons,
transcripts, introns and CDS.

Coordinates are converted on reading to dnakmer's convention, 0-based half-open
(GFF ``start..end`` 1-based inclusive becomes ``[start - 1, end)``).

What is an error and what is a counted skip
-------------------------------------------
Errors (:class:`~dnakmer.exceptions.AnnotationError`, naming file and line) are problems
that make the file itself untrustworthy:

* a line without 9 tab-separated columns, an empty seqid or type;
* a start or end that is not a positive integer;
* a strand other than ``+``, ``-``, ``.`` or ``?``;
* inverted coordinates (start > end), which GFF3 and GTF both forbid;
* with a genome: no feature at all on any of its records (the wrong genome, or
  ``chr1`` against ``NC_000001.11`` naming).

Counted skips (the count per reason is kept in :attr:`Annotation.skipped` and goes into
task manifests) are features that are well-formed but cannot be used here; they happen
in ordinary files:

* ``unknown_record``: a seqid the genome does not contain (annotations often cover
  more sequences than the FASTA at hand, e.g. one chromosome of a whole-genome GFF);
* ``out_of_bounds``: a feature ending past its record (a circular genome's feature
  across the origin, or a genome/annotation version mismatch); ``strict=True`` makes
  this an error;
* ``orphan_exon``: an exon without ``Parent`` (GFF3) or ``transcript_id`` (GTF);
* ``unstranded_transcript`` / ``mixed_transcript``: a transcript whose exons have no
  strand, or lie on several records or strands (trans-splicing).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl

from dnakmer.exceptions import AnnotationError

if TYPE_CHECKING:
    from dnakmer.genome import Genome

__all__ = ["Annotation", "read_annotation"]

AnnotationFormat = Literal["gff3", "gtf"]
GFF_COLUMNS = ("seqid", "source", "type", "start", "end", "score", "strand", "phase", "attributes")
VALID_STRANDS = ("+", "-", ".", "?")
EXON_TYPES = ("exon",)
CDS_TYPES = ("CDS",)


def _read_text(path: Path) -> tuple[str, str]:
    """The whole file as text (gzip and BGZF, i.e. multi-member gzip, decompressed)
    and the SHA-256 of the file as stored; the file is read once."""
    raw = path.read_bytes()
    sha256 = hashlib.sha256(raw).hexdigest()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise AnnotationError(f"{path}: cannot decompress: {e}", path=str(path)) from e
    try:
        return raw.decode("utf-8"), sha256
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise AnnotationError(f"{path}:{line}: not UTF-8 text", path=str(path), line=line) from e


def _detect_format(path: Path, lines: pl.Series) -> AnnotationFormat:
    """GFF3 or GTF: the ``##gff-version 3`` directive, else a ``.gff3`` / ``.gtf``
    suffix, else the attribute syntax (``key "value";`` is GTF), else GFF3."""
    name = path.name.lower().removesuffix(".gz").removesuffix(".bgz")
    if lines.str.starts_with("##gff-version 3").any() or name.endswith(".gff3"):
        return "gff3"
    if name.endswith((".gtf", ".gff2")):
        return "gtf"
    data = lines.filter(~lines.str.starts_with("#") & (lines.str.strip_chars() != ""))
    if data.head(100).str.contains(r'\t[^\t]*\s"[^"]*"\s*;?[^\t]*$').any():
        return "gtf"
    return "gff3"


def _first_bad(df: pl.DataFrame, bad: pl.Expr, path: Path, what: str) -> None:
    """Raise naming the first row where ``bad`` holds, and how many more there are."""
    hits = df.filter(bad)
    if hits.height == 0:
        return
    row = hits.row(0, named=True)
    more = f" (and {hits.height - 1} more such lines)" if hits.height > 1 else ""
    message = what.format(**row)
    raise AnnotationError(
        f"{path}:{row['line']}: {message}{more}",
        path=str(path),
        line=int(row["line"]),
        record=row.get("seqid"),
    )


def _split_columns(lines: pl.Series, path: Path) -> pl.DataFrame:
    """Data lines (with their 1-based line numbers) split into the nine GFF columns."""
    df = lines.to_frame("raw").with_row_index("line", offset=1)
    fasta = df.filter(pl.col("raw") == "##FASTA")
    if fasta.height:  # GFF3 may embed sequences after ##FASTA; they are not features
        df = df.filter(pl.col("line") < fasta["line"][0])
    df = df.filter(~pl.col("raw").str.starts_with("#") & (pl.col("raw").str.strip_chars() != ""))
    df = df.with_columns(pl.col("raw").str.split("\t").alias("cols"))
    n_cols = pl.col("cols").list.len()
    _first_bad(
        df.with_columns(n_cols.alias("n")),
        pl.col("n") != 9,
        path,
        "expected 9 tab-separated columns, found {n}",
    )
    return df.select(
        "line", *(pl.col("cols").list.get(i).alias(c) for i, c in enumerate(GFF_COLUMNS))
    )


def _typed_columns(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Check and convert the columns; coordinates become 0-based half-open."""
    _first_bad(df, pl.col("seqid") == "", path, "empty seqid")
    _first_bad(df, pl.col("type") == "", path, "empty feature type on record {seqid}")
    for col in ("start", "end"):
        as_int = pl.col(col).str.strip_chars().cast(pl.Int64, strict=False)
        _first_bad(
            df,
            as_int.is_null() | (as_int < 1),
            path,
            f"{col} {{{col}!r}} is not a positive integer",
        )
    df = df.with_columns(pl.col("start", "end").str.strip_chars().cast(pl.Int64))
    _first_bad(
        df,
        pl.col("start") > pl.col("end"),
        path,
        "inverted coordinates on record {seqid}: start {start} > end {end}",
    )
    _first_bad(
        df,
        ~pl.col("strand").is_in(list(VALID_STRANDS)),
        path,
        "strand {strand!r} is not one of '+', '-', '.', '?'",
    )
    return df.with_columns(
        pl.col("start") - 1,
        pl.col("score").cast(pl.Float64, strict=False),
        pl.col("phase").cast(pl.Int8, strict=False),
    )


def _attribute(fmt: AnnotationFormat, key: str) -> pl.Expr:
    """One attribute's value (null when absent), as the format writes it."""
    gff3 = rf"(?:^|;)\s*{key}=([^;]*)"
    gtf = rf'(?:^|;)\s*{key}\s+"?([^";]*)"?'
    pattern = gff3 if fmt == "gff3" else gtf
    return pl.col("attributes").str.extract(pattern, 1)


def _percent_decode(expr: pl.Expr) -> pl.Expr:
    """GFF3 escapes reserved characters as %XX; decode the common ones."""
    for code, char in (("%3B", ";"), ("%3D", "="), ("%26", "&"), ("%2C", ","), ("%09", "\t")):
        expr = expr.str.replace_all(code, char, literal=True)
    return expr.str.replace_all("%25", "%", literal=True)


def _parse_attributes(df: pl.DataFrame, fmt: AnnotationFormat) -> pl.DataFrame:
    """``id``, ``parents`` (list), ``name``, ``gene_id``, ``transcript_id`` columns."""
    if fmt == "gff3":
        keys = {
            "id": "ID",
            "parents": "Parent",
            "name": "Name",
            "gene_id": "gene_id",
            "transcript_id": "transcript_id",
        }
        df = df.with_columns(_attribute(fmt, key).alias(col) for col, key in keys.items())
        # Decoding costs six passes per column; skip columns without any escape.
        escaped = [c for c in keys if df[c].str.contains("%", literal=True).any()]
        df = df.with_columns(_percent_decode(pl.col(c)) for c in escaped if c != "parents")
        parents = pl.col("parents").str.split(",")
        if "parents" in escaped:
            parents = parents.list.eval(_percent_decode(pl.element()))
        return df.with_columns(parents)
    transcript = _attribute(fmt, "transcript_id")
    return df.with_columns(
        transcript.alias("id"),
        pl.when(transcript.is_not_null())
        .then(pl.concat_list(transcript))
        .otherwise(None)
        .alias("parents"),
        _attribute(fmt, "gene_name").alias("name"),
        _attribute(fmt, "gene_id").alias("gene_id"),
        transcript.alias("transcript_id"),
    )


@dataclass(frozen=True)
class Annotation:
    """Features of a GFF3 or GTF file, checked and in 0-based half-open coordinates.

    Attributes
    ----------
    features : polars.DataFrame
        One row per feature line: ``line`` (1-based line in the file), ``seqid``,
        ``source``, ``type``, ``start``, ``end`` (Int64, 0-based half-open), ``score``
        (Float64, null for '.'), ``strand`` ('+', '-', '.', '?'), ``phase`` (Int8 or
        null), ``attributes`` (raw text), ``id``, ``parents`` (list of str: GFF3
        ``Parent``; in GTF the feature's ``transcript_id``), ``name``, ``gene_id``,
        ``transcript_id``.
    path : str
    format : {"gff3", "gtf"}
    sha256 : str
        Of the file as stored (compressed or not).
    skipped : dict of str to int
        Features or transcripts left out, by reason (see the module documentation).
    """

    features: pl.DataFrame
    path: str
    format: AnnotationFormat
    sha256: str
    skipped: dict[str, int] = field(default_factory=dict)
    # Derived tables, computed once; init=False so dataclasses.replace starts afresh.
    _tables: dict[str, pl.DataFrame] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def _table(self, name: str, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        if name not in self._tables:
            self._tables[name] = build()
        return self._tables[name]

    def _with_skip(self, reason: str, count: int, features: pl.DataFrame) -> Annotation:
        skipped = dict(self.skipped)
        if count:
            skipped[reason] = skipped.get(reason, 0) + count
        return replace(self, features=features, skipped=skipped)

    def exons(self) -> pl.DataFrame:
        """Exons with their transcript: ``transcript``, ``seqid``, ``start``, ``end``,
        ``strand``, sorted by transcript then start. An exon with several GFF3 parents
        appears once per parent."""
        return self._table("exons", self._exons)

    def _exons(self) -> pl.DataFrame:
        exons = self.features.filter(pl.col("type").is_in(EXON_TYPES))
        return (
            exons.filter(pl.col("parents").is_not_null())
            .explode("parents")
            .rename({"parents": "transcript"})
            .select("transcript", "seqid", "start", "end", "strand")
            .unique()
            .sort("transcript", "start", "end")
        )

    def transcripts(self) -> pl.DataFrame:
        """One row per transcript with exons on a single record and strand.

        Returns
        -------
        polars.DataFrame
            ``transcript``, ``seqid``, ``strand``, ``start``, ``end`` (span of its exons,
            0-based half-open), ``n_exons``; sorted by seqid, start, transcript. The
            transcription start site is ``start`` on '+' and ``end - 1`` on '-'.
        """
        return self._table("transcripts", self._transcripts)

    def _transcripts(self) -> pl.DataFrame:
        grouped = (
            self.exons()
            .group_by("transcript")
            .agg(
                pl.col("seqid").n_unique().alias("n_seqids"),
                pl.col("strand").n_unique().alias("n_strands"),
                pl.col("seqid").first(),
                pl.col("strand").first(),
                pl.col("start").min(),
                pl.col("end").max(),
                pl.len().alias("n_exons"),
            )
        )
        usable = (pl.col("n_seqids") == 1) & (pl.col("n_strands") == 1)
        return (
            grouped.filter(usable & pl.col("strand").is_in(["+", "-"]))
            .drop("n_seqids", "n_strands")
            .with_columns(pl.col("n_exons").cast(pl.Int64))
            .sort("seqid", "start", "transcript")
        )

    def introns(self) -> pl.DataFrame:
        """Introns between consecutive exons of each transcript in :meth:`transcripts`.

        Returns
        -------
        polars.DataFrame
            ``transcript``, ``seqid``, ``strand``, ``start``, ``end`` (0-based half-open
            intron; on '+' the donor is at ``start`` and the acceptor ends at ``end``,
            on '-' the reverse). Gaps of length <= 0 (touching or overlapping exons)
            are not introns and are left out.
        """
        return self._table("introns", self._introns)

    def _introns(self) -> pl.DataFrame:
        keep = self.transcripts().select("transcript")
        exons = self.exons().join(keep, on="transcript", how="semi")
        introns = exons.with_columns(
            pl.col("end").alias("intron_start"),
            pl.col("start").shift(-1).over("transcript").alias("intron_end"),
        )
        return (
            introns.filter(pl.col("intron_end") > pl.col("intron_start"))
            .select(
                "transcript",
                "seqid",
                "strand",
                pl.col("intron_start").alias("start"),
                pl.col("intron_end").alias("end"),
            )
            .sort("seqid", "start", "end", "transcript")
        )

    def cds(self) -> pl.DataFrame:
        """CDS features: ``seqid``, ``start``, ``end``, ``strand``, ``phase``, sorted."""
        return (
            self.features.filter(pl.col("type").is_in(CDS_TYPES))
            .select("seqid", "start", "end", "strand", "phase")
            .unique()
            .sort("seqid", "start", "end", "strand")
        )

    def counts(self) -> dict[str, int]:
        """Feature lines, transcripts, multi-exon transcripts and introns, for manifests."""
        transcripts = self.transcripts()
        return {
            "features": self.features.height,
            "transcripts": transcripts.height,
            "multi_exon_transcripts": transcripts.filter(pl.col("n_exons") > 1).height,
            "introns": self.introns().height,
        }

    def restrict_to(self, genome: Genome, *, strict: bool = False) -> Annotation:
        """Keep the features that lie on ``genome``'s records, counting the others.

        Raises
        ------
        AnnotationError
            No feature is on any record of the genome; or, with ``strict``, a feature
            ends past its record (naming line, record and lengths).
        """
        lengths = pl.DataFrame(
            {"seqid": genome.names, "record_length": genome.lengths},
            schema={"seqid": pl.String, "record_length": pl.Int64},
        )
        joined = self.features.join(lengths, on="seqid", how="left").sort("line")
        known = joined.filter(pl.col("record_length").is_not_null())
        if known.height == 0 and joined.height > 0:
            seqids = joined["seqid"].unique(maintain_order=True).head(3).to_list()
            raise AnnotationError(
                f"{self.path}: no feature lies on a record of {genome.path} "
                f"(annotation records {seqids}, genome records {genome.names[:3]})",
                path=self.path,
            )
        result = self._with_skip("unknown_record", joined.height - known.height, known)
        outside = pl.col("end") > pl.col("record_length")
        if strict:
            _first_bad(
                known,
                outside,
                Path(self.path),
                "feature {type} ends at {end}, past the end of record {seqid} ({record_length} bp)",
            )
        inside = known.filter(~outside)
        result = result._with_skip("out_of_bounds", known.height - inside.height, inside)
        return replace(result, features=inside.drop("record_length"))

    def _count_transcript_skips(self) -> Annotation:
        exons = self.features.filter(pl.col("type").is_in(EXON_TYPES))
        orphans = exons.filter(pl.col("parents").is_null()).height
        per_tx = (
            self.exons()
            .group_by("transcript")
            .agg(
                ((pl.col("seqid").n_unique() > 1) | (pl.col("strand").n_unique() > 1)).alias(
                    "mixed"
                ),
                pl.col("strand").first(),
            )
        )
        mixed = per_tx.filter(pl.col("mixed")).height
        unstranded = per_tx.filter(~pl.col("mixed") & ~pl.col("strand").is_in(["+", "-"]))
        result = self._with_skip("orphan_exon", orphans, self.features)
        result = result._with_skip("mixed_transcript", mixed, self.features)
        return result._with_skip("unstranded_transcript", unstranded.height, self.features)


def read_annotation(
    path: str | os.PathLike[str],
    *,
    format: Literal["auto", "gff3", "gtf"] = "auto",
    genome: Genome | None = None,
    strict: bool = False,
) -> Annotation:
    """Read a GFF3 or GTF file (plain, gzip or BGZF).

    Parameters
    ----------
    path : path
    format : {"auto", "gff3", "gtf"}
        "auto" uses the ``##gff-version 3`` directive, then the file suffix, then the
        attribute syntax (``key "value";`` is GTF).
    genome : Genome, optional
        Keep only features on its records and inside them (see
        :meth:`Annotation.restrict_to`).
    strict : bool
        Features past the end of their record are an error instead of a counted skip.

    Returns
    -------
    Annotation

    Raises
    ------
    FileNotFoundError
    AnnotationError
        A malformed line (naming file and line; see the module documentation).
    """
    if format not in ("auto", "gff3", "gtf"):
        raise ValueError(f"format must be 'auto', 'gff3' or 'gtf', got {format!r}")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(2, "No such annotation file", str(p))
    text, sha256 = _read_text(p)
    lines = pl.Series("raw", text.split("\n")).str.strip_chars_end("\r")
    fmt: AnnotationFormat = _detect_format(p, lines) if format == "auto" else format
    features = _parse_attributes(_typed_columns(_split_columns(lines, p), p), fmt)
    annotation = Annotation(features=features, path=str(p), format=fmt, sha256=sha256)
    if genome is not None:
        annotation = annotation.restrict_to(genome, strict=strict)
    return annotation._count_transcript_skips()
