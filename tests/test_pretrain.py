"""MLM pretraining on a real genome with tiny models (CPU, seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dnakmer import Genome, KmerTokenizer
from dnakmer.datasets.windows import sample_windows
from dnakmer.training.pretrain import ModelShape, PretrainResult, _record_ranges, pretrain
from dnakmer.training.trainer import TrainOptions

pytest.importorskip("torch")
pytest.importorskip("transformers")

DATA = Path(__file__).parent / "data"
TINY = ModelShape(hidden=32, layers=1, heads=2, intermediate=64, dropout=0.0)


def test_windows_are_n_free_and_inside_their_ranges() -> None:
    genome = Genome.open(DATA / "yeast_chrI.fa.gz")
    train, held = _record_ranges(genome, None, 0.2)
    (name, lo, hi), (_, hlo, hhi) = train[0], held[0]
    assert (lo, hi, hlo, hhi) == (0, 184_174, 184_174, 230_218)
    w = sample_windows(genome, 500, 300, seed=0, ranges=held)
    assert ((w.start >= hlo) & (w.start + 300 <= hhi)).all() and (w.record == 0).all()
    for s, codes in zip(w.start[:50].tolist(), w.codes[:50], strict=True):
        assert set(genome.fetch(name, s, s + 300).upper()) <= set("ACGT")
        assert "".join("ATCG"[c] for c in codes) == genome.fetch(name, s, s + 300).upper()
    with pytest.raises(ValueError, match="no N-free stretch"):
        sample_windows(genome, 1, 300, ranges=[(name, 0, 100)])


def test_nucleotide_model_learns_base_composition(
    tmp_path: Path, pretrained_files: frozenset[str]
) -> None:
    opts = TrainOptions(
        max_steps=40,
        batch_size=16,
        eval_every=20,
        log_every=10,
        learning_rate=3e-3,
        warmup_fraction=0.0,
        quiet=True,
    )
    result = pretrain(
        DATA / "lambda_phage.fa.gz",
        tmp_path,
        tokenization="nucleotide",
        max_tokens=64,
        shape=TINY,
        options=opts,
        n_train=800,
        n_eval=64,
    )
    # 9 tokens; a model that has learnt "masked positions are one of 4 bases" is near ln 4.
    assert result.final_eval["eval_loss"] < math.log(4) + 0.05
    assert result.final_eval["eval_mlm_accuracy"] > 0.25
    losses = result.history.filter(result.history["loss"].is_not_null())["loss"].to_list()
    assert losses[0] > losses[-1]
    for f in pretrained_files:
        assert (tmp_path / f).exists(), f
    assert json.loads((tmp_path / "dnakmer.json").read_text())["tokenization"] == "nucleotide"
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize(
    ("tokenization", "k", "stride"), [("overlapping", 3, 1), ("nonoverlapping", 3, 3)]
)
def test_checkpoint_loads_with_plain_transformers(
    tmp_path: Path, tokenization: str, k: int, stride: int
) -> None:
    import torch
    from transformers import AutoModelForMaskedLM, BertTokenizer

    opts = TrainOptions(max_steps=4, batch_size=8, eval_every=2, log_every=2, quiet=True)
    pretrain(
        DATA / "phix174.fa",
        tmp_path,
        tokenization=tokenization,
        k=k,
        max_tokens=32,
        shape=TINY,
        options=opts,
        n_train=64,
        n_eval=16,
    )
    model = AutoModelForMaskedLM.from_pretrained(tmp_path, local_files_only=True).eval()
    hf = BertTokenizer.from_pretrained(tmp_path, local_files_only=True)
    ours = KmerTokenizer(k, stride)
    seq = Genome.open(DATA / "phix174.fa").fetch("NC_001422", 0, 60)
    kmers = [seq[i : i + k] for i in range(0, len(seq) - k + 1, stride)]
    assert hf(" ".join(kmers))["input_ids"][1:-1] == ours.encode(seq).tolist()
    with torch.inference_mode():
        out = model(torch.from_numpy(ours.encode_batch([seq])["input_ids"]).long())
    assert out.logits.shape == (1, len(kmers) + 2, ours.vocab_size)
    assert json.loads((tmp_path / "dnakmer.json").read_text())["stride"] == stride


def test_pretrained_checkpoint_loads_with_dnakmer_models(tmp_path: Path) -> None:
    from dnakmer.models import load

    opts = TrainOptions(max_steps=2, batch_size=8, eval_every=2, log_every=1, quiet=True)
    pretrain(
        DATA / "phix174.fa",
        tmp_path,
        tokenization="nonoverlapping",
        k=4,
        max_tokens=16,
        shape=TINY,
        options=opts,
        n_train=32,
        n_eval=8,
    )
    loaded = load(tmp_path, device="cpu")
    assert loaded.is_kmer and loaded.k == 4 and loaded.tokenizer.stride == 4


def test_rust_tokenizer_in_forked_dataloader_workers() -> None:
    import torch

    tok = KmerTokenizer(6)
    tok.encode_batch(["ACGT" * 300] * 64)  # the parent used its threads before forking
    genome = Genome.open(DATA / "lambda_phage.fa.gz")
    name = genome.names[0]

    class Windows(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return 32

        def __getitem__(self, i: int) -> np.ndarray:
            return tok.encode_batch([genome.fetch(name, i * 100, i * 100 + 600)] * 4)["input_ids"]

    loader = torch.utils.data.DataLoader(
        Windows(),
        batch_size=4,
        num_workers=2,
        multiprocessing_context="fork",
        collate_fn=lambda rows: np.stack(rows),
    )
    got = np.concatenate([b for b in loader])
    want = np.stack([Windows()[i] for i in range(32)])
    np.testing.assert_array_equal(got, want)


def test_random_masking_steps_switch_to_spans_and_stop_after_keeps_the_schedule(
    tmp_path: Path,
) -> None:
    import dnakmer.training.masking as masking

    seen: list[tuple[int, bool]] = []
    original = masking.MaskingCollator.mask_arrays

    def spy(self, input_ids, rng=None, warmup=False):  # type: ignore[no-untyped-def]
        seen.append((self.batches - 1, warmup))  # counted before masking
        return original(self, input_ids, rng, warmup)

    opts = TrainOptions(
        max_steps=8, batch_size=4, eval_every=4, log_every=1, learning_rate=1e-3, quiet=True
    )

    def run(out: str, stop_after: int | None) -> PretrainResult:
        return pretrain(DATA / "phix174.fa", tmp_path / out, k=3, max_tokens=16, shape=TINY,
                        options=opts, n_train=64, n_eval=8, random_masking_steps=3,
                        stop_after=stop_after)  # fmt: skip

    masking.MaskingCollator.mask_arrays = spy  # type: ignore[method-assign]
    try:
        run("full", None)
        short = run("short", 5)
    finally:
        masking.MaskingCollator.mask_arrays = original  # type: ignore[method-assign]
    train_calls = [(step, warm) for step, warm in seen if warm]
    # Warm-up masking exactly for the batches of steps 0, 1, 2 (4 rows each), both runs.
    assert sorted({b for b, _ in train_calls}) == [0, 1, 2] and len(train_calls) == 2 * 3 * 4
    full = json.loads((tmp_path / "full" / "history.json").read_text())
    part = json.loads((tmp_path / "short" / "history.json").read_text())
    assert part["params"]["random_masking_steps"] == 3 and part["params"]["stop_after"] == 5
    losses = [(e["step"], e["loss"]) for e in full["log_history"] if "loss" in e]
    prefix = [(e["step"], e["loss"]) for e in part["log_history"] if "loss" in e]
    # Stopping early follows the 8-step schedule: the first 5 logged losses are the same.
    assert [s for s, _ in prefix] == [1, 2, 3, 4, 5]
    assert [v for _, v in prefix] == pytest.approx([v for _, v in losses[:5]], abs=1e-4)
    assert short.history["step"].max() == 5
    with pytest.raises(ValueError, match="overlapping"):
        pretrain(DATA / "phix174.fa", tmp_path / "x", tokenization="nucleotide",
                 options=opts, random_masking_steps=2)  # fmt: skip


def test_sinusoidal_table_matches_the_transformer_formula() -> None:
    import torch

    from dnakmer.training.pretrain import SINUSOIDAL_SCALE, sinusoidal_table

    table = sinusoidal_table(40, 8).double()
    assert table.shape == (40, 8)
    for p in (0, 1, 7, 39):
        for i in range(4):
            angle = p / 10000 ** (2 * i / 8)
            assert table[p, 2 * i].item() == pytest.approx(
                SINUSOIDAL_SCALE * math.sin(angle), abs=1e-6
            )
            assert table[p, 2 * i + 1].item() == pytest.approx(
                SINUSOIDAL_SCALE * math.cos(angle), abs=1e-6
            )
    # Shifting by d positions is one fixed rotation per frequency, whatever the position:
    # what lets an attention head look d tokens away from the first step.
    for d in (1, 3):
        for i in range(4):
            w = d / 10000 ** (2 * i / 8)
            rot = torch.tensor([[math.cos(w), -math.sin(w)], [math.sin(w), math.cos(w)]]).double()
            pair = table[:, 2 * i : 2 * i + 2]
            assert torch.allclose(pair[:-d] @ rot, pair[d:], atol=1e-6)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_table(4, 7)


def test_position_init_sets_the_position_embeddings(tmp_path: Path) -> None:
    from dataclasses import replace

    from dnakmer.training.pretrain import _bert_mlm, sinusoidal_table, tokenizer_for

    tok = tokenizer_for("overlapping", 3)
    sin = _bert_mlm(tok, replace(TINY, position_init="sinusoidal"), 18, seed=0)
    rnd = _bert_mlm(tok, TINY, 18, seed=0)
    pe = sin.bert.embeddings.position_embeddings.weight.detach()
    assert pe.equal(sinusoidal_table(*pe.shape))
    assert not rnd.bert.embeddings.position_embeddings.weight.detach().equal(pe)
    # Everything else starts the same (same seed, same draws).
    assert sin.bert.embeddings.word_embeddings.weight.equal(
        rnd.bert.embeddings.word_embeddings.weight
    )
    with pytest.raises(ValueError, match="position_init"):
        _bert_mlm(tok, replace(TINY, position_init="rope"), 18, seed=0)


def test_cli_pretrain_heads_and_position_init(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dnakmer.cli import app

    def run(out: str, *extra: str):  # type: ignore[no-untyped-def]
        args = ["pretrain", str(DATA / "phix174.fa"), "--out", str(tmp_path / out), "--k", "3",
                "--window-tokens", "16", "--n-train", "64", "--n-val", "8", "--max-steps", "2",
                "--eval-every", "2", "--batch-size", "4", "--device", "cpu", "--quiet",
                "--n-layers", "1", *extra]  # fmt: skip
        return CliRunner().invoke(app, args, env={"COLUMNS": "300"})

    ok = run("m", "--n-heads", "4", "--position-init", "sinusoidal")
    assert ok.exit_code == 0, ok.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (config["num_attention_heads"], config["num_hidden_layers"]) == (4, 1)
    shape = json.loads((tmp_path / "m" / "history.json").read_text())["params"]["shape"]
    assert shape["heads"] == 4 and shape["position_init"] == "sinusoidal"
    for bad, message in (
        (["--n-heads", "3"], "divide the hidden size 64"),
        (["--n-heads", "0"], "greater than or equal to 1"),
        (["--position-init", "rope"], "rope"),
    ):
        res = run("bad", *bad)
        assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
        assert not (tmp_path / "bad").exists()


def test_bpe_vocabulary_is_learned_on_the_genome() -> None:
    from dnakmer.training.bpe import SPECIAL_TOKENS, train_bpe

    genome = Genome.open(DATA / "lambda_phage.fa.gz")
    tok = train_bpe(genome, 64)
    again = train_bpe(genome, 64)
    assert tok.get_vocab() == again.get_vocab()  # deterministic
    vocab = sorted(tok.get_vocab().items(), key=lambda x: x[1])
    assert [t for t, _ in vocab[:9]] == [*SPECIAL_TOKENS, "A", "C", "G", "T"]
    assert len(vocab) == 64 and all(set(t) <= set("ACGT") for t, _ in vocab[5:])
    seq = genome.fetch(genome.names[0], 1000, 1300).upper()
    ids = tok(seq)["input_ids"]
    assert ids[0] == 2 and ids[-1] == 3 and len(ids) < 300  # merges shorten the sequence
    assert "".join(tok.convert_ids_to_tokens(ids[1:-1])) == seq
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe(genome, 5)


def test_bpe_model_pretrains_and_loads_with_its_tokenizer_json(tmp_path: Path) -> None:
    from dnakmer.models import load
    from dnakmer.training.bpe import train_bpe
    from dnakmer.training.pretrain import _bpe_rows, _bpe_window

    genome = Genome.open(DATA / "lambda_phage.fa.gz")
    opts = TrainOptions(max_steps=6, batch_size=8, eval_every=3, log_every=3, quiet=True)
    result = pretrain(DATA / "lambda_phage.fa.gz", tmp_path / "bpe", tokenization="bpe",
                      vocab_size=64, max_tokens=32, shape=TINY, options=opts, n_train=200,
                      n_eval=32)  # fmt: skip
    assert math.isfinite(result.final_eval["eval_loss"])
    files = {p.name for p in (tmp_path / "bpe").iterdir()}
    assert {"tokenizer.json", "config.json", "model.safetensors", "dnakmer.json"} <= files
    assert "vocab.txt" not in files
    loaded = load(tmp_path / "bpe", device="cpu")
    assert loaded.encoder.kind == "batch" and loaded.model.config.vocab_size == 64
    history = json.loads((tmp_path / "bpe" / "history.json").read_text())
    assert history["params"]["tokenization"] == "bpe" and history["params"]["vocab_size"] == 64
    # Windows are long enough in bases to fill every position with tokens.
    train, _ = _record_ranges(genome, None, 0.1)
    tok = train_bpe(genome, 64, ranges=train)
    window = _bpe_window(genome, tok, 32, train, 0)
    codes = sample_windows(genome, 100, window, seed=0, ranges=train).codes
    rows, masks = _bpe_rows(tok, codes, 32)
    assert rows.shape == (100, 34) and (rows[:, 0] == 2).all()
    assert masks.sum(axis=1).min() >= 30 and (masks.sum(axis=1) == 34).mean() > 0.95
    last = masks.sum(axis=1) - 1
    assert (rows[np.arange(100), last] == 3).all()
    assert ((rows == 0) == (masks == 0)).all()


def test_resume_after_a_kill_while_saving_a_checkpoint(tmp_path: Path) -> None:
    """A checkpoint folder without its completion marker (the run was killed while
    writing it) is removed, and --resume continues from the last complete one."""
    from dnakmer.training.trainer import COMPLETE_MARKER

    opts = TrainOptions(
        max_steps=8, batch_size=4, eval_every=4, log_every=1, learning_rate=1e-3, quiet=True
    )
    kw: dict[str, Any] = {"k": 3, "max_tokens": 16, "shape": TINY, "options": opts,
                          "n_train": 64, "n_eval": 8}  # fmt: skip
    full = pretrain(DATA / "phix174.fa", tmp_path / "full", **kw)
    pretrain(DATA / "phix174.fa", tmp_path / "cut", stop_after=4, **kw)
    checkpoints = tmp_path / "cut" / "checkpoints"
    assert (checkpoints / "checkpoint-4" / COMPLETE_MARKER).is_file()
    half = checkpoints / "checkpoint-6"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\0" * 100)
    resumed = pretrain(DATA / "phix174.fa", tmp_path / "cut", resume=True, **kw)
    assert not half.exists()
    assert resumed.history["step"].max() == 8
    losses = {e["step"]: e["loss"] for e in full.history.to_dicts() if e.get("loss") is not None}
    again = {e["step"]: e["loss"] for e in resumed.history.to_dicts() if e.get("loss") is not None}
    assert [again[s] for s in (5, 6, 7, 8)] == pytest.approx(
        [losses[s] for s in (5, 6, 7, 8)], abs=1e-4
    )
