"""The offline demo: the whole study on a real genome with four models shipped in the
package.

The four models are tiny BERT masked language models pretrained by ``dnakmer pretrain``
on the E. coli K-12 genome shipped in ``dnakmer/data`` at an equal budget (same encoder,
steps, batch, learning rate and 64 token positions per window): overlapping 6-mers with
DNABERT's span masking, non-overlapping 6-mers, a BPE vocabulary learned on the genome
(GROVER's approach), and single nucleotides. The commands that
trained them are in ``dnakmer/data/models/COMMANDS.md``; :func:`retrain` runs them again
and compares the new training curves with the shipped ones.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from dnakmer.data import demo_genome, demo_models_dir

__all__ = [
    "DEMO_KS",
    "DEMO_MODELS",
    "CurveCheck",
    "compare_curves",
    "default_jobs",
    "demo_budget",
    "demo_models",
    "recorded_commands",
    "retrain",
    "run_demo",
    "run_recorded",
]

DEMO_MODELS = ("overlapping-6mer", "nonoverlapping-6mer", "bpe", "nucleotide")
"""Folder names of the shipped models, in report order."""

DEMO_KS = (1, 2)
"""Next-k-mer label lengths of the demo: the next base and the next two (the full study
defaults to 1..6; 4^k classes for larger k need more training than a few CPU minutes)."""

GENOME_PLACEHOLDER = "$GENOME"


def demo_models() -> list[Path]:
    """Checkpoint folders of the four shipped models, in :data:`DEMO_MODELS` order."""
    root = demo_models_dir()
    return [root / name for name in DEMO_MODELS]


def demo_budget() -> Any:
    """The :class:`~dnakmer.study.interrogate.Budget` of the demo: a few minutes on 2 CPU cores."""
    from dnakmer.study.budget import Budget

    # 512 masked spans per control: intervals narrow enough (about +-0.014) to tell real
    # from shuffled sequence; 4,000 test windows per k for the next-k-mer intervals.
    # Fine-tuning at 5e-4 keeps more of the pretrained features than 2e-3 (k = 1 with the
    # overlapping 6-mer model: 0.295 vs 0.262 test accuracy). Fine-tuned from random init,
    # every model reached its pretrained accuracy within the intervals (all four models,
    # k = 1 and 2): the random-init control is the linear probe of the frozen encoder,
    # which does tell them apart, and fine-tuning starts from pretraining only.
    return Budget(
        mask_windows=512,
        mask_window_tokens=60,
        base_windows=512,
        embed_windows=24,
        embed_window_tokens=60,
        context_nt=36,
        n_train=8000,
        n_val=256,
        n_test=4000,
        markov_orders=tuple(range(9)),
        max_steps=250,
        batch_size=32,
        eval_every=250,
        learning_rate=5e-4,
        finetune_inits=("pretrained",),
        pooling="last",
        device="cpu",
    )


def default_jobs() -> int:
    """Processes the demo runs at once by default: one per core it may use, at most one
    per model."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, len(DEMO_MODELS)))


def run_demo(
    out_dir: str | os.PathLike[str], *, quiet: bool = False, jobs: int | None = None
) -> Any:
    """Interrogate the shipped models on the shipped genome into ``out_dir``.

    ``jobs`` processes run the models' stages side by side (default
    :func:`default_jobs`), each on one torch thread; the results do not depend on it.

    Returns
    -------
    dnakmer.study.interrogate.InterrogateResult
    """
    import torch
    from threadpoolctl import threadpool_limits

    from dnakmer.study.interrogate import interrogate

    # Matrices of a hidden-64 model are too small for a second thread to pay off, and
    # a thread that waits for a core another process holds stalls every operation: one
    # thread per process, one process per core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            return interrogate(
                demo_genome(),
                demo_models(),
                out_dir,
                ks=DEMO_KS,
                seeds=1,
                budget=demo_budget(),
                quiet=quiet,
                jobs=default_jobs() if jobs is None else jobs,
            )
    finally:
        torch.set_num_threads(threads)


def recorded_commands() -> dict[str, list[str]]:
    """The ``dnakmer pretrain`` command of each shipped model, from ``COMMANDS.md``.

    Returns
    -------
    dict of str to list of str
        Model folder name to the command's arguments after ``dnakmer`` (the genome is the
        ``$GENOME`` placeholder).
    """
    text = (demo_models_dir() / "COMMANDS.md").read_text()
    commands: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("dnakmer pretrain "):
            continue
        args = shlex.split(line)[1:]
        out = args[args.index("--out") + 1]
        commands[out] = args
    if sorted(commands) != sorted(DEMO_MODELS):
        raise ValueError(f"COMMANDS.md names models {sorted(commands)}, not {list(DEMO_MODELS)}")
    return commands


@dataclass
class CurveCheck:
    """How a re-run's training curve compares with the shipped one.

    Attributes
    ----------
    table : polars.DataFrame
        One row per model and logged quantity (``loss``, ``eval_loss``,
        ``eval_mlm_accuracy``): points compared and the largest absolute difference.
    tolerance : float
        Largest difference accepted as the same curve.
    """

    table: pl.DataFrame
    tolerance: float

    @property
    def reproduced(self) -> bool:
        """Whether every curve was matched within :attr:`tolerance` at every logged step."""
        return bool(
            self.table.height > 0
            and (self.table["max_abs_diff"] <= self.tolerance).all()
            and (self.table["points"] > 0).all()
        )


