"""``dnakmer interrogate``: the whole study of one or more models on a genome."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from dnakmer.cli.options import (
    RULES,
    DeviceOpt,
    GenomeArg,
    NSeedsOpt,
    OutHelp,
    OutOpt,
    QuietOpt,
    Rule,
    TrustRemoteCodeOpt,
    check_rules,
    given,
)


class Scale(str, enum.Enum):
    cpu = "cpu"
    paper = "paper"


RULES["interrogate"] = (
    Rule(("scale",), "used only without --budget (the file sets the budget)",
         lambda p: p["budget_file"] is None, ("--budget", "budget.json", "--scale", "paper")),
)
RULES["demo"] = (
    Rule(("stop_after",), "used only with --retrain", lambda p: p["retrain"] is not None,
         ("--stop-after", "5")),
    Rule(("out",), "used only without --retrain (it writes into the --retrain folder)",
         lambda p: p["retrain"] is None, ("--retrain", "r", "--out", "o")),
)  # fmt: skip


def _budget(scale: Scale, budget_file: Path | None, overrides: dict[str, Any]) -> Any:
    from dnakmer.study.budget import Budget

    if budget_file is not None:
        base = Budget.from_json(budget_file)
    else:
        base = Budget.paper() if scale is Scale.paper else Budget()
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def _overlapping_k(models: list[Path], trust_remote_code: bool) -> int | None:
    """The shortest k of the overlapping k-mer models among ``models`` (their masked
    tokens are the neighbour-rule analysis's items), None if there is none or a folder
    cannot be read (the study then says why)."""
    from dnakmer.models import load_tokenizer
    from dnakmer.tokenizer import KmerTokenizer

    ks = []
    for folder in models:
        try:
            tok = load_tokenizer(folder, trust_remote_code=trust_remote_code)
        except (OSError, ValueError):
            return None
        if isinstance(tok, KmerTokenizer) and tok.stride == 1 and tok.k > 1:
            ks.append(tok.k)
    return min(ks) if ks else None


def _print_precision(budget: Any, ks: tuple[int, ...], kmer: int | None) -> None:
    """Before a study: the smallest differences its findings can call higher or lower."""
    rows = budget.precision(k=kmer or 1, smallest_k=min(ks))
    if kmer is None:
        rows = [r for r in rows if r["probe"] != "masked tokens"]
    parts = [f"{r['probe']} {r['difference']:.3f} ({r['n']:,} {r['items']})" for r in rows]
    typer.echo(
        "smallest difference this run can tell apart (95 % intervals, accuracy near 0.3): "
        + "; ".join(parts)
    )


def _print_outcome(result: Any) -> None:
    ran = [s for s, v in result.stages.items() if v == "ran" and s != "report"]
    skipped = [s for s, v in result.stages.items() if v == "skipped"]
    typer.echo(f"stages run: {len(ran)}, skipped (done earlier): {len(skipped)}")
    overview = result.out_dir / "tables" / "overview.parquet"
    if overview.is_file():
        import polars as pl

        from dnakmer.cli.display import print_table

        table = pl.read_parquet(overview)
        print_table(
            table.to_dicts(),
            table.columns,
            title="Every model on the three probes",
            caption="Each cell: the estimate, its 95 % interval and the verdict against its "
            "reference (Markov chain, neighbour rule, random init, chance); DEGENERATE: no "
            "finding is drawn. The sentences below and report.html give the details.",
        )
    summary = (result.out_dir / "summary.md").read_text()
    findings = [line[2:] for line in summary.splitlines() if line.startswith("- ")]
    for line in findings:
        typer.echo(f"  {line}")
    typer.echo(f"report:  {result.report}")
    typer.echo(f"summary: {result.out_dir / 'summary.md'}")


def interrogate_command(
    ctx: typer.Context,
    genome: GenomeArg,
    models: Annotated[
        list[Path],
        typer.Option(
            "--model",
            "-m",
            help="Local checkpoint folder of a masked language model: k-mer (DNABERT), "
            "BPE (GROVER), Nucleotide Transformer or characters (repeat for more).",
        ),
    ],
    out: OutOpt,
    ks: Annotated[
        list[int] | None,
        typer.Option(
            "--k",
            "-k",
            help="Next-k-mer label length (repeat for more). Default: 1 to 6.",
            min=1,
            max=8,
        ),
    ] = None,
    seeds: NSeedsOpt = 1,
    scale: Annotated[
        Scale,
        typer.Option(help="Default budget: cpu (minutes) or paper (Sanabria et al.; GPU)."),
    ] = Scale.cpu,
    budget_file: Annotated[
        Path | None,
        typer.Option(
            "--budget", help="JSON object of budget fields (see dnakmer.study.interrogate.Budget)."
        ),
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option("--max-steps", help="Optimizer steps per run.", min=1)
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            "-b",
            help="Windows per batch (per device and step when training).",
            min=1,
        ),
    ] = None,
    n_train: Annotated[
        int | None, typer.Option("--n-train", help="Next-k-mer training windows per k.", min=1)
    ] = None,
    context_nt: Annotated[
        int | None,
        typer.Option(
            "--context",
            "-c",
            help="Next-k-mer context in bases (lowered to fit the models).",
            min=1,
        ),
    ] = None,
    n_test: Annotated[
        int | None,
        typer.Option("--n-test", help="Next-k-mer test windows per k (default 8,000).", min=1),
    ] = None,
    mask_windows: Annotated[
        int | None,
        typer.Option(
            "--n-windows",
            "-n",
            help="Windows sampled from the genome for the analysis.",
            min=1,
        ),
    ] = None,
    device: DeviceOpt = "auto",
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Processes that run the models' stages side by side, each with its share "
            "of the CPU threads (same results as 1).",
        ),
    ] = 1,
    quiet: QuietOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Run the whole study: genome stats, masked-token analysis, embeddings, next-k-mer
    datasets, baselines and fine-tuning (pretrained and random init), then write
    report.html, summary.md, tables, figures and manifest.json into --out (re-running the
    command resumes that folder)."""
    check_rules(ctx, "interrogate")
    from dnakmer.study.interrogate import interrogate

    budget = _budget(
        scale,
        budget_file,
        {
            "max_steps": max_steps,
            "batch_size": batch_size,
            "n_train": n_train,
            "context_nt": context_nt,
            "n_test": n_test,
            "mask_windows": mask_windows,
            "base_windows": mask_windows,
            "device": device if given(ctx, "device") else None,
        },
    )
    ks_t = tuple(ks or (1, 2, 3, 4, 5, 6))
    _print_precision(budget, ks_t, _overlapping_k(models, trust_remote_code))
    result = interrogate(
        genome, models, out, ks=ks_t, seeds=seeds, budget=budget,
        quiet=quiet, trust_remote_code=trust_remote_code, jobs=jobs,
    )  # fmt: skip
    _print_outcome(result)


def demo_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help=OutHelp)] = Path("dnakmer-demo"),
    retrain: Annotated[
        Path | None,
        typer.Option(
            "--retrain",
            help="Instead of the demo: re-run the recorded pretraining commands of the "
            "shipped models into this folder and compare their training curves.",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Processes at once: the models' stages, or with --retrain the pretraining "
            "commands. Default: one per core, at most one per model.",
        ),
    ] = None,
    stop_after: Annotated[
        int | None,
        typer.Option(
            help="With --retrain: train only the first N steps of each recorded schedule "
            "and compare that part of the curves.",
            min=1,
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Run the whole study offline on the E. coli genome shipped with dnakmer, for four
    tiny models shipped with it (pretrained at an equal budget on that genome: overlapping
    6-mers as DNABERT, non-overlapping 6-mers, a BPE vocabulary as GROVER, single
    nucleotides), and print where the report is; the run folder is --out, and re-running
    the command resumes it."""
    check_rules(ctx, "demo")
    from dnakmer.study import demo

    if jobs is None:
        jobs = demo.default_jobs()
    if retrain is not None:
        check = demo.retrain(retrain, jobs=jobs, quiet=quiet, stop_after=stop_after)
        typer.echo(check.table.write_csv(), nl=False)
        if not check.reproduced:
            typer.secho(
                f"training curves differ from the shipped ones by more than {check.tolerance}",
                fg="red",
                err=True,
            )
            raise typer.Exit(1)
        typer.echo(f"training curves reproduced (within {check.tolerance}); models in {retrain}/")
        return
    _print_precision(demo.demo_budget(), demo.DEMO_KS, 6)
    _print_outcome(demo.run_demo(out, quiet=quiet, jobs=jobs))
