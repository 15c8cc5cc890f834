"""Options shared by several commands, so that each concept has one name, one short
flag and one help text everywhere (the vocabulary is written down in docs/cli.md)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = [
    "RULES",
    "BatchSizeOpt",
    "BlockSizeHelp",
    "Command",
    "DefaultGenomeArg",
    "DeviceOpt",
    "GenomeArg",
    "Group",
    "KOpt",
    "ModelOpt",
    "NSeedsOpt",
    "NWindowsOpt",
    "OutHelp",
    "OutOpt",
    "OverwriteOpt",
    "QuietOpt",
    "Rule",
    "SeedOpt",
    "Split",
    "SplitOpt",
    "StrideOpt",
    "TestFractionOpt",
    "TestRecordOpt",
    "ThreadsOpt",
    "TrustRemoteCodeOpt",
    "ValFractionOpt",
    "ValRecordOpt",
    "VocabOpt",
    "WindowTokensOpt",
    "check_rules",
    "device_or_none",
]


def _plain_flags(command: Any, ctx: typer.Context) -> None:
    """Boolean flags take no value: show none (typer's help shows ``<bool>``)."""
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


class Command(TyperCommand):
    """A command whose help shows no value for its flags."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        _plain_flags(self, ctx)
        super().format_help(ctx, formatter)


class Group(TyperGroup):
    """A command group whose help shows no value for its flags."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        _plain_flags(self, ctx)
        super().format_help(ctx, formatter)


# The genome a command reads as its main input: always the first argument.
GenomeArg = Annotated[
    Path,
    typer.Argument(metavar="GENOME", help="FASTA file (plain, gzip or BGZF).", show_default=False),
]
DefaultGenomeArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="GENOME",
        help="FASTA file (plain, gzip or BGZF). Default: the phage lambda genome shipped "
        "with dnakmer.",
        show_default=False,
    ),
]
OutHelp = "Where the command writes its output (see its description)."
OutOpt = Annotated[Path, typer.Option("--out", "-o", help=OutHelp)]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace what --out holds. Without it, --out must be empty or hold an earlier "
        "output of the same command (tokenize: of the same genome and settings).",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress display on the terminal.")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        "-t",
        help="Threads for reading the genome (decompression) and the command's own work. "
        "Default: all cores.",
        min=1,
    ),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="Torch device: auto (a GPU if there is one), cpu or cuda.")
]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed",
        help="Random seed (sampling, initialization, shuffles): the same seed and inputs "
        "give the same output.",
        min=0,
        max=2**32 - 1,
    ),
]
NSeedsOpt = Annotated[
    int,
    typer.Option(
        "--n-seeds",
        help="Fine-tuning runs per setting, with seeds --seed, --seed + 1, ...; mean and "
        "95 % CI are reported.",
        min=1,
    ),
]
BatchSizeOpt = Annotated[
    int,
    typer.Option(
        "--batch-size", "-b", help="Windows per batch (per device and step when training).", min=1
    ),
]
WindowTokensOpt = Annotated[
    int,
    typer.Option(
        "--window-tokens", help="Tokens per window, not counting [CLS] and [SEP].", min=1
    ),
]
NWindowsOpt = Annotated[
    int,
    typer.Option(
        "--n-windows", "-n", help="Windows sampled from the genome for the analysis.", min=1
    ),
]


def device_or_none(device: str) -> str | None:
    """``auto`` as the model loaders take it (None: a GPU if there is one)."""
    return None if device == "auto" else device


class Split(str, enum.Enum):
    """What a held-out split is made of."""

    blocks = "blocks"
    records = "records"


SplitOpt = Annotated[
    Split,
    typer.Option(
        "--split",
        help="Hold out blocks of every record (--block-size, --val-fraction, "
        "--test-fraction) or whole records.",
    ),
]
ValFractionOpt = Annotated[
    float,
    typer.Option(
        "--val-fraction", help="Share of the blocks held out for validation.", min=0.0, max=0.9
    ),
]
TestFractionOpt = Annotated[
    float,
    typer.Option(
        "--test-fraction", help="Share of the blocks held out for test.", min=0.0, max=0.9
    ),
]
ValRecordOpt = Annotated[
    list[str] | None,
    typer.Option("--val-record", help="Record held out for validation (repeat for more)."),
]
TestRecordOpt = Annotated[
    list[str] | None,
    typer.Option("--test-record", help="Record held out for test (repeat for more)."),
]
BlockSizeHelp = "Length in bases of the blocks that --split blocks holds out."

KOpt = Annotated[int, typer.Option("--k", "-k", help="k-mer length (1-8).", min=1, max=8)]
StrideOpt = Annotated[
    int,
    typer.Option("--stride", "-s", help="Token stride: 1 = overlapping, k = disjoint.", min=1),
]
VocabOpt = Annotated[
    Path | None,
    typer.Option(
        "--vocab", help="vocab.txt of the model. Default: the DNABERT layout for the k-mer length."
    ),
]
ModelOpt = Annotated[
    Path, typer.Option("--model", "-m", help="Local Hugging Face checkpoint folder.")
]
TrustRemoteCodeOpt = Annotated[
    bool,
    typer.Option(
        "--trust-remote-code",
        help="Allow a model whose config maps its classes to code in its own folder "
        "(auto_map: DNABERT-2, NT-v2, HyenaDNA, Caduceus) to run that code. Off: such "
        "folders are refused and no code from them runs.",
    ),
]


@dataclass(frozen=True)
class Rule:
    """Options of a command that only make sense together with others: ``names`` given
    on the command line while ``holds`` is false for the command's values is a usage
    error that says ``when``. ``example`` is an argument list that breaks the rule (the
    test suite runs every one)."""

    names: tuple[str, ...]
    when: str
    holds: Callable[[Mapping[str, Any]], bool]
    example: tuple[str, ...]


# Every command's rules, by command path ("nextkmer build"); filled by the commands'
# modules, listed in docs and exercised by the tests from here.
RULES: dict[str, tuple[Rule, ...]] = {}


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set option ``name`` (not left at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _flag(ctx: typer.Context, name: str) -> str:
    for p in ctx.command.params:
        if p.name == name:
            return max(p.opts, key=len) if p.param_type_name == "option" else name.upper()
    raise KeyError(name)


def check_rules(ctx: typer.Context, command: str) -> None:
    """Refuse, as a usage error (exit 2), options given together that the command's
    :data:`RULES` do not allow: an option that would be ignored, or values that cannot
    hold together. Call it first in the command, before anything is read or written."""
    for rule in RULES.get(command, ()):
        used = [n for n in rule.names if given(ctx, n)]
        if used and not rule.holds(ctx.params):
            flags = " and ".join(_flag(ctx, n) for n in used)
            raise typer.BadParameter(rule.when, ctx, param_hint=flags)