def compare_curves(
    shipped: dict[str, Any], rerun: dict[str, Any], up_to: int | None = None
) -> list[dict[str, Any]]:
    """Per logged quantity of two ``history.json`` objects: the points compared, steps the
    re-run lacks, the largest absolute difference (infinite when steps are missing) and
    both final values. With ``up_to``, only the shipped points up to that step count."""
    from dnakmer.training.pretrain import CURVE_QUANTITIES, history_curve

    curve = history_curve(shipped)
    if up_to is not None:
        curve = curve.filter(pl.col("step") <= up_to)
    joined = curve.join(history_curve(rerun), on=["step", "quantity"], how="left", suffix="_rerun")
    rows = []
    for quantity in CURVE_QUANTITIES:
        d = joined.filter(pl.col("quantity") == quantity).sort("step")
        if d.height == 0:
            continue
        missing = d["value_rerun"].null_count()
        diff = (d["value"] - d["value_rerun"]).abs().max()
        rows.append(
            {
                "quantity": quantity,
                "points": d.height - missing,
                "missing_steps": missing,
                "max_abs_diff": math.inf if missing or diff is None else float(diff),  # type: ignore[arg-type]
                "final_shipped": float(d["value"][-1]),
                "final_rerun": d["value_rerun"][-1],
            }
        )
    return rows


def run_recorded(
    out_dir: str | os.PathLike[str],
    *,
    models: tuple[str, ...] = DEMO_MODELS,
    jobs: int = 1,
    quiet: bool = False,
    stop_after: int | None = None,
) -> list[Path]:
    """Run the recorded pretraining command of each of ``models`` into ``out_dir/<model>``.

    Each command of :func:`recorded_commands` runs as ``python -m dnakmer ...`` with the
    shipped genome in place of ``$GENOME``.

    Parameters
    ----------
    out_dir : path
    models : tuple of str
        Which of :data:`DEMO_MODELS` to train.
    jobs : int
        Commands run at once; each then gets ``cores // jobs`` (at least 1) threads.
    quiet : bool
        Pass ``--quiet`` to the commands.
    stop_after : int, optional
        Pass ``--stop-after``: train only the first steps of the recorded schedule.

    Returns
    -------
    list of pathlib.Path
        The model folders.

    Raises
    ------
    subprocess.CalledProcessError
        A command failed (the others are stopped).
    """
    unknown = sorted(set(models) - set(DEMO_MODELS))
    if unknown:
        raise ValueError(f"unknown demo models {unknown}; choose from {list(DEMO_MODELS)}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    commands = recorded_commands()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if jobs > 1:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    pending = []
    for name in models:
        args = [str(demo_genome()) if a == GENOME_PLACEHOLDER else a for a in commands[name]]
        args[args.index("--out") + 1] = str(out / name)
        if quiet and "--quiet" not in args and "-q" not in args:
            args.append("--quiet")
        if stop_after is not None:
            args += ["--stop-after", str(stop_after)]
        pending.append([sys.executable, "-m", "dnakmer", *args])
    running: list[subprocess.Popen[bytes]] = []
    try:
        while pending or running:
            while pending and len(running) < jobs:
                running.append(subprocess.Popen(pending.pop(0), env=env))
            done = running.pop(0)
            if done.wait() != 0:
                raise subprocess.CalledProcessError(done.returncode, done.args)
    finally:
        for proc in running:
            proc.kill()
            proc.wait()
    return [out / name for name in models]


def retrain(
    out_dir: str | os.PathLike[str],
    *,
    models: tuple[str, ...] = DEMO_MODELS,
    tolerance: float = 0.02,
    jobs: int = 1,
    quiet: bool = False,
    stop_after: int | None = None,
) -> CurveCheck:
    """Run the recorded pretraining commands again and compare the training curves
    (all of them, or with ``stop_after`` the points up to that step).

    Parameters
    ----------
    out_dir : path
        Receives one model folder per command (see :func:`run_recorded`).
    models : tuple of str
        Which of :data:`DEMO_MODELS` to retrain.
    tolerance : float
        Largest absolute difference of a loss or an accuracy at any logged step counted
        as the same curve (floating-point sums differ slightly between CPUs, thread counts
        and library versions).
    jobs : int
        Commands run at once (see :func:`run_recorded`).
    quiet : bool
        Pass ``--quiet`` to the commands.
    stop_after : int, optional
        Train only the first ``stop_after`` steps of each recorded schedule and compare
        that prefix of the curves (the whole runs take tens of CPU minutes).

    Returns
    -------
    CurveCheck
    """
    rows = []
    folders = run_recorded(out_dir, models=models, jobs=jobs, quiet=quiet, stop_after=stop_after)
    for folder in folders:
        shipped = json.loads((demo_models_dir() / folder.name / "history.json").read_text())
        rerun = json.loads((folder / "history.json").read_text())
        rows += [{"model": folder.name} | row for row in compare_curves(shipped, rerun, stop_after)]
    return CurveCheck(pl.DataFrame(rows), tolerance)
