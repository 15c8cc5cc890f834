"""Findings, combined tables and the report of an interrogation run.

Reads only the stage folders' files, so the report can be rebuilt from a finished run.
The three findings (Sanabria et al. 2024) are computed once by :mod:`dnakmer.study.findings`,
written to ``findings.json`` and quoted from there in ``summary.md`` and ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from dnakmer._io import atomic_open, write_json
from dnakmer.probes.nextkmer import BASELINE_NOTE, with_ci_note
from dnakmer.report import Figure, Section, Table, write_report, write_summary
from dnakmer.study.findings import (
    base_findings,
    embedding_findings,
    finding_lines,
    mask_findings,
    nextkmer_findings,
    overview_table,
)

__all__ = ["pretraining_tables", "write_outputs"]


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _combined_tables(out: Path, labels: list[str]) -> dict[str, pl.DataFrame]:
    tables: dict[str, pl.DataFrame] = {}
    mask = [
        pl.DataFrame(_json(out / "mask" / lab / "summary.json")["overall"]).select(
            pl.lit(lab).alias("model"), pl.all()
        )
        for lab in labels
        if (out / "mask" / lab / "summary.json").is_file()
    ]
    if mask:
        tables["mask_summary"] = pl.concat(mask, how="diagonal_relaxed")
    sims = [
        pl.read_csv(out / "embed" / lab / name).select(pl.lit(label).alias("model"), pl.all())
        for lab in labels
        for name, label in (
            ("kmer_similarity.csv", lab),
            ("kmer_similarity_random_init.csv", f"{lab} (random init)"),
        )
        if (out / "embed" / lab / name).is_file()
    ]
    if sims:
        tables["kmer_similarity"] = pl.concat(sims)
    tokens = [
        pl.read_csv(out / "embed" / lab / "token_similarity.csv").select(
            pl.lit(lab).alias("model"), pl.all()
        )
        for lab in labels
        if (out / "embed" / lab / "token_similarity.csv").is_file()
    ]
    if tokens:
        tables["token_similarity"] = pl.concat(tokens)
    comparisons = [
        with_ci_note(pl.read_parquet(out / "finetune" / lab / "comparison.parquet"))
        for lab in labels
    ]
    tables["nextkmer_comparison"] = (
        pl.concat(comparisons).unique(["k", "predictor"], keep="first").sort(["k", "predictor"])
    )
    tables["genome_stats"] = pl.read_parquet(out / "genome" / "stats.parquet")
    return tables


def pretraining_tables(models: dict[str, Path]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """For models pretrained by ``dnakmer pretrain`` (a ``history.json`` beside the
    weights): one row of settings and final held-out metrics per model, and the curves
    (``model``, ``step``, ``quantity``, ``value``). Empty frames when no model has one."""
    from dnakmer.training.pretrain import history_curve

    rows, curves = [], []
    for label, folder in models.items():
        path = folder / "history.json"
        if not path.is_file():
            continue
        history = _json(path)
        params, final = history.get("params", {}), history.get("final_eval", {})
        options = params.get("options", {})
        rows.append(
            {
                "model": label,
                "tokenization": params.get("tokenization"),
                "k": params.get("k"),
                "stride": params.get("stride"),
                "tokens_per_window": params.get("max_tokens"),
                "window_nt": params.get("window_nt"),
                "steps": options.get("max_steps"),
                "batch_size": options.get("batch_size"),
                "learning_rate": options.get("learning_rate"),
                "eval_loss": final.get("eval_loss"),
                "eval_mlm_accuracy": final.get("eval_mlm_accuracy"),
            }
        )
        curves.append(history_curve(history).select(pl.lit(label).alias("model"), pl.all()))
    settings = pl.DataFrame(rows) if rows else pl.DataFrame()
    return settings, pl.concat(curves) if curves else pl.DataFrame()


def _figures(out: Path, labels: list[str], pattern: str, caption: str) -> list[Figure]:
    paths = [(lab, out / pattern.format(model=lab)) for lab in labels]
    return [Figure(p, caption.format(model=lab)) for lab, p in paths if p.is_file()]


OVERVIEW_NOTE = (
    "Each cell: the estimate, its 95 % interval in parentheses and the verdict "
    "against its reference, decided from the intervals (DEGENERATE: the model "
    "gives one answer or is no better than the class prior; nothing is read from "
    "it). Masked tokens / bases: accuracy on the same hidden bases for every "
    "model against the best Markov chain, and for overlapping k-mers top-1 "
    "accuracy on masked tokens against the neighbour rule. Token embeddings: "
    "Spearman rho of cosine vs Hamming (k-mers) or edit distance (other "
    "vocabularies), negative when tokens sharing bases lie closer, against a "
    "random-init control; for single-base vocabularies, a linear probe of the "
    "token's own base against chance. Next k-mer: fine-tuned test accuracy at "
    "each k against the best Markov chain. The sentences below give the details."
)
"""What a cell of the overview table holds (shown under the table)."""


def _sections(
    out: Path, labels: list[str], tables: dict[str, pl.DataFrame], findings: dict[str, Any]
) -> list[Section]:
    lines = finding_lines(labels, findings)
    sections = [
        Section(
            "Models side by side",
            tables=[
                Table("Every model on the three probes", tables["overview"], caption=OVERVIEW_NOTE)
            ],
        ),
        Section(
            "Findings",
            findings=[x for v in lines.values() for x in v],
            text=[
                "Every direction stated above is decided from the numbers with 95 % "
                "confidence intervals: Wilson intervals for accuracies over masked tokens "
                "and probe test sets, for fine-tuned models the wider of the interval over "
                "seeds and the binomial interval over the test windows, Fisher's z for "
                "Spearman correlations (n = number of k-mers). Two estimates differ only "
                "when their intervals are apart; a model beats a baseline scored on the "
                "same test windows when the baseline lies below the model's interval. A "
                "model that gives one answer for 90 % or more of its inputs, recovers no "
                "masked token, or is no better than the class prior with an MCC below "
                "0.01 is marked DEGENERATE, and no finding is drawn from it."
            ],
        ),
    ]
    sections.append(
        Section(
            "Genome",
            tables=[Table("Records", tables["genome_stats"], max_rows=50)],
            figures=[Figure(out / "genome" / "composition.png", "Base composition per record")],
        )
    )
    if "pretraining" in tables:
        sections.append(
            Section(
                "Models",
                text=[
                    "Pretraining of the models that carry a dnakmer history.json: settings, "
                    "final held-out metrics and training curves."
                ],
                tables=[Table("Pretraining", tables["pretraining"])],
                figures=[Figure(out / "tables" / "pretraining_curves.png", "Pretraining curves")],
            )
        )
    if "masked_bases" in tables:
        sections.append(
            Section(
                "Masked bases",
                text=[
                    "Every token covering a span of bases is masked; the model's token "
                    "distributions become probabilities of each hidden base. The same "
                    "windows and spans for every model; the best Markov chain is evaluated "
                    "exactly on the same spans given the bases around them."
                ],
                tables=[Table("Masked bases", tables["masked_bases"])],
                figures=[Figure(out / "tables" / "masked_bases.png", "Masked bases")],
            )
        )
    mask = Section(
        "Masked-token analysis",
        text=["Model vs neighbour rule on real sequence (none) and shuffled controls."],
        figures=_figures(out, labels, "mask/{model}/model_vs_rule.png", "{model}: model vs rule")
        + _figures(
            out,
            labels,
            "mask/{model}/accuracy_by_span_position.png",
            "{model}: accuracy by position in the masked span",
        ),
    )
    if "mask_summary" in tables:
        mask.tables.append(Table("Masked-token summary", tables["mask_summary"]))
    sections.append(mask)
    embed = Section(
        "Embeddings",
        figures=_figures(out, labels, "embed/{model}/projection_pca.png", "{model}: PCA")
        + _figures(out, labels, "embed/{model}/probe_curves.png", "{model}: linear probes"),
    )
    if "kmer_similarity" in tables:
        embed.tables.append(Table("Static k-mer embedding similarity", tables["kmer_similarity"]))
    if "token_similarity" in tables:
        embed.tables.append(
            Table(
                "Static token embeddings (variable-length vocabularies): Spearman rho of "
                "cosine vs each relation",
                tables["token_similarity"],
            )
        )
    sections.append(embed)
    sections.append(
        Section(
            "Next-k-mer prediction",
            text=[
                "accuracy_ci95: half-width of the Student-t interval over seeds; 'none (1 "
                "seed)' with one seed, 'none (baseline)' for a baseline fitted once "
                "(tables/nextkmer_comparison.parquet: empty, with the reason in ci_note); "
                "accuracy_ci95_test: "
                "half-width of the binomial interval over the test windows, the interval "
                "the findings use then; majority_share: share of test windows given the "
                "model's most common class (1.0 is a constant predictor). Rows "
                "'<model> (pretrained)' and '<model> (random)' are fine-tuned (every "
                "weight trained); rows '<model> linear probe (...)' fit a logistic "
                "regression on the frozen encoder's pooled states: what the representation "
                "holds before fine-tuning changes it."
            ],
            tables=[
                Table("Test metrics per k", _comparison_display(tables["nextkmer_comparison"]))
            ],
            figures=[
                Figure(
                    out / "tables" / "accuracy_vs_k.png",
                    "Test accuracy vs k, one panel per model: the model fine-tuned from its "
                    "pretrained weights (and from random init when run) and the linear probes "
                    "of its frozen encoder, with 95 % intervals; the class prior, the best "
                    "Markov chain and uniform guessing as lines.",
                ),
                Figure(
                    out / "baselines" / "baselines.png",
                    "Baselines: test accuracy of every Markov order, the class prior and "
                    "uniform guessing, by k and by Markov order.",
                ),
            ],
        )
    )
    return sections


def _comparison_display(table: pl.DataFrame) -> pl.DataFrame:
    """The next-k-mer comparison as the report shows it: an empty ``accuracy_ci95`` says
    why in its cell (``none (1 seed)``, ``none (baseline)``) instead of a ``ci_note``
    column repeated on every row."""
    if "ci_note" not in table.columns:
        return table
    ci = (
        pl.when(pl.col("accuracy_ci95").is_not_null())
        .then(pl.col("accuracy_ci95").round(4).cast(pl.String))
        .when(pl.col("ci_note") == BASELINE_NOTE)
        .then(pl.lit("none (baseline)"))
        .otherwise(pl.lit("none (1 seed)"))
    )
    return table.with_columns(ci.alias("accuracy_ci95")).drop("ci_note")


def _bases_table(labels: list[str], findings: dict[str, Any]) -> pl.DataFrame:
    """One row per model with a masked-bases result: accuracy and interval, its
    random-init twin, the best Markov chain."""
    rows = []
    for lab in labels:
        f = findings["masked_bases"].get(lab, {})
        if f.get("status") != "ran":
            continue
        rand = f.get("random_init_ci95") or [None, None]
        rows.append(
            {
                "model": lab,
                "tokenizer": f.get("tokenizer"),
                "hidden_bases": f["n"],
                "accuracy": f["accuracy"],
                "ci_low": f["accuracy_ci95"][0],
                "ci_high": f["accuracy_ci95"][1],
                "bits_per_base": f["bits"],
                "random_init": f.get("random_init"),
                "random_low": rand[0],
                "random_high": rand[1],
                "markov": f["markov"],
                "markov_order": f["markov_order"],
                "vs_markov": f["vs_markov"],
                "vs_random": f.get("vs_random"),
            }
        )
    return pl.DataFrame(rows)


def _provenance(out: Path) -> Table:
    manifest = _json(out / "manifest.json")
    rows = [("genome", manifest["genome"]["path"]), ("genome sha256", manifest["genome"]["sha256"])]
    for label, info in manifest["models"].items():
        rows.append((f"model {label}", info["path"]))
        rows += [(f"model {label} {name} sha256", sha) for name, sha in info["sha256"].items()]
    rows += [(f"parameter {k}", json.dumps(v)) for k, v in manifest["parameters"].items()]
    rows += [(f"version {k}", v) for k, v in manifest["versions"].items()]
    keys, values = zip(*rows, strict=True)
    return Table("Inputs, parameters and versions", pl.DataFrame({"item": keys, "value": values}))


def write_outputs(out: Path, labels: list[str], params: dict[str, Any]) -> dict[str, Any]:
    """Combined tables (``tables/``), ``findings.json``, ``summary.md`` and ``report.html``.

    Returns
    -------
    dict
        The findings: ``masked_tokens``, ``embeddings`` (per model) and ``next_kmer``
        (per model, one entry per k).
    """
    from dnakmer.probes.nextkmer import plot_accuracy_vs_k

    tables = _combined_tables(out, labels)
    settings, curves = pretraining_tables(
        dict(zip(labels, (Path(m) for m in params["models"]), strict=True))
    )
    if settings.height:
        tables["pretraining"], tables["pretraining_curves"] = settings, curves
    folder = out / "tables"
    folder.mkdir(exist_ok=True)
    for name, frame in tables.items():
        with atomic_open(folder / f"{name}.parquet", "wb") as f:
            frame.write_parquet(f)
        write_json(folder / f"{name}.json", frame.to_dicts())
    plot_accuracy_vs_k(tables["nextkmer_comparison"], folder / "accuracy_vs_k.png", labels)
    if "pretraining_curves" in tables:
        from dnakmer.plots import pretraining_curves

        pretraining_curves(tables["pretraining_curves"], folder / "pretraining_curves.png")
    findings = {
        "masked_bases": {lab: base_findings(out / "mask" / lab) for lab in labels},
        "masked_tokens": {lab: mask_findings(out / "mask" / lab) for lab in labels},
        "embeddings": {lab: embedding_findings(out / "embed" / lab) for lab in labels},
        "next_kmer": {
            lab: nextkmer_findings(
                pl.read_parquet(out / "finetune" / lab / "comparison.parquet"), lab
            )
            for lab in labels
        },
    }
    write_json(out / "findings.json", findings)
    tables["overview"] = overview_table(labels, findings)
    bases = _bases_table(labels, findings)
    if bases.height:
        tables["masked_bases"] = bases
        from dnakmer.plots import masked_bases

        masked_bases(bases, folder / "masked_bases.png")
    for name in ("overview", "masked_bases"):
        if name in tables:
            with atomic_open(folder / f"{name}.parquet", "wb") as f:
                tables[name].write_parquet(f)
    meta = {"genome": Path(params["genome"]).name, "models": ", ".join(labels)}
    write_summary(
        out / "summary.md",
        "dnakmer interrogate",
        finding_lines(labels, findings),
        meta,
        table=tables["overview"],
    )
    sections = _sections(out, labels, tables, findings)
    sections.append(Section("Provenance", tables=[_provenance(out)]))
    write_report(out / "report.html", "dnakmer interrogate", sections, meta)
    return findings
