"""Writes tests/data/ecoli_snvs.vcf.gz: 300 random SNVs of E. coli K-12 W3110 (seed 19)
and one record of each kind that is not scored."""
from __future__ import annotations

import gzip

import numpy as np

from dnakmer import Genome
from dnakmer.data import demo_genome

g = Genome.open(demo_genome())
name, length = g.names[0], g.lengths[0]
rng = np.random.default_rng(19)
pos = np.sort(rng.choice(np.arange(1000, length - 1000), 300, replace=False))
rows = []
for i, p in enumerate(pos):
    ref = g.fetch(name, int(p) - 1, int(p)).upper()
    alt = [b for b in "ACGT" if b != ref][int(rng.integers(0, 3))]
    rows.append((int(p), f"snv{i + 1}", ref, alt))
def seq(p, n=1):
    return g.fetch(name, p - 1, p - 1 + n).upper()
extra = [
    (500, "multi", seq(500), ",".join(b for b in "ACGT" if b != seq(500))),
    (600, "del", seq(600, 3), seq(600)),
    (700, "ins", seq(700), seq(700) + "GA"),
    (800, "mnv", seq(800, 2), "".join("A" if b != "A" else "C" for b in seq(800, 2))),
    (900, "wrongref", "A" if seq(900) != "A" else "C", "G" if seq(900) != "G" else "T"),
    (950, "sv", seq(950), "<DEL>"),
]
rows = sorted(rows + extra)
lines = ["##fileformat=VCFv4.2", f"##contig=<ID={name},length={length}>",
         '##INFO=<ID=NOTE,Number=1,Type=String,Description="How the record was made">',
         "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
for p, i, r, a in rows:
    note = "random" if i.startswith("snv") else "constructed"
    lines.append(f"{name}\t{p}\t{i}\t{r}\t{a}\t.\tPASS\tNOTE={note}")
lines.append("plasmid\t10\tother_record\tA\tC\t.\tPASS\t.")
with gzip.open("tests/data/ecoli_snvs.vcf.gz", "wt") as f:
    f.write("\n".join(lines) + "\n")
print(len(lines))
