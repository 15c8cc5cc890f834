"""``tokenize_genome`` on assemblies of many contigs: 10,000 to 1,000,000 records.

    python benches/bench_many_records.py --baseline OLD_PACKAGE_DIR
    python benches/bench_many_records.py --records 1000000 --dir /dev/shm

Each contig is ``--length`` random bases (default 200), tokenized into 6-mers on 2
threads, one ``.npy`` per record. dnakmer makes the output durable once (one
``syncfs`` before the manifest is written). The baseline, run in the same process tree
on the same input right after, is a build of the previous release, which fsynced every
record file as it finished it: ``--baseline`` names a folder holding that release's
``dnakmer`` package (e.g. a wheel of the earlier commit unpacked there), imported in a
subprocess with ``PYTHONPATH``. ``--dir`` chooses the file system (default: the
temporary folder's); on tmpfs an fsync costs nothing, so there only dnakmer's own
per-record cost is seen.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np


def machine(where: Path) -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next(
        (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line),
        platform.processor(),
    )
    fs = (
        subprocess.run(["df", "-T", str(where)], capture_output=True, text=True, check=False)
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


RUN = """
import sys, time
from dnakmer import KmerTokenizer, tokenize_genome
start = time.perf_counter()
m = tokenize_genome(sys.argv[1], KmerTokenizer(6), sys.argv[2], threads=2)
print(time.perf_counter() - start, m["counts"]["records"])
"""


def timed_run(genome: Path, out: Path, pythonpath: str | None) -> tuple[float, int]:
    """Seconds of one ``tokenize_genome`` call in a fresh process (imports excluded)."""
    import sys

    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(genome), str(out)],
        capture_output=True, text=True, check=True, env=env, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    seconds, records = done.stdout.split()
    return float(seconds), int(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--baseline", help="folder holding the previous release's package")
    args = parser.parse_args()
    import dnakmer

    print(machine(args.dir), flush=True)
    rows = []
    for n in args.records:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            genome = Path(tmp) / "contigs.fa"
            write_genome(genome, n, args.length)
            os.sync()
            ours, got = timed_run(genome, Path(tmp) / "new", str(Path(dnakmer.__file__).parents[1]))
            assert got == n
            shutil.rmtree(Path(tmp) / "new")
            base = None
            if args.baseline:
                os.sync()
                base, got = timed_run(genome, Path(tmp) / "old", args.baseline)
                assert got == n
                shutil.rmtree(Path(tmp) / "old")
            rows.append((n, ours, base))
            print(f"{n:,} records: dnakmer {ours:.1f} s"
                  + (f", previous release {base:.1f} s" if base else ""), flush=True)  # fmt: skip
    print("\n| records | dnakmer, one sync (s) | previous release, fsync per file (s) | speed-up |")
    print("|---:|---:|---:|---:|")
    for n, ours, base in rows:
        b = f"{base:.1f} | {base / ours:.1f}x" if base else "not run | "
        print(f"| {n:,} | {ours:.1f} | {b} |")
    print(f"\n{machine(args.dir)}")


if __name__ == "__main__":
    main()
