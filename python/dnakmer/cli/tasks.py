"""``dnakmer tasks``: build genome-biology fine-tuning tasks from an annotation."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from dnakmer.cli.options import (
    RULES,
    BlockSizeHelp,
    Command,
    GenomeArg,
    Group,
    OutOpt,
    OverwriteOpt,
    QuietOpt,
    Rule,
    SeedOpt,
    Split,
    SplitOpt,
    TestFractionOpt,
    ValFractionOpt,
    check_rules,
)

app = typer.Typer(
    name="tasks",
    help="Fine-tuning tasks (promoter, splice, coding) built from a genome and its "
    "GFF3/GTF annotation.",
    no_args_is_help=True,
    cls=Group,
)


class TaskChoice(str, enum.Enum):
    promoter = "promoter"
    splice = "splice"
    coding = "coding"


class StartsFrom(str, enum.Enum):
    transcript = "transcript"
    gene = "gene"


class AnnotationFormatChoice(str, enum.Enum):
    auto = "auto"
    gff3 = "gff3"
    gtf = "gtf"


RULES["tasks build"] = (
    Rule(("window",), "used only with --task splice or coding (promoter windows are "
         "--upstream + --downstream)", lambda p: p["task"] is not TaskChoice.promoter,
         ("--task", "promoter", "--window", "100")),
    Rule(("upstream", "downstream", "min_distance", "gc_matched", "starts_from"),
         "used only with --task promoter", lambda p: p["task"] is TaskChoice.promoter,
         ("--task", "splice", "--upstream", "100")),
    Rule(("canonical_only",), "used only with --task splice",
         lambda p: p["task"] is TaskChoice.splice, ("--task", "coding", "--canonical-only")),
    Rule(("block_size",), "used only with --split blocks",
         lambda p: p["split"] is Split.blocks, ("--split", "records", "--block-size", "500")),
    Rule(("val_fraction", "test_fraction"), "too large: the shares must add up to less than 1",
         lambda p: p["val_fraction"] + p["test_fraction"] < 1,
         ("--val-fraction", "0.6", "--test-fraction", "0.4")),
    Rule(("tsv_raw",), "used only with --dnabert-tsv", lambda p: p["dnabert_tsv"], ("--tsv-raw",)),
)  # fmt: skip


@app.command(cls=Command)
def build(
    ctx: typer.Context,
    genome: GenomeArg,
    gff: Annotated[Path, typer.Option("--gff", help="GFF3 or GTF annotation of the genome.")],
    task: Annotated[TaskChoice, typer.Option("--task", help="Task to build.")],
    out: OutOpt,
    k: Annotated[
        int | None,
        typer.Option(
            "--k", "-k", help="Also store input_ids of this k-mer tokenizer (1-8).", min=1, max=8
        ),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option("--window", help="Window length: splice (default 400), coding (300).", min=1),
    ] = None,
    upstream: Annotated[
        int, typer.Option(help="Promoter: bases before the transcription start.", min=0)
    ] = 249,
    downstream: Annotated[
        int, typer.Option(help="Promoter: bases after the transcription start.", min=0)
    ] = 50,
    min_distance: Annotated[
        int, typer.Option(help="Promoter background: minimum distance to any start.", min=0)
    ] = 1000,
    gc_matched: Annotated[
        bool, typer.Option("--gc-matched", help="Promoter background matched in GC content.")
    ] = False,
    starts_from: Annotated[
        StartsFrom, typer.Option(help="Promoter anchors: transcript or gene starts.")
    ] = StartsFrom.transcript,
    canonical_only: Annotated[
        bool, typer.Option("--canonical-only", help="Splice: only GT donors, AG acceptors.")
    ] = False,
    split: SplitOpt = Split.blocks,
    block_size: Annotated[int, typer.Option("--block-size", help=BlockSizeHelp, min=1)] = 10_000,
    val_fraction: ValFractionOpt = 0.1,
    test_fraction: TestFractionOpt = 0.1,
    seed: SeedOpt = 0,
    annotation_format: Annotated[
        AnnotationFormatChoice, typer.Option("--gff-format", help="Format of the --gff file.")
    ] = AnnotationFormatChoice.auto,
    strict: Annotated[
        bool, typer.Option("--strict", help="Features past their record's end are errors.")
    ] = False,
    dnabert_tsv: Annotated[
        bool, typer.Option("--dnabert-tsv", help="Also write DNABERT train/dev/test.tsv.")
    ] = False,
    tsv_raw: Annotated[
        bool, typer.Option("--tsv-raw", help="TSV sequences as raw bases, not k-mers.")
    ] = False,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Build a task dataset: NPY fields + samples.parquet + manifest.json in --out
    (its held-out validation split is named dev in the data, as in DNABERT's files)."""
    check_rules(ctx, "tasks build")
    from dnakmer.datasets.tasks import build_task
    from dnakmer.tokenizer import KmerTokenizer

    tokenizer = KmerTokenizer(k) if k is not None else None
    from dnakmer.cli.display import showing_progress

    with showing_progress(not quiet):
        ds = build_task(
            genome,
            gff,
            task.value,  # type: ignore[arg-type]
            tokenizer=tokenizer,
            window=window,
            upstream=upstream,
            downstream=downstream,
            min_distance=min_distance,
            gc_matched=gc_matched,
            starts_from=starts_from.value,  # type: ignore[arg-type]
            canonical_only=canonical_only,
            split_by="block" if split is Split.blocks else "record",
            block_size=block_size,
            dev_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
            annotation_format=annotation_format.value,  # type: ignore[arg-type]
            strict=strict,
        )
        ds.save(out, overwrite=overwrite)
    if dnabert_tsv:
        ds.write_dnabert_tsv(out, kmer=None if tsv_raw else "auto")
    for split, counts in ds.manifest["counts"].items():
        parts = ", ".join(f"{n:,} {name}" for name, n in counts.items())
        typer.echo(f"{split}: {parts}")
    skipped = ds.manifest["annotation"]["skipped"]
    if skipped:
        typer.echo("skipped features: " + ", ".join(f"{n:,} {r}" for r, n in skipped.items()))
    typer.echo(f"wrote {len(ds):,} windows of {ds.manifest['window_length']} bp to {out}/")
