"""A ``transformers`` tokenizer for raw DNA, backed by the Rust k-mer tokenizer.

Imported only through ``dnakmer.models.DnaKmerTokenizer`` (it needs transformers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers import BatchEncoding, PreTrainedTokenizer

from dnakmer.tokenizer import KmerTokenizer

__all__ = ["DnaKmerTokenizer"]

SPECIALS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


class DnaKmerTokenizer(PreTrainedTokenizer):
    """DNABERT tokenizer that takes raw, un-spaced DNA.

    ``tok("ACGTAC...")`` returns the same ``BatchEncoding`` (``input_ids``,
    ``token_type_ids``, ``attention_mask``) as ``BertTokenizer(vocab.txt,
    do_lower_case=False)`` on the space-joined k-mers, so pipelines, data collators and
    ``Trainer`` accept it. Tokenization runs in the Rust core.

    :meth:`save_pretrained` writes ``vocab.txt`` and a ``tokenizer_config.json`` naming
    ``BertTokenizer`` (with ``do_lower_case: false``), so plain
    ``BertTokenizer``/``AutoTokenizer`` load the folder; :meth:`from_pretrained` of this
    class reads the same folder back.

    Parameters
    ----------
    vocab_file : path, optional
        A DNABERT ``vocab.txt``. Default: DNABERT's vocabulary for ``k``.
    k : int, default 6
        k-mer length when no ``vocab_file`` is given.
    """

    vocab_files_names = {"vocab_file": "vocab.txt"}  # noqa: RUF012 (transformers API)
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]  # noqa: RUF012

    def __init__(self, vocab_file: str | None = None, k: int = 6, **kwargs: Any) -> None:
        if vocab_file is not None:
            self.kmer = KmerTokenizer.from_vocab(vocab_file)
        else:
            self.kmer = KmerTokenizer(k)
        self.vocab = {tok: i for i, tok in enumerate(self.kmer.vocab)}
        self.ids_to_tokens = list(self.kmer.vocab)
        for name, value in SPECIALS.items():
            kwargs.setdefault(name, value)
        kwargs.pop("do_lower_case", None)
        kwargs.setdefault("model_max_length", 512)
        super().__init__(
            token_type_ids_pattern="all_zeros",
            special_tokens_pattern="cls_sep",
            **kwargs,
        )

    @property
    def k(self) -> int:
        """k-mer length."""
        return int(self.kmer.k)

    @property
    def vocab_size(self) -> int:
        return int(self.kmer.vocab_size)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        ids = self.kmer.encode("".join(text.split()))
        return [self.ids_to_tokens[i] for i in ids.tolist()]

    def _convert_token_to_id(self, token: str) -> int:
        return self.vocab.get(token, self.kmer.unk_token_id)

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def _encode_plus(  # type: ignore[override]
        self, text: Any, text_pair: Any = None, **kwargs: Any
    ) -> BatchEncoding:
        # Raw DNA goes straight to the Rust core: no k-mer strings are built.
        if not isinstance(text, str) or not (text_pair is None or isinstance(text_pair, str)):
            return super()._encode_plus(text, text_pair, **kwargs)
        ids = self._dna_ids(text)
        pair = self._dna_ids(text_pair) if text_pair is not None else None
        return self.prepare_for_model(
            ids,
            pair_ids=pair,
            add_special_tokens=kwargs.get("add_special_tokens", True),
            padding=kwargs["padding_strategy"].value,
            truncation=kwargs["truncation_strategy"].value,
            max_length=kwargs.get("max_length"),
            stride=kwargs.get("stride", 0),
            pad_to_multiple_of=kwargs.get("pad_to_multiple_of"),
            padding_side=kwargs.get("padding_side"),
            return_tensors=kwargs.get("return_tensors"),
            prepend_batch_axis=True,
            return_attention_mask=kwargs.get("return_attention_mask"),
            return_token_type_ids=kwargs.get("return_token_type_ids"),
            return_overflowing_tokens=kwargs.get("return_overflowing_tokens", False),
            return_special_tokens_mask=kwargs.get("return_special_tokens_mask", False),
            return_length=kwargs.get("return_length", False),
            verbose=kwargs.get("verbose", True),
        )

    def _dna_ids(self, text: str) -> list[int]:
        return self.kmer.encode("".join(text.split())).tolist()  # type: ignore[no-any-return]

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        cls, sep = [self.kmer.cls_token_id], [self.kmer.sep_token_id]
        if token_ids_1 is None:
            return cls + token_ids_0 + sep
        return cls + token_ids_0 + sep + token_ids_1 + sep

    def save_vocabulary(
        self, save_directory: str, filename_prefix: str | None = None
    ) -> tuple[str, ...]:
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        path = Path(save_directory) / f"{prefix}vocab.txt"
        self.kmer.save_vocab(path)
        return (str(path),)

    def save_pretrained(  # type: ignore[override]
        self, save_directory: str | os.PathLike[str], *args: Any, **kwargs: Any
    ) -> tuple[str, ...]:
        """Write ``vocab.txt`` and ``tokenizer_config.json``.

        The config names ``BertTokenizer`` with ``do_lower_case: false`` so that any
        transformers install loads the folder; feed that tokenizer space-joined k-mers.
        """
        files = super().save_pretrained(save_directory, *args, **kwargs)
        cfg_path = Path(save_directory) / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        cfg.pop("auto_map", None)
        cfg.pop("backend", None)
        cfg.update(
            tokenizer_class="BertTokenizer",
            do_lower_case=False,
            tokenize_chinese_chars=False,
            strip_accents=False,
            dnakmer_k=self.k,
        )
        from dnakmer._io import write_json

        write_json(cfg_path, cfg)
        return tuple(files)
