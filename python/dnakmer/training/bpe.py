"""A byte-pair-encoding vocabulary learned on a genome, as GROVER learned its tokens.

BPE starts from the four bases and repeatedly merges the most frequent adjacent pair of
tokens into a new token, so frequent sequences become single tokens of varying length.
:func:`train_bpe` learns such a vocabulary with the Hugging Face ``tokenizers`` library
on the A/C/G/T stretches of a genome and returns a ``transformers`` fast tokenizer that
frames every sequence as ``[CLS] ... [SEP]`` and saves as ``tokenizer.json``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from dnakmer.genome import Genome

__all__ = ["SPECIAL_TOKENS", "train_bpe"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_CHUNK = 2000


def _stretches(
    genome: Genome, ranges: Sequence[tuple[str, int, int]] | None
) -> Iterator[str]:
    """Uppercase A/C/G/T text of the genome (or of ``ranges``), in chunks of at most
    2,000 bases that never cross an N or a record end."""
    if ranges is None:
        ranges = [(n, 0, length) for n, length in zip(genome.names, genome.lengths, strict=True)]
    for name, lo, hi in ranges:
        for a, b in genome.acgt_intervals(name).tolist():
            a, b = max(int(a), lo), min(int(b), hi)
            for s in range(a, b, _CHUNK):
                yield genome.fetch(name, s, min(s + _CHUNK, b)).upper()


def train_bpe(
    genome: Genome,
    vocab_size: int,
    *,
    ranges: Sequence[tuple[str, int, int]] | None = None,
    max_length: int = 512,
) -> Any:
    """Learn a BPE vocabulary of ``vocab_size`` tokens (the five special tokens, the four
    bases and the merges) on ``genome``.

    Parameters
    ----------
    genome : Genome
    vocab_size : int
        At least 10 (specials and bases plus one merge).
    ranges : sequence of (record, start, end), optional
        Learn only from these stretches (e.g. the training part of the genome).
    max_length : int
        ``model_max_length`` of the tokenizer (tokens per sequence with specials).

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        Ids 0-4 are ``[PAD] [UNK] [CLS] [SEP] [MASK]``.
    """
    from tokenizers import Tokenizer, models, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 10:
        raise ValueError(
            f"vocab_size must be at least 10 (5 specials, 4 bases, 1 merge), got {vocab_size}"
        )
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=list("ACGT"),
        limit_alphabet=4,
        show_progress=False,
    )
    tok.train_from_iterator(_stretches(genome, ranges), trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )
