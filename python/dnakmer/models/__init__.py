"""Models: what a checkpoint is.

- :mod:`dnakmer.models.checkpoint`: :func:`load` a local checkpoint folder with its
  tokenizer (:class:`LoadedModel`), :func:`load_tokenizer`, :func:`random_init`,
  :func:`tiny_bert`, :func:`forward_batches`, :func:`token_limit`;
- :mod:`dnakmer.models.hf_tokenizer`: :class:`DnaKmerTokenizer`, a ``transformers``
  tokenizer backed by the Rust k-mer core (imported on first access: it subclasses a
  transformers class);
- :mod:`dnakmer.models.encoding`: rows of bases to any model's input ids (the Rust
  k-mer path, a vectorised path for fixed k-mer vocabularies, the Hugging Face batch
  path otherwise);
- :mod:`dnakmer.models.pooling`: which hidden states a sequence classifier reads;
- :mod:`dnakmer.models.quiet`: silencing the Hugging Face libraries around a block.

Nothing here imports torch or transformers until a function runs. How a model learns
(masking, pretraining, fine-tuning) is in :mod:`dnakmer.training`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dnakmer.models.checkpoint import (
    LoadedModel,
    as_long_tensor,
    default_device,
    forward_batches,
    load,
    load_tokenizer,
    random_init,
    tiny_bert,
    token_limit,
)

if TYPE_CHECKING:
    from dnakmer.models.hf_tokenizer import DnaKmerTokenizer

__all__ = [
    "DnaKmerTokenizer",
    "LoadedModel",
    "as_long_tensor",
    "default_device",
    "forward_batches",
    "load",
    "load_tokenizer",
    "random_init",
    "tiny_bert",
    "token_limit",
]


def __getattr__(name: str) -> Any:
    # The class subclasses a transformers class, so it is imported on first use only.
    if name == "DnaKmerTokenizer":
        from dnakmer.models.hf_tokenizer import DnaKmerTokenizer

        globals()[name] = DnaKmerTokenizer
        return DnaKmerTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
