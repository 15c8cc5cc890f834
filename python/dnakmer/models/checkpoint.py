"""What a checkpoint is: loading a local model folder with its tokenizer, a random-init
twin, a tiny DNABERT-shaped model for tests, and batched forward passes.

Everything here imports torch and transformers lazily, inside functions, so that
``import dnakmer`` stays light.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dnakmer.exceptions import ModelError
from dnakmer.models.quiet import quiet_transformers
from dnakmer.progress import report
from dnakmer.tokenizer import KmerTokenizer, model_tokenizer

if TYPE_CHECKING:
    import torch


__all__ = [
    "LoadedModel",
    "as_long_tensor",
    "check_remote_code",
    "check_safetensors",
    "default_device",
    "forward_batches",
    "is_classifier_config",
    "load",
    "load_tokenizer",
    "random_init",
    "read_json",
    "remote_code",
    "tiny_bert",
    "token_limit",
]

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "vocab.json", "tokenizer.model")


@dataclass
class LoadedModel:
    """A model in eval mode with the tokenizer that goes with it.

    Attributes
    ----------
    model : torch.nn.Module
        ``BertForMaskedLM`` (or any masked LM / encoder) in eval mode, on ``device``.
    tokenizer : KmerTokenizer or transformers tokenizer
        The Rust k-mer tokenizer when the folder's vocabulary is a k-mer vocabulary,
        otherwise the folder's own Hugging Face tokenizer.
    path : pathlib.Path
        The checkpoint folder.
    device : torch.device
    """

    model: Any
    tokenizer: Any
    path: Path | None = None
    device: Any = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def is_kmer(self) -> bool:
        """True when tokens are DNABERT-style overlapping k-mers (the Rust tokenizer)."""
        return isinstance(self.tokenizer, KmerTokenizer)

    @property
    def k(self) -> int:
        """k-mer length; raises ``ValueError`` for a non-k-mer model."""
        if not self.is_kmer:
            raise ValueError(f"{self.path}: not a k-mer model (tokenizer {type(self.tokenizer)})")
        return int(self.tokenizer.k)

    @property
    def has_mlm_head(self) -> bool:
        """Whether the model returns ``logits`` over the vocabulary."""
        return hasattr(self.model, "get_output_embeddings") and (
            self.model.get_output_embeddings() is not None
        )

    @property
    def is_classifier(self) -> bool:
        """Whether the model is a sequence classifier (``finetune classify``'s output)."""
        return type(self.model).__name__.endswith("ForSequenceClassification")

    @property
    def label_names(self) -> list[str]:
        """A classifier's class names in output order (``"0"``, ``"1"``, ... without
        names); empty for other models."""
        if not self.is_classifier:
            return []
        config = self.model.config
        id2label = getattr(config, "id2label", None) or {}
        n = int(getattr(config, "num_labels", len(id2label)))
        return [str(id2label.get(i, id2label.get(str(i), i))) for i in range(n)]

    @property
    def max_tokens(self) -> int:
        """Longest input including special tokens (:func:`token_limit`)."""
        return token_limit(self.model.config)

    @property
    def name(self) -> str:
        """The checkpoint folder's name (``"model"`` when it has none)."""
        return self.path.name if self.path is not None else "model"

    @property
    def encoder(self) -> Any:
        """The :class:`~dnakmer.models.encoding.BaseEncoder` that turns rows of bases into
        this model's input ids (built once)."""
        if getattr(self, "_encoder", None) is None:
            from dnakmer.models.encoding import BaseEncoder

            self._encoder = BaseEncoder(self.tokenizer, self.name)
        return self._encoder


def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, f"{path}: checkpoint folder has no {what}", str(path))


