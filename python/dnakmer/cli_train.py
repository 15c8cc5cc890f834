"""``dnakmer pretrain``: training commands of the command line."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer


class Tokenization(str, enum.Enum):
    overlapping = "overlapping"
    nonoverlapping = "nonoverlapping"
    nucleotide = "nucleotide"


class Size(str, enum.Enum):
    tiny = "tiny"
    small = "small"
    dnabert = "dnabert"


StepsOpt = Annotated[int, typer.Option("--max-steps", help="Optimizer steps.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Samples per device per step.")]
AccumOpt = Annotated[int, typer.Option("--grad-accum", help="Gradient accumulation steps.")]
LrOpt = Annotated[float, typer.Option("--lr", help="Peak learning rate.")]
EvalOpt = Annotated[
    int, typer.Option("--eval-every", help="Evaluate and checkpoint every N steps.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (sampling, init, masking).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue from the last checkpoint in --out.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def pretrain_command(
    genome: Annotated[Path, typer.Argument(help="FASTA file to pretrain on.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model folder.")],
    tokenization: Annotated[
        Tokenization, typer.Option(help="Token scheme (masking follows it).")
    ] = Tokenization.overlapping,
    k: Annotated[int, typer.Option("--k", "-k", help="k-mer length.")] = 6,
    max_tokens: Annotated[int, typer.Option(help="Tokens per window (plus [CLS]/[SEP]).")] = 128,
    size: Annotated[
        Size, typer.Option(help="tiny (CPU tests), small, or dnabert (12x768, for GPUs).")
    ] = Size.tiny,
    n_train: Annotated[int, typer.Option(help="Training windows drawn from the genome.")] = 20_000,
    n_eval: Annotated[int, typer.Option(help="Held-out evaluation windows.")] = 512,
    eval_records: Annotated[
        list[str] | None, typer.Option("--eval-record", help="Hold out this record (repeat).")
    ] = None,
    max_steps: StepsOpt = 1000,
    batch_size: BatchOpt = 32,
    grad_accum: AccumOpt = 1,
    lr: LrOpt = 5e-4,
    eval_every: EvalOpt = 200,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    resume: ResumeOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Pretrain a BERT masked language model on a raw genome.

    Run under `torchrun --nproc_per_node N -m dnakmer pretrain ...` for several GPUs/processes.
    """
    from dnakmer._trainer import TrainOptions
    from dnakmer.pretrain import ModelShape, pretrain

    shapes = {
        Size.tiny: ModelShape(),
        Size.small: ModelShape(hidden=256, layers=4, heads=4, intermediate=1024),
        Size.dnabert: ModelShape.dnabert(),
    }
    opts = TrainOptions(
        max_steps=max_steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        learning_rate=lr,
        eval_every=eval_every,
        log_every=max(1, min(50, eval_every // 2)),
        seed=seed,
        device=device,
        quiet=quiet,
    )
    result = pretrain(
        genome,
        out,
        tokenization=tokenization.value,
        k=k,
        max_tokens=max_tokens,
        shape=shapes[size],
        options=opts,
        n_train=n_train,
        n_eval=n_eval,
        eval_records=eval_records or None,
        resume=resume,
    )
    ev = result.final_eval
    typer.echo(
        f"eval loss {ev.get('eval_loss', float('nan')):.4f}, masked-token accuracy "
        f"{ev.get('eval_mlm_accuracy', float('nan')):.4f}; model in {result.out_dir}/"
    )
