"""Masked-language-model pretraining of a BERT encoder on a raw genome.

Four tokenizations, compared at an equal budget (same model, steps, batch and number of
token positions per sequence):

- ``"overlapping"``: k-mers with stride 1 (DNABERT) and DNABERT's span masking;
- ``"nonoverlapping"``: k-mers with stride k and BERT's 15 % token masking;
- ``"nucleotide"``: single nucleotides (k = 1, a character tokenizer) and BERT's 15 %
  masking;
- ``"bpe"``: a byte-pair-encoding vocabulary of ``vocab_size`` tokens learned on the
  training part of the genome (:mod:`dnakmer.training.bpe`, GROVER's approach), saved as
  ``tokenizer.json``, and BERT's 15 % masking. Windows are cut long enough in bases to
  fill every token position, then cut to ``max_tokens`` tokens.

Windows are drawn (seeded) from N-free stretches of the genome; evaluation windows come
from held-out records, or, for a genome with a single record, from a held-out block at the
end of each record, so no evaluated base was seen in training.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dnakmer import __version__
from dnakmer._io import staged_files, write_json
from dnakmer.datasets.windows import sample_windows
from dnakmer.genome import Genome
from dnakmer.models.quiet import quiet_transformers
from dnakmer.tokenizer import KmerTokenizer, encode_code_rows
from dnakmer.training.trainer import (
    TrainOptions,
    is_main_process,
    last_complete_checkpoint,
    locked_output,
    mark_complete_callback,
    progress_callbacks,
    training_arguments,
)

__all__ = [
    "ModelShape",
    "PretrainResult",
    "history_curve",
    "pretrain",
    "sinusoidal_table",
    "tokenizer_for",
]

TOKENIZATIONS = ("overlapping", "nonoverlapping", "nucleotide", "bpe")
POSITION_INITS = ("random", "sinusoidal")
# Sine/cosine values span [-1, 1]; scaled down so that, next to token embeddings drawn
# with BERT's standard deviation 0.02, positions do not swamp the tokens.
SINUSOIDAL_SCALE = 0.05


@dataclass
class ModelShape:
    """Size of the BERT encoder: tiny for CPU tests, ``dnabert()`` for GPUs.

    ``position_init`` is how the (learned) position embeddings start: ``"random"`` as
    BERT, or ``"sinusoidal"``, the Transformer's sine/cosine table scaled to
    :data:`SINUSOIDAL_SCALE` (see :func:`sinusoidal_table`).
    """

    hidden: int = 64
    layers: int = 2
    heads: int = 2
    intermediate: int = 256
    dropout: float = 0.1
    position_init: str = "random"

    @classmethod
    def dnabert(cls) -> ModelShape:
        """DNABERT's size: 12 layers, hidden 768, 12 heads, intermediate 3072."""
        return cls(hidden=768, layers=12, heads=12, intermediate=3072)


@dataclass
class PretrainResult:
    """Where the model went and how training went."""

    out_dir: Path
    history: pl.DataFrame
    final_eval: dict[str, float] = field(default_factory=dict)


def tokenizer_for(tokenization: str, k: int) -> KmerTokenizer:
    """The :class:`KmerTokenizer` of a tokenization scheme."""
    if tokenization == "overlapping":
        return KmerTokenizer(k, 1)
    if tokenization == "nonoverlapping":
        return KmerTokenizer(k, k)
    if tokenization == "nucleotide":
        return KmerTokenizer(1, 1)
    if tokenization == "bpe":
        raise ValueError("a BPE vocabulary is learned from a genome: see dnakmer.training.bpe")
    raise ValueError(f"tokenization must be one of {TOKENIZATIONS}, got {tokenization!r}")


def _record_ranges(
    genome: Genome, eval_records: list[str] | None, eval_fraction: float
) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """Train and eval ranges (record, start, end): whole held-out records, or tail blocks."""
    for name in eval_records or []:
        if name not in genome:
            raise ValueError(f"eval record {name!r} is not in {genome.path}")
    train, held = [], []
    for name, length in zip(genome.names, genome.lengths, strict=True):
        if eval_records:
            (held if name in eval_records else train).append((name, 0, length))
        else:
            cut = round(length * (1.0 - eval_fraction))
            train.append((name, 0, cut))
            held.append((name, cut, length))
    return train, held


