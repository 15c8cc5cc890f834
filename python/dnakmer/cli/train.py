"""``dnakmer pretrain``: training commands of the command line."""

from __future__ import annotations

import enum
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dnakmer.cli.nextkmer import OrdersOption
from dnakmer.cli.options import (
    RULES,
    BatchSizeOpt,
    Command,
    DeviceOpt,
    GenomeArg,
    Group,
    KOpt,
    ModelOpt,
    NSeedsOpt,
    OutOpt,
    QuietOpt,
    Rule,
    SeedOpt,
    TestRecordOpt,
    TrustRemoteCodeOpt,
    ValRecordOpt,
    WindowTokensOpt,
    check_rules,
)

if TYPE_CHECKING:
    from dnakmer.training.pretrain import ModelShape


class Tokenization(str, enum.Enum):
    overlapping = "overlapping"
    nonoverlapping = "nonoverlapping"
    nucleotide = "nucleotide"
    bpe = "bpe"


class Size(str, enum.Enum):
    tiny = "tiny"
    small = "small"
    dnabert = "dnabert"


class PositionInit(str, enum.Enum):
    random = "random"
    sinusoidal = "sinusoidal"


class Pooling(str, enum.Enum):
    last = "last"
    cls = "cls"
    mean = "mean"


StepsOpt = Annotated[int, typer.Option("--max-steps", help="Optimizer steps per run.", min=1)]
AccumOpt = Annotated[int, typer.Option("--grad-accum", help="Gradient accumulation steps.", min=1)]
LrOpt = Annotated[float, typer.Option("--lr", help="Peak learning rate.", min=0.0)]
EvalOpt = Annotated[
    int, typer.Option("--eval-every", help="Evaluate and checkpoint every N steps.", min=1)
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue from the last checkpoint in --out.")
]

_KMERS = (Tokenization.overlapping, Tokenization.nonoverlapping)
RULES["pretrain"] = (
    Rule(("vocab_size",), "used only with --tokenization bpe",
         lambda p: p["tokenization"] is Tokenization.bpe, ("--vocab-size", "100")),
    Rule(("k",), "used only with --tokenization overlapping or nonoverlapping",
         lambda p: p["tokenization"] in _KMERS, ("--tokenization", "nucleotide", "--k", "3")),
    Rule(("random_masking_steps",), "used only with --tokenization overlapping (span masking)",
         lambda p: p["tokenization"] is Tokenization.overlapping,
         ("--tokenization", "bpe", "--random-masking-steps", "5")),
    Rule(("stop_after",), "must be below --max-steps (the run ends there anyway)",
         lambda p: p["stop_after"] < p["max_steps"], ("--max-steps", "10", "--stop-after", "10")),
)
_SOURCES = ("train", "val", "test", "bed", "genome", "label_column", "val_record", "test_record")
RULES["finetune classify"] = (
    Rule(("data",), "used on its own (not with --train/--val/--test or --bed/--genome)",
         lambda p: all(not p[s] for s in _SOURCES[:5]), ("--data", "d", "--train", "t.tsv")),
    Rule(("train", "val", "test"), "used without --bed and --genome",
         lambda p: p["bed"] is None and p["genome"] is None,
         ("--train", "t.tsv", "--val", "d.tsv", "--bed", "b.bed", "--genome", "g.fa")),
    Rule(("test",), "used only with --train and --val", lambda p: p["train"] is not None,
         ("--test", "t.tsv")),
    Rule(("label_column", "val_record", "test_record"), "used only with --bed",
         lambda p: p["bed"] is not None, ("--val-record", "chrI")),
    Rule(("window_tokens",), "used only with --train/--val or --bed (a dataset sets its "
         "windows)", lambda p: p["data"] is None, ("--data", "d", "--window-tokens", "100")),
)  # fmt: skip


