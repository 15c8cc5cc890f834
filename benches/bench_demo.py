"""Wall-clock time, CPU time and peak memory of ``dnakmer demo`` (target: at most 3 minutes
on 2 CPU cores), and optionally of re-running the shipped models' pretraining.

    python benches/bench_demo.py                 # the demo, 3 runs into fresh folders
    python benches/bench_demo.py --retrain       # also each recorded pretraining command

Each run is a fresh process (``python -m dnakmer demo --quiet``), as a user would start
it: imports, model loading and every stage are included. Per-stage seconds come from the
stage folders' completion times. The machine line records the load average, since other
jobs on a shared machine stretch wall-clock time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = re.search(r"Model name:\s*(.+)", lscpu)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{model.group(1).strip() if model else platform.processor()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {load}"
    )


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of children is the largest of any child so far (KiB on Linux).
    return wall, cpu, after.ru_maxrss / 1024


STAGES = ("genome", "mask", "embed", "datasets", "baselines", "finetune")


def stage_seconds(run: Path) -> dict[str, float]:
    """When each stage finished, in seconds after ``manifest.json`` was written (stages
    of single models run side by side with ``--jobs``, so these are finishing times, not
    durations); stage markers carry whole seconds."""
    start = dt.datetime.fromtimestamp((run / "manifest.json").stat().st_mtime, dt.timezone.utc)
    start = start.replace(microsecond=0)
    marks = []
    for p in run.rglob("COMPLETE"):
        rel = p.relative_to(run).parts
        if rel[0] in STAGES and len(rel) == (
            2 if rel[0] in ("genome", "datasets", "baselines") else 3
        ):
            marks.append((dt.datetime.fromisoformat(p.read_text().strip()), "/".join(rel[:-1])))
    return {name: max((when - start).total_seconds(), 0.0) for when, name in sorted(marks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--retrain", action="store_true", help="also time the pretraining")
    parser.add_argument(
        "--jobs",
        type=int,
        nargs="+",
        default=[0],
        help="demo --jobs values to time in turn (0: the demo's default)",
    )
    args = parser.parse_args()
    from dnakmer.study.demo import DEMO_MODELS

    print(machine(), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for jobs in args.jobs:
                out = Path(tmp) / f"demo{i}-{jobs}"
                cmd = [sys.executable, "-m", "dnakmer", "demo", "--out", str(out), "-q"]
                what = "dnakmer demo" + (f" --jobs {jobs}" if jobs else "")
                wall, cpu, rss = timed(cmd + (["--jobs", str(jobs)] if jobs else []))
                findings = json.loads((out / "findings.json").read_text())
                assert list(findings["next_kmer"]) == list(DEMO_MODELS)
                rows.append((what, wall, cpu, rss))
                print(f"{what}, run {i}: wall {wall:.1f} s, CPU {cpu:.1f} s, RSS {rss:.0f} MiB")
                for name, sec in stage_seconds(out).items():
                    print(f"    {name} done at {sec:.0f} s")
        if args.retrain:
            from dnakmer.data import demo_genome
            from dnakmer.study.demo import recorded_commands

            for name in DEMO_MODELS:
                cmd = recorded_commands()[name]
                cmd = [str(demo_genome()) if a == "$GENOME" else a for a in cmd]
                cmd[cmd.index("--out") + 1] = str(Path(tmp) / "models" / name)
                wall, cpu, rss = timed([sys.executable, "-m", "dnakmer", *cmd, "--quiet"])
                rows.append((f"pretrain {name}", wall, cpu, rss))
                print(f"pretrain {name}: wall {wall:.1f} s, CPU {cpu:.1f} s")
    print("\n| run | wall s | CPU s | peak RSS MiB |\n|---|---:|---:|---:|")
    for what, wall, cpu, rss in rows:
        print(f"| {what} | {wall:.1f} | {cpu:.1f} | {rss:.0f} |")
    print(f"\n{machine()}")


if __name__ == "__main__":
    main()
