"""The offline demo: the shipped genome and models, the commands recorded for them, the
whole study in one command with its report in a real browser, and re-running the
recorded pretraining."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import pytest

from browser import chromium, inspect_page
from dnakmer.data import demo_genome, demo_models_dir

pytest.importorskip("torch")

from dnakmer.study.demo import (
    DEMO_KS,
    DEMO_MODELS,
    compare_curves,
    demo_models,
    recorded_commands,
    retrain,
)

ROOT = Path(__file__).resolve().parents[1]


def _options(args: list[str]) -> dict[str, str]:
    """``--name value`` pairs of a recorded command."""
    return {a[2:]: args[i + 1] for i, a in enumerate(args) if a.startswith("--")}


def test_shipped_models_are_what_their_recorded_commands_make() -> None:
    commands = recorded_commands()
    genome_sha = hashlib.sha256(demo_genome().read_bytes()).hexdigest()
    budgets = set()
    for name, folder in zip(DEMO_MODELS, demo_models(), strict=True):
        args = commands[name]
        assert args[:2] == ["pretrain", "$GENOME"]
        opt = _options(args)
        history = json.loads((folder / "history.json").read_text())
        params = history["params"]
        assert params["genome"] == {"name": demo_genome().name, "sha256": genome_sha}
        assert params["tokenization"] == opt["tokenization"]
        bpe = opt["tokenization"] == "bpe"
        assert params["k"] == (None if bpe else int(opt.get("k", "1")))
        if bpe:
            assert params["vocab_size"] == int(opt["vocab-size"])
        assert params["max_tokens"] == int(opt["window-tokens"])
        assert params["n_train"] == int(opt["n-train"])
        assert params["n_eval"] == int(opt["n-val"])
        o = params["options"]
        assert o["max_steps"] == int(opt["max-steps"])
        assert o["batch_size"] == int(opt["batch-size"])
        assert o["learning_rate"] == float(opt["lr"])
        assert o["eval_every"] == int(opt["eval-every"])
        assert o["seed"] == int(opt["seed"])
        assert params["shape"] == {
            "hidden": 64,
            "layers": int(opt["n-layers"]),
            "heads": int(opt["n-heads"]),
            "intermediate": 256,
            "dropout": float(opt["dropout"]),
            "position_init": opt["position-init"],
        }
        warm = int(opt.get("random-masking-steps", "0"))
        assert params["random_masking_steps"] == warm
        assert (warm > 0) == (name == "overlapping-6mer")
        # The curve was logged to the end and the shipped weights are the best evaluation.
        steps = [e["step"] for e in history["log_history"] if "eval_loss" in e]
        assert steps[-2] == o["max_steps"]
        best = min(e["eval_loss"] for e in history["log_history"] if "eval_loss" in e)
        assert history["final_eval"]["eval_loss"] == pytest.approx(best)
        budgets.add(
            tuple(opt[key] for key in ("window-tokens", "max-steps", "batch-size", "lr", "seed"))
        )
    assert len(budgets) == 1, "the models must share one budget"


def test_shipped_models_load_with_their_tokenizers(
    pretrained_files: frozenset[str], pretrained_bpe_files: frozenset[str]
) -> None:
    from dnakmer.models import load

    expected = {"overlapping-6mer": (6, 1), "nonoverlapping-6mer": (6, 6), "nucleotide": (1, 1)}
    for name, folder in zip(DEMO_MODELS, demo_models(), strict=True):
        loaded = load(folder, device="cpu")
        assert loaded.has_mlm_head
        if name == "bpe":
            assert loaded.encoder.kind == "batch" and len(loaded.tokenizer) == 512
            assert {p.name for p in folder.iterdir()} == pretrained_bpe_files
            continue
        assert (loaded.tokenizer.k, loaded.tokenizer.stride) == expected[name]
        assert {p.name for p in folder.iterdir()} == pretrained_files


def test_package_data_is_small_and_in_the_wheel() -> None:
    data = demo_models_dir().parent
    files = [p for p in data.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    weights = sum(p.stat().st_size for p in demo_models_dir().rglob("model.safetensors"))
    assert weights <= 30 * 2**20
    assert sum(p.stat().st_size for p in files) <= 20 * 2**20
    assert demo_genome() in files and (demo_models_dir() / "COMMANDS.md") in files
    # Every data file is matched by one of maturin's include patterns.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    includes = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["maturin"]["include"]
    included = {p.resolve() for inc in includes for p in ROOT.glob(inc["path"]) if p.is_file()}
    assert all("wheel" in inc["format"] for inc in includes)
    missing = [str(p) for p in files if p.resolve() not in included]
    assert missing == []


def test_commands_file_is_runnable_shell() -> None:
    text = (demo_models_dir() / "COMMANDS.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert lines[0].startswith("GENOME=$(python -c ")
    assert [shlex.split(line)[3] for line in lines[1:]] == ["--out"] * len(DEMO_MODELS)
    assert len(lines) == 1 + len(DEMO_MODELS)


def test_curve_comparison_finds_differences() -> None:
    shipped = json.loads((demo_models()[2] / "history.json").read_text())
    same = compare_curves(shipped, shipped)
    assert all(r["max_abs_diff"] == 0.0 and r["points"] > 0 for r in same)
    changed = json.loads(json.dumps(shipped))
    entry = next(e for e in changed["log_history"] if "eval_loss" in e)
    entry["eval_loss"] += 0.5
    rows = {r["quantity"]: r for r in compare_curves(shipped, changed)}
    assert rows["eval_loss"]["max_abs_diff"] == pytest.approx(0.5)
    assert rows["loss"]["max_abs_diff"] == 0.0
    truncated = json.loads(json.dumps(shipped))
    truncated["log_history"] = truncated["log_history"][:2]
    rows = {r["quantity"]: r for r in compare_curves(shipped, truncated)}
    assert rows["eval_loss"]["missing_steps"] > 0 and rows["eval_loss"]["max_abs_diff"] > 1e9


def test_demo_runs_every_stage_and_prints_the_report(demo_run: tuple[Path, str]) -> None:
    out, output = demo_run
    # genome, 4 x mask, 4 x embed, datasets, baselines, 4 x finetune
    assert "stages run: 15, skipped (done earlier): 0" in output
    assert "report:  demo/report.html" in output
    # The answer first: the models side by side, then the sentences.
    assert output.index("Every model on the three probes") < output.index("  overlapping-6mer:")
    row = "│ overlapping-6mer    │ bases 0.296 (0.280\u20130.312): level with Markov (0.313)"
    assert row in output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["ks"] == list(DEMO_KS)
    assert list(manifest["models"]) == list(DEMO_MODELS)
    assert manifest["genome"]["sha256"] == hashlib.sha256(demo_genome().read_bytes()).hexdigest()


def test_demo_findings(demo_run: tuple[Path, str]) -> None:
    import polars as pl

    out, output = demo_run
    findings = json.loads((out / "findings.json").read_text())
    mask = findings["masked_tokens"]
    over = mask["overlapping-6mer"]
    assert over["status"] == "ran" and over["scheme"] == "dnabert"
    assert "do not overlap" in mask["nonoverlapping-6mer"]["reason"]
    assert "single-nucleotide" in mask["nucleotide"]["reason"]
    assert f"the neighbour rule {over['rule_top1']:.3f}" in output
    # 512 windows, one DNABERT span (6 masked 6-mers, one base hidden) each.
    assert over["n_masked"] == 512 * 6 and over["degenerate"] is None
    # The model reads a masked 6-mer off its visible neighbours as the rule does, at the
    # span's end tokens (neighbour adjacent) and inside it (neighbours 2-5 tokens away).
    assert over["rule_top1"] > 0.25
    assert over["model_top1"] >= 0.8 * over["rule_top1"]
    assert over["model_vs_rule"] == "overlapping"
    assert over["ends_model_vs_rule"] == "overlapping"
    assert over["inner_model_vs_rule"] == "overlapping"
    assert over["inner_model_top1"] >= 0.8 * over["inner_rule_top1"]
    # ...and less on shuffled sequence, where the genome's statistics no longer hold.
    assert over["di_vs_real"] == "lower" and over["mono_vs_real"] == "lower"
    assert over["model_top1_mono_shuffled"] < over["model_top1_di_shuffled"] < over["model_top1"]

    # Masked bases: every model on the same 3,072 hidden bases (512 spans of 6).
    bases = findings["masked_bases"]
    assert list(bases) == list(DEMO_MODELS)
    assert all(b["status"] == "ran" and b["n"] == 512 * 6 for b in bases.values())
    assert len({b["markov"] for b in bases.values()}) == 1
    assert bases["bpe"]["tokenizer"] == "batch"
    # Pretraining taught the 6-mer models something about hidden bases: above their
    # random-init twins (0.296 and 0.304 against 0.250 and 0.247), level with the best
    # Markov chain (0.313); the nucleotide model stays below the chain.
    for name in ("overlapping-6mer", "nonoverlapping-6mer"):
        assert bases[name]["vs_random"] == "higher" and bases[name]["vs_markov"] == "overlapping"
    assert bases["nucleotide"]["vs_markov"] == "lower"
    # A BPE vocabulary learned on the genome carries its statistics before any training:
    # the random-init BPE model is above one base in four.
    assert bases["bpe"]["random_init_ci95"][0] > 0.25
    assert "with every token covering a span hidden" in output
    overview = pl.read_parquet(out / "tables" / "overview.parquet")
    assert overview["model"].to_list() == list(DEMO_MODELS)
    masked = dict(zip(overview["model"], overview["masked tokens / bases"], strict=True))
    assert [m for m, cell in masked.items() if "neighbour rule (" in cell] == ["overlapping-6mer"]
    # Each cell: the number, its interval and the verdict.
    b = bases["overlapping-6mer"]
    assert masked["overlapping-6mer"].startswith(
        f"bases {b['accuracy']:.3f} ({b['accuracy_ci95'][0]:.3f}\u2013{b['accuracy_ci95'][1]:.3f})"
        f": level with Markov ({b['markov']:.3f})"
    )

    emb = findings["embeddings"]
    # BPE tokens of different lengths: static embeddings against edit distance.
    assert emb["bpe"]["relation"] == "edit_distance" and "hamming_spearman_ci95" in emb["bpe"]
    e = emb["overlapping-6mer"]
    # Static 6-mer embeddings: k-mers sharing bases lie closer, unlike the untrained control.
    assert e["hamming_spearman"] <= -0.2 and e["hamming_direction"] == "negative"
    assert e["vs_control"] == "more negative"
    assert e["hamming_spearman"] < e["control_hamming_spearman"]
    assert "k-mers sharing bases lie closer" in output
    # A nucleotide model's last-layer states carry the token's own base.
    assert emb["nucleotide"]["probe_own_accuracy"] > 0.95

    for name in DEMO_MODELS:
        rows = findings["next_kmer"][name]
        assert [r["k"] for r in rows] == list(DEMO_KS)
        for r in rows:
            # Uniform guessing on 4,000 test windows: within 4 standard errors of 4^-k.
            chance = 4.0 ** -r["k"]
            assert abs(r["uniform"] - chance) < 4 * (chance * (1 - chance) / 4000) ** 0.5
            # Every model is set against the best Markov chain (orders 0-8).
            assert r["best_markov"] > r["prior"] and r["pretrained_vs_markov"] is not None
            assert f"the best Markov chain (order {r['markov_order']}" in output
    nucleotide = findings["next_kmer"]["nucleotide"]
    # The nucleotide model beats the class prior by more than its 95 % interval.
    assert any(r["pretrained_vs_prior"] == "higher" for r in nucleotide)
    assert all(r["pretrained_degenerate"] is None for r in nucleotide)
    # Pretrained differs from random init: the frozen overlapping 6-mer encoder's states
    # predict the next bases (its tokens' own bases), an untrained one's do not. (Fine-tuned
    # for 250 steps, random init learned as much from the training windows, so the demo
    # fine-tunes from pretraining only.)
    for r in findings["next_kmer"]["overlapping-6mer"]:
        assert r["probe_pretrained_vs_random"] == "higher"
        assert r["probe_pretrained_degenerate"] is None
        assert r["probe_pretrained"] > r["probe_random_init"] + 0.015
    assert findings["next_kmer"]["overlapping-6mer"][0]["probe_pretrained_vs_prior"] == "higher"
    # Sentences state what the intervals say, never a fixed phrase.
    # The demo fine-tunes from pretraining only: the probe's random-init encoder is the
    # control, and no sentence claims a fine-tuned comparison it did not make.
    summary = (out / "summary.md").read_text()
    for name in DEMO_MODELS:
        for r in findings["next_kmer"][name]:
            line = next(x for x in summary.splitlines() if x.startswith(f"- {name}, k = {r['k']}:"))
            assert r["random_init"] is None and r["pretrained_vs_random"] is None
            tuned, probe = line.split(" Linear probe of the frozen encoder: ")
            assert "random init" not in tuned and "difference from pretraining" not in tuned
            assert ("DEGENERATE" in tuned) == bool(r["pretrained_degenerate"])
            probe_words = {"higher": "the pretrained representation holds more",
                           "overlapping": "no difference from pretraining"}  # fmt: skip
            assert ("DEGENERATE" in probe) == bool(r["probe_pretrained_degenerate"])
            assert r["probe_pretrained_degenerate"] or (
                probe_words[r["probe_pretrained_vs_random"]] in probe
            )


def test_demo_report_shows_the_pretraining(demo_run: tuple[Path, str]) -> None:
    import polars as pl

    out, _ = demo_run
    table = pl.read_parquet(out / "tables" / "pretraining.parquet")
    assert table["model"].to_list() == list(DEMO_MODELS)
    for row, folder in zip(table.iter_rows(named=True), demo_models(), strict=True):
        final = json.loads((folder / "history.json").read_text())["final_eval"]
        assert row["eval_loss"] == pytest.approx(final["eval_loss"])
        assert row["eval_mlm_accuracy"] == pytest.approx(final["eval_mlm_accuracy"])
    curves = pl.read_parquet(out / "tables" / "pretraining_curves.parquet")
    assert set(curves["quantity"]) == {"loss", "eval_loss", "eval_mlm_accuracy"}
    assert (out / "tables" / "pretraining_curves.png").stat().st_size > 10_000


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed")
def test_demo_report_renders_in_chromium(demo_run: tuple[Path, str]) -> None:
    out, _ = demo_run
    page = inspect_page(out / "report.html")
    assert page["title"] == "dnakmer interrogate"
    alts = [img["alt"] for img in page["images"]]
    assert "Pretraining curves" in alts
    assert all(img["complete"] and img["naturalWidth"] > 0 for img in page["images"])
    assert page["tables"] >= 6
    assert page["errors"] == [] and page["console_errors"] == []


def test_rerun_demo_skips_every_stage(demo_run: tuple[Path, str]) -> None:
    from typer.testing import CliRunner

    from dnakmer.cli import app

    out, _ = demo_run
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "stages run: 0, skipped (done earlier): 15" in result.output


def test_recorded_commands_reproduce_the_start_of_the_training_curves(tmp_path: Path) -> None:
    # The whole runs take tens of CPU minutes; their first 1,000 steps (one evaluation,
    # and for the overlapping model a quarter of its random-masking warm-up) must match.
    check = retrain(tmp_path, jobs=2, quiet=True, stop_after=1000)
    assert check.table.height == 3 * len(DEMO_MODELS)
    assert check.reproduced, check.table
    assert set(check.table["points"].to_list()) >= {1, 20}
