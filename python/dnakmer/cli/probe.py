"""``dnakmer probe mask``, ``dnakmer probe embeddings`` and ``dnakmer embed``: thin
commands over :mod:`dnakmer.probes.masked_tokens`, :mod:`dnakmer.probes.embedding_analysis` and
:mod:`dnakmer.probes.embeddings`. torch and transformers are imported only when a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from dnakmer.cli.options import (
    BatchSizeOpt,
    Command,
    DefaultGenomeArg,
    DeviceOpt,
    Group,
    ModelOpt,
    NWindowsOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    TrustRemoteCodeOpt,
    WindowTokensOpt,
    device_or_none,
)

probe_app = typer.Typer(
    help="Probe what a DNA language model learned: masked tokens and embeddings.",
    no_args_is_help=True,
    cls=Group,
)


def _genome(path: Path | None) -> Path:
    from dnakmer.data import example_genome

    return path or example_genome()


def _layers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise typer.BadParameter(f"--layers wants comma-separated integers, got {text!r}") from e


@probe_app.command("mask", cls=Command)
def probe_mask(
    genome: DefaultGenomeArg = None,
    *,
    model: ModelOpt,
    out: OutOpt,
    scheme: Annotated[
        list[str] | None,
        typer.Option(
            "--scheme",
            help="Masking scheme: dnabert, single or span:N (repeat for more). "
            "Default: dnabert and single.",
        ),
    ] = None,
    control: Annotated[
        list[str] | None,
        typer.Option(
            "--control", help="Shuffled control: none, mono or di (repeat for more). Default: all."
        ),
    ] = None,
    windows: NWindowsOpt = 256,
    window_tokens: WindowTokensOpt = 64,
    seed: SeedOpt = 0,
    batch_size: BatchSizeOpt = 32,
    device: DeviceOpt = "auto",
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Masked-token accuracy of a k-mer model vs the neighbour rule, with shuffled
    controls: tokens.parquet, summary.json, marginals and PNG plots in --out."""
    from dnakmer.models import load
    from dnakmer.probes.masked_tokens import CONTROLS, mask_analysis

    loaded = load(model, device=device_or_none(device), trust_remote_code=trust_remote_code)
    result = mask_analysis(
        loaded,
        _genome(genome),
        schemes=tuple(scheme or ("dnabert", "single")),
        controls=tuple(control or CONTROLS),
        n_windows=windows,
        window_tokens=window_tokens,
        seed=seed,
        batch_size=batch_size,
    )
    result.save(out)
    typer.echo(
        result.summary()
        .select(
            "scheme",
            "control",
            "n",
            "model_top1",
            "rule_top1",
            "agreement",
            "consistency",
            "nt_acc_hidden",
        )
        .__repr__()
    )
    typer.echo(f"wrote {out}/")


@probe_app.command("embeddings", cls=Command)
def probe_embeddings(
    genome: DefaultGenomeArg = None,
    *,
    model: ModelOpt,
    out: OutOpt,
    windows: NWindowsOpt = 128,
    window_tokens: WindowTokensOpt = 64,
    max_distance: Annotated[
        int, typer.Option("--max-distance", help="Farthest base outside a token to probe.", min=1)
    ] = 5,
    seed: SeedOpt = 0,
    batch_size: BatchSizeOpt = 32,
    device: DeviceOpt = "auto",
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Static k-mer similarity structure, projections, strand consistency and linear
    probes per layer: CSV/Parquet tables, summary.json and PNG figures in --out."""
    from dnakmer.models import load
    from dnakmer.probes.embedding_analysis import embedding_report

    loaded = load(model, device=device_or_none(device), trust_remote_code=trust_remote_code)
    summary = embedding_report(
        loaded,
        _genome(genome),
        out,
        n_windows=windows,
        window_tokens=window_tokens,
        max_distance=max_distance,
        batch_size=batch_size,
        seed=seed,
    )
    strand = ", ".join(f"{k} {v:.3f}" for k, v in summary["strand"].items())
    typer.echo(f"strand: {strand}")
    typer.echo(f"wrote {out}/")


def embed(
    genome: DefaultGenomeArg = None,
    *,
    model: ModelOpt,
    out: OutOpt,
    layers: Annotated[
        str,
        typer.Option(
            "--layers",
            "-l",
            help="Hidden-state indices, comma-separated (0 = embeddings, -1 = last).",
        ),
    ] = "-1",
    level: Annotated[
        str,
        typer.Option(
            "--level", help="sequence (mean over tokens), token or nucleotide (k-mer models)."
        ),
    ] = "sequence",
    window_tokens: Annotated[
        int | None,
        typer.Option(
            "--window-tokens",
            help="Tokens per window, not counting [CLS] and [SEP].",
            show_default="the model's positions minus 2",
            min=1,
        ),
    ] = None,
    batch_size: BatchSizeOpt = 32,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Tile every record into windows and store their sequence embeddings
    (embedding.npy, coordinates, samples.parquet, manifest.json) in --out."""
    from dnakmer.models import load
    from dnakmer.probes.embeddings import Level, embed_genome

    loaded = load(model, device=device_or_none(device), trust_remote_code=trust_remote_code)
    manifest = embed_genome(
        loaded,
        _genome(genome),
        out,
        layers=_layers(layers),
        level=cast(Level, level),  # embed_genome checks the value
        window_tokens=window_tokens,
        batch_size=batch_size,
        overwrite=overwrite,
    )
    shape = manifest["fields"]["embedding"]["shape"]
    dims = " x ".join(str(d) for d in shape[1:])
    typer.echo(f"{shape[0]:,} windows x ({dims}) [{level}] -> {out}/")
