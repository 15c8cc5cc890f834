"""Speed and memory targets of the dnakmer core, measured in one run on the same data.

Run from the repository root, with a release build of the extension::

    maturin develop --release
    python benches/bench_core.py            # 1 Gbp genome + 3.1 Gbp open test
    python benches/bench_core.py --quick    # 100 Mbp genome, no 3.1 Gbp test

Inputs are generated (seeded) under ``--workdir`` and the E. coli genome is read from
``../shared/data``. The table is printed and written to ``benches/RESULTS.md``
(section ``## Core``; other sections are kept).

Single-threaded throughputs are computed from the thread's CPU time (best of
``--repeat`` runs), so that other processes competing for the cores do not lower them;
wall-clock times are reported next to them, and the thread comparisons (BGZF 1 vs 2
threads) can only use wall-clock time.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import bench_inputs as inputs
import dnakmer
from dnakmer import _core

REPO = Path(__file__).resolve().parent.parent
SHARED_ECOLI = REPO.parent / "shared" / "data" / "ecoli_k12.fa.gz"
K = 6


@dataclass
class Timing:
    wall: float
    cpu: float
    result: Any


def best_of(
    fn: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.thread_time
) -> Timing:
    """Best wall-clock and best CPU time of ``repeat`` calls (the last result kept)."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        c0, w0 = clock(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(clock() - c0)
    return Timing(min(walls), min(cpus), result)


def read_page_cache(path: Path) -> int:
    """Read a file through a reused 1 MiB buffer (the file is already in the page cache)."""
    buf = bytearray(1 << 20)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            total += n
    return total


def read_whole(path: Path) -> int:
    """Read a whole file into one fresh buffer, as ``Path.read_bytes`` does."""
    return len(path.read_bytes())


def fill_ids(n: int, fresh: bool, repeat: int) -> Timing:
    """Best thread CPU time of writing ``n`` uint16 values into a fresh array (NumPy asks
    for huge pages, as dnakmer does for its output) or into one array filled before."""
    if fresh:
        return best_of(lambda: np.full(n, 7, np.uint16), repeat)
    out = np.ones(n, np.uint16)
    return best_of(lambda: out.fill(7), repeat)


class Report:
    """Collects result rows and target verdicts."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []
        self.targets: list[tuple[str, str, bool]] = []

    def row(self, what: str, value: str, note: str = "") -> None:
        self.rows.append((what, value, note))
        print(f"{what:<58} {value:>22}  {note}", flush=True)

    def target(self, what: str, measured: str, met: bool) -> None:
        self.targets.append((what, measured, met))
        print(f"  target {'MET ' if met else 'MISSED'}: {what} ({measured})", flush=True)


def gbps(n: int, seconds: float) -> str:
    """Throughput in the unit that keeps three significant digits readable."""
    rate = n / seconds
    for unit, scale in (("Gbp/s", 1e9), ("Mbp/s", 1e6)):
        if rate >= 0.1 * scale:
            return f"{rate / scale:.3f} {unit}"
    return f"{rate / 1e3:.1f} kbp/s"


def compare_encoders(rep: Report, seq: str, workdir: Path, quick: bool) -> None:
    """dnakmer ``encode`` against DNABERT's path and the usual Python alternatives."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertTokenizer, BertTokenizerLegacy

    tok = dnakmer.KmerTokenizer(K)
    vocab_path = workdir / "vocab.txt"
    tok.save_vocab(vocab_path)
    vocab = {t: i for i, t in enumerate(vocab_path.read_text().splitlines())}
    raw = seq.encode()
    ours = best_of(lambda: tok.encode(raw), 7)
    per_base = ours.cpu / len(seq)
    rep.row(
        f"dnakmer encode, E. coli in memory ({len(seq):,} bp)",
        gbps(len(seq), ours.cpu),
        f"wall {len(seq) / ours.wall / 1e9:.3f} Gbp/s",
    )
    expected = ours.result

    def versus(
        name: str,
        n: int,
        fn: Callable[[str], Any],
        target: float | None,
        repeat: int = 3,
        clock: Callable[[], float] = time.thread_time,
    ) -> None:
        part = seq[:n]
        t = best_of(lambda: fn(part), repeat, clock)
        got = np.asarray(t.result, dtype=np.int64).ravel()
        if not np.array_equal(got, expected[: got.size]) or got.size != n - K + 1:
            raise AssertionError(f"{name} disagrees with dnakmer on the same bases")
        ratio = (t.cpu / n) / per_base
        rep.row(f"{name} ({n:,} bp)", gbps(n, t.cpu), f"dnakmer is {ratio:,.0f}x faster")
        if target is not None:
            rep.target(f"encode >= {target:g}x {name}", f"{ratio:,.0f}x", ratio >= target)

    bert = BertTokenizer(str(vocab_path), do_lower_case=False)
    legacy = BertTokenizerLegacy(str(vocab_path), do_lower_case=False)
    small = 20_000 if quick else 100_000
    versus(
        "DNABERT seq2kmer + BertTokenizer",
        small,
        lambda s: bert.encode(inputs.seq2kmer(s, K), add_special_tokens=False),
        1000,
    )
    versus(
        "DNABERT seq2kmer + BertTokenizerLegacy (pure Python)",
        small // 5,
        lambda s: legacy.encode(inputs.seq2kmer(s, K), add_special_tokens=False),
        None,
    )
    versus(
        "pure Python: slice + dict lookup",
        1_000_000,
        lambda s: inputs.python_dict_ids(s, K, vocab, 1),
        200,
    )
    versus(
        "pure Python: seq2kmer + split + dict lookup",
        1_000_000,
        lambda s: inputs.seq2kmer_dict_ids(s, K, vocab, 1),
        None,
    )

    word_level = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    window = 10_000
    texts = [inputs.seq2kmer(seq[i : i + window + K - 1], K) for i in range(0, 1_000_000, window)]

    def hf_batch(_: str) -> np.ndarray:
        return np.concatenate(
            [e.ids for e in word_level.encode_batch(texts, add_special_tokens=False)]
        )

    # encode_batch may use several threads: charge it the CPU time of the whole process.
    versus(
        "HF tokenizers WordLevel encode_batch, space-joined k-mers",
        1_000_000 + K - 1,
        hf_batch,
        500,
        clock=time.process_time,
    )
    versus(
        "NumPy sliding window + dot product",
        len(seq),
        lambda s: inputs.numpy_ids(s.encode(), K),
        20,
    )


