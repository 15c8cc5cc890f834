"""Every model family on the next-k-mer benchmark: tiny models in the folder formats of
DNABERT (k-mer vocab.txt), GROVER (BPE tokenizer.json), the Nucleotide Transformer (ESM +
EsmTokenizer) and character vocabularies load offline, are fed exactly the ids their own
tokenizer gives for the same bases, and fine-tune end to end on one paired dataset;
folders whose classes are their own code are refused without --trust-remote-code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import dnakmer
from dnakmer.cli import main
from dnakmer.datasets import nextkmer
from dnakmer.exceptions import ModelError
from dnakmer.models import load, load_tokenizer, token_limit
from dnakmer.models.encoding import BaseEncoder, codes_to_text
from dnakmer.training.finetune import data_from_dataset
from model_formats import FORMATS, nt_vocab, write_char, write_format, write_nt, write_remote

DATA = Path(__file__).parent / "data"
LAMBDA = DATA / "lambda_phage.fa.gz"
LETTERS = np.frombuffer(b"ATCGN", dtype=np.uint8)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("formats")
    return {f: write_format(f, root / f, LAMBDA) for f in FORMATS}


@pytest.fixture(scope="module")
def raw_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nk") / "nk2"
    nextkmer.build(
        LAMBDA, 2, 40, None, n_train=120, n_val=40, n_test=40, seed=3, strand="both"
    ).save(out)
    return out


def run(argv: list[str]) -> None:
    """The command line as a user runs it; fails unless it exits 0."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code in (0, None)


def _own_ids(fmt: str, folder: Path, tok: object, codes: np.ndarray) -> list[list[int]]:
    """What the model's own Hugging Face tokenizer gives for the same bases."""
    texts = codes_to_text(codes)
    if fmt == "dnabert":
        from transformers import BertTokenizer

        hf = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False)
        k = 3
        spaced = [" ".join(t[i : i + k] for i in range(len(t) - k + 1)) for t in texts]
        return [list(r) for r in hf(spaced)["input_ids"]]
    if fmt == "char":
        return [list(r) for r in tok(codes_to_text(codes, " "))["input_ids"]]  # type: ignore[operator]
    return [list(r) for r in tok(texts)["input_ids"]]  # type: ignore[operator]