def check_folder(path: Path) -> None:
    """Fail early, naming exactly what a checkpoint folder lacks."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "No such checkpoint folder", str(path))
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "A checkpoint must be a folder", str(path))
    if not (path / "config.json").is_file():
        raise _missing(path, "config.json")
    if not any((path / f).is_file() for f in WEIGHT_FILES) and not any(
        path.glob("model-*.safetensors")
    ):
        raise _missing(path, "weights (model.safetensors or pytorch_model.bin)")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise _missing(path, "tokenizer (vocab.txt or tokenizer.json)")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a checkpoint file, or :class:`ModelError` naming the file."""
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})", str(path)) from e
    except UnicodeDecodeError as e:
        raise ModelError(f"{path}: not a text file", str(path)) from e
    if not isinstance(value, dict):
        raise ModelError(f"{path}: expected a JSON object", str(path))
    return value


def remote_code(folder: Path) -> list[str]:
    """Classes that ``config.json`` or ``tokenizer_config.json`` take from code files in
    the folder (their ``auto_map``), e.g. ``["modeling_tinydna.TinyDnaForMaskedLM"]``."""
    found: list[str] = []
    for name in ("config.json", "tokenizer_config.json"):
        if not (folder / name).is_file():
            continue
        mapping = read_json(folder / name).get("auto_map") or {}
        values = mapping.values() if isinstance(mapping, dict) else mapping
        for v in values:
            found.extend(x for x in (v if isinstance(v, list) else [v]) if x)
    return sorted(set(found))


def check_remote_code(folder: Path, trust_remote_code: bool) -> None:
    """Refuse a folder whose classes are its own code unless the user allowed it."""
    code = remote_code(folder)
    if code and not trust_remote_code:
        raise ModelError(
            f"{folder}: the model's classes are code in its folder ({', '.join(code)}); "
            "dnakmer runs it only with --trust-remote-code (Python: trust_remote_code=True)",
            str(folder),
        )


def is_classifier_config(config: dict[str, Any]) -> bool:
    """Whether a ``config.json`` describes a sequence classifier (``finetune classify``'s
    output: ``BertForSequenceClassification`` and the like)."""
    names = config.get("architectures") or []
    return bool(names) and all(str(n).endswith("ForSequenceClassification") for n in names)


def token_limit(config: Any) -> int:
    """Longest input, special tokens included, that a model's position embeddings take.

    BERT-like models take ``max_position_embeddings`` tokens. ESM and RoBERTa count
    positions from ``pad_token_id + 1``, so they take ``pad_token_id + 1`` fewer (the
    Nucleotide Transformer's 1002 positions hold 1,000 tokens). Rotary or ALiBi
    positions have no limit of their own (a very large number is returned).
    """
    kind = getattr(config, "position_embedding_type", "absolute") or "absolute"
    limit = getattr(config, "max_position_embeddings", None)
    if kind != "absolute" or limit is None:
        return 1 << 30
    if getattr(config, "model_type", "") in ("esm", "roberta", "xlm-roberta", "camembert"):
        return int(limit) - int(getattr(config, "pad_token_id", 0) or 0) - 1
    return int(limit)