def two_threads_row(
    rep: Report, what: str, bases: int, one: Timing, two: Threaded, note: str = ""
) -> None:
    """The wall-clock rate of a 2-thread call against one thread's CPU time."""
    parts = [f"{one.cpu / two.wall:.2f}x one thread's CPU time", note, f"load {load()}"]
    rep.row(f"{what}, 2 threads (wall)", gbps(bases, two.wall), "; ".join(p for p in parts if p))


def file_throughput(rep: Report, label: str, path: Path, bases: int, repeat: int) -> None:
    """tokenize_fasta (file -> arrays, one thread) against reading the file, and against
    writing an output-sized uint16 array, the two ends of the work."""
    tok = dnakmer.KmerTokenizer(K)
    size = path.stat().st_size
    read_page_cache(path)
    read = best_of(lambda: read_page_cache(path), repeat)
    whole = best_of(lambda: read_whole(path), repeat)
    run = best_of(lambda: _core.tokenize_fasta(str(path), tok, threads=1), repeat)
    records, _summary = run.result
    n_ids = sum(ids.size for _, ids, _, _ in records)
    assert n_ids == bases - len(records) * (K - 1)
    del run.result, records
    fresh = fill_ids(n_ids, True, repeat)
    reused = fill_ids(n_ids, False, repeat)
    read_gbs = size / read.cpu / 1e9
    rep.row(
        f"read {label} from page cache ({size / 1e9:.3f} GB)",
        f"{read_gbs:.3f} GB/s",
        f"wall {size / read.wall / 1e9:.3f} GB/s; 1 MiB buffer reused",
    )
    rep.row(
        f"read {label} into a fresh buffer (Path.read_bytes)",
        f"{size / whole.cpu / 1e9:.3f} GB/s",
        f"wall {size / whole.wall / 1e9:.3f} GB/s",
    )
    out_gb = 2 * n_ids / 1e9
    rep.row(
        f"NumPy fill of a fresh uint16 array of the output's size ({out_gb:.3f} GB)",
        f"{out_gb / fresh.cpu:.3f} GB/s",
        f"{n_ids / fresh.cpu / 1e9:.2f} G ids/s (wall {out_gb / fresh.wall:.3f} GB/s)",
    )
    rep.row(
        "NumPy fill of the same array, already written once",
        f"{out_gb / reused.cpu:.3f} GB/s",
        f"{n_ids / reused.cpu / 1e9:.2f} G ids/s (wall {out_gb / reused.wall:.3f} GB/s)",
    )
    rep.row(
        f"tokenize_fasta {label}, 1 thread ({bases:,} bp)",
        gbps(bases, run.cpu),
        f"wall {gbps(bases, run.wall)}; {whole.cpu / run.cpu:.0%} of Path.read_bytes",
    )
    rep.target(
        f"{label}: 6-mer ids from plain FASTA >= 1 Gbp/s, one core",
        gbps(bases, run.cpu),
        bases / run.cpu >= 1e9,
    )
    # Two threads: a plain file is cut at record headers and its records tokenized in
    # parallel (a one-record genome stays on one thread). Wall clock, so it depends on
    # a second core being free.
    two = best_threaded(lambda: _core.tokenize_fasta(str(path), tok, threads=2), repeat)
    pieces = _core.tokenize_fasta(str(path), tok, threads=2)[1]["pieces"]
    two_threads_row(
        rep, f"tokenize_fasta {label}", bases, run, two,
        f"{pieces} piece(s) with records; CPU: all threads {gbps(bases, two.total)}",
    )
    # Genome.open packs the same file 2 bits a base (one thread, then pieces in parallel).
    opened = best_of(lambda: dnakmer.Genome.open(path, threads=1), repeat)
    assert sum(opened.result.lengths) == bases
    del opened.result
    rep.row(
        f"Genome.open {label}, 1 thread",
        gbps(bases, opened.cpu),
        f"wall {gbps(bases, opened.wall)}",
    )
    opened2 = best_threaded(lambda: dnakmer.Genome.open(path, threads=2), repeat)
    two_threads_row(rep, f"Genome.open {label}", bases, opened, opened2)
    best = max(size / run.cpu, size / two.wall)
    share = best / (size / read.cpu)
    rep.target(
        f"{label}: >= 50 % of page-cache read throughput (best of 1 thread, 2 threads)",
        f"{share:.0%}",
        share >= 0.5,
    )


