"""Time annotation reading and task building on the real yeast and fly inputs.

Run from the repository root::

    python benches/bench_tasks.py [--repeat 5]

Every timed call is checked against known results (feature, site and sample counts),
so a fast wrong answer fails instead of being reported. Prints a Markdown table for
benches/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from dnakmer import Genome, KmerTokenizer
from dnakmer.datasets.annotation import read_annotation
from dnakmer.datasets.tasks import build_task

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
LOCAL = Path(__file__).resolve().parents[1] / "tests" / "data"
DATA = SHARED if (SHARED / "dmel_chr4.gff.gz").exists() else LOCAL
ORGANISMS = {
    "yeast chr I (230 kb, 475 GFF lines)": ("yeast_chrI.fa.gz", "yeast_chrI.gff.gz"),
    "fly chr 4 (1.35 Mb, 10,660 GFF lines)": ("dmel_chr4.fa.gz", "dmel_chr4.gff.gz"),
}
# Known results that every timed run must reproduce (seed 0, default parameters).
EXPECTED = {
    ("yeast_chrI.gff.gz", "annotation"): 434,
    ("dmel_chr4.gff.gz", "annotation"): 6913,
    ("yeast_chrI.gff.gz", "promoter"): 200,
    ("yeast_chrI.gff.gz", "splice"): 15,
    ("yeast_chrI.gff.gz", "coding"): 426,
    ("dmel_chr4.gff.gz", "promoter"): 364,
    ("dmel_chr4.gff.gz", "splice"): 2265,
    ("dmel_chr4.gff.gz", "coding"): 1150,
}


def timed(fn: Callable[[], Any], check: Callable[[Any], bool], repeat: int) -> str:
    """Median wall and CPU seconds of ``fn`` over ``repeat`` runs, as two table cells
    (CPU time is the steadier number on a shared machine); every result must pass
    ``check``."""
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        if not check(result):
            raise SystemExit(f"wrong result from {fn}")
    return f"{statistics.median(wall):.3f} | {statistics.median(cpu):.3f}"


def steps(genome: Genome, gff: Path, tok: KmerTokenizer) -> list[tuple[str, Any, Any]]:
    """(label, call, check) for every timed step on one organism."""
    name = gff.name
    out: list[tuple[str, Any, Any]] = [(
        "read_annotation",
        lambda: read_annotation(gff, genome=genome),
        lambda a: a.features.height == EXPECTED[name, "annotation"],
    )]
    variants: list[tuple[str, str, dict[str, Any]]] = [
        (task, task, {}) for task in ("promoter", "splice", "coding")
    ] + [
        ("promoter --gc-matched", "promoter", {"gc_matched": True}),
        ("splice + 6-mer input_ids", "splice", {"tokenizer": tok}),
    ]
    for label, task, kwargs in variants:
        out.append((
            f"build_task {label}",
            lambda task=task, kwargs=kwargs: build_task(genome, gff, task, **kwargs),
            lambda ds, task=task: len(ds) == EXPECTED[name, task],
        ))
    return out


def replicated_fly(tmp: Path, copies: int) -> tuple[Path, Path]:
    """Fly chr 4 and its annotation repeated as ``copies`` records (a 13.5 Mb,
    10-record genome for ``copies=10``): how building scales with genome size."""
    import gzip

    genome = Genome.open(DATA / "dmel_chr4.fa.gz")
    seq = genome.fetch(genome.names[0])
    text = gzip.decompress((DATA / "dmel_chr4.gff.gz").read_bytes()).decode()
    gff_lines = [ln for ln in text.split("\n") if ln and not ln.startswith("#")]
    fasta, gff = tmp / "fly_x.fa", tmp / "fly_x.gff3"
    with open(fasta, "w") as fa, open(gff, "w") as out:
        out.write("##gff-version 3\n")
        for i in range(copies):
            fa.write(f">copy{i}\n{seq}\n")
            # IDs get a per-copy prefix so transcripts of different copies stay apart.
            out.writelines(f"copy{i}\t" + ln.split("\t", 1)[1].replace("=", f"=c{i}.")
                           .replace(",", f",c{i}.") + "\n" for ln in gff_lines)
    return fasta, gff


def scaled(repeat: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fasta, gff = replicated_fly(Path(tmp), 10)
        genome = Genome.open(fasta)
        label = "fly chr 4 x10 records (13.5 Mb, 69,130 GFF lines)"
        t = timed(lambda: read_annotation(gff, genome=genome),
                  lambda a: a.counts()["introns"] == 28060, repeat)
        print(f"| {label} | read_annotation | {t} |")
        for task in ("promoter", "splice", "coding"):
            t = timed(partial(build_task, genome, gff, task, split_by="record"),
                      lambda ds: len({*ds.manifest["counts"]["train"].values()}) == 1
                      and len(ds) > 10 * 0.9 * EXPECTED["dmel_chr4.gff.gz", ds.manifest["task"]],
                      repeat)
            print(f"| {label} | build_task {task} (split by record) | {t} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tok = KmerTokenizer(6)
    print(f"python {platform.python_version()}, {platform.machine()}, data from {DATA}\n")
    print("| input | step | wall s | CPU s |")
    print("|---|---|---:|---:|")
    for label, (fa, gff) in ORGANISMS.items():
        genome = Genome.open(DATA / fa)
        for step, call, check in steps(genome, DATA / gff, tok):
            print(f"| {label} | {step} | {timed(call, check, args.repeat)} |")
    scaled(args.repeat)


if __name__ == "__main__":
    main()