def _kmer_tokenizer(path: Path) -> KmerTokenizer | None:
    """The Rust tokenizer if ``vocab.txt`` is a complete k-mer vocabulary, else None."""
    return model_tokenizer(path)


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch.device; None picks CUDA when available, else CPU."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a local Hugging Face checkpoint folder, fully offline.

    Parameters
    ----------
    path : path
        Folder with ``config.json``, weights (``model.safetensors`` preferred, else
        ``pytorch_model.bin``, read weights-only) and a tokenizer (``vocab.txt`` for
        DNABERT, or ``tokenizer.json`` etc.). A ``dnakmer.json`` written by dnakmer's
        pretraining sets the k-mer stride (default 1, overlapping). DNABERT's folders
        (zhihan1996/DNA_bert_3..6) load as ``BertForMaskedLM``; their unused pooler
        weights are ignored.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    trust_remote_code : bool
        Off by default: a folder whose ``config.json`` or ``tokenizer_config.json`` maps
        classes to its own code files (``auto_map``: DNABERT-2, NT-v2, HyenaDNA,
        Caduceus) is refused with :class:`~dnakmer.exceptions.ModelError`, and no code
        from the folder runs. True lets transformers import that code.

    Returns
    -------
    LoadedModel
        A sequence classifier when ``config.json`` names one (``finetune classify``'s
        output, with the pooling it was trained with), else the masked LM when the
        config allows one, else the bare encoder; eval mode.

    Raises
    ------
    FileNotFoundError
        The folder, its ``config.json``, its weights or its tokenizer are missing
        (the message says which).
    """
    import transformers

    folder = Path(path)
    check_folder(folder)
    config = read_json(folder / "config.json")
    tokenizer = load_tokenizer(folder, trust_remote_code=trust_remote_code)
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    weights = {"use_safetensors": True} if _has_safetensors(folder) else {}
    for f in sorted(folder.glob("model*.safetensors")):
        check_safetensors(f)
    with quiet_transformers():
        try:
            if is_classifier_config(config):
                from dnakmer.models.pooling import use_pooling

                model = transformers.AutoModelForSequenceClassification.from_pretrained(
                    folder, **common, **weights
                )
                frame = config.get("dnakmer_frame") or [1, 1]
                use_pooling(model, str(config.get("dnakmer_pooling") or "cls"), tuple(frame))
            else:
                try:
                    model = transformers.AutoModelForMaskedLM.from_pretrained(
                        folder, **common, **weights
                    )
                except ValueError:
                    # Encoders without a masked-LM head (some BPE DNA models): hidden
                    # states only.
                    model = transformers.AutoModel.from_pretrained(folder, **common, **weights)
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            if isinstance(e, (FileNotFoundError, ModelError)):
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"{folder}: the weights do not load ({first})", str(folder)) from e
    _check_vocab_fits(folder, tokenizer, model)
    dev = default_device(device)
    model.to(dev).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, path=folder, device=dev, config=config)


def load_tokenizer(path: str | os.PathLike[str], *, trust_remote_code: bool = False) -> Any:
    """The tokenizer of a checkpoint folder, without its weights: dnakmer's Rust
    :class:`~dnakmer.KmerTokenizer` for a k-mer ``vocab.txt``, else the folder's own
    Hugging Face tokenizer (offline; its code runs only with ``trust_remote_code``)."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "No such checkpoint folder", str(folder))
    check_remote_code(folder, trust_remote_code)
    kmer_tok = _kmer_tokenizer(folder)
    if kmer_tok is not None:
        return kmer_tok
    import transformers

    with quiet_transformers(errors_only=True):
        return transformers.AutoTokenizer.from_pretrained(
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )


