"""Plain-Python reference implementations for the annotation and task tests.

Deliberately written differently from the package (line by line, dicts and sets, no
polars or NumPy vectorisation) so that agreement means something.
"""

from __future__ import annotations

import gzip
import itertools
from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote

COMPLEMENT = str.maketrans("ACGTacgtNn", "TGCAtgcaNn")


def reverse_complement(seq: str) -> str:
    return seq.translate(COMPLEMENT)[::-1]


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as f:
        return f.read().split("\n")


def parse_gff3_attributes(text: str) -> dict[str, str]:
    out = {}
    for part in text.strip().split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value
    return out


def parse_gtf_attributes(text: str) -> dict[str, str]:
    out = {}
    for part in text.strip().split(";"):
        part = part.strip()
        if part:
            key, value = part.split(None, 1)
            out[key] = value.strip().strip('"')
    return out


def features(path: Path) -> list[dict]:
    """Every feature line: seqid, type, start (0-based), end, strand, attributes."""
    rows = []
    gtf = path.name.removesuffix(".gz").endswith(".gtf")
    for number, line in enumerate(read_lines(path), start=1):
        if line.startswith("##FASTA"):
            break
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.rstrip("\r").split("\t")
        attrs = parse_gtf_attributes(cols[8]) if gtf else parse_gff3_attributes(cols[8])
        rows.append({
            "line": number, "seqid": cols[0], "type": cols[2], "start": int(cols[3]) - 1,
            "end": int(cols[4]), "strand": cols[6], "phase": cols[7], "attrs": attrs,
        })
    return rows


def transcripts(path: Path) -> dict[str, dict]:
    """Exons grouped by transcript (GFF3 Parent, GTF transcript_id): seqid, strand,
    sorted exon list; only single-record, single-strand, stranded transcripts."""
    groups: dict[str, list[dict]] = defaultdict(list)
    gtf = path.name.removesuffix(".gz").endswith(".gtf")
    for f in features(path):
        if f["type"] != "exon":
            continue
        parents = [f["attrs"].get("transcript_id")] if gtf else [
            unquote(p) for p in f["attrs"].get("Parent", "").split(",") if p
        ]
        for p in parents:
            if p is not None:
                groups[p].append(f)
    out = {}
    for name, exons in groups.items():
        seqids = {e["seqid"] for e in exons}
        strands = {e["strand"] for e in exons}
        if len(seqids) != 1 or len(strands) != 1 or strands - {"+", "-"}:
            continue
        spans = sorted({(e["start"], e["end"]) for e in exons})
        out[name] = {"seqid": seqids.pop(), "strand": strands.pop(), "exons": spans}
    return out


def transcription_starts(path: Path) -> set[tuple[str, str, int]]:
    """(seqid, strand, 0-based TSS) of every transcript."""
    starts = set()
    for t in transcripts(path).values():
        first = min(s for s, _ in t["exons"])
        last = max(e for _, e in t["exons"])
        starts.add((t["seqid"], t["strand"], first if t["strand"] == "+" else last - 1))
    return starts


def splice_junctions(path: Path) -> tuple[set, set]:
    """Donor and acceptor junctions as (seqid, strand, position of the boundary):
    the index of the first base 3' of the boundary on the forward strand."""
    donors, acceptors = set(), set()
    for t in transcripts(path).values():
        exons = t["exons"]
        for (_, left_end), (right_start, _) in itertools.pairwise(exons):
            if right_start <= left_end:
                continue
            five, three = (left_end, right_start) if t["strand"] == "+" else (
                right_start, left_end)
            donors.add((t["seqid"], t["strand"], five))
            acceptors.add((t["seqid"], t["strand"], three))
    return donors, acceptors


def intervals_of(path: Path, predicate) -> dict[str, list[tuple[int, int, str]]]:
    """Per record, (start, end, strand) of the features ``predicate`` accepts."""
    out: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for f in features(path):
        if predicate(f):
            out[f["seqid"]].append((f["start"], f["end"], f["strand"]))
    return out


def gff3_to_gtf(path: Path, out: Path, max_transcripts: int) -> int:
    """Write the first ``max_transcripts`` transcripts of a GFF3 (transcript, exon and
    CDS lines) as GTF; returns how many were written."""
    rows = features(path)
    parent_of = {r["attrs"].get("ID"): r["attrs"].get("Parent") for r in rows}
    keep: list[str] = []
    for r in rows:
        if r["type"] == "exon" and r["attrs"].get("Parent") not in keep:
            if len(keep) == max_transcripts:
                break
            keep.append(r["attrs"]["Parent"])
    lines = []
    for r in rows:
        tx = r["attrs"].get("ID") if r["type"] not in ("exon", "CDS") else r["attrs"].get(
            "Parent")
        if tx not in keep or r["type"] not in ("mRNA", "ncRNA", "tRNA", "exon", "CDS"):
            continue
        kind = "transcript" if r["type"] not in ("exon", "CDS") else r["type"]
        gene = parent_of.get(tx) or tx
        attrs = f'gene_id "{gene}"; transcript_id "{tx}";'
        lines.append("\t".join([r["seqid"], "RefSeq", kind, str(r["start"] + 1), str(r["end"]),
                                ".", r["strand"], r["phase"], attrs]))
    out.write_text("\n".join(lines) + "\n")
    return len(keep)
