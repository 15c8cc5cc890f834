"""Classifier heads over the last token or the token mean, not only [CLS]."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dnakmer import KmerTokenizer
from dnakmer.datasets import nextkmer
from dnakmer.models.pooling import pool_hidden, use_pooling
from dnakmer.training.pretrain import ModelShape, _bert_mlm, save_tokenizer_files

torch = pytest.importorskip("torch")
DATA = Path(__file__).parent / "data"


def _reference_pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    out = []
    for h, m in zip(hidden, mask, strict=True):
        sep = int(m.sum()) - 1
        if pooling == "cls":
            out.append(h[0])
        elif pooling == "last":
            out.append(h[sep - 1])
        else:
            out.append(h[1:sep].mean(axis=0))
    return np.stack(out)


@pytest.mark.parametrize("pooling", ["cls", "last", "mean"])
def test_pool_hidden_matches_a_loop(pooling: str) -> None:
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 9, 5)).astype(np.float32)
    mask = np.ones((3, 9), dtype=np.int64)
    mask[1, 6:] = 0  # [CLS] 4 tokens [SEP] then padding
    mask[2, 4:] = 0
    got = pool_hidden(torch.from_numpy(hidden), torch.from_numpy(mask), pooling).numpy()
    np.testing.assert_allclose(got, _reference_pool(hidden, mask, pooling), rtol=1e-6)
    with pytest.raises(ValueError, match="pooling"):
        pool_hidden(torch.from_numpy(hidden), None, "max")


def test_last_token_head_reads_the_last_token_and_saves_as_bert(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from dnakmer.training.finetune import data_from_dataset, finetune
    from dnakmer.training.trainer import TrainOptions

    model_dir = tmp_path / "model"
    tok = KmerTokenizer(3)
    shape = ModelShape(hidden=32, layers=1, heads=2, intermediate=64, dropout=0.0)
    _bert_mlm(tok, shape, 64, seed=0).save_pretrained(model_dir)
    save_tokenizer_files(model_dir, tok, "overlapping", 64)
    ds = nextkmer.build(DATA / "lambda_phage.fa.gz", 1, 34, tok, n_train=200, n_val=32,
                        n_test=32, seed=0)  # fmt: skip
    ds.save(tmp_path / "nk")
    data = data_from_dataset(tmp_path / "nk", tok)
    opts = TrainOptions(max_steps=4, batch_size=8, eval_every=4, log_every=4, quiet=True)
    finetune(data, model_dir, tmp_path / "ft", options=opts, pooling="last")
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["dnakmer_pooling"] == "last"
    assert config["architectures"] == ["BertForSequenceClassification"]
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert results["params"]["pooling"] == "last"

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ft").eval()
    use_pooling(model, "last")
    ids = torch.from_numpy(np.asarray(data.ids["test"][:4]).astype(np.int64))
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        hidden = model.bert(input_ids=ids).last_hidden_state
        expected = model.classifier(hidden[:, -2])  # the token before [SEP]
        changed = hidden.clone()
        changed[:, 0] += 1.0  # [CLS] does not matter to this head
        assert torch.allclose(model.classifier(pool_hidden(changed, None, "last")), expected)
    torch.testing.assert_close(logits, expected)


def test_roberta_and_esm_heads_read_the_pooled_state() -> None:
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    config = RobertaConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=32, num_labels=4)  # fmt: skip
    model = RobertaForSequenceClassification(config).eval()
    assert use_pooling(model, "cls") is model
    use_pooling(model, "last", (1, 0))
    ids = torch.tensor([[0, 5, 6, 7, 1, 1], [0, 8, 9, 10, 11, 12]])
    mask = (ids != 1).long()
    with torch.no_grad():
        hidden = model.roberta(input_ids=ids, attention_mask=mask)[0]
        last = hidden[torch.arange(2), torch.tensor([3, 5])]
        expected = model.classifier(last[:, None, :])
        got = model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(got, expected, atol=1e-6)
    with pytest.raises(ValueError, match="pooling must be one of"):
        use_pooling(model, "first")


def test_pooling_needs_a_known_head() -> None:
    import torch

    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = type("C", (), {"hidden_size": 8})()
            self.classifier = torch.nn.Sequential(torch.nn.Linear(8, 2))

    with pytest.raises(ValueError, match="BERT-style classifier"):
        use_pooling(Odd(), "last")
