"""Checkpoint loading, the tiny model and the transformers-compatible tokenizer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, BertModel, BertTokenizer, DataCollatorForLanguageModeling

from dnakmer import KmerTokenizer
from dnakmer.models import DnaKmerTokenizer, LoadedModel, forward_batches, load, tiny_bert


def spaced_kmers(seq: str, k: int) -> str:
    return " ".join(seq[i : i + k] for i in range(len(seq) - k + 1))


def test_import_and_help_stay_light() -> None:
    code = (
        "import sys, dnakmer, dnakmer.cli\n"
        "heavy = {'torch', 'transformers', 'sklearn', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tiny_bert_is_dnabert_shaped_and_seeded() -> None:
    m = tiny_bert(4, hidden=16, layers=1, heads=2)
    assert m.config.vocab_size == 4**4 + 5
    assert m.config.max_position_embeddings == 512
    assert m.config.pad_token_id == 0
    again = tiny_bert(4, hidden=16, layers=1, heads=2)
    for a, b in zip(m.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = tiny_bert(4, hidden=16, layers=1, heads=2, seed=1)
    w = m.get_input_embeddings().weight
    assert not torch.equal(w, other.get_input_embeddings().weight)


def test_tiny_bert_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="k must be 1 to 8"):
        tiny_bert(9)
    with pytest.raises(ValueError, match="multiple of heads"):
        tiny_bert(3, hidden=30, heads=4)


def test_load_round_trip_gives_same_logits(tiny3: LoadedModel, tiny3_dir: Path) -> None:
    assert tiny3.is_kmer and tiny3.k == 3
    assert isinstance(tiny3.tokenizer, KmerTokenizer)
    assert not tiny3.model.training
    assert (tiny3_dir / "model.safetensors").exists()
    ids = tiny3.tokenizer.encode_batch(["ACGTTGCAAC", "GGGTTTAAAC"])["input_ids"]
    fresh = tiny_bert(3, max_positions=80)
    with torch.inference_mode():
        expected = fresh(input_ids=torch.from_numpy(ids).long()).logits
    ((_, out),) = list(forward_batches(tiny3, ids))
    torch.testing.assert_close(out.logits, expected)


def _dnabert_style_folder(folder: Path, k: int) -> BertModel:
    """The zhihan1996/DNA_bert_k layout: pytorch_model.bin with pooler weights, a
    config with DNABERT's extra keys, vocab.txt and a do_lower_case=false config."""
    model = tiny_bert(k, hidden=16, layers=1)
    state = model.state_dict()
    state["bert.pooler.dense.weight"] = torch.zeros(16, 16)
    state["bert.pooler.dense.bias"] = torch.zeros(16)
    folder.mkdir()
    torch.save(state, folder / "pytorch_model.bin")
    config = model.config.to_dict() | {"split": 10, "rnn": "lstm", "num_rnn_layer": 1}
    (folder / "config.json").write_text(json.dumps(config))
    KmerTokenizer(k).save_vocab(folder / "vocab.txt")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": false, "max_len": 512}')
    return model


def test_dnabert_pytorch_bin_folder_loads(tmp_path: Path) -> None:
    original = _dnabert_style_folder(tmp_path / "DNA_bert_4", 4)
    loaded = load(tmp_path / "DNA_bert_4", device="cpu")
    assert type(loaded.model).__name__ == "BertForMaskedLM"
    assert loaded.k == 4 and loaded.max_tokens == 512
    ids = loaded.tokenizer.encode_batch(["ACGTNACGTAAGG"])["input_ids"]
    with torch.inference_mode():
        expected = original(input_ids=torch.from_numpy(ids).long()).logits
    ((_, out),) = list(forward_batches(loaded, ids))
    torch.testing.assert_close(out.logits, expected)


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("config.json", "no config.json"),
        ("model.safetensors", "no weights"),
        ("vocab.txt", "no tokenizer"),
    ],
)
def test_load_names_what_is_missing(
    tiny3_dir: Path, tmp_path: Path, remove: str, message: str
) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny3_dir, folder)
    (folder / remove).unlink()
    with pytest.raises(FileNotFoundError, match=message) as info:
        load(folder)
    assert str(folder) in str(info.value)


def test_load_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No such checkpoint folder"):
        load(tmp_path / "absent")


