"""The three findings of an interrogation run, computed from the stage folders' files,
and the sentences that state them.

Every word of a sentence that states a direction (higher, lower, closer, above chance,
helps) comes from a comparison made here, with 95 % confidence intervals:

- accuracies over n samples: Wilson score intervals;
- fine-tuned accuracies: the wider of the Student-t interval over seeds and the binomial
  interval over the test windows (one seed has only the latter);
- Spearman correlations: Fisher's z interval with n = the number of k-mers (pairs of
  k-mers are not independent, so the number of pairs would overstate the evidence).

Two estimates differ only when their intervals do not overlap. A model is compared with
a baseline scored on the same test windows (class prior, best Markov chain) by whether
the baseline's accuracy lies outside the model's interval. A model whose top-1 answer is
one class for most inputs, or that recovers no masked token, is flagged as degenerate
and its numbers are not presented as a finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from dnakmer.confidence import compare_intervals, position, spearman_interval, wilson_interval
from dnakmer.probes.nextkmer import (
    CONSTANT_SHARE,
    PROBE_SUFFIX,
    accuracy_interval,
    degenerate_reason,
)

__all__ = [
    "OVERVIEW_COLUMNS",
    "base_findings",
    "bases_sentence",
    "embedding_findings",
    "finding_lines",
    "interval_text",
    "mask_findings",
    "nextkmer_findings",
    "overview_table",
]

EN_DASH = "\u2013"
"""Between the bounds of an interval: ``0.280\u20130.312``."""



def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _interval(successes: float, n: int) -> list[float]:
    return list(wilson_interval(successes, n))


def _prediction_share(column: pl.Series) -> float:
    """Share of the rows taken by the most common value."""
    return float(column.value_counts(sort=True)["count"][0] / column.len()) if column.len() else 0.0


def mask_findings(folder: Path) -> dict[str, Any]:
    """Masked-token finding of one model (DNABERT masking when it was run).

    Returns
    -------
    dict
        ``status`` (``"ran"`` or ``"skipped"`` with ``reason``); ``scheme``,
        ``n_masked``, ``model_top1`` / ``rule_top1`` with ``*_ci95`` intervals,
        ``model_to_rule_ratio``, ``model_vs_rule`` (``higher``/``lower``/
        ``overlapping``), ``rule_explains`` (share of the tokens the model gets right
        that the rule gets right too), ``agreement``, ``nt_acc_hidden``, shuffled
        controls (``model_top1_di_shuffled`` / ``_mono_shuffled`` with intervals and
        ``di_vs_real`` / ``mono_vs_real``), ``majority_share`` (share of masked tokens
        given the model's most common answer) and ``degenerate`` (a reason, or None).
    """
    if (folder / "skipped.json").is_file():
        return {"status": "skipped", "reason": _json(folder / "skipped.json")["reason"]}
    tokens = pl.read_parquet(folder / "tokens.parquet")
    schemes = tokens["scheme"].unique().sort().to_list()
    scheme = "dnabert" if "dnabert" in schemes else schemes[0]
    by_control = {
        c: tokens.filter((pl.col("scheme") == scheme) & (pl.col("control") == c))
        for c in tokens.filter(pl.col("scheme") == scheme)["control"].unique().to_list()
    }
    real = by_control["none"]
    n = real.height
    model_hits = int((real["model_rank"] == 0).sum())
    rule_hits = int((real["rule_rank"] == 0).sum())
    model, rule = model_hits / n, rule_hits / n
    model_ci, rule_ci = wilson_interval(model_hits, n), wilson_interval(rule_hits, n)
    right = real.filter(pl.col("model_rank") == 0)
    share = _prediction_share(real["model_top1"])
    out: dict[str, Any] = {
        "status": "ran",
        "scheme": scheme,
        "n_masked": n,
        "model_top1": model,
        "model_top1_ci95": list(model_ci),
        "rule_top1": rule,
        "rule_top1_ci95": list(rule_ci),
        "model_to_rule_ratio": model / rule if rule > 0 else None,
        "model_vs_rule": compare_intervals(model_ci, rule_ci),
        "rule_explains": float((right["rule_rank"] == 0).mean()) if right.height else None,  # type: ignore[arg-type]
        "agreement": float(real["agree"].mean()),  # type: ignore[arg-type]
        "nt_acc_hidden": _nt_hidden(real),
        "majority_share": share,
    }
    out |= _span_part_findings(real)
    for control in ("di", "mono"):
        rows = by_control.get(control)
        if rows is None or rows.height == 0:
            out[f"model_top1_{control}_shuffled"] = None
            continue
        hits = int((rows["model_rank"] == 0).sum())
        ci = wilson_interval(hits, rows.height)
        out[f"model_top1_{control}_shuffled"] = hits / rows.height
        out[f"model_top1_{control}_shuffled_ci95"] = list(ci)
        out[f"{control}_vs_real"] = compare_intervals(ci, model_ci)
    out["degenerate"] = _mask_degenerate(model_hits, share)
    return out


def _span_part_findings(real: pl.DataFrame) -> dict[str, Any]:
    """Model vs rule at the span's end tokens (a visible neighbour right next to them)
    and inside the span (visible neighbours farther away)."""
    if "span_pos" not in real.columns or real.height == 0:
        return {}
    last = int(real["span_pos"].max())  # type: ignore[arg-type]
    if last < 2:
        return {}
    out: dict[str, Any] = {}
    ends = pl.col("span_pos").is_in([0, last])
    for part, rows in (("ends", real.filter(ends)), ("inner", real.filter(~ends))):
        n = rows.height
        model_hits = int((rows["model_rank"] == 0).sum())
        rule_hits = int((rows["rule_rank"] == 0).sum())
        model_ci, rule_ci = wilson_interval(model_hits, n), wilson_interval(rule_hits, n)
        out |= {
            f"{part}_n": n,
            f"{part}_model_top1": model_hits / n,
            f"{part}_rule_top1": rule_hits / n,
            f"{part}_model_vs_rule": compare_intervals(model_ci, rule_ci),
        }
    return out


def _nt_hidden(real: pl.DataFrame) -> float | None:
    hidden = int(real["n_hidden"].sum())
    return float(real["nt_correct_hidden"].sum() / hidden) if hidden else None


def _mask_degenerate(model_hits: int, share: float) -> str | None:
    if model_hits == 0:
        return "recovers none of the masked tokens"
    if share >= CONSTANT_SHARE:
        return f"gives the same token for {share:.0%} of masked positions (a constant predictor)"
    return None


def _static_similarity(summary: dict[str, Any], key: str) -> dict[str, float]:
    return {r["relation"]: r["value"] for r in summary.get(key, [])}


def embedding_findings(folder: Path) -> dict[str, Any]:
    """Embedding finding of one model.

    Returns
    -------
    dict
        ``hamming_spearman`` (Spearman rho of static-embedding cosine vs Hamming
        distance) with ``hamming_spearman_ci95`` and ``hamming_direction``
        (``negative``: k-mers sharing bases lie closer; ``positive``; ``none``); the
        same for the random-init control (``control_hamming_spearman``) and
        ``vs_control`` (``"more negative"``, ``"less negative"``, ``"overlapping"``);
        reverse-complement and random pair cosines; last-layer linear probes
        (``probe_own_accuracy`` / ``probe_neighbour_accuracy`` with chance levels and
        ``own_vs_chance`` / ``neighbour_vs_chance``).
    """
    summary = _json(folder / "summary.json")
    out: dict[str, Any] = {}
    if "token_similarity" in summary:
        return _token_embedding_findings(summary)
    sim = _static_similarity(summary, "kmer_similarity")
    control = _static_similarity(summary, "kmer_similarity_random_init")
    n_kmers = summary.get("n_kmers")
    rho = sim.get("hamming_distance")
    out["hamming_spearman"] = rho
    out["rc_mean_cosine"] = sim.get("reverse_complement_pairs")
    out["random_mean_cosine"] = sim.get("random_pairs")
    if rho is not None and n_kmers:
        ci = spearman_interval(rho, n_kmers)
        out["hamming_spearman_ci95"] = list(ci)
        out["hamming_direction"] = {"lower": "negative", "higher": "positive"}.get(
            position(0.0, ci), "none"
        )
        rho_c = control.get("hamming_distance")
        out["control_hamming_spearman"] = rho_c
        if rho_c is not None:
            ci_c = spearman_interval(rho_c, n_kmers)
            out["control_hamming_spearman_ci95"] = list(ci_c)
            out["vs_control"] = {"lower": "more negative", "higher": "less negative"}.get(
                compare_intervals(ci, ci_c), "overlapping"
            )
    probes = pl.DataFrame(summary["probes"]) if summary.get("probes") else None
    if probes is not None and probes.height:
        out |= _probe_findings(probes)
    return out


def _token_embedding_findings(summary: dict[str, Any]) -> dict[str, Any]:
    """Static embeddings of a variable-length vocabulary against edit distance (and the
    random-init control), in the same fields as the k-mer finding's Hamming distance."""
    sim = _static_similarity(summary, "token_similarity")
    control = _static_similarity(summary, "token_similarity_random_init")
    n = int(summary["n_tokens"])
    out: dict[str, Any] = {
        "relation": "edit_distance",
        "hamming_spearman": sim.get("edit_distance"),
        "random_mean_cosine": sim.get("random_pairs"),
        "length_spearman": sim.get("length_difference"),
        "gc_spearman": sim.get("gc_difference"),
        "frequency_spearman": sim.get("log_frequency_difference"),
    }
    rho, rho_c = sim.get("edit_distance"), control.get("edit_distance")
    if rho is not None:
        ci = spearman_interval(rho, n)
        out["hamming_spearman_ci95"] = list(ci)
        out["hamming_direction"] = {"lower": "negative", "higher": "positive"}.get(
            position(0.0, ci), "none"
        )
        if rho_c is not None:
            ci_c = spearman_interval(rho_c, n)
            out["control_hamming_spearman"] = rho_c
            out["control_hamming_spearman_ci95"] = list(ci_c)
            out["vs_control"] = {"lower": "more negative", "higher": "less negative"}.get(
                compare_intervals(ci, ci_c), "overlapping"
            )
    return out


def base_findings(folder: Path) -> dict[str, Any]:
    """Masked-bases finding of one model (``mask/<model>/bases`` and ``bases_random``).

    Returns
    -------
    dict
        ``status``; ``accuracy`` on the span bases with ``accuracy_ci95`` and ``n``;
        ``bits`` per base; ``markov`` (best chain's accuracy on the same bases),
        ``markov_order``, ``markov_ci95``; ``random_init`` accuracy and interval;
        ``vs_markov`` and ``vs_random`` (``higher``/``lower``/``overlapping``).
    """
    if not (folder / "bases" / "summary.json").is_file():
        return {"status": "skipped", "reason": "no masked-LM head or no mask token"}
    s = _json(folder / "bases" / "summary.json")
    out: dict[str, Any] = {
        "status": "ran",
        "tokenizer": s["params"].get("tokenizer"),
        "n": s["span"]["n"],
        "accuracy": s["span"]["accuracy"],
        "accuracy_ci95": s["span"]["ci95"],
        "bits": s["span"]["bits"],
        "markov": s["markov_best"]["accuracy"],
        "markov_order": s["markov_best"]["order"],
        "markov_ci95": s["markov_best"]["ci95"],
        "vs_markov": compare_intervals(tuple(s["span"]["ci95"]), tuple(s["markov_best"]["ci95"])),
    }
    if (folder / "bases_random" / "summary.json").is_file():
        r = _json(folder / "bases_random" / "summary.json")
        out |= {
            "random_init": r["span"]["accuracy"],
            "random_init_ci95": r["span"]["ci95"],
            "vs_random": compare_intervals(tuple(s["span"]["ci95"]), tuple(r["span"]["ci95"])),
        }
    return out


def _probe_findings(probes: pl.DataFrame) -> dict[str, Any]:
    layer = int(probes["layer"].max())  # type: ignore[arg-type]
    last = probes.filter(pl.col("layer") == layer)
    own = last.filter(pl.col("target") == "own")
    near = last.filter((pl.col("target") != "own") & (pl.col("distance") == 1))
    out: dict[str, Any] = {"probe_layer": layer}
    for name, rows in (("own", own), ("neighbour", near)):
        acc, chance = float(rows["accuracy"].mean()), float(rows["chance"].mean())  # type: ignore[arg-type]
        # The probes of one target share windows; the interval uses one probe's test set.
        n = int(rows["n_test"].min())  # type: ignore[arg-type]
        ci = wilson_interval(acc * n, n)
        out |= {
            f"probe_{name}_accuracy": acc,
            f"probe_{name}_accuracy_ci95": list(ci),
            f"probe_{name}_chance": chance,
            f"{name}_vs_chance": position(chance, ci),
        }
    return out


def nextkmer_findings(table: pl.DataFrame, label: str) -> list[dict[str, Any]]:
    """Per k: the fine-tuned model (pretrained and random init) against each other, the
    class prior, the best Markov chain and uniform guessing (rows of ``comparison.parquet``).

    Returns
    -------
    list of dict
        Per k: accuracies and intervals (``*_ci95``), ``pretrained_vs_random``,
        ``pretrained_vs_prior``, ``random_vs_prior``, ``pretrained_vs_markov``,
        ``random_vs_markov`` (``higher``/``lower``/``overlapping``), and
        ``pretrained_degenerate`` / ``random_degenerate`` (a reason, or None). Without
        random-init fine-tuning (``Budget.finetune_inits``) its fields are None.
    """
    rows = []
    for k in table["k"].unique().sort().to_list():
        at_k = {r["predictor"]: r for r in table.filter(pl.col("k") == k).to_dicts()}
        markov = next((p for p in at_k if p.startswith("Markov order")), None)
        prior = at_k["prior"]["accuracy"]
        best = at_k[markov]["accuracy"] if markov else None
        row: dict[str, Any] = {
            "k": k,
            "best_markov": best,
            "markov_order": int(markov.rsplit(" ", 1)[1]) if markov else None,
            "prior": prior,
            "uniform": at_k["uniform"]["accuracy"],
            "n_test": at_k["prior"].get("n_test"),
        }
        row |= _model_fields(at_k[f"{label} (pretrained)"], prior, best, "pretrained", "pretrained")
        if f"{label} (random)" in at_k:
            row |= _model_fields(at_k[f"{label} (random)"], prior, best, "random_init", "random")
            row["pretrained_vs_random"] = compare_intervals(
                tuple(row["pretrained_ci95"]), tuple(row["random_init_ci95"])
            )
        else:  # a budget without random-init fine-tuning: the linear probe is the control
            row |= {"random_init": None, "random_init_ci95": None, "pretrained_vs_random": None}
            row |= {f"random_{v}": None for v in ("vs_prior", "vs_markov", "degenerate")}
        row |= _probe_row(at_k, f"{label} {PROBE_SUFFIX}", prior, best)
        rows.append(row)
    return rows


def _probe_row(
    at_k: dict[str, dict[str, Any]], name: str, prior: float, best: float | None
) -> dict[str, Any]:
    """The linear-probe fields of a next-k-mer finding (all None without probe rows)."""
    keys = ("pretrained", "random_init")
    if f"{name} (pretrained)" not in at_k or f"{name} (random)" not in at_k:
        return {"probe_pretrained_vs_random": None} | {
            f"probe_{key}{suffix}": None
            for key in keys
            for suffix in ("", "_ci95", "_vs_prior", "_vs_markov", "_degenerate")
        }
    row: dict[str, Any] = {}
    for init, key in (("pretrained", "pretrained"), ("random", "random_init")):
        row |= _model_fields(at_k[f"{name} ({init})"], prior, best, f"probe_{key}", f"probe_{key}")
    row["probe_pretrained_vs_random"] = compare_intervals(
        tuple(row["probe_pretrained_ci95"]), tuple(row["probe_random_init_ci95"])
    )
    return row


def _model_fields(
    r: dict[str, Any], prior: float, best: float | None, key: str, verdict: str
) -> dict[str, Any]:
    """Accuracy ``key``, its interval ``key_ci95`` and the verdicts ``verdict_vs_prior``,
    ``verdict_vs_markov``, ``verdict_degenerate`` of one model row of a comparison."""
    ci = accuracy_interval(r)
    return {
        key: r["accuracy"],
        f"{key}_ci95": list(ci),
        f"{verdict}_vs_prior": position(prior, ci),
        f"{verdict}_vs_markov": position(best, ci) if best is not None else None,
        f"{verdict}_degenerate": degenerate_reason(r, prior),
    }


# --- sentences ---------------------------------------------------------------------------


def interval_text(interval: list[float] | tuple[float, float], digits: int = 3) -> str:
    """``0.280\u20130.312`` (an en dash between the bounds); ``-0.350 to -0.295`` when a
    bound is negative, where a dash would read as a minus sign."""
    lo, hi = (f"{v:.{digits}f}" for v in interval)
    return f"{lo} to {hi}" if min(interval) < 0 else f"{lo}{EN_DASH}{hi}"


def _ci(interval: list[float] | tuple[float, float]) -> str:
    return f"95 % CI {interval_text(interval)}"


_VS_RULE = {
    "higher": "more than the neighbour rule",
    "lower": "less than the neighbour rule",
    "overlapping": "as much as the neighbour rule (intervals overlap)",
}
_VS_REAL = {
    "lower": "lower than on real sequence",
    "higher": "higher than on real sequence",
    "overlapping": "not distinguishable from real sequence",
}


def mask_sentence(label: str, f: dict[str, Any]) -> str:
    """One sentence of the masked-token finding of a model."""
    if f["status"] == "skipped":
        return f"{label}: not analysed ({f['reason']})."
    head = (
        f"{label}: {f['scheme']} masking, {f['n_masked']:,} masked tokens: the model recovers "
        f"{f['model_top1']:.3f} ({_ci(f['model_top1_ci95'])}), the neighbour rule "
        f"{f['rule_top1']:.3f} ({_ci(f['rule_top1_ci95'])})"
    )
    if f.get("degenerate"):
        return f"{head}. DEGENERATE model: it {f['degenerate']}; no finding is drawn from it."
    text = head + f"; the model reaches {f['model_to_rule_ratio']:.2f} times the rule's accuracy, "
    text += _VS_RULE[f["model_vs_rule"]]
    if f["rule_explains"] is not None:
        text += f"; the rule also gets {f['rule_explains']:.1%} of the model's correct tokens"
    text += f"; model and rule agree on {f['agreement']:.1%}."
    if "ends_model_top1" in f:
        level = {"higher": "above", "lower": "below", "overlapping": "level with"}
        text += (
            f" At the span's two end tokens, next to a visible neighbour, the model recovers "
            f"{f['ends_model_top1']:.3f} and the rule {f['ends_rule_top1']:.3f} (the model "
            f"{level[f['ends_model_vs_rule']]} the rule); inside the span, the model "
            f"{f['inner_model_top1']:.3f} and the rule {f['inner_rule_top1']:.3f} (the model "
            f"{level[f['inner_model_vs_rule']]} the rule)."
        )
    shuffles = [
        f"{name}-shuffled sequence {f[f'model_top1_{c}_shuffled']:.3f} "
        f"({_ci(f[f'model_top1_{c}_shuffled_ci95'])}), {_VS_REAL[f[f'{c}_vs_real']]}"
        for c, name in (("di", "dinucleotide"), ("mono", "mononucleotide"))
        if f.get(f"model_top1_{c}_shuffled") is not None
    ]
    if shuffles:
        text += " On " + "; on ".join(shuffles)
        lower = [c for c in ("di", "mono") if f.get(f"{c}_vs_real") == "lower"]
        text += (
            ": beyond the overlaps it uses the genome's sequence statistics."
            if lower
            else ": nothing beyond the overlaps is detected."
        )
    return text


def embed_sentence(label: str, f: dict[str, Any]) -> str:
    """One sentence of the embedding finding of a model."""
    parts = []
    if f.get("hamming_spearman") is not None and "hamming_direction" in f:
        kind = "k-mers" if f.get("relation") != "edit_distance" else "tokens"
        meaning = {
            "negative": f"{kind} sharing bases lie closer",
            "positive": f"{kind} sharing bases lie farther apart",
            "none": "no relation distinguishable from zero",
        }[f["hamming_direction"]]
        distance = "Hamming" if f.get("relation") != "edit_distance" else "edit"
        text = (
            f"static {kind[:-1]} embeddings: Spearman rho of cosine vs {distance} distance "
            f"{f['hamming_spearman']:.3f} ({_ci(f['hamming_spearman_ci95'])}; {meaning})"
        )
        if f.get("control_hamming_spearman") is not None:
            verdict = {
                "more negative": "more negative than the control: pretraining organised "
                "them by sequence",
                "less negative": "less negative than the control: pretraining made the "
                "relation weaker",
                "overlapping": "not distinguishable from the control",
            }[f["vs_control"]]
            text += f", random-init control {f['control_hamming_spearman']:.3f} ({verdict})"
        parts.append(text)
    if "probe_layer" in f:
        chance_words = {
            "higher": "above chance",
            "lower": "below chance",
            "overlapping": "at chance",
        }
        parts.append(
            f"linear probes on layer {f['probe_layer']} read a token's own bases with accuracy "
            f"{f['probe_own_accuracy']:.3f} ({chance_words[f['own_vs_chance']]}, chance "
            f"{f['probe_own_chance']:.3f}) and the base just outside it with "
            f"{f['probe_neighbour_accuracy']:.3f} ({chance_words[f['neighbour_vs_chance']]}, "
            f"chance {f['probe_neighbour_chance']:.3f})"
        )
    if not parts and f.get("relation") == "edit_distance":
        parts.append(
            "static token embeddings: every pair of its DNA tokens lies at the same edit "
            "distance, so there is no sequence relation to measure"
        )
    return f"{label}: " + ("; ".join(parts) or "no k-mer embedding analysis") + "."


_VS_BASELINE = {"higher": "above", "lower": "below", "overlapping": "level with"}
_PRE_VS_RANDOM = {
    "higher": "pretraining helps",
    "lower": "pretraining hurts",
    "overlapping": "no difference from pretraining (intervals overlap)",
}


def nextkmer_sentence(label: str, r: dict[str, Any]) -> str:
    """One sentence of the next-k-mer finding of a model at one k."""
    text = (
        f"{label}, k = {r['k']}: test accuracy {r['pretrained']:.3f} fine-tuned from "
        f"pretraining ({_ci(r['pretrained_ci95'])})"
    )
    if r.get("random_init") is not None:
        text += f", {r['random_init']:.3f} from random init ({_ci(r['random_init_ci95'])})"
    inits = (("pretrained", "pretrained_degenerate"), ("random-init", "random_degenerate"))
    flags = [f"the {name} model is DEGENERATE: it {r[key]}" for name, key in inits if r.get(key)]
    if r.get("pretrained_vs_random") is not None and not flags:
        text += f": {_PRE_VS_RANDOM[r['pretrained_vs_random']]}"
    text += (
        f"; the pretrained model is {_VS_BASELINE[r['pretrained_vs_prior']]} the class prior "
        f"({r['prior']:.3f})"
    )
    if r["best_markov"] is not None:
        text += (
            f" and {_VS_BASELINE[r['pretrained_vs_markov']]} the best Markov chain "
            f"(order {r['markov_order']}, {r['best_markov']:.3f})"
        )
    text += f"; uniform guessing {r['uniform']:.3f}."
    if flags:
        joined = "; ".join(flags)
        text += f" {joined[0].upper()}{joined[1:]}; no finding is drawn from it."
    if r.get("probe_pretrained_vs_random") is not None:
        text += " " + _probe_sentence(r)
    return text


_PROBE_VS_RANDOM = {
    "higher": "the pretrained representation holds more",
    "lower": "the random-init representation holds more",
    "overlapping": "no difference from pretraining (intervals overlap)",
}


def _probe_sentence(r: dict[str, Any]) -> str:
    """The linear-probe part of a next-k-mer sentence."""
    text = (
        f"Linear probe of the frozen encoder: {r['probe_pretrained']:.3f} pretrained "
        f"({_ci(r['probe_pretrained_ci95'])}), {r['probe_random_init']:.3f} random init "
        f"({_ci(r['probe_random_init_ci95'])})"
    )
    if r["probe_pretrained_degenerate"]:
        return text + (
            f"; the pretrained probe is DEGENERATE: it {r['probe_pretrained_degenerate']}; "
            "no finding is drawn from it."
        )
    text += f": {_PROBE_VS_RANDOM[r['probe_pretrained_vs_random']]}"
    text += (
        f"; the pretrained probe is {_VS_BASELINE[r['probe_pretrained_vs_prior']]} the class prior"
    )
    if r["probe_pretrained_vs_markov"] is not None:
        text += f" and {_VS_BASELINE[r['probe_pretrained_vs_markov']]} the best Markov chain"
    if r["probe_random_init_degenerate"]:
        # The untrained control at the prior is what a probe of no information gives.
        text += f"; the random-init control {r['probe_random_init_degenerate']}"
    return text + "."


_BASES_VS = {"higher": "above", "lower": "below", "overlapping": "level with"}


def bases_sentence(label: str, f: dict[str, Any]) -> str:
    """One sentence of the masked-bases finding of a model."""
    if f.get("status") != "ran":
        return f"{label}: masked bases not analysed ({f.get('reason')})."
    text = (
        f"{label}: with every token covering a span hidden, the model recovers "
        f"{f['accuracy']:.3f} of {f['n']:,} hidden bases ({_ci(f['accuracy_ci95'])}), "
        f"{_BASES_VS[f['vs_markov']]} the best Markov chain on the same bases "
        f"(order {f['markov_order']}, {f['markov']:.3f})"
    )
    if "random_init" in f:
        text += f" and {_BASES_VS[f['vs_random']]} its random-init twin ({f['random_init']:.3f})"
    return text + "."


def _cell(value: float, ci: Any, verdict: str) -> str:
    """``0.296 (0.280\u20130.312): level with Markov (0.313)``."""
    return f"{value:.3f} ({interval_text(ci)}): {verdict}"


OVERVIEW_COLUMNS = ("model", "masked tokens / bases", "token embeddings", "next k-mer")
"""Columns of :func:`overview_table`: the model and its three probes."""

_EMBED_VS_CONTROL = {
    "more negative": "organised by sequence",
    "less negative": "less organised than random init",
    "overlapping": "like random init",
}
_VS_CHANCE = {"higher": "above chance", "lower": "below chance", "overlapping": "at chance"}


def _masked_cell(b: dict[str, Any], m: dict[str, Any]) -> str:
    """Masked bases against the best Markov chain, and (overlapping k-mers) masked tokens
    against the neighbour rule; one line each."""
    lines = []
    if b.get("status") == "ran":
        verdict = f"{_BASES_VS[b['vs_markov']]} Markov ({b['markov']:.3f})"
        lines.append("bases " + _cell(b["accuracy"], b["accuracy_ci95"], verdict))
    else:
        lines.append("bases: not analysed")
    if m.get("status") == "ran":
        verdict = (
            "DEGENERATE"
            if m.get("degenerate")
            else f"{_VS_BASELINE[m['model_vs_rule']]} neighbour rule ({m['rule_top1']:.3f})"
        )
        lines.append("tokens " + _cell(m["model_top1"], m["model_top1_ci95"], verdict))
    else:
        lines.append("tokens: rule does not apply (no overlap)")
    return "\n".join(lines)


def _embed_cell(e: dict[str, Any]) -> str:
    """Static embeddings: rho against the random-init control; without them, the linear
    probe of a token's own bases against chance."""
    if e.get("hamming_spearman") is not None and "hamming_spearman_ci95" in e:
        verdict = _EMBED_VS_CONTROL.get(e.get("vs_control", ""), "no random-init control")
        if e.get("control_hamming_spearman") is not None:
            verdict += f" (random init {e['control_hamming_spearman']:.3f})"
        return "rho " + _cell(e["hamming_spearman"], e["hamming_spearman_ci95"], verdict)
    if "probe_own_accuracy" in e:
        verdict = f"{_VS_CHANCE[e['own_vs_chance']]} ({e['probe_own_chance']:.3f})"
        return "own bases by linear probe " + _cell(
            e["probe_own_accuracy"], e["probe_own_accuracy_ci95"], verdict
        )
    return "not analysed"


def _nextkmer_cell(rows: list[dict[str, Any]]) -> str:
    """The fine-tuned pretrained model at each k against the best Markov chain (or the
    class prior without one); one line per k."""
    lines = []
    for r in rows:
        if r["best_markov"] is not None:
            verdict = f"{_VS_BASELINE[r['pretrained_vs_markov']]} Markov ({r['best_markov']:.3f})"
        else:
            verdict = f"{_VS_BASELINE[r['pretrained_vs_prior']]} prior ({r['prior']:.3f})"
        if r.get("pretrained_degenerate"):
            verdict = "DEGENERATE (no finding)"
        lines.append(f"k = {r['k']}: " + _cell(r["pretrained"], r["pretrained_ci95"], verdict))
    return "\n".join(lines) or "not analysed"


def overview_table(labels: list[str], findings: dict[str, Any]) -> pl.DataFrame:
    """Every model side by side on the three probes, one row per model (columns
    :data:`OVERVIEW_COLUMNS`): each cell holds the number, its 95 % interval and the
    verdict against its reference, one line (separated by a newline) per measurement."""
    rows = [
        dict(
            zip(
                OVERVIEW_COLUMNS,
                (
                    lab,
                    _masked_cell(
                        findings.get("masked_bases", {}).get(lab, {}),
                        findings["masked_tokens"][lab],
                    ),
                    _embed_cell(findings["embeddings"][lab]),
                    _nextkmer_cell(findings["next_kmer"][lab]),
                ),
                strict=True,
            )
        )
        for lab in labels
    ]
    return pl.DataFrame(rows, schema=dict.fromkeys(OVERVIEW_COLUMNS, pl.String))


TOPICS = {
    "masked_bases": "Masked bases: every model on the same hidden bases",
    "masked_tokens": "Masked tokens: how much the neighbour rule explains",
    "embeddings": "Embeddings: how strongly they follow k-mer sequence",
    "next_kmer": "Next-k-mer prediction: models vs baselines",
}


def finding_lines(labels: list[str], findings: dict[str, Any]) -> dict[str, list[str]]:
    """The sentences of every finding, grouped by topic title."""
    bases = findings.get("masked_bases", {})
    return {
        TOPICS["masked_bases"]: [bases_sentence(lab, bases[lab]) for lab in labels if lab in bases],
        TOPICS["masked_tokens"]: [
            mask_sentence(lab, findings["masked_tokens"][lab]) for lab in labels
        ],
        TOPICS["embeddings"]: [embed_sentence(lab, findings["embeddings"][lab]) for lab in labels],
        TOPICS["next_kmer"]: [
            nextkmer_sentence(lab, r) for lab in labels for r in findings["next_kmer"][lab]
        ],
    }
