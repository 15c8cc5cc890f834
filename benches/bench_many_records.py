"""``tokenize_genome`` on assemblies of many contigs: 10,000 and 1,000,000 records.

    python benches/bench_many_records.py                # 10,000 and 1,000,000 records
    python benches/bench_many_records.py --records 10000

Each contig is ``--length`` random bases (default 200). The output is made durable once
(one ``syncfs`` of the output's file system before the manifest is written); the
baseline, timed in the same run on the same files, is what durability cost before: one
``fsync`` per record file (measured by opening and fsyncing each finished ``.npy`` in
turn, right after writing them again). Inputs are generated into a temporary folder on
the same file system as the output and removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next(
        (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line),
        platform.processor(),
    )
    fs = (
        subprocess.run(
            ["df", "-T", tempfile.gettempdir()], capture_output=True, text=True, check=False
        )
        .stdout.splitlines()[-1]
        .split()[1]
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, {fs} file system; load average {load}"


def write_genome(path: Path, records: int, length: int) -> None:
    rng = np.random.default_rng(0)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "wb") as f:
        for lo in range(0, records, 10_000):
            n = min(10_000, records - lo)
            seqs = bases[rng.integers(0, 4, (n, length))]
            block = b"".join(
                b">contig_%d\n" % (lo + i) + seqs[i].tobytes() + b"\n" for i in range(n)
            )
            f.write(block)


def fsync_each(folder: Path) -> float:
    """Seconds to fsync every record file of ``folder`` once, one after the other."""
    start = time.perf_counter()
    for entry in os.scandir(folder):
        if entry.name.endswith(".npy"):
            fd = os.open(entry.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--length", type=int, default=200)
    args = parser.parse_args()
    from dnakmer import KmerTokenizer, tokenize_genome

    print(machine(), flush=True)
    rows = []
    for n in args.records:
        with tempfile.TemporaryDirectory(dir=tempfile.gettempdir()) as tmp:
            genome = Path(tmp) / "contigs.fa"
            write_genome(genome, n, args.length)
            out = Path(tmp) / "tokens"
            os.sync()
            start = time.perf_counter()
            manifest = tokenize_genome(genome, KmerTokenizer(6), out, threads=2)
            ours = time.perf_counter() - start
            assert manifest["counts"]["records"] == n
            assert manifest["counts"]["tokens"] == n * (args.length - 5)
            # The baseline's extra work, on the same files: they are written again
            # (a second run into the same folder), then fsynced one by one.
            tokenize_genome(genome, KmerTokenizer(6), out, threads=2)
            extra = fsync_each(out)
            rows.append((n, ours, ours + extra, extra))
            print(
                f"{n:,} records: {ours:.1f} s (one sync); with an fsync per file "
                f"{ours + extra:.1f} s (the fsyncs alone {extra:.1f} s)",
                flush=True,
            )
            shutil.rmtree(out)
    print("\n| records | tokenize_genome, one sync (s) | with an fsync per file (s) | speed-up |")
    print("|---:|---:|---:|---:|")
    for n, ours, base, _ in rows:
        print(f"| {n:,} | {ours:.1f} | {base:.1f} | {base / ours:.1f}x |")
    print(f"\n{machine()}")


if __name__ == "__main__":
    main()
