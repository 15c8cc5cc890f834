"""Which hidden states a sequence classifier reads: ``[CLS]``, the last token, or the mean.

Hugging Face's ``BertForSequenceClassification`` reads the ``[CLS]`` state through the
pretrained pooler. For the next-k-mer benchmark that is a poor default on small budgets:
what follows a window depends most on its last bases, and a freshly initialised head over
``[CLS]`` must first learn to attend to the window's end, while the signal is a fraction
of a bit per sample. Fine-tuning then settles on the class prior (a constant predictor).
Reading the last token's state (``"last"``) gives the head the window's end directly;
``"mean"`` averages the tokens. Both keep the model's own ``dropout`` and ``classifier``
layers, so weights, checkpoints and ``save_pretrained`` are those of the base class; the
choice is stored in ``config.dnakmer_pooling``.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["POOLINGS", "pool_hidden", "use_pooling"]

POOLINGS = ("cls", "last", "mean")


def pool_hidden(
    hidden: Any, attention_mask: Any, pooling: str, frame: tuple[int, int] = (1, 1)
) -> Any:
    """Pool (batch, tokens, hidden) states into (batch, hidden).

    Rows are ``prefix tokens... suffix [PAD]...``, ``frame`` = (prefix, suffix) special
    tokens (``[CLS] ... [SEP]``: (1, 1); the Nucleotide Transformer's ``<cls> ...``:
    (1, 0)). ``"cls"`` takes position 0, ``"last"`` the row's last own token (just
    before the suffix), ``"mean"`` the mean over the row's own tokens.
    """
    import torch

    batch, length = hidden.shape[:2]
    prefix, suffix = frame
    if attention_mask is None:
        attention_mask = torch.ones(batch, length, dtype=torch.long, device=hidden.device)
    ends = attention_mask.long().sum(dim=1) - suffix  # one past the row's own tokens
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = (ends - 1).clamp(min=0)
        return hidden[torch.arange(batch, device=hidden.device), last]
    if pooling == "mean":
        pos = torch.arange(length, device=hidden.device)[None, :]
        inside = ((pos >= prefix) & (pos < ends[:, None])).to(hidden.dtype)
        total = (hidden * inside[..., None]).sum(dim=1)
        return total / inside.sum(dim=1, keepdim=True).clamp(min=1.0)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


@functools.cache
def _pooled_class(base: type) -> type:
    """``base`` (a ``*ForSequenceClassification`` class) reading ``config.dnakmer_pooling``."""
    import torch
    from transformers.modeling_outputs import SequenceClassifierOutput

    class Pooled(base):  # type: ignore[misc, valid-type]
        def forward(  # type: ignore[override]
            self,
            input_ids: Any = None,
            attention_mask: Any = None,
            labels: Any = None,
            **kwargs: Any,
        ) -> Any:
            pooling = getattr(self.config, "dnakmer_pooling", "cls")
            if pooling == "cls" or kwargs:
                return super().forward(
                    input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs
                )
            hidden = self.base_model(input_ids=input_ids, attention_mask=attention_mask)[0]
            frame = tuple(getattr(self.config, "dnakmer_frame", (1, 1)))
            pooled = pool_hidden(hidden, attention_mask, pooling, frame)  # type: ignore[arg-type]
            if isinstance(self.classifier, torch.nn.Linear):
                logits = self.classifier(self.dropout(pooled))
            else:
                # RoBERTa / ESM heads read position 0 of the sequence: give them the pool.
                logits = self.classifier(pooled[:, None, :])
            loss = None
            if labels is not None:
                loss = torch.nn.functional.cross_entropy(logits.float(), labels.view(-1))
            return SequenceClassifierOutput(loss=loss, logits=logits)

    # Checkpoints name the base class, so plain transformers loads the same weights.
    Pooled.__name__ = Pooled.__qualname__ = base.__name__
    return Pooled


def use_pooling(model: Any, pooling: str, frame: tuple[int, int] = (1, 1)) -> Any:
    """Make ``model`` (a ``*ForSequenceClassification``) classify from ``pooling``.

    ``"cls"`` leaves the model as it is. Other poolings need a linear ``classifier`` over
    hidden states and a ``dropout`` layer (BERT's layout); ``frame`` says how many special
    tokens come before and after a row's own tokens (see :func:`pool_hidden`).
    """
    import torch

    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    model.config.dnakmer_pooling = pooling
    model.config.dnakmer_frame = list(frame)
    if pooling == "cls":
        return model
    head = getattr(model, "classifier", None)
    hidden = getattr(model.config, "hidden_size", None)
    bert_head = (
        isinstance(head, torch.nn.Linear)
        and head.in_features == hidden
        and isinstance(getattr(model, "dropout", None), torch.nn.Module)
    )
    first_token_head = isinstance(getattr(head, "dense", None), torch.nn.Linear) and isinstance(
        getattr(head, "out_proj", None), torch.nn.Linear
    )
    if not (bert_head or first_token_head):
        raise ValueError(
            f"pooling {pooling!r} needs a BERT-style classifier (a linear layer over hidden "
            f"states) or a RoBERTa/ESM head; {type(model).__name__} has neither, use "
            "pooling 'cls'"
        )
    model.__class__ = _pooled_class(type(model))
    return model
