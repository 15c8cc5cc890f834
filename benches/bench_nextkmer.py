"""Speed and memory of the next-k-mer benchmark on E. coli K-12 (4.6 Mbp).

Run from the repository root after a release build (``maturin develop --release``)::

    python benches/bench_nextkmer.py [--samples 1000000] [--genome ../shared/data/ecoli_k12.fa.gz]

Targets (issue 3), on the 2-core machine:

- ``build``: 1,000,000 samples of 515-nt context as overlapping 6-mers (uint16,
  ``[CLS] 510 tokens [SEP]`` = 512 columns, about 1 GB) in at most 3 s, peak RSS at most
  1.3x the output size. Runs in a fresh subprocess so its peak RSS is its own.
- ``markov``: order-10 chain fitted on E. coli in at most 1 s, next to an equivalent NumPy
  implementation (``np.bincount`` of rolling 11-mer indices) in the same run; both must
  give the same counts.

Every timed result is checked: a fast wrong answer fails the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GENOME = ROOT / ".." / "shared" / "data" / "ecoli_k12.fa.gz"


def rss_mib() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_child(genome_path: str, samples: int) -> dict:
    """One dataset build, measured inside a fresh process."""
    import dnakmer
    from dnakmer.datasets.nextkmer import build

    t0 = time.perf_counter()
    genome = dnakmer.Genome.open(genome_path, sha256=True)
    load_s = time.perf_counter() - t0
    tok = dnakmer.KmerTokenizer(6)
    n_held = samples // 20
    before_mib = rss_mib()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    ds = build(genome, 6, 515, tok, n_train=samples - 2 * n_held, n_val=n_held, n_test=n_held,
               seed=1)  # fmt: skip
    build_s = time.perf_counter() - t0
    build_cpu_s = time.process_time() - cpu0
    peak_mib = peak_rss_mib()
    out_mib = sum(a.nbytes for a in ds.arrays.values()) / 2**20
    ids_mib = ds.input_ids.nbytes / 2**20
    # Check a sample of rows against the tokenizer applied to the fetched bases.
    name = genome.names[0]
    rng = np.random.default_rng(0)
    for i in rng.choice(len(ds), 200, replace=False):
        s = int(ds.start[i])
        text = genome.fetch(name, s, s + 521).upper()
        assert ds.input_ids[i, 1:-1].tolist() == tok.encode(text[:515]).tolist(), i
        assert dnakmer.datasets.nextkmer.label_to_kmer(ds.labels[i], 6) == text[515:], i
    return {
        "samples": len(ds),
        "shape": list(ds.input_ids.shape),
        "load_s": load_s,
        "build_s": build_s,
        "build_cpu_s": build_cpu_s,
        "load_avg_1min": os.getloadavg()[0],
        "input_ids_mib": ids_mib,
        "output_mib": out_mib,
        "rss_before_build_mib": before_mib,
        "peak_rss_mib": peak_mib,
        "peak_over_output": peak_mib / out_mib,
        "build_growth_over_output": (peak_mib - before_mib) / out_mib,
        "threads": os.environ.get("DNAKMER_NUM_THREADS", str(os.cpu_count())),
    }


def numpy_markov_counts(codes: np.ndarray, order: int) -> np.ndarray:
    """(order+1)-mer counts, last base in the low bits: the NumPy equivalent of the core."""
    width = order + 1
    n = len(codes) - order
    index = np.zeros(n, dtype=np.int64)
    for j in range(width):
        index = (index << 2) | codes[j : j + n]
    return np.bincount(index, minlength=4**width).astype(np.uint32)


def best_of(fn, repeats: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def markov_bench(genome_path: str, order: int = 10) -> dict:
    import dnakmer
    from dnakmer import _core

    genome = dnakmer.Genome.open(genome_path)
    name, length = genome.names[0], genome.lengths[0]
    record = np.zeros(1, dtype=np.uint32)
    start = np.zeros(1, dtype=np.uint64)

    def rust() -> np.ndarray:
        chain = _core.MarkovChain.fit_windows(genome, record, start, length, order)
        return chain.counts

    def numpy_impl() -> np.ndarray:
        return numpy_markov_counts(genome.codes(name), order)

    rust_s, rust_counts = best_of(rust)
    numpy_s, numpy_counts = best_of(numpy_impl)
    assert np.array_equal(rust_counts, numpy_counts), "Rust and NumPy counts differ"
    assert int(rust_counts.sum()) == length - order
    both_s, _ = best_of(
        lambda: _core.MarkovChain.fit_windows(genome, record, start, length, order, minus=True)
    )
    return {"order": order, "bases": length, "rust_s": rust_s, "numpy_s": numpy_s,
            "speedup": numpy_s / rust_s, "rust_both_strands_s": both_s}  # fmt: skip


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except OSError:
        mem = float("nan")
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genome", default=str(DEFAULT_GENOME))
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(build_child(args.genome, args.samples)))
        return
    print(f"machine: {machine()}")
    child = subprocess.run(
        [sys.executable, __file__, "--child", "--genome", args.genome, "--samples",
         str(args.samples)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    b = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"build: {b['samples']:,} samples {b['shape']} in {b['build_s']:.2f} s "
        f"(target <= 3 s; CPU {b['build_cpu_s']:.2f} s on {b['threads']} threads, 1-min load "
        f"average {b['load_avg_1min']:.1f}; genome load {b['load_s']:.2f} s); "
        f"output {b['output_mib']:.0f} MiB (input_ids {b['input_ids_mib']:.0f} MiB), "
        f"peak RSS {b['peak_rss_mib']:.0f} MiB = {b['peak_over_output']:.2f}x output "
        f"(target <= 1.3x; {b['rss_before_build_mib']:.0f} MiB before the build, growth "
        f"{b['build_growth_over_output']:.2f}x)"
    )
    m = markov_bench(args.genome)
    print(
        f"markov order {m['order']} on {m['bases']:,} bases: Rust {m['rust_s'] * 1000:.1f} ms "
        f"(target <= 1 s), NumPy {m['numpy_s'] * 1000:.1f} ms ({m['speedup']:.1f}x); "
        f"both strands {m['rust_both_strands_s'] * 1000:.1f} ms; counts identical"
    )


if __name__ == "__main__":
    main()
