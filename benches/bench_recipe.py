"""Why the demo models are trained the way they are: learning curves and fine-tuning heads.

    python benches/bench_recipe.py [--steps 6000] [--jobs 2] [--out recipe]

1. Pretraining of the overlapping 6-mer model. The shipped model's recorded command starts
   its position embeddings from the sine/cosine table (``--position-init sinusoidal``)
   and its training with 4,000 steps of BERT's random token masking before DNABERT's span
   masking. This runs the same command without each of the two choices (``--stop-after``
   keeps the learning-rate schedule) and plots the three curves: ``recipe_curves.png``.
2. Fine-tuning heads on the next-k-mer benchmark. The shipped nucleotide model and its
   random-init control are fine-tuned with the demo budget, reading ``[CLS]`` (Hugging
   Face's head) or the last token, next to the class prior and the best Markov chain.

Prints Markdown tables for benches/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import polars as pl


def variant_command(out: Path, steps: int, drop: str) -> list[str]:
    """The recorded overlapping-6mer command without option ``drop`` (and its value)."""
    from dnakmer.data import demo_genome
    from dnakmer.study.demo import recorded_commands

    args = recorded_commands()["overlapping-6mer"]
    i = args.index(drop)
    args = args[:i] + args[i + 2 :]
    args = [str(demo_genome()) if a == "$GENOME" else a for a in args]
    args[args.index("--out") + 1] = str(out)
    return [sys.executable, "-m", "dnakmer", *args, "--stop-after", str(steps), "--quiet"]


# Each variant leaves one choice out of the recorded command.
VARIANTS = {
    "span-only": ("--random-masking-steps", "span masking from step 0"),
    "random-positions": ("--position-init", "random position init"),
}


def pretraining_curves(out: Path, steps: int, jobs: int) -> pl.DataFrame:
    from dnakmer.plots import pretraining_curves as plot
    from dnakmer.study.demo import demo_models
    from dnakmer.training.pretrain import history_curve

    running = []
    for name, (drop, _) in VARIANTS.items():
        folder = out / name
        if (folder / "history.json").is_file():
            continue
        cmd = variant_command(folder, steps, drop)
        print("$", shlex.join(cmd), flush=True)
        env = dict(os.environ, OMP_NUM_THREADS="1")
        running.append((name, time.perf_counter(), subprocess.Popen(cmd, env=env)))
        if len(running) >= jobs:
            wait_for(running.pop(0))
    for run in running:
        wait_for(run)
    shipped = json.loads((demo_models()[0] / "history.json").read_text())
    curves = [
        history_curve(shipped)
        .filter(pl.col("step") <= steps)
        .select(pl.lit("recorded command").alias("model"), pl.all())
    ]
    for name, (_, label) in VARIANTS.items():
        run = json.loads((out / name / "history.json").read_text())
        curves.append(history_curve(run).select(pl.lit(label).alias("model"), pl.all()))
    table = pl.concat(curves)
    plot(table, out / "recipe_curves.png")
    return (
        table.filter(pl.col("quantity") == "eval_loss")
        .pivot(on="model", index="step", values="value")
        .sort("step")
    )


def wait_for(run: tuple[str, float, subprocess.Popen[bytes]]) -> None:
    name, start, proc = run
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    print(f"{name} run: {time.perf_counter() - start:.0f} s", flush=True)


def finetune_heads(out: Path) -> pl.DataFrame:
    import torch

    from dnakmer.data import demo_genome
    from dnakmer.datasets import nextkmer
    from dnakmer.datasets.baselines import baselines
    from dnakmer.datasets.nextkmer import NextKmerDataset
    from dnakmer.probes.nextkmer import benchmark_model, comparison_table
    from dnakmer.study.demo import DEMO_KS, demo_budget, demo_models

    torch.set_num_threads(1)
    budget = demo_budget()
    model = demo_models()[2]
    dirs = []
    for k in DEMO_KS:
        d = out / f"nk{k}"
        if not (d / "manifest.json").is_file():
            nextkmer.build(demo_genome(), k, budget.context_nt, None, n_train=budget.n_train,
                           n_val=budget.n_val, n_test=budget.n_test, seed=0).save(d)  # fmt: skip
        dirs.append(d)
    base = pl.concat(
        [baselines(NextKmerDataset.load(d), budget.markov_orders, ks=[k], seed=0)
         for k, d in zip(DEMO_KS, dirs, strict=True)],
        how="diagonal_relaxed",
    )  # fmt: skip
    rows = []
    for pooling in ("cls", "last"):
        runs = benchmark_model(model, dirs, out / f"ft-{pooling}",
                               options=budget.train_options(quiet=True), pooling=pooling,
                               resume=True)  # fmt: skip
        table = comparison_table(runs, base, f"nucleotide, {pooling}")
        rows.append(table)
    table = pl.concat(rows).unique(["k", "predictor"], keep="first").sort(["k", "predictor"])
    return table.select("k", "predictor", "accuracy", "accuracy_ci95_test", "mcc",
                        "majority_share", "cross_entropy_bits")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000, help="steps of each variant run")
    parser.add_argument("--jobs", type=int, default=2, help="variant runs at once (1 thread each)")
    parser.add_argument("--out", type=Path, default=Path("recipe"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = pl.Config(tbl_formatting="MARKDOWN", tbl_rows=50, tbl_hide_dataframe_shape=True,
                    tbl_hide_column_data_types=True, float_precision=4)  # fmt: skip
    with cfg:
        print("\nHeld-out masked-LM loss (DNABERT span masking) of the overlapping 6-mer model:")
        print(pretraining_curves(args.out, args.steps, args.jobs))
        print(f"curves: {args.out / 'recipe_curves.png'}")
        print("\nNext-k-mer fine-tuning of the nucleotide model, demo budget, by head:")
        print(finetune_heads(args.out))


if __name__ == "__main__":
    main()
