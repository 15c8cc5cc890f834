"""The whole study on phage lambda with two tiny k-mer models (overlapping 3-mers and
non-overlapping 2-mers): every stage's files, findings that equal the tables, resume,
parameter checks and the report in a real browser."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import polars as pl
import pytest

from browser import chromium, inspect_page
from dnakmer import KmerTokenizer
from dnakmer.study.interrogate import STAGE_MARKER, Budget, context_length, interrogate

pytest.importorskip("torch")
DATA = Path(__file__).parent / "data"
GENOME = DATA / "lambda_phage.fa.gz"
KS = (2, 3)
BUDGET = Budget(
    mask_windows=16,
    mask_window_tokens=24,
    embed_windows=12,
    embed_window_tokens=24,
    context_nt=40,
    n_train=256,
    n_val=64,
    n_test=96,
    markov_orders=(0, 1, 2, 3),
    max_steps=4,
    batch_size=16,
    eval_every=4,
    learning_rate=5e-3,
    device="cpu",
)


def _tiny_model(out: Path, k: int, stride: int) -> Path:
    from dnakmer.models import tiny_bert
    from dnakmer.training.pretrain import save_tokenizer_files

    tiny_bert(k=k, hidden=32, layers=1, max_positions=64, seed=k).save_pretrained(out)
    kind = "overlapping" if stride == 1 else "nonoverlapping"
    save_tokenizer_files(out, KmerTokenizer(k, stride), kind, 64)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("models")
    return [_tiny_model(root / "over3", 3, 1), _tiny_model(root / "disjoint2", 2, 2)]


@pytest.fixture(scope="module")
def run(models: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The study run through the command line, with ``BUDGET`` as a JSON file."""
    from typer.testing import CliRunner

    from dnakmer.cli import app

    root = tmp_path_factory.mktemp("run")
    budget = root / "budget.json"
    budget.write_text(json.dumps(dataclasses.asdict(BUDGET)))
    out = root / "lambda"
    args = ["interrogate", str(GENOME), "--out", str(out), "--budget", str(budget), "--quiet"]
    for m in models:
        args += ["--model", str(m)]
    for k in KS:
        args += ["--k", str(k)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "stages run: 9, skipped (done earlier): 0" in result.output
    assert f"report:  {out / 'report.html'}" in result.output
    findings = json.loads((out / "findings.json").read_text())
    rule = findings["masked_tokens"]["over3"]["rule_top1"]
    assert f"the neighbour rule {rule:.3f}" in result.output
    return out, findings


def test_every_stage_writes_its_files(run: tuple[Path, dict]) -> None:
    out, _ = run
    for stage in (
        "genome",
        "mask/over3",
        "mask/disjoint2",
        "embed/over3",
        "embed/disjoint2",
        "datasets",
        "baselines",
        "finetune/over3",
        "finetune/disjoint2",
    ):
        assert (out / stage / STAGE_MARKER).is_file(), stage
    for name in ("composition.png", "stats.parquet", "stats.json"):
        assert (out / "genome" / name).stat().st_size > 0
    stats = pl.read_parquet(out / "genome" / "stats.parquet")
    assert stats["length"].to_list() == [48502]
    assert (out / "mask/over3/tokens.parquet").is_file()
    assert (out / "mask/over3/model_vs_rule.png").is_file()
    skipped = json.loads((out / "mask/disjoint2/skipped.json").read_text())
    assert "stride 2" in skipped["reason"]
    assert (out / "embed/over3/probe_curves.png").is_file()
    control = pl.read_csv(out / "embed/over3/kmer_similarity_random_init.csv")
    assert "hamming_distance" in control["relation"].to_list()
    assert (out / "embed/disjoint2/projection_pca.png").is_file()
    for k in KS:
        ds = json.loads((out / f"datasets/k{k}/manifest.json").read_text())
        assert ds["k"] == k and ds["context_nt"] == 40 and ds["input"] == "bases"
        assert ds["counts"] == {"train": 256, "val": 64, "test": 96}
        for model in ("over3", "disjoint2"):
            for init in ("pretrained", "random"):
                assert (out / f"finetune/{model}/k{k}/{init}/seed0/results.json").is_file()
    baselines = pl.read_parquet(out / "baselines/baselines.parquet")
    assert sorted(baselines["k"].unique().to_list()) == list(KS)
    for name in ("mask_summary", "kmer_similarity", "nextkmer_comparison", "genome_stats"):
        assert (out / "tables" / f"{name}.parquet").is_file()
        assert json.loads((out / "tables" / f"{name}.json").read_text())
    assert (out / "tables/accuracy_vs_k.png").read_bytes().startswith(b"\x89PNG")


def test_manifest_records_inputs_models_and_versions(
    run: tuple[Path, dict], models: list[Path]
) -> None:
    import hashlib

    out, _ = run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["genome"]["sha256"] == hashlib.sha256(GENOME.read_bytes()).hexdigest()
    over3 = manifest["models"]["over3"]
    weights = (models[0] / "model.safetensors").read_bytes()
    assert over3["sha256"]["model.safetensors"] == hashlib.sha256(weights).hexdigest()
    assert (over3["k"], over3["stride"], over3["max_positions"]) == (3, 1, 64)
    assert manifest["models"]["disjoint2"]["stride"] == 2
    params = manifest["parameters"]
    assert params["ks"] == list(KS) and params["seeds"] == [0] and params["context_nt"] == 40
    assert params["budget"]["max_steps"] == 4
    assert {"dnakmer", "torch", "transformers", "numpy"} <= set(manifest["versions"])


def test_findings_equal_the_tables_and_the_summary(run: tuple[Path, dict]) -> None:
    out, findings = run
    summary = (out / "summary.md").read_text()
    mask = json.loads((out / "mask/over3/summary.json").read_text())["overall"]
    real = next(r for r in mask if r["scheme"] == "dnabert" and r["control"] == "none")
    f = findings["masked_tokens"]["over3"]
    assert (f["model_top1"], f["rule_top1"]) == (real["model_top1"], real["rule_top1"])
    assert 0.0 <= f["rule_top1"] <= 1.0 and f["n_masked"] == 16 * 3
    assert f"{real['model_top1']:.3f}" in summary and f"{real['rule_top1']:.3f}" in summary
    tokens = pl.read_parquet(out / "mask/over3/tokens.parquet").filter(
        (pl.col("scheme") == "dnabert") & (pl.col("control") == "none")
    )
    right = tokens.filter(pl.col("model_rank") == 0)
    if right.height:
        share = (right["rule_rank"] == 0).mean()
        assert f["rule_explains"] == share
    else:
        assert f["rule_explains"] is None
    assert f["model_to_rule_ratio"] == pytest.approx(f["model_top1"] / f["rule_top1"])
    # Untrained test models: flagged, and no direction is read off their numbers.
    line = next(x for x in summary.splitlines() if x.startswith("- over3: dnabert masking"))
    if f["degenerate"]:
        assert "DEGENERATE" in line and "times the rule" not in line
    else:
        assert f"{f['model_to_rule_ratio']:.2f} times the rule's accuracy" in line
    assert findings["masked_tokens"]["disjoint2"]["status"] == "skipped"

    sim = pl.read_csv(out / "embed/over3/kmer_similarity.csv")
    rho = sim.filter(pl.col("relation") == "hamming_distance")["value"][0]
    assert findings["embeddings"]["over3"]["hamming_spearman"] == rho
    rho_c = control_rho(out / "embed/over3/kmer_similarity_random_init.csv")
    assert findings["embeddings"]["over3"]["control_hamming_spearman"] == rho_c
    assert f"random-init control {rho_c:.3f}" in summary
    assert f"{rho:.3f}" in summary
    own = findings["embeddings"]["over3"]["probe_own_accuracy"]
    assert 0.0 < own <= 1.0 and f"{own:.3f}" in summary

    table = pl.read_parquet(out / "finetune/disjoint2/comparison.parquet")
    for row in findings["next_kmer"]["disjoint2"]:
        at_k = table.filter(pl.col("k") == row["k"])
        pre = at_k.filter(pl.col("predictor") == "disjoint2 (pretrained)")["accuracy"][0]
        prior = at_k.filter(pl.col("predictor") == "prior")["accuracy"][0]
        assert (row["pretrained"], row["prior"]) == (pre, prior)
        assert row["uniform"] == pytest.approx(4.0 ** -row["k"], rel=0.5)
        line = next(x for x in summary.splitlines() if f"disjoint2, k = {row['k']}:" in x)
        assert f"{pre:.3f}" in line and f"{prior:.3f}" in line
        assert f"(order {row['markov_order']}, {row['best_markov']:.3f})" in line
    # Every number in the summary is a real fraction or a correlation, never NaN.
    assert "nan" not in summary.lower()
    assert all(-1.0 <= float(x) <= 1.0 for x in re.findall(r"-?\d\.\d{3}\b", summary))
    # Intervals read as ranges, never as "-0.35--0.29".
    assert not re.search(r"\d-\d\.", summary)


def test_summary_and_report_open_with_the_overview_table(run: tuple[Path, dict]) -> None:
    out, findings = run
    summary = (out / "summary.md").read_text()
    head = "| model | masked tokens / bases | token embeddings | next k-mer |"
    assert summary.index(head) < summary.index("\n## ") < summary.index("\n- ")
    html = (out / "report.html").read_text()
    first_table = html.index("<table>")
    assert html.index("Every model on the three probes") < html.index('class="finding"')
    assert first_table < html.index('class="finding"')
    # A cell: the number, its interval and the verdict, one line per k.
    overview = pl.read_parquet(out / "tables/overview.parquet")
    cell = overview.filter(pl.col("model") == "disjoint2")["next k-mer"].item()
    for row, line in zip(findings["next_kmer"]["disjoint2"], cell.split("\n"), strict=True):
        low, high = row["pretrained_ci95"]
        number = f"{row['pretrained']:.3f} ({low:.3f}\u2013{high:.3f})"
        assert line.startswith(f"k = {row['k']}: {number}: ")
        verdict = line.split("): ", 1)[1]
        assert verdict.startswith(("above", "below", "level with", "DEGENERATE"))
    # One seed: the comparison says why the interval over seeds is empty.
    table = pl.read_parquet(out / "tables/nextkmer_comparison.parquet")
    model = table.filter(pl.col("predictor") == "disjoint2 (pretrained)")
    assert model["accuracy_ci95"].null_count() == model.height
    assert model["ci_note"].str.starts_with("one seed").all()
    assert "none (1 seed)" in html


def control_rho(path: Path) -> float:
    table = pl.read_csv(path)
    return float(table.filter(pl.col("relation") == "hamming_distance")["value"][0])


def test_rerun_skips_completed_stages(run: tuple[Path, dict], models: list[Path]) -> None:
    out, findings = run
    marker = out / "finetune/over3" / STAGE_MARKER
    before = marker.stat().st_mtime_ns, (out / "datasets/k2/labels.npy").stat().st_mtime_ns
    again = interrogate(GENOME, models, out, ks=KS, budget=BUDGET, quiet=True)
    assert again.stages.pop("report") == "ran"
    assert set(again.stages.values()) == {"skipped"}
    after = marker.stat().st_mtime_ns, (out / "datasets/k2/labels.npy").stat().st_mtime_ns
    assert after == before
    assert again.findings == findings


def test_side_by_side_stages_give_the_same_findings(
    run: tuple[Path, dict], models: list[Path], tmp_path: Path
) -> None:
    """Two worker processes, fine-tuning from pretrained weights only: every number that
    both runs compute equals the serial run's; random-init fine-tuning is absent."""
    _, serial = run
    budget = dataclasses.replace(BUDGET, finetune_inits=("pretrained",))
    result = interrogate(GENOME, models, tmp_path / "run", ks=KS, budget=budget, quiet=True, jobs=2)
    assert result.stages.pop("report") == "ran"
    assert len(result.stages) == 9 and set(result.stages.values()) == {"ran"}
    found = result.findings
    for topic in ("masked_tokens", "masked_bases", "embeddings"):
        assert found[topic] == serial[topic], topic
    for model in ("over3", "disjoint2"):
        assert not (tmp_path / f"run/finetune/{model}/k2/random").exists()
        for mine, theirs in zip(found["next_kmer"][model], serial["next_kmer"][model], strict=True):
            assert mine["random_init"] is None and mine["pretrained_vs_random"] is None
            for key, value in mine.items():
                if "random" not in key or key.startswith("probe_"):
                    assert value == theirs[key], (model, key)
    summary = (tmp_path / "run/summary.md").read_text()
    assert "from random init" not in summary and "Linear probe of the frozen encoder" in summary
    # A stage that fails in a worker stops the run with its own error, unmarked.
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in models[0].iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(Exception, match=r"safetensors|header") as err:
        interrogate(GENOME, [broken, models[1]], tmp_path / "bad", ks=(2,), budget=budget,
                    quiet=True, jobs=2)  # fmt: skip
    assert not isinstance(err.value, KeyboardInterrupt)
    assert not (tmp_path / "bad/mask/broken" / STAGE_MARKER).exists()
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        interrogate(GENOME, models, tmp_path / "zero", ks=KS, budget=budget, jobs=0)


def test_a_run_folder_refuses_other_parameters(run: tuple[Path, dict], models: list[Path]) -> None:
    out, _ = run
    with pytest.raises(ValueError, match=r"other parameters.*ks"):
        interrogate(GENOME, models, out, ks=(2,), budget=BUDGET, quiet=True)


def test_bad_arguments_are_named(models: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ks must be"):
        interrogate(GENOME, models, tmp_path, ks=(0, 2), budget=BUDGET)
    with pytest.raises(ValueError, match="seeds"):
        interrogate(GENOME, models, tmp_path, seeds=0, budget=BUDGET)
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        interrogate(GENOME, [tmp_path], tmp_path / "run", budget=BUDGET)
    no_vocab = tmp_path / "bpe"
    no_vocab.mkdir()
    (no_vocab / "config.json").write_text("{}")
    (no_vocab / "model.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"has no tokenizer"):
        interrogate(GENOME, [no_vocab], tmp_path / "run", budget=BUDGET)
    with pytest.raises(FileNotFoundError, match="genome"):
        interrogate(tmp_path / "missing.fa", models, tmp_path / "run", budget=BUDGET)
    assert not (tmp_path / "run").exists()


def test_budget_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    path.write_text(json.dumps({"max_steps": 7, "markov_orders": [0, 2]}))
    assert Budget.from_json(path) == Budget(max_steps=7, markov_orders=(0, 2))
    path.write_text(json.dumps({"max_step": 7}))
    with pytest.raises(ValueError, match=r"unknown budget fields \['max_step'\]"):
        Budget.from_json(path)
    path.write_text(json.dumps({"finetune_inits": ["pretrained"]}))
    assert Budget.from_json(path).finetune_inits == ("pretrained",)
    for bad in ({"max_steps": 0}, {"device": "tpu"}, {"markov_orders": [13]},
                {"markov_orders": 3}, {"linear_probe": "no"}, {"finetune_inits": ["random"]},
                {"finetune_inits": ["pretrained", "pretrained"]}):  # fmt: skip
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=f"budget {next(iter(bad))}"):
            Budget.from_json(path)
    path.write_text("{max_steps: 7}")
    with pytest.raises(ValueError, match="not valid JSON"):
        Budget.from_json(path)


def test_context_length_fits_every_tokenizer() -> None:
    over6 = {"k": 6, "stride": 1, "max_positions": 512}
    disjoint6 = {"k": 6, "stride": 6, "max_positions": 512}
    nucleotide = {"k": 1, "stride": 1, "max_positions": 512}
    # DNABERT-6: 510 k-mers + [CLS]/[SEP] in 512 positions = 515 bases.
    assert context_length([over6], None) == 515
    # Single nucleotides: 510 bases.
    assert context_length([over6, nucleotide], None) == 510
    # Non-overlapping 6-mers need a multiple of 6: 510 = 85 tokens.
    assert context_length([over6, disjoint6, nucleotide], None) == 510
    assert context_length([over6, disjoint6], 100) == 96
    with pytest.raises(ValueError, match="context_nt must be positive"):
        context_length([over6], 0)
    with pytest.raises(ValueError, match="no context"):
        context_length([{"k": 6, "stride": 6, "max_positions": 512}], 5)


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed")
def test_report_renders_in_chromium(run: tuple[Path, dict]) -> None:
    out, _ = run
    page = inspect_page(out / "report.html")
    assert page["title"] == "dnakmer interrogate"
    # composition, masked bases, 2 mask figures (over3), PCA x2, probe curves (over3),
    # accuracy vs k, baselines.
    assert len(page["images"]) == 9
    assert "Masked bases" in [img["alt"] for img in page["images"]]
    assert all(img["complete"] and img["naturalWidth"] > 0 for img in page["images"])
    # overview, genome, masked bases, mask summary, k-mer similarity, next-k-mer comparison,
    # provenance.
    assert page["tables"] == 7
    assert page["errors"] == [] and page["console_errors"] == []


def test_default_budget_is_sized_by_the_precision_a_finding_needs() -> None:
    """About ±0.01 at accuracy 0.3 for every probe of the default budget: two accuracies
    0.02 apart have separate 95 % intervals; the demo's smaller budget says what it can
    tell apart too."""
    from dnakmer.confidence import wilson_interval
    from dnakmer.study.budget import detectable_difference
    from dnakmer.study.demo import demo_budget

    lo, hi = wilson_interval(0.3 * 8000, 8000)
    assert detectable_difference(8000) == pytest.approx(hi - lo, rel=0.01)
    rows = {r["probe"]: r for r in Budget().precision(k=6, smallest_k=2)}
    assert set(rows) == {"next-k-mer", "masked bases", "masked tokens"}
    assert rows["next-k-mer"]["n"] == 8000 and rows["next-k-mer"]["items"].endswith("k = 2")
    assert all(0.015 < r["difference"] <= 0.0205 for r in rows.values())
    demo = {r["probe"]: r["difference"] for r in demo_budget().precision()}
    assert demo["next-k-mer"] == pytest.approx(detectable_difference(4000))
    assert demo["masked bases"] == pytest.approx(detectable_difference(512 * 6))
