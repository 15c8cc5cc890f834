"""``dnakmer nextkmer``: build next-k-mer datasets and score their baselines."""

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
    OutHelp,
    OutOpt,
    OverwriteOpt,
    QuietOpt,
    Rule,
    SeedOpt,
    Split,
    SplitOpt,
    StrideOpt,
    TestFractionOpt,
    TestRecordOpt,
    ThreadsOpt,
    ValFractionOpt,
    ValRecordOpt,
    VocabOpt,
    check_rules,
)

app = typer.Typer(
    name="nextkmer",
    help="Next-k-mer benchmark: leakage-free datasets from any genome, and baselines.",
    no_args_is_help=True,
    cls=Group,
)


class Strand(str, enum.Enum):
    plus = "+"
    minus = "-"
    both = "both"


OrdersOption = typer.Option(
    "--orders", help="Markov orders of the baselines, e.g. '0-12' or '0,2,4'."
)


def parse_orders(text: str) -> list[int]:
    """Parse ``"0-12"`` or ``"0,2,4"`` (ranges inclusive)."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not like '0-12' or '0,2,4'") from None
    return out


RULES["nextkmer build"] = (
    Rule(("val_record", "test_record"), "used only with --split records",
         lambda p: p["split"] is Split.records, ("--val-record", "chrI")),
    Rule(("val_fraction", "test_fraction", "block_size"), "used only with --split blocks",
         lambda p: p["split"] is Split.blocks, ("--split", "records", "--block-size", "500")),
    Rule(("val_fraction", "test_fraction"), "too large: the shares must add up to less than 1",
         lambda p: p["val_fraction"] + p["test_fraction"] < 1,
         ("--val-fraction", "0.5", "--test-fraction", "0.5")),
    Rule(("token_k", "stride", "vocab", "no_special_tokens"),
         "used only without --raw (raw bases have no tokens)", lambda p: not p["raw"],
         ("--raw", "--stride", "2")),
    Rule(("token_k",), "used only without --vocab (the vocabulary sets k)",
         lambda p: p["vocab"] is None, ("--vocab", "vocab.txt", "--token-k", "3")),
)  # fmt: skip


@app.command(cls=Command)
def build(
    ctx: typer.Context,
    genome: GenomeArg,
    out: OutOpt,
    k: Annotated[
        int, typer.Option("--k", "-k", help="Label length: next k bases (1-8).", min=1, max=8)
    ] = 6,
    context: Annotated[
        int,
        typer.Option("--context", "-c", help="Context length in bases (DNABERT-6: 515).", min=1),
    ] = 515,
    n_train: Annotated[int, typer.Option("--n-train", help="Train samples.", min=0)] = 100_000,
    n_val: Annotated[int, typer.Option("--n-val", help="Validation samples.", min=0)] = 10_000,
    n_test: Annotated[int, typer.Option("--n-test", help="Test samples.", min=0)] = 10_000,
    split: SplitOpt = Split.blocks,
    val_record: ValRecordOpt = None,
    test_record: TestRecordOpt = None,
    val_fraction: ValFractionOpt = 0.1,
    test_fraction: TestFractionOpt = 0.1,
    block_size: Annotated[
        int | None,
        typer.Option(
            "--block-size", help=BlockSizeHelp, show_default="100 kb, at most genome/20", min=1
        ),
    ] = None,
    strand: Annotated[Strand, typer.Option(help="Strands to sample.")] = Strand.plus,
    dedup: Annotated[
        bool, typer.Option("--dedup", help="Redraw train windows equal to a val/test window.")
    ] = False,
    token_k: Annotated[
        int, typer.Option("--token-k", help="k of the k-mer tokenizer.", min=1, max=8)
    ] = 6,
    stride: StrideOpt = 1,
    vocab: VocabOpt = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Store the context as uint8 base codes, no tokens.")
    ] = False,
    no_special_tokens: Annotated[
        bool, typer.Option("--no-special-tokens", help="Rows without [CLS] ... [SEP].")
    ] = False,
    seed: SeedOpt = 0,
    threads: ThreadsOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Draw train/val/test windows, tokenize the contexts, label the next k bases and
    write .npy fields, samples.parquet and manifest.json to OUT."""
    check_rules(ctx, "nextkmer build")
    from dnakmer.datasets.nextkmer import build as build_dataset
    from dnakmer.tokenizer import KmerTokenizer

    tokenizer = None
    if not raw:
        if vocab is not None:
            tokenizer = KmerTokenizer.from_vocab(vocab, stride=stride)
        else:
            tokenizer = KmerTokenizer(token_k, stride)
    from dnakmer.cli.display import showing_progress

    with showing_progress(not quiet):
        ds = build_dataset(
            genome, k, context, tokenizer, n_train=n_train, n_val=n_val, n_test=n_test,
            split=split.value, val_records=val_record or [], test_records=test_record or [],
            val_fraction=val_fraction, test_fraction=test_fraction, block_size=block_size,
            strand=strand.value, dedup=dedup, add_special_tokens=not no_special_tokens,
            seed=seed, threads=threads,
        )  # fmt: skip
        path = ds.save(out, overwrite=overwrite)
    c = ds.manifest["counts"]
    typer.echo(
        f"{c['train']:,} train, {c['val']:,} val, {c['test']:,} test samples; input_ids "
        f"{ds.input_ids.dtype}{list(ds.input_ids.shape)}; "
        f"{ds.manifest['duplicates_rejected']:,} duplicate train windows redrawn -> {path}/"
    )


@app.command(cls=Command)
def baselines(
    dataset: Annotated[Path, typer.Argument(help="Dataset directory from `nextkmer build`.")],
    orders: Annotated[str, OrdersOption] = "0-12",
    alpha: Annotated[float, typer.Option(help="Add-alpha smoothing.", min=0.0)] = 1.0,
    genome: Annotated[
        Path | None,
        typer.Option(help="The genome FASTA, if it moved since the build (sha256-checked)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help=OutHelp, show_default="DATASET/baselines"),
    ] = None,
    seed: SeedOpt = 0,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score uniform, class-prior and Markov baselines on the test split (fitted on train);
    print a table and write baselines.json, baselines.parquet and baselines.png."""
    from dnakmer.datasets.baselines import baselines as score
    from dnakmer.datasets.baselines import save_baselines
    from dnakmer.datasets.nextkmer import NextKmerDataset

    ds = NextKmerDataset.load(dataset)
    from dnakmer.cli.display import showing_progress

    with showing_progress(not quiet):
        df = score(ds, parse_orders(orders), alpha=alpha, genome=genome, seed=seed,
                   threads=threads)  # fmt: skip
    paths = save_baselines(df, out or dataset / "baselines")
    from dnakmer.cli.display import print_table

    print_table(
        df.to_dicts(),
        ["baseline", "order", "k", "accuracy", "top5_accuracy", "mcc", "macro_f1",
         "cross_entropy_bits"],
        title=f"Next-k-mer baselines on the test split of {dataset}",
        headers={"top5_accuracy": "top-5", "macro_f1": "macro F1", "mcc": "MCC",
                 "cross_entropy_bits": "bits", "k": "k'"},
        caption="Fitted on the train split. uniform: a random class; prior: the most "
        "common class of train; markov: a chain of the given order predicting k' bases "
        "(k' = 1 .. k; accuracy of the next k' bases). bits: cross-entropy per window.",
    )  # fmt: skip
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
