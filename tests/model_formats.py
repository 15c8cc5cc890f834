"""Tiny models saved in the folder formats of real DNA language model checkpoints.

Each writer builds a 2-layer, hidden-32 masked LM with freshly initialised weights and
saves it with its tokenizer files as the real checkpoints lay them out:

- ``dnabert``: ``BertForMaskedLM`` + DNABERT's k-mer ``vocab.txt`` (overlapping k-mers);
- ``grover``: ``BertForMaskedLM`` + a BPE ``tokenizer.json`` learned on a genome;
- ``nt``: ``EsmForMaskedLM`` + ``EsmTokenizer`` over the Nucleotide Transformer v1
  vocabulary (special tokens, the 4^6 6-mers, then single bases; ``<cls>`` first, no
  ``<eos>``);
- ``char``: ``BertForMaskedLM`` + a character ``vocab.txt``
  (``[PAD] [UNK] [CLS] [SEP] [MASK] A C G T N``);
- ``remote``: a config with ``auto_map`` whose model class lives in the folder's own
  ``modeling_tinydna.py`` (as DNABERT-2, NT-v2, HyenaDNA and Caduceus do); importing that
  file writes ``REMOTE_CODE_RAN`` next to it, so a test can tell whether it ran.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

FORMATS = ("dnabert", "grover", "nt", "char")

NT_SPECIALS = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]


def _bert(vocab_size: int, positions: int, pad: int = 0):
    import torch
    import transformers

    config = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=positions,
        pad_token_id=pad,
        architectures=["BertForMaskedLM"],
    )
    torch.manual_seed(0)
    return transformers.BertForMaskedLM(config)


def write_dnabert(folder: Path, k: int = 3, positions: int = 128) -> Path:
    from dnakmer.models import DnaKmerTokenizer, tiny_bert

    tiny_bert(k, hidden=32, layers=2, max_positions=positions).save_pretrained(folder)
    DnaKmerTokenizer(k=k).save_pretrained(folder)
    return folder


def write_grover(folder: Path, genome_path: Path, vocab_size: int = 64, positions: int = 128):
    """GROVER's layout: a BERT and a BPE ``tokenizer.json`` learned on a genome."""
    import dnakmer
    from dnakmer.training.bpe import train_bpe

    tok = train_bpe(dnakmer.Genome.open(genome_path), vocab_size)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(folder)
    _bert(len(tok), positions).save_pretrained(folder)
    return folder


def nt_vocab() -> list[str]:
    kmers = ["".join(p) for p in itertools.product("ATCG", repeat=6)]
    return NT_SPECIALS + kmers + list("ATCGN")


def write_nt(folder: Path, positions: int = 130) -> Path:
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = nt_vocab()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = transformers.EsmTokenizer(
        str(folder / "vocab.txt"),
        unk_token="<unk>",
        cls_token="<cls>",
        pad_token="<pad>",
        mask_token="<mask>",
        eos_token=None,
    )
    tok.save_pretrained(folder)
    config = transformers.EsmConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=positions,
        pad_token_id=1,
        mask_token_id=2,
        position_embedding_type="absolute",
        token_dropout=False,
        architectures=["EsmForMaskedLM"],
    )
    torch.manual_seed(0)
    transformers.EsmForMaskedLM(config).save_pretrained(folder)
    return folder


def write_char(folder: Path, positions: int = 128) -> Path:
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "A", "C", "G", "T", "N"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False).save_pretrained(
        folder
    )
    _bert(len(vocab), positions).save_pretrained(folder)
    return folder


MODELING = '''
from pathlib import Path

from transformers import BertConfig, BertForMaskedLM

Path({marker!r}).write_text("yes\\n")


class TinyDnaConfig(BertConfig):
    model_type = "tinydna"


class TinyDnaForMaskedLM(BertForMaskedLM):
    config_class = TinyDnaConfig
'''


def write_remote(folder: Path, k: int = 3) -> Path:
    """A DNABERT-layout k-mer model whose classes come from the folder's own code."""
    write_dnabert(folder, k)
    # transformers imports a copy from its module cache, so the marker path is absolute.
    marker = str((folder / "REMOTE_CODE_RAN").resolve())
    (folder / "modeling_tinydna.py").write_text(MODELING.replace("{marker!r}", repr(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "tinydna"
    config["architectures"] = ["TinyDnaForMaskedLM"]
    config["auto_map"] = {
        "AutoConfig": "modeling_tinydna.TinyDnaConfig",
        "AutoModel": "modeling_tinydna.TinyDnaForMaskedLM",
        "AutoModelForMaskedLM": "modeling_tinydna.TinyDnaForMaskedLM",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def write_format(fmt: str, folder: Path, genome_path: Path) -> Path:
    """One tiny model of ``fmt`` (one of :data:`FORMATS`) in ``folder``."""
    if fmt == "dnabert":
        return write_dnabert(folder)
    if fmt == "grover":
        return write_grover(folder, genome_path)
    if fmt == "nt":
        return write_nt(folder)
    if fmt == "char":
        return write_char(folder)
    raise ValueError(fmt)