def random_init(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    """The same architecture and tokenizer with freshly initialised weights.

    The control of every "what did pretraining learn" question: what an untrained model
    of the same shape shows. Weights are drawn with ``seed`` without touching the global
    torch random state; the model is in eval mode on ``loaded.device``.
    """
    import torch

    with torch.random.fork_rng(devices=[]), quiet_transformers():
        torch.manual_seed(seed)
        model = type(loaded.model)(loaded.model.config)
    model.to(loaded.device or "cpu").eval()
    return LoadedModel(
        model=model,
        tokenizer=loaded.tokenizer,
        path=loaded.path,
        device=loaded.device,
        config=loaded.config,
    )


def check_safetensors(path: Path) -> None:
    """:class:`ModelError` naming ``path`` unless it is a whole safetensors file: an
    8-byte header length, a JSON header, and every tensor's bytes inside the file (an
    empty, zeroed or truncated file would otherwise fail deep inside the loader)."""
    size = path.stat().st_size

    def bad(what: str) -> ModelError:
        return ModelError(f"{path}: not a complete safetensors file ({what})", str(path))

    if size < 8:
        raise bad(f"{size} bytes")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n < 2 or 8 + n > size:
            raise bad(f"header of {n} bytes in a file of {size}")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, ValueError):
            raise bad("its header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            raise bad(f"tensor {name!r} has no data offsets")
        end = max(end, int(offsets[1]))
    if 8 + n + end > size:
        raise bad(f"its tensors need {8 + n + end} bytes, the file has {size}: truncated")


def _check_vocab_fits(folder: Path, tokenizer: Any, model: Any) -> None:
    """:class:`ModelError` when the tokenizer gives ids the model's embedding lacks."""
    embeddings = model.get_input_embeddings()
    rows = getattr(embeddings, "num_embeddings", None)
    size = tokenizer.vocab_size if isinstance(tokenizer, KmerTokenizer) else len(tokenizer)
    if rows is not None and size is not None and size > rows:
        source = "vocab.txt" if (folder / "vocab.txt").is_file() else "tokenizer"
        raise ModelError(
            f"{folder / source}: {size} tokens, but the model's embedding holds {rows} "
            "(tokenizer and weights of different models?)",
            str(folder / source),
        )


def _has_safetensors(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() or any(folder.glob("model-*.safetensors"))


def tiny_bert(
    k: int = 6,
    hidden: int = 32,
    layers: int = 2,
    *,
    heads: int = 2,
    intermediate: int | None = None,
    max_positions: int = 512,
    seed: int = 0,
) -> Any:
    """A small random ``BertForMaskedLM`` with DNABERT's layout, for tests and demos.

    Vocabulary size ``4**k + 5`` (DNABERT's ids), 512 positions, two token types,
    GELU, ``pad_token_id`` 0, as in zhihan1996/DNA_bert_k. Weights are drawn from a
    generator seeded with ``seed``, so two calls give identical models without touching
    the global torch random state. Save it with ``model.save_pretrained(dir)`` and
    ``DnaKmerTokenizer(k).save_pretrained(dir)``, then :func:`load` the folder.
    """
    import torch
    import transformers

    if not 1 <= k <= 8:
        raise ValueError(f"k must be 1 to 8, got {k}")
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    config = transformers.BertConfig(
        vocab_size=4**k + 5,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate or 4 * hidden,
        max_position_embeddings=max_positions,
        type_vocab_size=2,
        pad_token_id=0,
        hidden_act="gelu",
        architectures=["BertForMaskedLM"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.BertForMaskedLM(config)
    return model.eval()


def as_long_tensor(ids: np.ndarray, device: torch.device) -> torch.Tensor:
    """Token ids (any unsigned NumPy dtype) as an int64 tensor on ``device``.

    ``torch.from_numpy`` shares the NumPy buffer; the one widening to int64 (which
    embedding layers need) happens on the device, after the transfer of the narrow ids.
    """
    import torch

    arr = np.ascontiguousarray(ids)
    return torch.from_numpy(arr).to(device, non_blocking=True).long()


def forward_batches(
    loaded: LoadedModel,
    input_ids: np.ndarray,
    attention_mask: np.ndarray | None = None,
    *,
    batch_size: int = 32,
    output_hidden_states: bool = False,
    encoder_only: bool = False,
) -> Iterator[tuple[slice, Any]]:
    """Run the model over ``input_ids`` in batches, without gradients.

    Parameters
    ----------
    input_ids : numpy.ndarray, shape (n, tokens), unsigned or signed integers
    attention_mask : numpy.ndarray, shape (n, tokens), optional
    batch_size : int
    encoder_only : bool
        Run only the encoder (``model.base_model``), skipping the masked-LM head: the
        head's vocabulary projection is wasted work when only hidden states are used.

    Yields
    ------
    (slice, output)
        The rows of the batch and the model's output (``logits``, ``hidden_states``).
        On CUDA the forward pass runs under bf16 autocast.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    dev = loaded.device or torch.device("cpu")
    module = getattr(loaded.model, "base_model", loaded.model) if encoder_only else loaded.model
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if dev.type == "cuda"
        else contextlib.nullcontext()
    )
    n = len(input_ids)
    with torch.inference_mode(), autocast:
        for lo in range(0, n, batch_size):
            report("windows", lo, n)
            rows = slice(lo, min(lo + batch_size, n))
            kwargs: dict[str, Any] = {"input_ids": as_long_tensor(input_ids[rows], dev)}
            if attention_mask is not None:
                kwargs["attention_mask"] = as_long_tensor(attention_mask[rows], dev)
            if output_hidden_states:
                kwargs["output_hidden_states"] = True
            yield rows, module(**kwargs)
        report("windows", n, n)
