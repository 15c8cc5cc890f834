"""``dnakmer stats``, ``dnakmer vocab`` and ``dnakmer tokenize``: genomes and their
k-mer tokens."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from dnakmer.cli.options import (
    DefaultGenomeArg,
    KOpt,
    OutHelp,
    OutOpt,
    OverwriteOpt,
    QuietOpt,
    StrideOpt,
    ThreadsOpt,
    VocabOpt,
    given,
)
from dnakmer.data import example_genome

__all__ = ["byte_progress", "stats", "tokenize", "vocab"]



class StatsFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


@contextmanager
def byte_progress(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar fed as ``callback(bytes_done, bytes_total)``."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )
    task = progress.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        yield update


def stats(
    genome: DefaultGenomeArg = None,
    fmt: Annotated[
        StatsFormat, typer.Option("--format", "-f", help="Output format.")
    ] = StatsFormat.table,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Per-record length, base counts, N, other IUPAC, soft-masked bases and GC."""
    from dnakmer.cli.display import showing_progress
    from dnakmer.genome import Genome

    path = genome or example_genome()
    with showing_progress(not quiet):
        df = Genome.open(path, threads=threads).stats()
    if fmt is StatsFormat.json:
        typer.echo(json.dumps(df.to_dicts(), indent=2))
    elif fmt is StatsFormat.csv:
        typer.echo(df.write_csv(), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=str(path))
        for col in df.columns:
            table.add_column(col, justify="left" if col == "name" else "right")
        for row in df.iter_rows():
            table.add_row(
                *(
                    ""
                    if v is None
                    else f"{v:.4f}"
                    if isinstance(v, float)
                    else f"{v:,}"
                    if isinstance(v, int)
                    else str(v)
                    for v in row
                )
            )
        # Piped output is not cut to 80 columns: numbers must stay whole.
        Console(width=None if sys.stdout.isatty() else 240).print(table)


def vocab(
    k: KOpt = 6,
    out: Annotated[Path, typer.Option("--out", "-o", help=OutHelp)] = Path("vocab.txt"),
) -> None:
    """Write DNABERT's vocabulary for k: [PAD] [UNK] [CLS] [SEP] [MASK], then all 4^k
    k-mers in itertools.product('ATCG') order, to the file --out (given a folder, to
    vocab.txt in it)."""
    from dnakmer.tokenizer import KmerTokenizer

    tok = KmerTokenizer(k)
    path = tok.save_vocab(out)
    typer.echo(f"wrote {path} ({tok.vocab_size} tokens)")


def tokenize(
    ctx: typer.Context,
    genome: DefaultGenomeArg = None,
    out: OutOpt = Path("tokens"),
    k: KOpt = 6,
    stride: StrideOpt = 1,
    vocab_file: VocabOpt = None,
    threads: ThreadsOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Tokenize every record into memory-mappable token-id arrays (one .npy per record)
    plus manifest.json in --out. An earlier output of the same genome and settings there
    is replaced; one of another genome or other settings needs --overwrite."""
    from dnakmer.tokenizer import KmerTokenizer, tokenize_genome

    path = genome or example_genome()
    if vocab_file is not None:
        tok = KmerTokenizer.from_vocab(vocab_file, stride=stride)
        if tok.k != k and given(ctx, "k"):
            raise typer.BadParameter(f"--k {k} does not match the {tok.k}-mer vocabulary")
    else:
        tok = KmerTokenizer(k, stride)
    with byte_progress(f"tokenizing {path.name}", enabled=not quiet) as cb:
        manifest = tokenize_genome(
            path, tok, out, threads=threads, progress=cb, overwrite=overwrite
        )
    c = manifest["counts"]
    typer.echo(
        f"{c['records']} records, {c['bases']:,} bases -> {c['tokens']:,} tokens "
        f"({c['unk_tokens']:,} [UNK], {manifest['dtype']}) in {out}/"
    )
