"""Findings, combined tables and the report of an interrogation run.

Reads only the stage folders' files, so the report can be rebuilt from a finished run.
The three findings (Sanabria et al. 2024) are computed here once, written to
``findings.json`` and quoted from there in ``summary.md`` and ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from dnakmer._io import atomic_open, write_json
from dnakmer.report import Figure, Section, Table, write_report, write_summary

__all__ = ["embedding_findings", "mask_findings", "nextkmer_findings", "write_outputs"]

TOPICS = {
    "masked_tokens": "Masked tokens: how much the neighbour rule explains",
    "embeddings": "Embeddings: how strongly they follow k-mer sequence",
    "next_kmer": "Next-k-mer prediction: models vs baselines",
}


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def mask_findings(folder: Path) -> dict[str, Any]:
    """Model and rule top-1 accuracy on real sequence (DNABERT masking when present), their
    ratio, the share of the model's correct tokens that the rule also gets right
    (``rule_explains``), their agreement, and the shuffled controls."""
    if (folder / "skipped.json").is_file():
        return {"status": "skipped", "reason": _json(folder / "skipped.json")["reason"]}
    overall = pl.DataFrame(_json(folder / "summary.json")["overall"])
    schemes = overall["scheme"].unique().sort().to_list()
    scheme = "dnabert" if "dnabert" in schemes else schemes[0]
    rows = {r["control"]: r for r in overall.filter(pl.col("scheme") == scheme).to_dicts()}
    real = rows["none"]
    model, rule = real["model_top1"], real["rule_top1"]
    tokens = pl.read_parquet(
        folder / "tokens.parquet", columns=["scheme", "control", "model_rank", "rule_rank"]
    )
    right = tokens.filter(
        (pl.col("scheme") == scheme) & (pl.col("control") == "none") & (pl.col("model_rank") == 0)
    )
    return {
        "status": "ran",
        "scheme": scheme,
        "n_masked": real["n"],
        "model_top1": model,
        "rule_top1": rule,
        "rule_to_model_ratio": rule / model if model > 0 else None,
        # Of the masked tokens the model gets right, the share the rule gets right too.
        "rule_explains": float((right["rule_rank"] == 0).mean()) if right.height else None,  # type: ignore[arg-type]
        "agreement": real["agreement"],
        "nt_acc_hidden": real["nt_acc_hidden"],
        "model_top1_mono_shuffled": rows.get("mono", {}).get("model_top1"),
        "model_top1_di_shuffled": rows.get("di", {}).get("model_top1"),
    }


def embedding_findings(folder: Path) -> dict[str, Any]:
    """Spearman correlation of static-embedding cosine with Hamming distance, reverse
    complement vs random pair cosine, and last-layer probe accuracies (own bases vs the
    bases right next to the token)."""
    summary = _json(folder / "summary.json")
    out: dict[str, Any] = {}
    sim = {r["relation"]: r["value"] for r in summary.get("kmer_similarity", [])}
    out["hamming_spearman"] = sim.get("hamming_distance")
    out["rc_mean_cosine"] = sim.get("reverse_complement_pairs")
    out["random_mean_cosine"] = sim.get("random_pairs")
    probes = pl.DataFrame(summary["probes"]) if summary.get("probes") else None
    if probes is not None and probes.height:
        layer = int(probes["layer"].max())  # type: ignore[arg-type]
        last = probes.filter(pl.col("layer") == layer)
        own = last.filter(pl.col("target") == "own")
        near = last.filter((pl.col("target") != "own") & (pl.col("distance") == 1))
        out |= {
            "probe_layer": layer,
            "probe_own_accuracy": float(own["accuracy"].mean()),  # type: ignore[arg-type]
            "probe_neighbour_accuracy": float(near["accuracy"].mean()),  # type: ignore[arg-type]
            "probe_neighbour_chance": float(near["chance"].mean()),  # type: ignore[arg-type]
        }
    return out


def nextkmer_findings(table: pl.DataFrame, label: str) -> list[dict[str, Any]]:
    """Per k: test accuracy of the fine-tuned model (pretrained and random init), the best
    Markov chain, the class prior and uniform guessing (rows of ``comparison.parquet``)."""
    rows = []
    for k in table["k"].unique().sort().to_list():
        at_k = {r["predictor"]: r for r in table.filter(pl.col("k") == k).to_dicts()}
        markov = next((p for p in at_k if p.startswith("Markov order")), None)
        rows.append(
            {
                "k": k,
                "pretrained": at_k[f"{label} (pretrained)"]["accuracy"],
                "random_init": at_k[f"{label} (random)"]["accuracy"],
                "best_markov": at_k[markov]["accuracy"] if markov else None,
                "markov_order": int(markov.rsplit(" ", 1)[1]) if markov else None,
                "prior": at_k["prior"]["accuracy"],
                "uniform": at_k["uniform"]["accuracy"],
            }
        )
    return rows


def _mask_sentence(label: str, f: dict[str, Any]) -> str:
    if f["status"] == "skipped":
        return f"{label}: not analysed ({f['reason']})."
    text = (
        f"{label}: masked-token top-1 accuracy {f['model_top1']:.4f} ({f['scheme']} masking, "
        f"{f['n_masked']} masked tokens); the neighbour rule alone reaches {f['rule_top1']:.4f}"
    )
    if f["rule_to_model_ratio"] is not None:
        text += f" ({f['rule_to_model_ratio']:.2f} times the model's accuracy)"
    if f["rule_explains"] is not None:
        text += (
            f"; of the tokens the model gets right, the rule gets {f['rule_explains']:.1%} "
            "right too"
        )
    text += f"; model and rule pick the same token for {f['agreement']:.1%} of masked tokens."
    if f["model_top1_di_shuffled"] is not None:
        text += (
            f" On dinucleotide-shuffled sequence the model reaches "
            f"{f['model_top1_di_shuffled']:.4f}."
        )
    return text


def _embed_sentence(label: str, f: dict[str, Any]) -> str:
    parts = []
    if f.get("hamming_spearman") is not None:
        parts.append(
            f"static k-mer embeddings: Spearman rho of cosine similarity vs Hamming distance "
            f"{f['hamming_spearman']:.4f} (negative: k-mers sharing bases lie closer); "
            f"reverse-complement pairs mean cosine {f['rc_mean_cosine']:.4f} vs random pairs "
            f"{f['random_mean_cosine']:.4f}"
        )
    if "probe_layer" in f:
        parts.append(
            f"linear probes on layer {f['probe_layer']} read a token's own bases with accuracy "
            f"{f['probe_own_accuracy']:.4f} and the base just outside it with "
            f"{f['probe_neighbour_accuracy']:.4f} (chance {f['probe_neighbour_chance']:.4f})"
        )
    return f"{label}: " + ("; ".join(parts) or "no k-mer embedding analysis") + "."


def _nextkmer_sentence(label: str, r: dict[str, Any]) -> str:
    text = (
        f"{label}, k = {r['k']}: test accuracy {r['pretrained']:.4f} fine-tuned from "
        f"pretraining, {r['random_init']:.4f} from random init"
    )
    if r["best_markov"] is not None:
        text += f"; best Markov chain (order {r['markov_order']}) {r['best_markov']:.4f}"
    return text + f"; class prior {r['prior']:.4f}; uniform {r['uniform']:.4f}."


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
        pl.read_csv(out / "embed" / lab / "kmer_similarity.csv").select(
            pl.lit(lab).alias("model"), pl.all()
        )
        for lab in labels
        if (out / "embed" / lab / "kmer_similarity.csv").is_file()
    ]
    if sims:
        tables["kmer_similarity"] = pl.concat(sims)
    comparisons = [pl.read_parquet(out / "finetune" / lab / "comparison.parquet") for lab in labels]
    tables["nextkmer_comparison"] = (
        pl.concat(comparisons).unique(["k", "predictor"], keep="first").sort(["k", "predictor"])
    )
    tables["genome_stats"] = pl.read_parquet(out / "genome" / "stats.parquet")
    return tables


def pretraining_tables(models: dict[str, Path]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """For models pretrained by ``dnakmer pretrain`` (a ``history.json`` beside the
    weights): one row of settings and final held-out metrics per model, and the curves
    (``model``, ``step``, ``quantity``, ``value``). Empty frames when no model has one."""
    from dnakmer.pretrain import history_curve

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


def _sections(
    out: Path, labels: list[str], tables: dict[str, pl.DataFrame], findings: dict[str, Any]
) -> list[Section]:
    lines = _finding_lines(labels, findings)
    sections = [Section("Findings", findings=[x for v in lines.values() for x in v])]
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
    sections.append(embed)
    sections.append(
        Section(
            "Next-k-mer prediction",
            tables=[Table("Test metrics per k", tables["nextkmer_comparison"])],
            figures=[
                Figure(out / "tables" / "accuracy_vs_k.png", "Test accuracy vs k"),
                Figure(out / "baselines" / "baselines.png", "Baselines"),
            ],
        )
    )
    return sections


def _finding_lines(labels: list[str], findings: dict[str, Any]) -> dict[str, list[str]]:
    return {
        TOPICS["masked_tokens"]: [
            _mask_sentence(lab, findings["masked_tokens"][lab]) for lab in labels
        ],
        TOPICS["embeddings"]: [_embed_sentence(lab, findings["embeddings"][lab]) for lab in labels],
        TOPICS["next_kmer"]: [
            _nextkmer_sentence(lab, r) for lab in labels for r in findings["next_kmer"][lab]
        ],
    }


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
    from dnakmer.nextkmer_finetune import plot_accuracy_vs_k

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
    plot_accuracy_vs_k(tables["nextkmer_comparison"], folder / "accuracy_vs_k.png")
    if "pretraining_curves" in tables:
        from dnakmer.plots import pretraining_curves

        pretraining_curves(tables["pretraining_curves"], folder / "pretraining_curves.png")
    findings = {
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
    meta = {"genome": Path(params["genome"]).name, "models": ", ".join(labels)}
    write_summary(out / "summary.md", "dnakmer interrogate", _finding_lines(labels, findings), meta)
    sections = _sections(out, labels, tables, findings)
    sections.append(Section("Provenance", tables=[_provenance(out)]))
    write_report(out / "report.html", "dnakmer interrogate", sections, meta)
    return findings