@dataclass
class Threaded:
    """Best-of-N timings of a call that may use helper threads."""

    wall: float
    caller: float  # CPU time of the calling thread
    total: float  # CPU time of every thread of the process
    helpers: float  # total - caller, from the same run


def best_threaded(fn: Callable[[], Any], repeat: int) -> Threaded:
    """Best wall-clock, caller-thread CPU and all-thread CPU of ``repeat`` calls."""
    runs = []
    for _ in range(repeat):
        w0, t0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        fn()
        wall, caller = time.perf_counter() - w0, time.thread_time() - t0
        runs.append((wall, caller, time.process_time() - p0))
    return Threaded(
        min(r[0] for r in runs),
        min(r[1] for r in runs),
        min(r[2] for r in runs),
        min(r[2] - r[1] for r in runs),
    )


def compression(rep: Report, plain: Path, label: str, workdir: Path, repeat: int) -> None:
    """gzip against CPython's zlib, and BGZF on 1 against 2 threads.

    Every dnakmer row gives the wall-clock rate and the CPU time per byte of the calling
    thread (parsing and tokenizing, plus decompression with 1 thread) and of the
    decompression threads. With 2 threads the wall time can only approach the slower
    of the two when a second core is free; the load average shows how often it was.
    """
    gz = inputs.write_gzip(plain, workdir / (plain.stem + ".fa.gz"))
    bgzf = inputs.write_bgzf(plain, workdir / (plain.stem + ".bgzf.fa.gz"))
    size = plain.stat().st_size
    tok = dnakmer.KmerTokenizer(K)
    data = gz.read_bytes()

    def rate(seconds: float) -> str:
        return f"{size / seconds / 1e9:.3f} GB/s"

    def zlib_stream() -> int:
        d = zlib.decompressobj(31)
        return sum(len(d.decompress(data[i : i + (1 << 20)])) for i in range(0, len(data), 1 << 20))

    def ours(path: Path, threads: int) -> Threaded:
        return best_threaded(lambda: _core.tokenize_fasta(str(path), tok, threads=threads), repeat)

    def note(t: Threaded, threads: int) -> str:
        if threads == 1:
            return f"wall {rate(t.wall)}, CPU {rate(t.caller)}; load {load()}"
        return (
            f"CPU: caller thread {rate(t.caller)}, decompression threads {rate(t.helpers)}, "
            f"all {rate(t.total)}; load {load()}"
        )

    z = best_of(zlib_stream, repeat)
    g = best_of(lambda: len(__import__("gzip").decompress(data)), repeat)
    rep.row(f"CPython zlib.decompressobj(31), gzip, {label}", rate(z.cpu), "decompress only")
    rep.row(f"CPython gzip.decompress, {label}", rate(g.cpu), "decompress only")
    gz1, gz2 = ours(gz, 1), ours(gz, 2)
    rep.row(f"dnakmer tokenize_fasta gzip, {label}, 1 thread", rate(gz1.caller), note(gz1, 1))
    rep.row(f"dnakmer tokenize_fasta gzip, {label}, 2 threads (wall)", rate(gz2.wall), note(gz2, 2))
    best = max(size / gz1.caller, size / gz2.wall)
    rep.target(
        f"{label}: gzip input >= 1.5x CPython zlib decompression",
        f"{best / (size / z.cpu):.2f}x",
        best >= 1.5 * size / z.cpu,
    )
    bg1, bg2 = ours(bgzf, 1), ours(bgzf, 2)
    rep.row(f"dnakmer tokenize_fasta BGZF, {label}, 1 thread (wall)", rate(bg1.wall), note(bg1, 1))
    rep.row(f"dnakmer tokenize_fasta BGZF, {label}, 2 threads (wall)", rate(bg2.wall), note(bg2, 2))
    rep.target(
        f"{label}: BGZF >= 1.6x faster on 2 threads than 1",
        f"{bg1.wall / bg2.wall:.2f}x",
        bg1.wall / bg2.wall >= 1.6,
    )