def test_each_format_loads_offline_with_its_tokenizer(models: dict[str, Path]) -> None:
    kinds = {}
    for fmt, folder in models.items():
        loaded = load(folder, device="cpu")
        kinds[fmt] = (type(loaded.model).__name__, loaded.encoder.kind, loaded.encoder.k)
    assert kinds == {
        "dnabert": ("BertForMaskedLM", "kmer", 0),
        "grover": ("BertForMaskedLM", "batch", 0),
        "nt": ("EsmForMaskedLM", "greedy", 6),
        "char": ("BertForMaskedLM", "greedy", 1),
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_ids_fed_to_each_model_equal_its_own_tokenizer(
    fmt: str, models: dict[str, Path], raw_dataset: Path
) -> None:
    tok = load_tokenizer(models[fmt])
    data = data_from_dataset(raw_dataset, tok, model=fmt)
    codes = np.load(raw_dataset / "input_ids.npy")
    split = np.load(raw_dataset / "split.npy")
    for name, code in (("train", 0), ("val", 1), ("test", 2)):
        rows = codes[split == code]
        want = _own_ids(fmt, models[fmt], tok, rows)
        ids, mask = data.ids[name], data.mask(name).astype(bool)
        assert len(ids) == len(want)
        for i, w in enumerate(want):
            assert ids[i][mask[i]].tolist() == w
            assert (ids[i][~mask[i]] == data.pad_token_id).all()
    lengths = data.mask("train").sum(axis=1)
    if fmt == "grover":  # BPE: rows of different token counts, padded
        assert lengths.min() < lengths.max()
    else:
        assert lengths.min() == lengths.max()


def test_labels_are_the_bases_after_the_window(raw_dataset: Path) -> None:
    g = dnakmer.Genome.open(LAMBDA)
    manifest = json.loads((raw_dataset / "manifest.json").read_text())
    arrays = {f: np.load(raw_dataset / f"{f}.npy") for f in ("input_ids", "labels", "start")}
    strand = np.load(raw_dataset / "strand.npy")
    record = np.load(raw_dataset / "record.npy")
    context, k = manifest["context_nt"], manifest["k"]
    comp = str.maketrans("ACGT", "TGCA")
    assert (strand < 0).any() and (strand > 0).any()
    for i in range(len(arrays["labels"])):
        name = g.names[int(record[i])]
        span = g.fetch(name, int(arrays["start"][i]), int(arrays["start"][i]) + context + k)
        span = span.upper()
        if strand[i] < 0:
            span = span.translate(comp)[::-1]
        assert LETTERS[arrays["input_ids"][i]].tobytes().decode() == span[:context]
        assert nextkmer.label_to_kmer(int(arrays["labels"][i]), k) == span[context:]


def test_finetune_every_format_on_the_same_windows(
    models: dict[str, Path], raw_dataset: Path, tmp_path: Path
) -> None:
    from dnakmer.datasets.baselines import baselines
    from dnakmer.probes.nextkmer import benchmark_model, comparison_table
    from dnakmer.training.trainer import TrainOptions

    opts = TrainOptions(max_steps=3, batch_size=8, eval_every=3, log_every=3, quiet=True)
    base = baselines(nextkmer.NextKmerDataset.load(raw_dataset), range(3))
    tables = []
    for fmt, folder in models.items():
        runs = benchmark_model(
            folder, [raw_dataset], tmp_path / fmt, inits=("pretrained",), options=opts
        )
        assert runs.height == 1 and 0.0 <= runs["test_accuracy"][0] <= 1.0
        run_dir = tmp_path / fmt / "k2" / "pretrained" / "seed0"
        results = json.loads((run_dir / "results.json").read_text())
        assert results["params"]["samples"] == {"train": 120, "val": 40, "test": 40}
        tables.append(comparison_table(runs, base, fmt))
    table = pl.concat(tables, how="diagonal_relaxed").unique(subset=["k", "predictor"])
    predictors = set(table["predictor"])
    assert {f"{f} (pretrained)" for f in FORMATS} <= predictors
    assert {"prior", "uniform"} <= predictors


def test_cli_finetune_nextkmer_on_a_bpe_model(
    models: dict[str, Path], raw_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["finetune", "nextkmer", "--model", str(models["grover"]), "--data", str(raw_dataset),
         "--out", str(tmp_path / "ft"), "--init", "pretrained", "--max-steps", "2",
         "--eval-every", "2", "--orders", "0-2", "--quiet"])  # fmt: skip
    table = pl.read_parquet(tmp_path / "ft" / "comparison.parquet")
    assert "grover (pretrained)" in set(table["predictor"])


def test_nt_tokenization_rule_matches_esm_tokenizer(tmp_path: Path) -> None:
    folder = write_nt(tmp_path / "nt")
    tok = load_tokenizer(folder)
    enc = BaseEncoder(tok, "nt")
    assert (enc.kind, enc.k, enc.frame) == ("greedy", 6, (1, 0))
    rng = np.random.default_rng(0)
    for length in (1, 5, 6, 7, 12, 13, 40, 61):
        codes = rng.integers(0, 4, size=(9, length), dtype=np.uint8)
        got = enc.encode(codes).input_ids.tolist()
        assert got == [list(r) for r in tok(codes_to_text(codes))["input_ids"]]
        assert len(got[0]) == 1 + length // 6 + length % 6 == enc.n_tokens(length)
    ids = enc.encode(np.zeros((1, 7), np.uint8)).input_ids[0].tolist()
    assert tok.convert_ids_to_tokens(ids) == ["<cls>", "AAAAAA", "A"]
    assert ids == [3, nt_vocab().index("AAAAAA"), nt_vocab().index("A")]


def test_bases_other_than_acgt_go_through_the_tokenizer(tmp_path: Path) -> None:
    folder = write_char(tmp_path / "char")
    enc = BaseEncoder(load_tokenizer(folder), "char")
    codes = np.array([[0, 4, 2, 3, 1]], dtype=np.uint8)  # A N C G T
    ids = enc.encode(codes).input_ids[0].tolist()
    assert ids == [2, 5, 9, 6, 7, 8, 3]  # [CLS] A N C G T [SEP]


def test_context_longer_than_a_models_positions_names_the_model(
    tmp_path: Path,
) -> None:
    from dnakmer.training.finetune import finetune
    from dnakmer.training.trainer import TrainOptions

    folder = write_nt(tmp_path / "nt-small", positions=20)  # 18 tokens
    nextkmer.build(LAMBDA, 2, 200, None, n_train=20, n_val=5, n_test=5, seed=1).save(
        tmp_path / "long"
    )
    data = data_from_dataset(tmp_path / "long", load_tokenizer(folder), model="nt-small")
    with pytest.raises(ValueError, match=r"nt-small: windows take up to 36 tokens .* at most 18"):
        finetune(data, folder, tmp_path / "out", options=TrainOptions(max_steps=1, quiet=True))


def test_token_limits_of_real_configs() -> None:
    from transformers import BertConfig, EsmConfig

    assert token_limit(BertConfig(max_position_embeddings=512)) == 512
    nt = EsmConfig(vocab_size=4107, max_position_embeddings=1002, pad_token_id=1)
    assert token_limit(nt) == 1000
    rotary = EsmConfig(vocab_size=4107, position_embedding_type="rotary", pad_token_id=1)
    assert token_limit(rotary) > 10**6


def test_remote_code_is_refused_without_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_remote(tmp_path / "remote")
    marker = folder / "REMOTE_CODE_RAN"
    capsys.readouterr()
    with pytest.raises(ModelError, match="--trust-remote-code") as err:
        load(folder, device="cpu")
    assert "modeling_tinydna.TinyDnaForMaskedLM" in str(err.value)
    for argv in (
        ["embed", "--model", str(folder), "--out", str(tmp_path / "e")],
        ["probe", "embeddings", "--model", str(folder), "--out", str(tmp_path / "p")],
        ["finetune", "nextkmer", "--model", str(folder), "--data", str(tmp_path / "nk"),
         "--out", str(tmp_path / "f")],
    ):  # fmt: skip
        with pytest.raises(SystemExit) as code:
            main(argv)
        assert code.value.code == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "--trust-remote-code" in lines[0]
    assert not marker.exists()
    assert not (tmp_path / "e").exists() and not (tmp_path / "p").exists()

    loaded = load(folder, device="cpu", trust_remote_code=True)
    assert marker.exists()
    assert type(loaded.model).__name__ == "TinyDnaForMaskedLM"
    assert loaded.is_kmer and loaded.k == 3


def test_remote_code_model_embeds_with_the_flag(tmp_path: Path) -> None:
    folder = write_remote(tmp_path / "remote")
    run(["embed", "--model", str(folder), "--out", str(tmp_path / "e"), "--trust-remote-code",
         str(DATA / "phix174.fa"), "--window-tokens", "30"])  # fmt: skip
    emb = np.load(tmp_path / "e" / "embedding.npy")
    assert emb.shape[0] > 0 and (folder / "REMOTE_CODE_RAN").exists()


def test_corrupt_config_json_names_the_file(tmp_path: Path) -> None:
    folder = write_char(tmp_path / "char")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"config.json: not valid JSON"):
        load(folder, device="cpu")