class WindowDataset:
    """Pre-tokenized windows as a map-style dataset of dicts (a torch ``Dataset``).

    Rows of a ``final`` dataset (evaluation) are always masked with the final scheme,
    never with the collator's warm-up masking.
    """

    def __init__(self, rows: np.ndarray, final: bool = False, masks: np.ndarray | None = None):
        self.rows = rows
        self.final = final
        self.masks = masks

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = self.rows[i].astype(np.int64)
        mask = np.ones_like(ids) if self.masks is None else self.masks[i].astype(np.int64)
        row = {"input_ids": ids, "attention_mask": mask, "index": i}
        return row | {"final": True} if self.final else row


def _step_callbacks(collator: Any, stop_after: int | None) -> list[Any]:
    """Start the collator's batch count at the (resumed) step; stop at ``stop_after``."""
    from transformers import TrainerCallback

    class Steps(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            collator.grad_accum = args.gradient_accumulation_steps
            collator.batches = state.global_step * args.gradient_accumulation_steps

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if stop_after is not None and state.global_step >= stop_after:
                control.should_training_stop = True
                control.should_evaluate = control.should_save = True

    return [Steps()]


def sinusoidal_table(positions: int, hidden: int, scale: float = SINUSOIDAL_SCALE) -> Any:
    """``scale`` times the Transformer's position table (Vaswani et al. 2017): column
    ``2i`` is ``sin(p / 10000^(2i/hidden))``, column ``2i+1`` the cosine, as a float32
    torch tensor of shape (positions, hidden).

    The embedding of position ``p + d`` is a fixed rotation of that of ``p`` for every
    ``p``, so one attention head can look a given number of tokens to the left or right
    from the first step; learned from random values, that takes a small model thousands
    of steps.
    """
    import torch

    if hidden % 2:
        raise ValueError(f"a sinusoidal table needs an even hidden size, got {hidden}")
    pos = torch.arange(positions, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, hidden, 2, dtype=torch.float32) / hidden)
    table = torch.zeros(positions, hidden)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table * scale


def _bert_mlm(tok: Any, shape: ModelShape, positions: int, seed: int) -> Any:
    """A (masked-positions) ``BertForMaskedLM`` sized for ``tok``: a
    :class:`KmerTokenizer` or a ``transformers`` tokenizer (its ``len``)."""
    import torch
    from transformers import BertConfig

    if shape.hidden % shape.heads:
        raise ValueError(f"hidden ({shape.hidden}) must be a multiple of heads ({shape.heads})")
    if shape.position_init not in POSITION_INITS:
        raise ValueError(
            f"position_init must be one of {POSITION_INITS}, got {shape.position_init!r}"
        )
    config = BertConfig(
        vocab_size=tok.vocab_size if isinstance(tok, KmerTokenizer) else len(tok),
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        hidden_dropout_prob=shape.dropout,
        attention_probs_dropout_prob=shape.dropout,
        max_position_embeddings=max(512, positions),
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = _masked_positions_mlm()(config)
    if shape.position_init == "sinusoidal":
        weight = model.bert.embeddings.position_embeddings.weight
        with torch.no_grad():
            weight.copy_(sinusoidal_table(*weight.shape))
    return model


@functools.cache
def _masked_positions_mlm() -> type:
    """``BertForMaskedLM`` whose training forward runs the prediction head on masked
    positions only.

    The head's output layer is ``hidden x vocab``: with 4,101 six-mer ids and 15 % of the
    positions labelled, scoring every position spends most of a small model's step on
    logits that the loss ignores. The loss is the same mean cross-entropy over the labelled
    positions; evaluation (``model.eval()``) takes the unchanged full path, so metrics and
    saved weights are those of a plain ``BertForMaskedLM``.
    """
    import torch
    from transformers import BertForMaskedLM
    from transformers.modeling_outputs import MaskedLMOutput

    class MaskedPositionsMLM(BertForMaskedLM):  # type: ignore[misc]
        # The loss is a mean over this batch's labelled positions, so the Trainer must
        # divide it by the accumulation steps (and pass no ``num_items_in_batch``).
        accepts_loss_kwargs = False

        def forward(  # type: ignore[override]
            self,
            input_ids: Any = None,
            attention_mask: Any = None,
            labels: Any = None,
            **kwargs: Any,
        ) -> Any:
            if not self.training or labels is None or kwargs:
                return super().forward(
                    input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs
                )
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]
            scored = labels != -100
            if not bool(scored.any()):
                # No position is masked: a zero loss that still belongs to the graph.
                return MaskedLMOutput(loss=hidden.sum() * 0.0)
            logits = self.cls(hidden[scored])
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[scored])
            return MaskedLMOutput(loss=loss)

    return MaskedPositionsMLM