def test_non_kmer_model_loads_with_its_own_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    from dnakmer import Genome, example_genome
    from dnakmer.probes.embeddings import hidden_states

    text = Genome.open(example_genome())
    text = text.fetch(text.names[0], 0, 20_000)
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=specials)
    bpe.train_from_iterator([text[i : i + 500] for i in range(0, len(text), 500)], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(tmp_path)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
    )
    BertForMaskedLM(config).save_pretrained(tmp_path)
    loaded = load(tmp_path, device="cpu")
    assert not loaded.is_kmer
    with pytest.raises(ValueError, match="not a k-mer model"):
        _ = loaded.k
    codes = np.array([[0, 1, 2, 3] * 10, [3, 3, 2, 1] * 10], dtype=np.uint8)
    states = hidden_states(loaded, codes, layers=(-1,))
    assert states[-1].shape == (2, 16) and states[-1].dtype == np.float32
    with pytest.raises(ValueError, match="needs a k-mer model"):
        hidden_states(loaded, codes, level="token")
    from dnakmer.data import phix174
    from dnakmer.datasets.store import load_arrays
    from dnakmer.probes.embedding_analysis import strand_consistency
    from dnakmer.probes.embeddings import embed_genome
    from dnakmer.probes.masked_tokens import mask_analysis

    embed_genome(loaded, phix174(), tmp_path / "emb", window_tokens=100)
    arrays = load_arrays(tmp_path / "emb")
    assert arrays["embedding"].shape == (54, 1, 16)  # 5,386 bases in windows of 100
    assert arrays["end"][-1] == 5386 and (arrays["start"][1:] == arrays["end"][:-1]).all()
    strand = strand_consistency(loaded, codes)
    assert strand.columns == ["window", "cosine_rc", "cosine_other"]

    with pytest.raises(ValueError, match="needs a k-mer model"):
        mask_analysis(loaded, example_genome(), n_windows=2)


dna = st.text(alphabet="ACGTNacgt", min_size=0, max_size=60)


@pytest.fixture(scope="module")
def saved_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tok")
    DnaKmerTokenizer(k=4).save_pretrained(folder)
    return folder


@settings(max_examples=60, deadline=None)
@given(seq=dna)
def test_hf_tokenizer_matches_bert_tokenizer_on_spaced_kmers(
    saved_tokenizer: Path, seq: str
) -> None:
    ours = DnaKmerTokenizer.from_pretrained(saved_tokenizer)
    bert = BertTokenizer.from_pretrained(saved_tokenizer)
    # DNABERT vocabularies are uppercase; the k-mer core reads lowercase as uppercase.
    expected = bert(spaced_kmers(seq.upper(), 4))
    got = ours(seq)
    assert got["input_ids"] == expected["input_ids"]
    assert got["attention_mask"] == expected["attention_mask"]
    assert got["token_type_ids"] == expected["token_type_ids"]


def test_saved_tokenizer_loads_with_auto_tokenizer(saved_tokenizer: Path) -> None:
    auto = AutoTokenizer.from_pretrained(saved_tokenizer)
    cfg = json.loads((saved_tokenizer / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] == "BertTokenizer" and cfg["do_lower_case"] is False
    seq = "GATTACAGATTACANNAC"
    ours = DnaKmerTokenizer(k=4)
    assert auto(spaced_kmers(seq, 4))["input_ids"] == ours(seq)["input_ids"]
    assert ours(seq)["input_ids"][:3] == [2, *KmerTokenizer(4).encode("GATTAC").tolist()[:2]]


def test_hf_tokenizer_batches_pads_truncates_and_collates() -> None:
    tok = DnaKmerTokenizer(k=3)
    batch = tok(["ACGTACGTAC", "ACGT"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == (2, 10)
    assert batch["attention_mask"].tolist()[1] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    short = tok("ACGTACGTACGT", truncation=True, max_length=5)["input_ids"]
    assert short == [2, *KmerTokenizer(3).encode("ACGTACG").tolist()[:3], 3]
    assert tok.decode(tok("ACGTA")["input_ids"]) == "[CLS] ACG CGT GTA [SEP]"
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.5, seed=0)
    out = collator([tok("ACGTACGTAAAC"), tok("ACGTAC")])
    assert out["input_ids"].shape == out["labels"].shape == (2, 12)
    masked = out["labels"] != -100
    assert masked.any()