def test_interrogate_every_format_in_one_table(models: dict[str, Path], tmp_path: Path) -> None:
    from dnakmer.study.budget import Budget
    from dnakmer.study.interrogate import interrogate

    budget = Budget(
        mask_windows=16, mask_window_tokens=24, base_windows=64, base_window_bases=64,
        embed_windows=8, embed_window_tokens=24, context_nt=48, n_train=200, n_val=50,
        n_test=50, markov_orders=(0, 1, 2), max_steps=4, batch_size=8, eval_every=2,
    )  # fmt: skip
    labels = list(models)
    result = interrogate(LAMBDA, [models[f] for f in labels], tmp_path / "run", ks=(2,),
                         budget=budget, quiet=True)  # fmt: skip
    f = result.findings
    assert all(f["masked_bases"][lab]["status"] == "ran" for lab in labels)
    assert len({f["masked_bases"][lab]["markov"] for lab in labels}) == 1  # same bases
    assert [lab for lab in labels if f["masked_tokens"][lab]["status"] == "ran"] == ["dnabert"]
    assert f["embeddings"]["grover"]["relation"] == "edit_distance"
    assert f["embeddings"]["nt"]["hamming_spearman"] is not None
    assert all(len(f["next_kmer"][lab]) == 1 for lab in labels)
    overview = pl.read_parquet(tmp_path / "run" / "tables" / "overview.parquet")
    assert overview["model"].to_list() == labels
    assert overview.columns == ["model", "masked tokens / bases", "token embeddings", "next k-mer"]
    assert overview.filter(pl.col("model") == "nt")["masked tokens / bases"].item().endswith(
        "tokens: rule does not apply (no overlap)"
    )
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert summary.index("| model |") < summary.index("## ")
    html = (tmp_path / "run" / "report.html").read_text()
    assert html.index("Models side by side") < html.index("Findings")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    families = {lab: manifest["models"][lab]["family"] for lab in labels}
    assert families == {"dnabert": "overlapping", "grover": "variable-length",
                        "nt": "non-overlapping", "char": "nucleotide"}  # fmt: skip
