"""The ``dnakmer`` command line: the root command, its groups and the entry point.
Commands are thin: they parse options, call the package's functions and print what those
return; each group lives in its own module of :mod:`dnakmer.cli`."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from dnakmer import __version__
from dnakmer.cli import genome, interrogate, train
from dnakmer.cli.nextkmer import app as nextkmer_app
from dnakmer.cli.options import Command, Group
from dnakmer.cli.probe import embed as _embed
from dnakmer.cli.probe import probe_app as _probe_app
from dnakmer.cli.tasks import app as tasks_app
from dnakmer.cli.variants import app as variants_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="dnakmer",
    help="Genomes to model-ready k-mer tensors, and probes of what DNA language models learn.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Group,
)


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


app.command("stats", cls=Command)(genome.stats)
app.command("vocab", cls=Command)(genome.vocab)
app.command("tokenize", cls=Command)(genome.tokenize)
app.add_typer(_probe_app, name="probe")
app.command("embed", cls=Command)(_embed)


app.add_typer(nextkmer_app, name="nextkmer")
app.command("pretrain", cls=Command)(train.pretrain_command)
app.add_typer(train.finetune_app, name="finetune")
app.add_typer(tasks_app, name="tasks")
app.add_typer(variants_app, name="variants")
app.command("interrogate", cls=Command)(interrogate.interrogate_command)
app.command("demo", cls=Command)(interrogate.demo_command)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a batch scheduler, ``docker stop``): stops a command
    the way Ctrl-C does, so that it cleans up what it was writing."""


_signalled: list[int] = []


def _terminate(signum: int, frame: object) -> None:
    _signalled.append(signum)
    raise Terminated


def error_text(e: BaseException) -> str:
    """The one line an error is shown as: an operating-system error as its reason and
    file (``No such checkpoint folder: model``), without ``[Errno 2]`` and quotes."""
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        files = [os.fsdecode(f) for f in (e.filename, e.filename2) if f is not None]
        return f"{e.strerror}: {' -> '.join(files)}"
    return str(e)


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning as one yellow line on stderr, without the file and code line; those of
    other libraries only with ``DNAKMER_DEBUG=1``."""
    from rich.console import Console

    if not Path(filename).resolve().is_relative_to(_PACKAGE):
        return
    Console(stderr=True, highlight=False).print(
        f"[yellow]warning:[/yellow] {message}", soft_wrap=True, markup=True
    )


_PACKAGE = Path(__file__).resolve().parents[1]


def _quiet_libraries() -> None:
    """Library noise (transformers' log lines, other libraries' warnings) stays off the
    terminal unless ``DNAKMER_DEBUG=1``; dnakmer's own warnings are one line each."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.showwarning = _one_line_warning


def main(argv: list[str] | None = None) -> None:
    """Entry point: the package's errors become one red line and exit code 1
    (set ``DNAKMER_DEBUG=1`` for the traceback); usage errors exit with code 2; Ctrl-C
    and SIGTERM stop the command, leaving no half-written output, with 130 and 143."""
    from dnakmer.exceptions import DnakmerError

    handle = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if handle else None
    debug = bool(os.environ.get("DNAKMER_DEBUG"))
    shown = warnings.showwarning
    if not debug:
        _quiet_libraries()
    try:
        app(args=argv, prog_name="dnakmer")
    except (DnakmerError, OSError, ValueError) as e:
        if debug:
            raise
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True, highlight=False).print(
            f"[red]error:[/red] {escape(error_text(e))}", soft_wrap=True
        )
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGTERM if _signalled else 130)
    except SystemExit as e:
        # The command line library turns an interrupt into exit 130: say it was SIGTERM.
        if _signalled and e.code == 130:
            sys.exit(128 + signal.SIGTERM)
        raise
    finally:
        warnings.showwarning = shown
        if handle:
            signal.signal(signal.SIGTERM, previous)