def _plain_mlm(model: Any) -> Any:
    """The same weights as a plain ``BertForMaskedLM`` (what checkpoints name)."""
    from transformers import BertForMaskedLM

    if type(model) is BertForMaskedLM:
        return model
    plain = BertForMaskedLM(model.config)
    plain.load_state_dict(model.state_dict())
    return plain


def _mlm_metrics(pred: Any) -> dict[str, float]:
    labels = np.asarray(pred.label_ids)
    guess = np.asarray(pred.predictions)
    scored = labels != -100
    return {
        "mlm_accuracy": float((guess[scored] == labels[scored]).mean()) if scored.any() else 0.0
    }


def _argmax_logits(logits: Any, labels: Any) -> Any:
    return logits.argmax(dim=-1)


def save_tokenizer_files(out: Path, tok: KmerTokenizer, tokenization: str, positions: int) -> None:
    """``vocab.txt`` and the configs that ``BertTokenizer`` and ``dnakmer.models.load`` read."""
    tok.save_vocab(out / "vocab.txt")
    write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": False,
            "model_max_length": positions,
            "pad_token": "[PAD]",
            "unk_token": "[UNK]",
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "mask_token": "[MASK]",
        },
    )
    write_json(
        out / "dnakmer.json",
        {
            "tokenization": tokenization,
            "k": tok.k,
            "stride": tok.stride,
            "dnakmer_version": __version__,
        },
    )