def pretrain_command(
    ctx: typer.Context,
    genome: GenomeArg,
    out: OutOpt,
    tokenization: Annotated[
        Tokenization,
        typer.Option(
            "--tokenization",
            help="Token scheme (masking follows it): overlapping or non-overlapping k-mers, "
            "single nucleotides, or a BPE vocabulary learned on the genome (tokenizer.json).",
        ),
    ] = Tokenization.overlapping,
    k: KOpt = 6,
    vocab_size: Annotated[
        int,
        typer.Option(
            "--vocab-size", help="Tokens of the BPE vocabulary (with --tokenization bpe).", min=1
        ),
    ] = 512,
    window_tokens: WindowTokensOpt = 128,
    size: Annotated[
        Size, typer.Option(help="tiny (CPU tests), small, or dnabert (12x768, for GPUs).")
    ] = Size.tiny,
    layers: Annotated[
        int | None,
        typer.Option("--n-layers", help="Encoder layers. Default: the --size's.", min=1),
    ] = None,
    heads: Annotated[
        int | None,
        typer.Option(
            "--n-heads",
            help="Attention heads per layer, a divisor of the hidden size. Default: the --size's.",
            min=1,
        ),
    ] = None,
    dropout: Annotated[
        float | None,
        typer.Option(help="Dropout probability. Default: 0.1, as BERT.", min=0.0, max=0.9),
    ] = None,
    position_init: Annotated[
        PositionInit,
        typer.Option(
            help="How the learned position embeddings start: random (BERT) or the scaled "
            "sine/cosine table (a small model then learns to read neighbours much sooner)."
        ),
    ] = PositionInit.random,
    n_train: Annotated[
        int, typer.Option("--n-train", help="Training windows drawn from the genome.", min=1)
    ] = 20_000,
    n_val: Annotated[
        int, typer.Option("--n-val", help="Held-out validation windows.", min=1)
    ] = 512,
    val_record: ValRecordOpt = None,
    random_masking_steps: Annotated[
        int,
        typer.Option(
            help="Overlapping k-mers: first N steps with BERT's random token masking, then "
            "DNABERT's span masking (a small model does not start learning under span masking).",
            min=0,
        ),
    ] = 0,
    max_steps: StepsOpt = 1000,
    stop_after: Annotated[
        int | None,
        typer.Option(
            help="Stop after N steps on the --max-steps schedule (continue with --resume).", min=1
        ),
    ] = None,
    batch_size: BatchSizeOpt = 32,
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
    check_rules(ctx, "pretrain")
    from dnakmer.training.pretrain import ModelShape, pretrain
    from dnakmer.training.trainer import TrainOptions

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
    from dnakmer.cli.display import showing_progress

    with showing_progress(not quiet):
        result = pretrain(
            genome,
            out,
            tokenization=tokenization.value,
            k=k,
            max_tokens=window_tokens,
            shape=replace(
                _shape(shapes[size], layers, heads, dropout), position_init=position_init.value
            ),
            options=opts,
            n_train=n_train,
            n_eval=n_val,
            eval_records=val_record or None,
            random_masking_steps=random_masking_steps,
            stop_after=stop_after,
            resume=resume,
            vocab_size=vocab_size,
        )
    ev = result.final_eval
    typer.echo(
        f"eval loss {ev.get('eval_loss', float('nan')):.4f}, masked-token accuracy "
        f"{ev.get('eval_mlm_accuracy', float('nan')):.4f}; model in {result.out_dir}/"
    )


def _shape(
    base: ModelShape, layers: int | None, heads: int | None, dropout: float | None
) -> ModelShape:
    if layers is not None:
        if layers < 1:
            raise typer.BadParameter(f"must be at least 1, got {layers}", param_hint="--n-layers")
        base = replace(base, layers=layers)
    if heads is not None:
        if heads < 1 or base.hidden % heads:
            raise typer.BadParameter(
                f"must be at least 1 and divide the hidden size {base.hidden}, got {heads}",
                param_hint="--n-heads",
            )
        base = replace(base, heads=heads)
    if dropout is not None:
        if not 0.0 <= dropout < 1.0:
            raise typer.BadParameter(f"must be in [0, 1), got {dropout}", param_hint="--dropout")
        base = replace(base, dropout=dropout)
    return base


finetune_app = typer.Typer(
    help="Fine-tune a model: next-k-mer benchmark or classification tasks.",
    no_args_is_help=True,
    cls=Group,
)


def _options(
    max_steps: int,
    batch_size: int,
    grad_accum: int,
    lr: float,
    eval_every: int,
    seed: int,
    device: str,
    quiet: bool,
    early_stopping: int | None = None,
) -> object:
    from dnakmer.training.trainer import TrainOptions

    return TrainOptions(
        max_steps=max_steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        learning_rate=lr,
        eval_every=eval_every,
        log_every=max(1, min(50, eval_every // 2)),
        seed=seed,
        device=device,
        quiet=quiet,
        early_stopping=early_stopping,
    )


class Init(str, enum.Enum):
    pretrained = "pretrained"
    random = "random"
    both = "both"


class ClassifyInit(str, enum.Enum):
    pretrained = "pretrained"
    random = "random"


@finetune_app.command("nextkmer", cls=Command)
def finetune_nextkmer_command(
    model: ModelOpt,
    data: Annotated[
        list[Path],
        typer.Option(
            "--data", "-d", help="Dataset from `dnakmer nextkmer build` (repeat for several k)."
        ),
    ],
    out: OutOpt,
    init: Annotated[
        Init, typer.Option(help="Pretrained weights, random init (control), or both.")
    ] = Init.both,
    seeds: NSeedsOpt = 1,
    freeze_encoder: Annotated[
        bool, typer.Option(help="Train only the head (linear probe).")
    ] = False,
    linear_probe: Annotated[
        bool,
        typer.Option(
            help="Also fit a logistic regression on each frozen encoder's pooled states "
            "(pretrained and random init): what the representation holds before fine-tuning."
        ),
    ] = False,
    early_stopping: Annotated[
        int | None, typer.Option(help="Stop after N evaluations without improvement.", min=1)
    ] = None,
    orders: Annotated[str, OrdersOption] = "0-12",
    pooling: Annotated[
        Pooling,
        typer.Option(
            help="Hidden state the head reads: the last token (default; the bases that follow "
            "depend most on the window's end), [CLS] (Hugging Face's head), or the mean."
        ),
    ] = Pooling.last,
    max_steps: StepsOpt = 1000,
    batch_size: BatchSizeOpt = 32,
    grad_accum: AccumOpt = 1,
    lr: LrOpt = 5e-5,
    eval_every: EvalOpt = 200,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    resume: ResumeOpt = False,
    quiet: QuietOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Fine-tune on next-k-mer datasets (4^k classes) and compare with the baselines."""
    import polars as pl

    from dnakmer.cli.nextkmer import parse_orders
    from dnakmer.datasets.baselines import baselines
    from dnakmer.datasets.nextkmer import NextKmerDataset
    from dnakmer.probes import nextkmer as nextkmer_benchmark
    from dnakmer.probes.nextkmer import benchmark_model, comparison_table

    inits = ["pretrained", "random"] if init is Init.both else [init.value]
    opts = _options(
        max_steps, batch_size, grad_accum, lr, eval_every, seed, device, quiet, early_stopping
    )
    from dnakmer.cli.display import showing_progress

    with showing_progress(not quiet):
        runs = benchmark_model(
            model,
            data,
            out,
            inits=inits,
            seeds=[seed + i for i in range(seeds)],
            options=opts,
            freeze_encoder=freeze_encoder,
            resume=resume,
            pooling=pooling.value,
            trust_remote_code=trust_remote_code,
        )  # type: ignore[arg-type]
    from dnakmer.training.trainer import is_main_process

    if not is_main_process():
        return
    base = []
    for d in data:
        ds = NextKmerDataset.load(d)
        base.append(baselines(ds, parse_orders(orders), ks=[ds.k]))
    base_table = pl.concat(base, how="diagonal_relaxed")
    table = comparison_table(runs, base_table, model.name)
    if linear_probe:
        probes = nextkmer_benchmark.linear_probe(
            model,
            data,
            inits=inits,
            pooling=pooling.value,
            seed=seed,
            batch_size=batch_size,
            device=None if device == "auto" else device,
            trust_remote_code=trust_remote_code,
        )
        table = nextkmer_benchmark.add_probe_rows(table, probes, base_table, model.name)
        runs = pl.concat(
            [
                runs.with_columns(protocol=pl.lit("fine-tuned")),
                probes.with_columns(protocol=pl.lit("linear probe")),
            ],
            how="diagonal_relaxed",
        )
    files = nextkmer_benchmark.write_comparison(table, runs, out)
    _print_comparison(table)
    typer.echo(f"results in {files['comparison']} and {files['plot']}")


def _print_comparison(table: Any) -> None:
    """The next-k-mer comparison as a table: each predictor's test accuracy with its
    95 % interval, top-5 accuracy and bits, degenerate runs marked, and what an empty
    interval over seeds means."""
    from dnakmer.cli.display import print_table
    from dnakmer.probes.nextkmer import accuracy_interval

    rows = []
    for r in table.to_dicts():
        seeds = "" if r["n_seeds"] is None else r["n_seeds"]
        rows.append(
            r | {"ci95": accuracy_interval(r), "seeds": seeds,
                 "verdict": "DEGENERATE" if r.get("degenerate") else ""}
        )  # fmt: skip
    print_table(
        rows,
        ["k", "predictor", "accuracy", "ci95", "top5_accuracy", "cross_entropy_bits", "seeds",
         "verdict"],
        title="Next-k-mer benchmark, test split",
        headers={"ci95": "95 % CI", "top5_accuracy": "top-5", "cross_entropy_bits": "bits"},
        caption="Accuracy of the next k bases (4^k classes); the interval is the wider of "
        "the one over seeds and the binomial one over the test windows (one seed: the "
        "latter only). DEGENERATE: the model answers one class for 90 % of the windows or "
        "is no better than the class prior; no finding is drawn from it.",
    )  # fmt: skip
    for r in rows:
        if r.get("degenerate"):
            typer.echo(f"DEGENERATE: k = {r['k']}, {r['predictor']} {r['degenerate']}")


@finetune_app.command("classify", cls=Command)
def finetune_classify_command(
    ctx: typer.Context,
    model: ModelOpt,
    out: OutOpt,
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="Dataset from `dnakmer tasks build`.")
    ] = None,
    train: Annotated[
        Path | None, typer.Option(help="DNABERT train.tsv (sequence<TAB>label).")
    ] = None,
    val: Annotated[
        Path | None, typer.Option("--val", help="Validation file: DNABERT's dev.tsv.")
    ] = None,
    test: Annotated[Path | None, typer.Option(help="Optional test.tsv.")] = None,
    bed: Annotated[Path | None, typer.Option(help="BED intervals (with --genome).")] = None,
    genome: Annotated[Path | None, typer.Option(help="Reference FASTA for --bed.")] = None,
    label_column: Annotated[
        str, typer.Option(help="BED column holding the label: name, score or strand.")
    ] = "name",
    val_record: ValRecordOpt = None,
    test_record: TestRecordOpt = None,
    init: Annotated[
        ClassifyInit, typer.Option(help="Pretrained weights or random init (control).")
    ] = ClassifyInit.pretrained,
    freeze_encoder: Annotated[
        bool, typer.Option(help="Train only the head (linear probe).")
    ] = False,
    window_tokens: WindowTokensOpt = 510,
    max_steps: StepsOpt = 1000,
    batch_size: BatchSizeOpt = 32,
    grad_accum: AccumOpt = 1,
    lr: LrOpt = 5e-5,
    eval_every: EvalOpt = 200,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    resume: ResumeOpt = False,
    quiet: QuietOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Fine-tune a classifier on a task dataset, DNABERT tsv files, or BED + FASTA."""
    check_rules(ctx, "finetune classify")
    from dnakmer.models import load_tokenizer
    from dnakmer.tokenizer import KmerTokenizer
    from dnakmer.training import finetune as ft

    tok = load_tokenizer(model, trust_remote_code=trust_remote_code)
    if data is None and not isinstance(tok, KmerTokenizer):
        raise ValueError(
            f"{model}: --train/--val and --bed read k-mer models only; for other "
            "tokenizers build a dataset of bases with `dnakmer tasks build` and pass --data"
        )
    if data is not None:
        cdata = ft.data_from_dataset(data, tok, model=model.name)
    elif train is not None and val is not None:
        cdata = ft.data_from_tsv(train, val, tok, test=test, max_length=window_tokens + 2)
    elif bed is not None and genome is not None:
        cdata = ft.data_from_bed(
            bed,
            genome,
            tok,
            label_column=label_column,
            val_records=val_record or [],
            test_records=test_record or [],
            max_length=window_tokens + 2,
        )
    else:
        raise typer.BadParameter("give --data, or --train and --val, or --bed and --genome")
    opts = _options(max_steps, batch_size, grad_accum, lr, eval_every, seed, device, quiet)
    from dnakmer.cli.display import showing_progress

    with showing_progress(not quiet):
        result = ft.finetune(
            cdata,
            model,
            out,
            init=init.value,
            options=opts,  # type: ignore[arg-type]
            freeze_encoder=freeze_encoder,
            resume=resume,
            trust_remote_code=trust_remote_code,
        )
    from dnakmer.cli.display import print_table
    from dnakmer.probes.nextkmer import CONSTANT_SHARE

    metrics = ("accuracy", "macro_f1", "mcc", "auc", "loss", "majority_share")
    rows = []
    for name, prefix in (("validation", "val"), ("test", "test")):
        if f"{prefix}_accuracy" not in result.metrics:
            continue
        row = {"split": name, **{m: result.metrics.get(f"{prefix}_{m}") for m in metrics}}
        share = row["majority_share"]
        row["verdict"] = "DEGENERATE" if share is not None and share >= CONSTANT_SHARE else ""
        rows.append(row)
    print_table(
        rows,
        ["split", *metrics, "verdict"],
        title=f"{model.name} fine-tuned ({init.value} init), best checkpoint",
        headers={"macro_f1": "macro F1", "mcc": "MCC", "auc": "AUC",
                 "majority_share": "one class"},
        caption="The checkpoint with the lowest validation loss. MCC: Matthews correlation "
        "(0 for a constant or random classifier); AUC: area under the ROC curve (two "
        "classes; one class against the rest for more); one class: share of samples given "
        "the most common answer. DEGENERATE: one class for 90 % of the samples or more, "
        "a constant predictor.",
    )  # fmt: skip
    typer.echo(f"model and results.json in {out}/")
