"""The ``dnakmer`` command line. Commands are thin: they parse options, call the
package's functions and print what those return."""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from dnakmer import __version__, cli_interrogate, cli_train
from dnakmer.cli_nextkmer import app as nextkmer_app
from dnakmer.cli_probe import embed as _embed
from dnakmer.cli_probe import probe_app as _probe_app
from dnakmer.cli_tasks import app as tasks_app
from dnakmer.data import example_genome

app = typer.Typer(
    name="dnakmer",
    help="Genomes to model-ready k-mer tensors, and probes of what DNA language models learn.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

GenomeArg = Annotated[
    Path | None,
    typer.Argument(
        help="FASTA file (plain, gzip or BGZF). Default: the phage lambda genome shipped "
        "with dnakmer.",
        show_default=False,
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        "-t",
        help="Threads for decompression and, when tokenizing a plain file, for its "
        "records [default: all cores].",
    ),
]


class StatsFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dnakmer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """dnakmer: genomes to model-ready k-mer tensors, and probes of what DNA language
    models learn."""


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


@app.command()
def stats(
    genome: GenomeArg = None,
    fmt: Annotated[
        StatsFormat, typer.Option("--format", "-f", help="Output format.")
    ] = StatsFormat.table,
    threads: ThreadsOpt = None,
) -> None:
    """Per-record length, base counts, N, other IUPAC, soft-masked bases and GC."""
    from dnakmer.genome import Genome

    path = genome or example_genome()
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
                    "" if v is None else f"{v:.4f}" if isinstance(v, float) else f"{v:,}"
                    if isinstance(v, int) else str(v)
                    for v in row
                )
            )
        # Piped output is not cut to 80 columns: numbers must stay whole.
        Console(width=None if sys.stdout.isatty() else 240).print(table)


@app.command()
def vocab(
    k: Annotated[int, typer.Option("--k", "-k", help="k-mer length (1-8).")] = 6,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="File (or directory) to write vocab.txt to.")
    ] = Path("vocab.txt"),
) -> None:
    """Write DNABERT's vocabulary for k: [PAD] [UNK] [CLS] [SEP] [MASK], then all 4^k
    k-mers in itertools.product('ATCG') order."""
    from dnakmer.tokenizer import KmerTokenizer

    tok = KmerTokenizer(k)
    path = tok.save_vocab(out)
    typer.echo(f"wrote {path} ({tok.vocab_size} tokens)")


@app.command()
def tokenize(
    genome: GenomeArg = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (one .npy per record).")
    ] = Path("tokens"),
    k: Annotated[int, typer.Option("--k", "-k", help="k-mer length (1-8).")] = 6,
    stride: Annotated[
        int, typer.Option("--stride", "-s", help="Token stride: 1 = overlapping, k = disjoint.")
    ] = 1,
    vocab_file: Annotated[
        Path | None,
        typer.Option("--vocab", help="vocab.txt of the model (default: DNABERT layout for k)."),
    ] = None,
    threads: ThreadsOpt = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into a non-empty directory.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Tokenize every record into memory-mappable token-id arrays plus manifest.json."""
    from dnakmer.tokenizer import KmerTokenizer, tokenize_genome

    path = genome or example_genome()
    if vocab_file is not None:
        tok = KmerTokenizer.from_vocab(vocab_file, stride=stride)
        if tok.k != k and k != 6:
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


app.add_typer(_probe_app, name="probe")
app.command("embed")(_embed)


app.add_typer(nextkmer_app, name="nextkmer")
app.command("pretrain")(cli_train.pretrain_command)
app.add_typer(cli_train.finetune_app, name="finetune")
app.add_typer(tasks_app, name="tasks")
app.command("interrogate")(cli_interrogate.interrogate_command)
app.command("demo")(cli_interrogate.demo_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: the package's errors become one red line and exit code 1
    (set ``DNAKMER_DEBUG=1`` for the traceback); usage errors exit with code 2."""
    from dnakmer.exceptions import DnakmerError

    try:
        app(args=argv, prog_name="dnakmer")
    except (DnakmerError, OSError, ValueError) as e:
        if os.environ.get("DNAKMER_DEBUG"):
            raise
        from rich.console import Console

        Console(stderr=True, highlight=False).print(f"[red]error:[/red] {e}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