def pretrain(
    genome_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    tokenization: str = "overlapping",
    k: int = 6,
    max_tokens: int = 128,
    shape: ModelShape | None = None,
    options: TrainOptions | None = None,
    n_train: int = 20_000,
    n_eval: int = 512,
    eval_records: list[str] | None = None,
    eval_fraction: float = 0.1,
    mlm_probability: float = 0.15,
    span_centre_probability: float = 0.025,
    random_masking_steps: int = 0,
    stop_after: int | None = None,
    resume: bool = False,
    vocab_size: int = 512,
) -> PretrainResult:
    """Pretrain a BERT masked language model on windows of a genome.

    Parameters
    ----------
    genome_path : path
        FASTA file.
    out_dir : path
        Receives the final model (``config.json``, ``model.safetensors``, ``vocab.txt``,
        ``tokenizer_config.json``, ``dnakmer.json``), ``history.json`` and
        ``checkpoints/`` (for ``resume``).
    tokenization : {"overlapping", "nonoverlapping", "nucleotide", "bpe"}
    k : int
        k-mer length (ignored for ``"nucleotide"`` and ``"bpe"``).
    max_tokens : int
        Tokens per window besides ``[CLS]``/``[SEP]``; the window in bases follows from
        the tokenization (e.g. 128 overlapping 6-mers = 133 nt).
    shape : ModelShape
    options : TrainOptions
    n_train, n_eval : int
        Windows drawn for training and for evaluation.
    eval_records : list of str, optional
        Records held out for evaluation; default: the last ``eval_fraction`` of each.
    mlm_probability : float
        Token masking probability (non-overlapping and nucleotide schemes).
    span_centre_probability : float
        Span-centre probability of DNABERT's scheme (overlapping k-mers).
    random_masking_steps : int
        Overlapping k-mers: train the first this many steps with BERT's random token
        masking (``mlm_probability``), then with DNABERT's span masking. Evaluation always
        uses span masking. A small model trained with span masking from the start stays
        at the loss of copying unchanged tokens (see :mod:`dnakmer.training.masking`).
    stop_after : int, optional
        Stop after this many optimizer steps, with the schedule (warm-up, decay) of
        ``max_steps``: the first points of the full run's curve, or a run continued
        later with ``resume``. Evaluation and checkpoint happen at the stop.
    resume : bool
        Continue from the last checkpoint in ``out_dir/checkpoints``.
    vocab_size : int
        ``"bpe"``: tokens of the learned vocabulary (specials and bases included).

    Returns
    -------
    PretrainResult
    """
    from transformers import EarlyStoppingCallback, Trainer

    from dnakmer.training.masking import MaskingCollator

    shape = shape or ModelShape()
    opts = options or TrainOptions()
    if tokenization not in TOKENIZATIONS:
        raise ValueError(f"tokenization must be one of {TOKENIZATIONS}, got {tokenization!r}")
    if max_tokens < 1 or n_train < 1 or n_eval < 1:
        raise ValueError("max_tokens, n_train and n_eval must be positive")
    genome = Genome.open(genome_path, sha256=True)
    train_ranges, eval_ranges = _record_ranges(genome, eval_records, eval_fraction)
    masks: dict[str, np.ndarray | None] = {"train": None, "eval": None}
    if tokenization == "bpe":
        from dnakmer.training.bpe import train_bpe

        tok: Any = train_bpe(genome, vocab_size, ranges=train_ranges, max_length=max_tokens + 2)
        window = _bpe_window(genome, tok, max_tokens, train_ranges, opts.seed)
        train = sample_windows(genome, n_train, window, seed=opts.seed, ranges=train_ranges)
        held = sample_windows(genome, n_eval, window, seed=opts.seed + 1, ranges=eval_ranges)
        train_rows, masks["train"] = _bpe_rows(tok, train.codes, max_tokens)
        eval_rows, masks["eval"] = _bpe_rows(tok, held.codes, max_tokens)
        n_vocab, replace_ids, k_info, stride_info = len(tok), np.arange(5, len(tok)), None, None
    else:
        tok = tokenizer_for(tokenization, k)
        window = tok.stride * (max_tokens - 1) + tok.k
        train = sample_windows(genome, n_train, window, seed=opts.seed, ranges=train_ranges)
        held = sample_windows(genome, n_eval, window, seed=opts.seed + 1, ranges=eval_ranges)
        train_rows = encode_code_rows(tok, train.codes)
        eval_rows = encode_code_rows(tok, held.codes)
        n_vocab, replace_ids = tok.vocab_size, tok.kmer_ids.astype(np.int64)
        k_info, stride_info = tok.k, tok.stride
    specials = [
        tok.pad_token_id,
        tok.unk_token_id,
        tok.cls_token_id,
        tok.sep_token_id,
        tok.mask_token_id,
    ]
    span = tokenization == "overlapping"
    if random_masking_steps and not span:
        raise ValueError("random_masking_steps applies to overlapping k-mers only")
    if random_masking_steps < 0 or (stop_after is not None and stop_after < 1):
        raise ValueError("random_masking_steps must be >= 0 and stop_after >= 1")
    if random_masking_steps and opts.num_workers:
        # Worker processes hold copies of the collator that never see the step count.
        raise ValueError("random_masking_steps needs num_workers = 0")
    collator = MaskingCollator(
        specials,
        tok.mask_token_id,
        replace_ids,
        scheme="span" if span else "random",
        k=k_info or 1,
        probability=span_centre_probability if span else mlm_probability,
        seed=opts.seed,
        warmup_steps=random_masking_steps,
        warmup_probability=mlm_probability,
    )
    out = Path(out_dir)
    with locked_output(out):
        model = _bert_mlm(tok, shape, max_tokens + 2, opts.seed)
        args = training_arguments(
            out / "checkpoints",
            opts,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
            remove_unused_columns=False,
        )
        callbacks = [mark_complete_callback()]
        if opts.early_stopping:
            callbacks.append(EarlyStoppingCallback(opts.early_stopping))
        callbacks += _step_callbacks(collator, stop_after)
        trainer = Trainer(
            model=model,
            args=args,
            data_collator=collator,
            train_dataset=WindowDataset(train_rows, masks=masks["train"]),
            eval_dataset=WindowDataset(eval_rows, final=True, masks=masks["eval"]),
            compute_metrics=_mlm_metrics,
            preprocess_logits_for_metrics=_argmax_logits,
            callbacks=callbacks,
        )
        progress_callbacks(trainer)
        with quiet_transformers(True, errors_only=opts.quiet):
            # A checkpoint counts once its marker is written: one cut short by a kill is
            # removed and the run resumes from the one before (or starts afresh).
            start = last_complete_checkpoint(out / "checkpoints", clean=is_main_process())
            trainer.train(resume_from_checkpoint=str(start) if resume and start else None)
            final = trainer.evaluate()
            if trainer.is_world_process_zero():
                _save_final(
                    out,
                    trainer,
                    tok,
                    tokenization,
                    max_tokens + 2,
                    {
                        # Name and checksum identify the input without this machine's paths.
                        "genome": {"name": Path(genome_path).name, "sha256": genome.sha256},
                        "tokenization": tokenization,
                        "k": k_info,
                        "stride": stride_info,
                        "vocab_size": n_vocab,
                        "window_nt": window,
                        "max_tokens": max_tokens,
                        "shape": asdict(shape),
                        "options": asdict(opts),
                        "n_train": n_train,
                        "n_eval": n_eval,
                        "eval_records": eval_records,
                        "eval_fraction": eval_fraction,
                        "mlm_probability": mlm_probability,
                        "span_centre_probability": span_centre_probability,
                        "random_masking_steps": random_masking_steps,
                        "stop_after": stop_after,
                    },
                    final,
                )
        history = (
            pl.DataFrame(trainer.state.log_history) if trainer.state.log_history else pl.DataFrame()
        )
        return PretrainResult(out, history, {k_: float(v) for k_, v in final.items()})


