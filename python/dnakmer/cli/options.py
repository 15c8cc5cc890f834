"""Options shared by several commands, so that each concept has one name everywhere."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["RULES", "ModelOpt", "QuietOpt", "Rule", "TrustRemoteCodeOpt", "check_rules"]

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

QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress display on the terminal.")
]