def load() -> str:
    """The 1-minute load average (2 cores: above 2 means no core was free)."""
    return f"{os.getloadavg()[0]:.1f}"


def compressed_streaming_rss(rep: Report, plain: Path, workdir: Path) -> None:
    """Peak RSS of tokenize_genome to disk from gzip and BGZF with 2 threads (the
    decompression threads keep a bounded number of 1 MiB pieces in flight)."""
    out = workdir / f"tokens_{plain.stem}_compressed"
    for what, path in (
        ("gzip", workdir / (plain.stem + ".fa.gz")),
        ("BGZF", workdir / (plain.stem + ".bgzf.fa.gz")),
    ):
        got = inputs.peak_rss(
            "import dnakmer; m = dnakmer.tokenize_genome("
            f"{str(path)!r}, dnakmer.KmerTokenizer({K}), {str(out)!r}, threads=2, "
            "overwrite=True); print(m['counts']['tokens'])"
        )
        rep.row(
            f"peak RSS: tokenize_genome {plain.stem} {what}, 2 threads, to disk",
            f"{got['maxrss_kib'] / 1024:.0f} MiB",
            f"{int(got['child']):,} tokens written",
        )
    for f in out.glob("*"):
        f.unlink()
    out.rmdir()


def memory(rep: Report, genome: Path, workdir: Path, bases: int, label: str) -> None:
    """Peak RSS of tokenize-to-disk and of Genome.open, each in a fresh interpreter."""
    base = inputs.peak_rss("import dnakmer")["maxrss_kib"]
    out = workdir / f"tokens_{genome.stem}"
    to_disk = inputs.peak_rss(
        "import dnakmer; m = dnakmer.tokenize_genome("
        f"{str(genome)!r}, dnakmer.KmerTokenizer({K}), {str(out)!r}, overwrite=True); "
        "print(m['counts']['tokens'])"
    )
    opened = inputs.peak_rss(
        f"import dnakmer; g = dnakmer.Genome.open({str(genome)!r}); print(sum(g.lengths))"
    )
    assert int(opened["child"]) == bases, opened
    rep.row("peak RSS: python -c 'import dnakmer'", f"{base / 1024:.0f} MiB")
    rep.row(
        f"peak RSS: tokenize_genome {label} to disk, {os.cpu_count()} threads",
        f"{to_disk['maxrss_kib'] / 1024:.0f} MiB",
        f"{int(to_disk['child']):,} tokens written",
    )
    rep.row(
        f"peak RSS: Genome.open {label}, {os.cpu_count()} threads",
        f"{opened['maxrss_kib'] / 1024:.0f} MiB",
        f"{bases / 4 / 2**20:.0f} MiB of packed bases",
    )
    for f in out.glob("*"):
        f.unlink()
    out.rmdir()


def human_size(rep: Report, workdir: Path) -> None:
    """Genome.open of a generated 3.1 Gbp FASTA must stay under 4 GB RSS."""
    bases = 3_100_000_000
    path = inputs.write_genome(workdir / "human_size.fa", bases, 24, seed=31)
    try:
        opened = inputs.peak_rss(
            f"import dnakmer; g = dnakmer.Genome.open({str(path)!r}); print(sum(g.lengths))"
        )
    finally:
        path.unlink()
    assert int(opened["child"]) == bases, opened
    rss = opened["maxrss_kib"] * 1024
    rep.row("peak RSS: Genome.open of 3.1 Gbp (24 records)", f"{rss / 1e9:.2f} GB")
    rep.target("3.1 Gbp opens in <= 4 GB RSS", f"{rss / 1e9:.2f} GB", rss <= 4e9)


