"""Annotation tasks on the real yeast chr I and fly chr 4 genomes and annotations.

Every window is checked against the genome text (``Genome.fetch``) and against a
plain-Python reading of the annotation (``annotation_reference``), not against the
package's own tables.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from annotation_reference import (
    intervals_of,
    reverse_complement,
    splice_junctions,
    transcription_starts,
)
from dnakmer import Genome, KmerTokenizer
from dnakmer.datasets.tasks import TaskDataset, build_task

DATA = Path(__file__).parent / "data"
INPUTS = {
    "yeast": (DATA / "yeast_chrI.fa.gz", DATA / "yeast_chrI.gff.gz"),
    "fly": (DATA / "dmel_chr4.fa.gz", DATA / "dmel_chr4.gff.gz"),
}


@pytest.fixture(scope="module")
def genomes() -> dict[str, Genome]:
    return {name: Genome.open(fa) for name, (fa, _) in INPUTS.items()}


@pytest.fixture(scope="module")
def built(genomes: dict[str, Genome]) -> dict[tuple[str, str], TaskDataset]:
    """Every task on both organisms with default parameters, built once."""
    return {
        (org, task): build_task(genomes[org], INPUTS[org][1], task)
        for org in INPUTS
        for task in ("promoter", "splice", "coding")
    }


def window_text(genome: Genome, record: str, start: int, width: int, strand: str) -> str:
    text = genome.fetch(record, start, start + width).upper()
    return reverse_complement(text) if strand == "-" else text


def rows(ds: TaskDataset, label: int | None = None):
    c = ds.columns
    for i in np.flatnonzero(c["labels"] == label) if label is not None else range(len(ds)):
        yield i, str(c["record"][i]), int(c["start"][i]), str(c["strand"][i])


NOT_GENES = {"region", "mobile_genetic_element", "origin_of_replication", "telomere",
             "centromere", "long_terminal_repeat", "regulatory_region"}
ORGS = pytest.mark.parametrize("org", ["yeast", "fly"])


@ORGS
@pytest.mark.parametrize("task", ["promoter", "splice", "coding"])
def test_sequences_are_the_genome_on_the_right_strand(built, genomes, org, task) -> None:
    ds = built[org, task]
    width = ds.manifest["window_length"]
    assert ds.columns["sequence"].shape == (len(ds), width)
    texts = ds.sequences()
    for i, record, start, strand in rows(ds):
        expected = window_text(genomes[org], record, start, width, strand)
        assert texts[i] == expected
        assert set(expected) <= set("ACGT")  # no window touches N (fly chr 4 has 17 kb)


@ORGS
@pytest.mark.parametrize("task", ["promoter", "splice", "coding"])
def test_classes_balanced_and_splits_disjoint(built, org, task) -> None:
    ds = built[org, task]
    counts = ds.manifest["counts"]
    for split, per_label in counts.items():
        assert len(set(per_label.values())) == 1, (split, per_label)
        assert per_label == {name: int(((ds.columns["split"] == split)
                                        & (ds.columns["labels"] == lab)).sum())
                             for lab, name in enumerate(ds.manifest["label_names"])}
    width = ds.manifest["window_length"]
    covered: dict[str, dict[int, str]] = {}
    for i, record, start, _ in rows(ds):
        split = str(ds.columns["split"][i])
        bases = covered.setdefault(record, {})
        for p in range(start, start + width):
            assert bases.setdefault(p, split) == split, f"base {record}:{p} in two splits"
    regions = ds.manifest["splits"]["regions"]
    for i, record, start, _ in rows(ds):
        split = str(ds.columns["split"][i])
        assert any(r == record and s <= start and start + width <= e and sp == split
                   for r, s, e, sp in regions)


def test_split_sizes_on_fly(built) -> None:
    counts = built["fly", "splice"].manifest["counts"]
    assert all(sum(counts[s].values()) > 0 for s in ("train", "dev", "test"))
    assert sum(counts["train"].values()) > 4 * sum(counts["dev"].values())


@ORGS
@pytest.mark.parametrize("downstream", [50, 0])
def test_promoter_windows_end_at_annotated_starts(genomes, org, downstream) -> None:
    gff = INPUTS[org][1]
    ds = build_task(genomes[org], gff, "promoter", upstream=249, downstream=downstream)
    width = 250 + downstream
    tss = transcription_starts(gff)
    found = 0
    for _i, record, start, strand in rows(ds, label=1):
        site = start + 249 if strand == "+" else start + downstream
        assert (record, strand, site) in tss
        if downstream == 0:  # the window's last base, 5'->3', is the start itself
            last = start + width - 1 if strand == "+" else start
            assert last == site
        found += 1
    assert found == ds.manifest["counts"]["train"]["promoter"] + sum(
        ds.manifest["counts"][s]["promoter"] for s in ("dev", "test"))
    assert found + sum(ds.manifest["dropped"].values()) == len(tss)
    # Background windows keep every base farther than min_distance from any start.
    starts = sorted(p for _, _, p in tss)
    for _i, _record, start, _ in rows(ds, label=0):
        j = np.searchsorted(starts, start - 1000)
        assert j == len(starts) or starts[j] > start + width - 1 + 1000


@ORGS
def test_promoter_windows_at_gene_starts(genomes, org) -> None:
    gff = INPUTS[org][1]
    ds = build_task(genomes[org], gff, "promoter", starts_from="gene")
    genes = intervals_of(gff, lambda f: f["type"].endswith("gene"))
    starts = {(r, st, s if st == "+" else e - 1) for r, ivs in genes.items()
              for s, e, st in ivs}
    n = 0
    for _i, record, start, strand in rows(ds, label=1):
        assert (record, strand, start + 249 if strand == "+" else start + 50) in starts
        n += 1
    dropped = ds.manifest["dropped"]
    assert dropped["balancing"] == 0
    assert n == len(starts) - dropped["out_of_record"] - dropped["non_acgt"] - dropped[
        "crosses_split"]
    assert n == ds.manifest["positives_found"] - sum(dropped.values())
    assert ds.manifest["params"]["starts_from"] == "gene"


def test_promoter_prom300_geometry_yeast(built) -> None:
    ds = built["yeast", "promoter"]
    assert ds.manifest["window_length"] == 300
    assert ds.manifest["positives_found"] == 101
    assert sum(c["promoter"] for c in ds.manifest["counts"].values()) == 100


def gc_histogram_mismatch(ds: TaskDataset) -> int:
    """Sum over splits and 20 GC bins of |promoter count - background count|."""
    gc = (ds.columns["sequence"] >= 2).mean(axis=1)
    mismatch = 0
    for split in ("train", "dev", "test"):
        in_split = ds.columns["split"] == split
        bins = [np.bincount(np.minimum((gc[in_split & (ds.columns["labels"] == lab)]
                                        * 20).astype(int), 19), minlength=20) for lab in (0, 1)]
        mismatch += int(np.abs(bins[0] - bins[1]).sum())
    return mismatch


@ORGS
def test_gc_matched_background(genomes, org) -> None:
    _, gff = INPUTS[org]
    plain = build_task(genomes[org], gff, "promoter", seed=5)
    matched = build_task(genomes[org], gff, "promoter", gc_matched=True, seed=5)
    unmatched = matched.manifest["gc"]["unmatched_bin"]
    # A window taken from a neighbouring GC bin unbalances at most two bins by one.
    assert gc_histogram_mismatch(matched) <= 2 * unmatched <= 0.1 * len(matched)
    assert gc_histogram_mismatch(plain) > 2 * gc_histogram_mismatch(matched)
    means = matched.manifest["gc_mean_by_label"]
    assert abs(means["promoter"] - means["background"]) < 0.005
    if org == "fly":  # 1.35 Mb leave enough candidates in every bin
        assert unmatched == 0


@ORGS
def test_splice_windows_centred_on_annotated_boundaries(built, genomes, org) -> None:
    ds = built[org, "splice"]
    half = ds.manifest["window_length"] // 2
    donors, acceptors = splice_junctions(INPUTS[org][1])
    texts = ds.sequences()
    annotated = {(r, p) for r, _, p in donors | acceptors}
    for i, record, start, strand in rows(ds):
        label, junction = int(ds.columns["labels"][i]), start + half
        if label == 1:
            assert (record, strand, junction) in donors
        elif label == 2:
            assert (record, strand, junction) in acceptors
        else:  # decoys: a GT or AG junction never at an annotated boundary, either strand
            assert (record, junction) not in annotated
            assert texts[i][half:half + 2] == "GT" or texts[i][half - 2:half] == "AG"


def _real_site_counts(genome: Genome, gff: Path) -> tuple[dict[str, int], dict[str, int]]:
    donors, acceptors = splice_junctions(gff)
    d: dict[str, int] = {}
    a: dict[str, int] = {}
    for record, strand, j in donors:
        pair = window_text(genome, record, j if strand == "+" else j - 2, 2, strand)
        d[pair] = d.get(pair, 0) + 1
    for record, strand, j in acceptors:
        pair = window_text(genome, record, j - 2 if strand == "+" else j, 2, strand)
        a[pair] = a.get(pair, 0) + 1
    return d, a


@ORGS
def test_splice_canonical_fractions_match_the_genome(built, genomes, org) -> None:
    sites = built[org, "splice"].manifest["sites"]
    donors, acceptors = _real_site_counts(genomes[org], INPUTS[org][1])
    assert sites["donor"]["dinucleotides"] == donors
    assert sites["acceptor"]["dinucleotides"] == acceptors
    assert sites["donor"]["canonical_fraction"] == donors["GT"] / sum(donors.values())
    if org == "fly":  # 793 of 807 donors GT (12 GC-AG introns), 760 of 764 acceptors AG
        assert (sites["donor"]["n"], donors["GT"], donors["GC"]) == (807, 793, 12)
        assert (sites["acceptor"]["n"], acceptors["AG"]) == (764, 760)
    else:  # 3 spliceosomal mRNA introns (GT-AG) and 2 tRNA introns (not GT-AG)
        assert (sites["donor"]["n"], donors["GT"], acceptors["AG"]) == (5, 3, 3)


def test_splice_canonical_only(genomes) -> None:
    ds = build_task(genomes["fly"], INPUTS["fly"][1], "splice", canonical_only=True, window=100)
    texts = ds.sequences()
    labels = ds.columns["labels"]
    assert all(texts[i][50:52] == "GT" for i in np.flatnonzero(labels == 1))
    assert all(texts[i][48:50] == "AG" for i in np.flatnonzero(labels == 2))
    assert ds.manifest["dropped"]["non_canonical"] > 0


@ORGS
def test_coding_windows_inside_cds_and_negatives_intergenic(built, org) -> None:
    ds = built[org, "coding"]
    width = ds.manifest["window_length"]
    gff = INPUTS[org][1]
    cds = intervals_of(gff, lambda f: f["type"] == "CDS")
    genic = intervals_of(gff, lambda f: f["type"] not in NOT_GENES)
    covered = {r: np.zeros(2_000_000, dtype=bool) for r in genic}
    for r, ivs in genic.items():
        for s, e, _ in ivs:
            covered[r][s:e] = True
    for i, record, start, strand in rows(ds):
        if ds.columns["labels"][i] == 1:
            plus = np.zeros(start + width, dtype=bool)
            for s, e, st in cds[record]:
                if st == strand:
                    plus[s:min(e, start + width)] = True
            assert plus[start:start + width].all()
        else:
            assert not covered[record][start:start + width].any()


def test_input_ids_and_dnabert_tsv(genomes, tmp_path: Path) -> None:
    tok = KmerTokenizer(6)
    ds = build_task(genomes["yeast"], INPUTS["yeast"][1], "promoter", tokenizer=tok)
    ids = ds.columns["input_ids"]
    assert ids.dtype == np.uint16 and ids.shape == (len(ds), 300 - 6 + 1 + 2)
    texts = ds.sequences()
    for i in range(0, len(ds), 17):
        assert ids[i].tolist() == [2, *tok.encode(texts[i]).tolist(), 3]
    paths = ds.write_dnabert_tsv(tmp_path / "kmer")
    assert [p.name for p in paths] == ["train.tsv", "dev.tsv", "test.tsv"]
    lines = paths[1].read_text().splitlines()
    assert lines[0] == "sequence\tlabel"
    dev = np.flatnonzero(ds.columns["split"] == "dev")
    assert len(lines) == 1 + len(dev)
    seq, label = lines[1].split("\t")
    kmers = seq.split(" ")
    assert len(kmers) == 295 and kmers[0] == texts[dev[0]][:6]
    assert "".join(k[0] for k in kmers) + kmers[-1][1:] == texts[dev[0]]
    assert int(label) == ds.columns["labels"][dev[0]]
    four = ds.write_dnabert_tsv(tmp_path / "four", kmer=4)
    assert len(four[0].read_text().splitlines()[1].split("\t")[0].split(" ")) == 297
    raw = ds.write_dnabert_tsv(tmp_path / "raw", kmer=None)
    assert raw[0].read_text().splitlines()[1].split("\t")[0] == texts[0]


def test_saved_dataset_is_deterministic_and_loads(genomes, tmp_path: Path) -> None:
    gff = INPUTS["fly"][1]
    for name in ("a", "b"):
        build_task(INPUTS["fly"][0], gff, "splice", seed=7).save(tmp_path / name)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["labels.npy", "manifest.json", "record.npy", "samples.parquet",
                     "sequence.npy", "split.npy", "start.npy", "strand.npy"]
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    other = build_task(genomes["fly"], gff, "splice", seed=8)
    again = TaskDataset.load(tmp_path / "a")
    assert not np.array_equal(other.columns["start"], again.columns["start"])
    m = again.manifest
    assert m["genome"]["sha256"] == hashlib.sha256(INPUTS["fly"][0].read_bytes()).hexdigest()
    assert m["annotation"]["sha256"] == hashlib.sha256(gff.read_bytes()).hexdigest()
    assert m["n_samples"] == len(again) and m["kind"] == "dnakmer.task"
    import polars as pl

    table = pl.read_parquet(tmp_path / "a" / "samples.parquet")
    assert table["labels"].to_list() == again.columns["labels"].tolist()


def test_record_splits_keep_records_whole(tmp_path: Path) -> None:
    fasta = tmp_path / "two.fa"
    lines = []
    for fa, _ in INPUTS.values():
        g = Genome.open(fa)
        for name in g.names:
            lines += [f">{name}", g.fetch(name)]
    fasta.write_text("\n".join(lines) + "\n")
    gff = tmp_path / "two.gff3"
    from annotation_reference import read_lines

    gff.write_text("\n".join(read_lines(INPUTS["yeast"][1]) + read_lines(INPUTS["fly"][1])))
    ds = build_task(fasta, gff, "coding", split_by="record", dev_fraction=0.3, test_fraction=0)
    per_record = {r: set(ds.columns["split"][ds.columns["record"] == r].tolist())
                  for r in set(ds.columns["record"].tolist())}
    assert all(len(s) == 1 for s in per_record.values())
    assert {s for v in per_record.values() for s in v} == {"train", "dev"}
    with pytest.raises(ValueError, match="too few"):
        build_task(INPUTS["yeast"][0], INPUTS["yeast"][1], "coding", split_by="record")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "enhancer"}, "task must be one of promoter, splice, coding"),
        ({"task": "splice", "window": 301}, "even for splice"),
        ({"task": "coding", "dev_fraction": 0.6, "test_fraction": 0.5}, "sum below 1"),
        ({"task": "coding", "block_size": 100}, "block_size \\(100\\) must be at least"),
        ({"task": "promoter", "upstream": -1}, "upstream and downstream must be >= 0"),
        ({"task": "coding", "block_size": 200_000}, "only 2 200,000 bp blocks"),
    ],
)
def test_bad_parameters_are_named(genomes, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        build_task(genomes["yeast"], INPUTS["yeast"][1], **kwargs)


@pytest.fixture(scope="module")
def yeast_twice(tmp_path_factory) -> tuple[Path, Path]:
    """Yeast chr I twice, as records 'a' and 'b' (IDs prefixed per copy)."""
    from annotation_reference import read_lines

    tmp = tmp_path_factory.mktemp("twice")
    seq = Genome.open(INPUTS["yeast"][0]).fetch("NC_001133.9")
    fasta, gff = tmp / "twice.fa", tmp / "twice.gff3"
    fasta.write_text(f">a\n{seq}\n>b\n{seq}\n")
    body = [ln.split("\t", 1)[1] for ln in read_lines(INPUTS["yeast"][1])
            if ln and not ln.startswith("#")]
    gff.write_text("".join(f"{r}\t" + ln.replace("=", f"={r}.").replace(",", f",{r}.") + "\n"
                           for r in "ab" for ln in body))
    return fasta, gff


@pytest.mark.parametrize("task", ["promoter", "splice", "coding"])
def test_windows_never_cross_records(yeast_twice, task) -> None:
    """Records laid end to end in one split must still never share a window."""
    fasta, gff = yeast_twice
    genome = Genome.open(fasta)
    ds = build_task(genome, gff, task, split_by="record", dev_fraction=0, test_fraction=0)
    width = ds.manifest["window_length"]
    assert set(ds.columns["split"].tolist()) == {"train"}
    assert set(ds.columns["record"].tolist()) == {"a", "b"}
    texts = ds.sequences()
    for i, record, start, strand in rows(ds):
        assert start >= 0 and start + width <= 230_218
        assert texts[i] == window_text(genome, record, start, width, strand)


def test_scarce_background_is_balanced_by_dropping_promoters(genomes) -> None:
    """With starts every few kb, a 5 kb exclusion leaves little background in yeast."""
    ds = build_task(genomes["yeast"], INPUTS["yeast"][1], "promoter", min_distance=5000)
    counts = ds.manifest["counts"]
    assert all(c["promoter"] == c["background"] for c in counts.values())
    assert ds.manifest["dropped"]["balancing"] > 0
    assert sum(c["promoter"] for c in counts.values()) < 100
    background = np.flatnonzero(ds.columns["labels"] == 0)
    starts = np.sort(ds.columns["start"][background])
    assert (np.diff(starts) >= 300).all()  # background windows never overlap