def _bpe_window(
    genome: Genome, tok: Any, max_tokens: int, ranges: list[tuple[str, int, int]], seed: int
) -> int:
    """Bases per window that fill ``max_tokens`` BPE tokens in nearly every window: the
    99th percentile of bases per token on sample windows, times ``max_tokens``."""
    from dnakmer.models.encoding import BaseEncoder

    probe = sample_windows(genome, 256, 32 * max_tokens, seed=seed + 7, ranges=ranges).codes
    enc = BaseEncoder(tok, "bpe").encode(probe)
    per_token = probe.shape[1] / (enc.lengths - 2)
    return math.ceil(float(np.quantile(per_token, 0.99)) * max_tokens * 1.1)


def _bpe_rows(tok: Any, codes: np.ndarray, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """``[CLS]`` + the first ``max_tokens`` BPE tokens of each window + ``[SEP]``, with
    the attention mask (padding only where a window has fewer tokens)."""
    from dnakmer.models.encoding import BaseEncoder

    enc = BaseEncoder(tok, "bpe").encode(codes)
    n = len(codes)
    own = np.minimum(enc.lengths - 2, max_tokens)
    width = max_tokens + 2
    rows = np.full((n, width), tok.pad_token_id, dtype=np.int64)
    take = min(enc.input_ids.shape[1] - 1, max_tokens + 1)
    rows[:, :take] = enc.input_ids[:, :take]
    pos = np.arange(width)[None, :]
    rows[pos > own[:, None]] = tok.pad_token_id
    rows[np.arange(n), own + 1] = tok.sep_token_id
    masks = (pos <= own[:, None] + 1).astype(np.int64)
    return rows, masks


def _save_final(
    out: Path,
    trainer: Any,
    tok: Any,
    tokenization: str,
    positions: int,
    params: dict[str, Any],
    final: dict[str, Any],
) -> None:
    """Save the best model into a temporary folder, then move its files into ``out``."""
    with staged_files(out) as tmp:
        _plain_mlm(trainer.model).save_pretrained(tmp)
        if isinstance(tok, KmerTokenizer):
            save_tokenizer_files(tmp, tok, tokenization, positions)
        else:
            tok.save_pretrained(tmp)
            write_json(
                tmp / "dnakmer.json",
                {"tokenization": tokenization, "vocab_size": len(tok),
                 "dnakmer_version": __version__},
            )  # fmt: skip
        write_json(
            tmp / "history.json",
            {"params": params, "final_eval": final, "log_history": trainer.state.log_history},
        )


CURVE_QUANTITIES = ("loss", "eval_loss", "eval_mlm_accuracy")


def history_curve(history: dict[str, Any]) -> pl.DataFrame:
    """The training curve in a ``history.json`` written by :func:`pretrain`.

    Returns
    -------
    polars.DataFrame
        Columns ``step`` (int), ``quantity`` (``loss``, ``eval_loss`` or
        ``eval_mlm_accuracy``) and ``value`` (float), one row per logged point, in step
        order. The evaluation repeated after training (of the best checkpoint) is not part
        of the curve.
    """
    rows: list[tuple[int, str, float]] = []
    for entry in history.get("log_history", []):
        if "train_runtime" in entry:
            break
        rows += [(int(entry["step"]), q, float(entry[q])) for q in CURVE_QUANTITIES if q in entry]
    return pl.DataFrame(
        rows, schema={"step": pl.Int64, "quantity": pl.String, "value": pl.Float64}, orient="row"
    )
