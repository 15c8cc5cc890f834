"""Options shared by several commands, so that each concept has one name everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ModelOpt", "TrustRemoteCodeOpt"]

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
