"""GFF3 / GTF reading: real yeast and fly annotations against a plain-Python reference,
GTF equal to GFF3 for the same features, and precise errors or counted skips for bad
input."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotation_reference import (
    features,
    gff3_to_gtf,
    parse_gff3_attributes,
    read_lines,
    splice_junctions,
    transcription_starts,
    transcripts,
)
from dnakmer import Genome
from dnakmer.datasets.annotation import Annotation, read_annotation
from dnakmer.exceptions import AnnotationError, DnakmerError

DATA = Path(__file__).parent / "data"
YEAST_FA, YEAST_GFF = DATA / "yeast_chrI.fa.gz", DATA / "yeast_chrI.gff.gz"
FLY_FA, FLY_GFF = DATA / "dmel_chr4.fa.gz", DATA / "dmel_chr4.gff.gz"
YEAST_RECORD = "NC_001133.9"


@pytest.fixture(scope="module")
def yeast() -> Genome:
    return Genome.open(YEAST_FA)


@pytest.fixture(scope="module")
def yeast_lines() -> list[str]:
    return read_lines(YEAST_GFF)


def _write(tmp_path: Path, lines: list[str], name: str = "bad.gff3") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("gff", [YEAST_GFF, FLY_GFF], ids=["yeast", "fly"])
def test_features_match_reference(gff: Path) -> None:
    ann = read_annotation(gff)
    ref = features(gff)
    assert ann.format == "gff3"
    assert ann.features.height == len(ref)
    got = ann.features.select("line", "seqid", "type", "start", "end", "strand").rows()
    assert got == [(r["line"], r["seqid"], r["type"], r["start"], r["end"], r["strand"])
                   for r in ref]
    assert ann.features["id"].to_list() == [r["attrs"].get("ID") for r in ref]


@pytest.mark.parametrize("gff", [YEAST_GFF, FLY_GFF], ids=["yeast", "fly"])
def test_transcripts_and_introns_match_reference(gff: Path) -> None:
    ann = read_annotation(gff)
    ref = transcripts(gff)
    tx = ann.transcripts()
    assert sorted(tx["transcript"].to_list()) == sorted(ref)
    for row in tx.iter_rows(named=True):
        exons = ref[row["transcript"]]["exons"]
        assert (row["start"], row["end"], row["n_exons"]) == (
            exons[0][0], max(e for _, e in exons), len(exons))
    donors, acceptors = splice_junctions(gff)
    introns = ann.introns()
    plus = introns["strand"] == "+"
    got_donors = set(zip(introns["seqid"], introns["strand"],
                         introns["start"].zip_with(plus, introns["end"]), strict=True))
    assert got_donors == donors
    assert acceptors == set(zip(introns["seqid"], introns["strand"],
                                introns["end"].zip_with(plus, introns["start"]), strict=True))
    tss = tx.with_columns(
        pl.when(pl.col("strand") == "+").then(pl.col("start")).otherwise(pl.col("end") - 1)
    )
    assert set(zip(tss["seqid"], tss["strand"], tss["start"], strict=True)) == (
        transcription_starts(gff))


def test_real_annotation_counts(yeast: Genome) -> None:
    """Known content of the two annotations (RefSeq SGD R64-5-1, FlyBase 6.54)."""
    y = read_annotation(YEAST_GFF, genome=yeast)
    assert y.counts() == {"features": 434, "transcripts": 101, "multi_exon_transcripts": 5,
                          "introns": 5}
    assert y.skipped == {}
    fly = read_annotation(FLY_GFF, genome=Genome.open(FLY_FA))
    assert fly.counts()["introns"] == 2806
    assert fly.features.filter(pl.col("type") == "exon").height == 3151


def test_gtf_equals_gff3_for_same_features(tmp_path: Path) -> None:
    gtf = tmp_path / "yeast_part.gtf"
    n = gff3_to_gtf(YEAST_GFF, gtf, max_transcripts=40)
    assert n == 40
    from_gtf = read_annotation(gtf)
    assert from_gtf.format == "gtf"
    from_gff = read_annotation(YEAST_GFF)
    kept = from_gtf.transcripts()["transcript"]
    assert kept.len() == 40
    for table in ("transcripts", "introns", "exons"):
        a = getattr(from_gff, table)().filter(pl.col("transcript").is_in(kept.implode()))
        b = getattr(from_gtf, table)()
        assert a.equals(b), table
    cds_gff = from_gff.cds().join(from_gtf.cds(), on=["seqid", "start", "end", "strand"],
                                  how="semi")
    assert cds_gff.equals(from_gtf.cds())
    assert from_gtf.cds().height > 30
    # The suffix is not needed: the attribute syntax tells GTF from GFF3.
    for name in ("no_suffix.txt", "gtf_named.gff"):
        plain = tmp_path / name
        plain.write_text(gtf.read_text())
        assert read_annotation(plain).format == "gtf"


def test_percent_escapes_and_multiple_parents(tmp_path: Path) -> None:
    path = _write(tmp_path, [
        "##gff-version 3",
        f"{YEAST_RECORD}\tt\tmRNA\t100\t300\t.\t+\t.\tID=tx%3B1;Name=a%2Cb",
        f"{YEAST_RECORD}\tt\tmRNA\t100\t300\t.\t+\t.\tID=tx2",
        f"{YEAST_RECORD}\tt\texon\t100\t150\t.\t+\t.\tParent=tx%3B1,tx2",
        f"{YEAST_RECORD}\tt\texon\t201\t300\t.\t+\t.\tParent=tx%3B1,tx2",
        "##FASTA",
        ">ignored",
        "ACGT",
    ])
    ann = read_annotation(path)
    assert ann.features["name"].to_list()[0] == "a,b"
    assert sorted(ann.transcripts()["transcript"].to_list()) == ["tx2", "tx;1"]
    assert ann.introns().select("start", "end").unique().rows() == [(150, 200)]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_characters=";=\t\n\r,%",
                                   blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
    min_size=1, max_size=5,
))
def test_gff3_attributes_property(attrs: dict[str, str]) -> None:
    """Extracted ID / Name / Parent equal the reference parser's, for any attributes."""
    text = ";".join(f"{k}={v}" for k, v in attrs.items())
    ref = parse_gff3_attributes(text)
    df = pl.DataFrame({
        "line": [1], "seqid": ["r"], "source": ["s"], "type": ["exon"], "start": [0],
        "end": [1], "score": [None], "strand": ["+"], "phase": [None], "attributes": [text],
    })
    from dnakmer.datasets.annotation import _parse_attributes

    row = _parse_attributes(df, "gff3").row(0, named=True)
    assert row["id"] == ref.get("ID")
    assert row["name"] == ref.get("Name")
    assert row["parents"] == (ref["Parent"].split(",") if "Parent" in ref else None)