def zero_copy(rep: Report, seq: str) -> None:
    """Arrays come from Rust buffers that NumPy adopts, not from copies."""
    ids = dnakmer.KmerTokenizer(K).encode(seq)
    owner = type(ids.base).__name__ if ids.base is not None else "the array itself"
    adopted = not ids.flags.owndata and owner != "ndarray"
    rep.row("encode result memory owner", owner, "buffer moved from Rust, not copied")
    rep.target("arrays handed to NumPy without copying", owner, adopted)


def machine() -> str:
    """CPU model, cores, memory and load, as one line."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = re.search(r"Model name:\s*(.+)", lscpu)
    mem_kib = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{model.group(1).strip() if model else platform.processor()}, {os.cpu_count()} cores, "
        f"{mem_kib / 2**20:.0f} GiB RAM, Linux {platform.release()}, Python "
        f"{platform.python_version()}, NumPy {np.__version__}, dnakmer {dnakmer.__version__}; "
        f"load average at start {load}"
    )


def write_results(rep: Report, header: str, command: str, seconds: float) -> Path:
    """Replace the ``## Core`` section of benches/RESULTS.md (other sections stay)."""
    lines = [
        "## Core",
        "",
        f"Command: `{command}` (release build: `maturin develop --release`), "
        f"{seconds / 60:.1f} min. {header}.",
        "",
        "Single-thread throughputs use the thread's CPU time (best of several runs), so the",
        "other jobs sharing this machine do not lower them; wall-clock figures are shown",
        "beside them. The BGZF thread comparison can only use wall-clock time.",
        "",
        "| measurement | value | note |",
        "|---|---:|---|",
        *[f"| {w} | {v} | {n} |" for w, v, n in rep.rows],
        "",
        "| target | measured | met |",
        "|---|---:|---|",
        *[f"| {w} | {m} | {'yes' if ok else '**no**'} |" for w, m, ok in rep.targets],
        "",
    ]
    path = REPO / "benches" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    section = "\n".join(lines)
    pattern = re.compile(r"^## Core\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(lambda _: section + "\n", text)
        if pattern.search(text)
        else (text.rstrip("\n") + "\n\n" + section + "\n")
    )
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 Mbp genome, no 3.1 Gbp test")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dnakmer-bench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per file measurement")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    started = time.perf_counter()
    args.workdir.mkdir(parents=True, exist_ok=True)
    header = machine()
    print(header, flush=True)
    rep = Report()

    ecoli = args.workdir / "ecoli_k12.fa"
    if not ecoli.exists():
        tmp = ecoli.with_name(ecoli.name + ".partial")
        tmp.write_bytes(__import__("gzip").decompress(SHARED_ECOLI.read_bytes()))
        tmp.replace(ecoli)
    seq = inputs.read_plain_bases(ecoli)
    zero_copy(rep, seq)
    compare_encoders(rep, seq, args.workdir, args.quick)
    file_throughput(rep, "E. coli", ecoli, len(seq), max(args.repeat, 5))

    bases = 100_000_000 if args.quick else 1_000_000_000
    label = f"{bases // 1_000_000:,} Mbp genome"
    genome = args.workdir / f"genome_{bases // 1_000_000}M.fa"
    if not genome.exists():
        print(f"writing {genome} ...", flush=True)
        inputs.write_genome(genome, bases, 10, seed=1)
    # Fresh memory costs more when the hypervisor has to back it first: more runs.
    file_throughput(rep, label, genome, bases, max(args.repeat, 5))

    small = args.workdir / "genome_64M.fa"
    if not small.exists():
        inputs.write_genome(small, 64_000_000, 4, seed=2)
    compression(rep, ecoli, "E. coli", args.workdir, max(args.repeat, 10))
    compression(rep, small, "64 Mbp genome", args.workdir, max(args.repeat, 5))
    compressed_streaming_rss(rep, small, args.workdir)
    memory(rep, genome, args.workdir, bases, label)
    if not args.quick:
        human_size(rep, args.workdir)

    seconds = time.perf_counter() - started
    command = "python benches/bench_core.py" + (" --quick" if args.quick else "")
    if not args.no_write:
        print(f"wrote {write_results(rep, header, command, seconds)}")


if __name__ == "__main__":
    main()
