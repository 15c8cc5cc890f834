"""``dnakmer probe mask``, ``dnakmer probe embeddings`` and ``dnakmer embed``: thin
commands over :mod:`dnakmer.probes.masked_tokens`, :mod:`dnakmer.probes.embedding_analysis` and
:mod:`dnakmer.probes.embeddings`. torch and transformers are imported only when a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

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
    QuietOpt,
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
    quiet: QuietOpt = False,
) -> None:
    """How a masked LM predicts what is masked: accuracy on hidden bases next to the
    genome's Markov chains (any tokenizer; bases/ in --out), and for overlapping k-mers
    masked-token accuracy against the neighbour rule with shuffled controls
    (tokens.parquet, summary.json, marginals and PNG plots in --out)."""
    from dnakmer._io import write_json
    from dnakmer.cli.display import print_table, showing_progress
    from dnakmer.models import load
    from dnakmer.probes.masked_bases import masked_base_analysis, window_bases
    from dnakmer.probes.masked_tokens import CONTROLS, mask_analysis, rule_skip_reason

    loaded = load(model, device=device_or_none(device), trust_remote_code=trust_remote_code)
    reason = rule_skip_reason(loaded)
    with showing_progress(not quiet):
        bases = masked_base_analysis(
            loaded,
            _genome(genome),
            n_windows=windows,
            window_bases=window_bases(loaded, 128),
            seed=seed,
            batch_size=batch_size,
        )
        bases.save(out / "bases")
        result = None
        if reason is None:
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
        else:
            write_json(out / "skipped.json", {"model": model.name, "reason": reason})
    b = bases.summary()
    rows = [
        {"predictor": model.name, "accuracy": b["span"]["accuracy"], "ci95": b["span"]["ci95"],
         "bits": b["span"]["bits"], "n": b["span"]["n"]},
        {"predictor": f"Markov chain, order {b['markov_best']['order']}",
         "accuracy": b["markov_best"]["accuracy"], "ci95": b["markov_best"]["ci95"],
         "bits": b["markov_best"]["bits"], "n": b["span"]["n"]},
    ]  # fmt: skip
    print_table(
        rows,
        ["predictor", "accuracy", "ci95", "bits", "n"],
        title="Masked bases",
        headers={"ci95": "95 % CI", "bits": "bits per base", "n": "bases"},
        caption=f"Every token covering a span of {bases.params.get('span', 6)} bases is "
        "masked; accuracy is the share of hidden bases whose most likely base is right "
        "(chance 0.25), next to the best Markov chain fitted on the genome.",
    )
    if result is None:
        typer.echo(f"masked-token analysis against the neighbour rule: not run, {reason}")
    else:
        summary = result.summary()
        print_table(
            summary.to_dicts(),
            ["scheme", "control", "n", "model_top1", "rule_top1", "agreement", "consistency"],
            title="Masked tokens against the neighbour rule",
            headers={"model_top1": "model", "rule_top1": "rule", "n": "masked tokens"},
            caption="model / rule: share of masked tokens predicted exactly (top 1); "
            "agreement: model and rule predict the same token; consistency: the model's "
            "prediction agrees with the visible neighbours' bases. Controls: none (real "
            "sequence), mono / di (mono- or dinucleotide-shuffled windows).",
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
    quiet: QuietOpt = False,
) -> None:
    """Static k-mer similarity structure, projections, strand consistency and linear
    probes per layer: CSV/Parquet tables, summary.json and PNG figures in --out."""
    from dnakmer.cli.display import showing_progress
    from dnakmer.models import load
    from dnakmer.probes.embedding_analysis import embedding_report

    loaded = load(model, device=device_or_none(device), trust_remote_code=trust_remote_code)
    with showing_progress(not quiet):
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
    _print_embedding_summary(summary)
    typer.echo(f"wrote {out}/")


def _print_embedding_summary(summary: dict[str, Any]) -> None:
    """The static embeddings' relations (pretrained and random init) and, per layer, how
    well linear probes read a token's own bases and the bases beside it."""
    import polars as pl

    from dnakmer.cli.display import print_table

    control = {r["relation"]: r["value"] for r in summary.get("kmer_similarity_random_init", [])}
    rows = [
        {"relation": r["relation"].replace("_", " "), "statistic": r["statistic"].replace("_", " "),
         "model": r["value"], "random init": control.get(r["relation"])}
        for r in summary["kmer_similarity"]
    ]  # fmt: skip
    print_table(
        rows,
        ["relation", "statistic", "model", "random init"],
        title=f"Static token embeddings ({summary['n_kmers']:,} tokens)",
        caption="spearman: rank correlation of two tokens' cosine similarity with the "
        "relation (negative for a distance: tokens that differ less lie closer); mean "
        "cosine: the pairs' average cosine similarity. The random-init model of the same "
        "shape is the control.",
    )
    probes = pl.DataFrame(summary["probes"])
    if probes.is_empty():
        return
    table = (
        probes.with_columns(
            where=pl.when(pl.col("target") == "own")
            .then(pl.lit("own"))
            .otherwise(pl.format("±{}", pl.col("distance")))
        )
        .group_by("layer", "where")
        .agg(acc=pl.col("accuracy").mean(), chance=pl.col("chance").mean())
    )
    beside = sorted({w for w in table["where"].to_list() if w != "own"}, key=lambda w: int(w[1:]))
    order = ["own", *beside]
    per_layer = []
    for layer in sorted(table["layer"].unique().to_list()):
        cells = {r["where"]: r for r in table.filter(pl.col("layer") == layer).to_dicts()}
        row: dict[str, Any] = {"layer": layer}
        for w in order:
            if w in cells:
                row[w] = f"{cells[w]['acc']:.2f} ({cells[w]['chance']:.2f})"
        per_layer.append(row)
    print_table(
        per_layer,
        ["layer", *order],
        title="Linear probes of contextual embeddings",
        headers={"own": "own bases", **{w: f"base {w}" for w in order[1:]}},
        caption="Accuracy of a logistic regression reading one base from a token's hidden "
        "state (chance, the majority base, in brackets): its own bases, and the bases "
        "d positions outside it (mean of both sides). Layer 0 is the embedding layer.",
    )
    strand = summary.get("strand") or {}
    if strand:
        typer.echo(
            "strand: cosine similarity to the reverse complement's embedding "
            f"{strand['cosine_rc']:.3f} (to other windows' {strand['cosine_other']:.3f})"
        )


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
    quiet: QuietOpt = False,
) -> None:
    """Tile every record into windows and store their sequence embeddings
    (embedding.npy, coordinates, samples.parquet, manifest.json) in --out."""
    from dnakmer.cli.display import showing_progress
    from dnakmer.models import load
    from dnakmer.probes.embeddings import Level, embed_genome

    loaded = load(model, device=device_or_none(device), trust_remote_code=trust_remote_code)
    with showing_progress(not quiet):
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
