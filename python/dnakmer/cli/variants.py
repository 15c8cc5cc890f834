"""``dnakmer variants score`` and ``dnakmer variants scan``: thin commands over
:mod:`dnakmer.probes.variant_effects`. torch and transformers are imported only when a
command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dnakmer.cli.options import (
    BatchSizeOpt,
    Command,
    DeviceOpt,
    Group,
    ModelOpt,
    OutOpt,
    QuietOpt,
    TrustRemoteCodeOpt,
    device_or_none,
)

app = typer.Typer(
    help="Variant effects: zero-shot scores of masked LMs (every token covering the base "
    "masked) and in-silico mutation of fine-tuned classifiers.",
    no_args_is_help=True,
    cls=Group,
)

ReferenceOpt = Annotated[
    Path,
    typer.Option(
        "--genome", help="The reference FASTA (plain, gzip or BGZF) the positions refer to."
    ),
]
WindowOpt = Annotated[
    int | None,
    typer.Option(
        "--window",
        help="Bases per window, centred on each position. Default: as long as the windows "
        "the model was trained on (pretrain's history.json, classify's results.json), "
        "else as long as its positions hold.",
        show_default=False,
        min=1,
    ),
]
LabelOpt = Annotated[
    str | None,
    typer.Option(
        "--label",
        help="Classifiers: the class whose probability change is the score. Default: the "
        "last class, the positive one of a two-class task.",
        show_default=False,
    ),
]


def _print_score_summary(summary: dict[str, Any]) -> None:
    from dnakmer.cli.display import print_table

    typer.echo(
        f"{summary['records']:,} VCF records, {summary['alleles']:,} alleles: "
        f"{summary['scored']:,} scored, {summary['alleles'] - summary['scored']:,} skipped"
    )
    if summary["skipped"]:
        print_table(
            [{"reason": r, "alleles": n} for r, n in summary["skipped"].items()],
            ["reason", "alleles"],
            title="Skipped alleles",
        )
    masks = summary.get("masks")
    if masks:
        names = {"tokens": "every covering token", "single": "one token (toolkits)"}
        rows = [
            {
                "mask": names[m],
                "p_ref": x["mean_p_ref"],
                "median": x["median_score"],
                "rho": x["markov_spearman"]["rho"],
                "ci95": x["markov_spearman"]["ci95"],
                "n": x["markov_spearman"]["n"],
            }
            for m, x in masks.items()
        ]
        print_table(
            rows,
            ["mask", "p_ref", "median", "rho", "ci95", "n"],
            title="Zero-shot scores, two masks",
            headers={
                "p_ref": "mean P(ref)",
                "median": "median score",
                "rho": "Spearman with Markov",
                "ci95": "95 % CI",
                "n": "variants",
            },
            caption="score = ln P(alt) - ln P(ref) at the variant's base. With one token "
            "masked, its overlapping neighbours still spell the reference base: P(ref) "
            "near 1 and scores that follow the leak, not the sequence. Spearman: rank "
            f"correlation with the genome's order-{summary.get('markov_order')} Markov "
            "chain's log-ratio given the same surrounding bases.",
        )
    elif summary.get("label") is not None:
        mean, top = summary.get("mean_abs_delta", 0.0), summary.get("max_abs_delta", 0.0)
        typer.echo(
            f"score = P({summary['label']} | alt) - P({summary['label']} | ref): "
            f"mean |score| {mean:.4f}, largest {top:.4f}"
        )


@app.command("score", cls=Command)
def score(
    *,
    model: ModelOpt,
    genome: ReferenceOpt,
    vcf: Annotated[
        Path,
        typer.Option(
            "--vcf", help="Variants (VCF, plain, gzip or BGZF): SNVs are scored, every other "
            "allele is listed with the reason it is not."
        ),
    ],
    out: OutOpt,
    window: WindowOpt = None,
    label: LabelOpt = None,
    batch_size: BatchSizeOpt = 32,
    device: DeviceOpt = "auto",
    trust_remote_code: TrustRemoteCodeOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Score every SNV of a VCF: a masked LM's ln P(alt) - ln P(ref) with every token
    covering the base masked, next to the single-token mask and the genome's Markov
    chain; a classifier's change in class probability. Writes scores.parquet,
    scores.tsv (one row per allele, skipped ones with their reason), summary.json,
    summary.md and scores.png to --out."""
    from dnakmer.cli.display import showing_progress
    from dnakmer.genome import Genome
    from dnakmer.models import load
    from dnakmer.probes.variant_effects import score_variants
    from dnakmer.vcf import read_vcf

    variants = read_vcf(vcf)
    loaded = load(model, device=device_or_none(device), trust_remote_code=trust_remote_code)
    with showing_progress(not quiet):
        reference = Genome.open(genome)
        result = score_variants(
            loaded, reference, variants, window=window, batch_size=batch_size, label=label
        )
    result.save(out)
    _print_score_summary(result.summary())
    typer.echo(f"wrote {out}/")


@app.command("scan", cls=Command)
def scan(
    *,
    model: ModelOpt,
    genome: ReferenceOpt,
    region: Annotated[
        str,
        typer.Option(
            "--region",
            help="NAME:START-END (1-based, inclusive, as samtools writes regions) or NAME "
            "(a whole record).",
        ),
    ],
    out: OutOpt,
    window: WindowOpt = None,
    label: LabelOpt = None,
    batch_size: BatchSizeOpt = 32,
    device: DeviceOpt = "auto",
    trust_remote_code: TrustRemoteCodeOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Score every position of a region against its three alternative bases
    (in-silico saturation mutagenesis). Writes scores.npy (positions x A, C, G, T),
    scan.parquet (one row per substitution), heatmap.png and summary.json to --out."""
    from dnakmer.cli.display import print_table, showing_progress
    from dnakmer.datasets.variants import parse_region
    from dnakmer.genome import Genome
    from dnakmer.models import load
    from dnakmer.probes.variant_effects import scan_region

    with showing_progress(not quiet):
        reference = Genome.open(genome)
        where = parse_region(region, reference)
        loaded = load(model, device=device_or_none(device), trust_remote_code=trust_remote_code)
        result = scan_region(
            loaded, reference, where, window=window, batch_size=batch_size, label=label
        )
    result.save(out)
    summary = result.summary()
    typer.echo(
        f"{where}: {summary['positions']:,} positions, {summary['scored']:,} scored"
        + (f", {summary['not_acgt']:,} not A/C/G/T" if summary["not_acgt"] else "")
        + (f", {summary['uncovered']:,} covered by no token" if summary["uncovered"] else "")
    )
    lowest = result.table.sort("score").head(10)
    if lowest.height:
        print_table(
            lowest.to_dicts(),
            [c for c in ("position", "ref", "alt", "score", "p_ref", "p_alt") if c in lowest],
            title="Least likely substitutions",
            headers={"p_ref": "P(ref)", "p_alt": "P(alt)"},
            caption=f"score: {result.params.get('score_label')}; the lowest first.",
        )
    typer.echo(f"wrote {out}/")