@pytest.mark.parametrize(
    ("change", "match", "column"),
    [
        (lambda c: c[:8], "expected 9 tab-separated columns, found 8", None),
        (lambda c: [*c[:3], "12x", *c[4:]], "start '12x' is not a positive integer", None),
        (lambda c: [*c[:3], "0", *c[4:]], "start '0' is not a positive integer", None),
        (lambda c: [*c[:6], "*", *c[7:]], "strand '\\*' is not one of", None),
        (lambda c: [*c[:3], c[4], c[3], *c[5:]], "inverted coordinates on record NC_001133.9",
         None),
        (lambda c: ["", *c[1:]], "empty seqid", None),
    ],
    ids=["columns", "start-text", "start-zero", "strand", "inverted", "seqid"],
)
def test_malformed_line_names_file_and_line(
    tmp_path: Path, yeast_lines: list[str], change, match: str, column: None
) -> None:
    lines = list(yeast_lines)
    target = next(i for i, s in enumerate(lines) if "\tgene\t" in s)
    cols = lines[target].split("\t")
    lines[target] = "\t".join(change(cols))
    path = _write(tmp_path, lines)
    with pytest.raises(AnnotationError, match=match) as info:
        read_annotation(path)
    assert info.value.line == target + 1
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}:{target + 1}: ")
    assert isinstance(info.value, ValueError) and isinstance(info.value, DnakmerError)


def test_unknown_records_and_out_of_bounds_are_counted_skips(
    tmp_path: Path, yeast_lines: list[str], yeast: Genome
) -> None:
    extra = [
        "chrUn\tt\tgene\t10\t500\t.\t+\t.\tID=g1",
        "chrUn\tt\texon\t10\t500\t.\t+\t.\tParent=g1",
        f"{YEAST_RECORD}\tt\tgene\t230000\t230500\t.\t+\t.\tID=past_end",
    ]
    path = _write(tmp_path, yeast_lines + extra)
    ann = read_annotation(path, genome=yeast)
    assert ann.skipped == {"unknown_record": 2, "out_of_bounds": 1}
    assert ann.features.height == 434
    with pytest.raises(AnnotationError, match=re.escape(
            "ends at 230500, past the end of record NC_001133.9 (230218 bp)")) as info:
        read_annotation(path, genome=yeast, strict=True)
    assert info.value.line == len(yeast_lines) + 3


def test_annotation_of_another_genome_is_an_error(tmp_path: Path, yeast: Genome) -> None:
    with pytest.raises(AnnotationError, match="no feature lies on a record of"):
        read_annotation(FLY_GFF, genome=yeast)


def test_orphan_and_mixed_transcripts_counted(tmp_path: Path) -> None:
    path = _write(tmp_path, [
        f"{YEAST_RECORD}\tt\texon\t100\t150\t.\t+\t.\tID=orphan",
        f"{YEAST_RECORD}\tt\texon\t200\t250\t.\t+\t.\tParent=mixed",
        f"{YEAST_RECORD}\tt\texon\t300\t350\t.\t-\t.\tParent=mixed",
        f"{YEAST_RECORD}\tt\texon\t400\t450\t.\t.\t.\tParent=flat",
    ])
    ann = read_annotation(path)
    assert ann.skipped == {"orphan_exon": 1, "mixed_transcript": 1, "unstranded_transcript": 1}
    assert ann.transcripts().height == 0


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_annotation(tmp_path / "none.gff3")
    corrupt = tmp_path / "corrupt.gff3.gz"
    corrupt.write_bytes(YEAST_GFF.read_bytes()[:5000])
    with pytest.raises(AnnotationError, match="cannot decompress"):
        read_annotation(corrupt)
    with pytest.raises(ValueError, match="format must be"):
        read_annotation(YEAST_GFF, format="bed")  # type: ignore[arg-type]


def test_annotation_restrict_keeps_counts(yeast: Genome) -> None:
    ann = read_annotation(YEAST_GFF)
    assert isinstance(ann, Annotation)
    restricted = ann.restrict_to(yeast)
    assert restricted.features.height == ann.features.height
    assert restricted.sha256 == ann.sha256
