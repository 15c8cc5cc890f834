"""Embeddings of DNA language models: the static k-mer embedding matrix, contextual
hidden states per token, per sequence and per nucleotide, and genome tiling into a
memory-mappable store.

Analyses of these embeddings (similarity structure, projections, strand consistency,
linear probes) are in :mod:`dnakmer.probes.embedding_analysis`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dnakmer._io import write_json
from dnakmer.datasets.store import MANIFEST, PARQUET, read_manifest
from dnakmer.genome import Genome
from dnakmer.models import LoadedModel, forward_batches
from dnakmer.progress import overall

__all__ = [
    "EMBEDDINGS_KIND",
    "embed_genome",
    "encode_windows",
    "hidden_states",
    "static_embeddings",
    "tokens_to_nucleotides",
]

EMBEDDINGS_KIND = "dnakmer.embeddings"
BASES = np.frombuffer(b"ATCGN", dtype=np.uint8)
Level = Literal["sequence", "token", "nucleotide"]


def static_embeddings(loaded: LoadedModel) -> np.ndarray:
    """Input embedding rows of all k-mers, in canonical (DNABERT) k-mer order.

    Returns
    -------
    numpy.ndarray, shape (4**k, hidden), float32
    """
    import torch

    weight = loaded.model.get_input_embeddings().weight
    rows = torch.from_numpy(np.asarray(loaded.tokenizer.kmer_ids).astype(np.int64))
    with torch.inference_mode():
        return weight[rows.to(weight.device)].float().cpu().numpy()


def encode_windows(loaded: LoadedModel, codes: np.ndarray) -> dict[str, np.ndarray]:
    """Model inputs for equal-length windows of base codes (0-3, 4 = N).

    k-mer models are tokenized by the Rust core; other models by their own Hugging Face
    tokenizer on the decoded text.

    Returns
    -------
    dict
        ``input_ids`` and ``attention_mask`` (n, tokens), and ``special`` (n, tokens)
        bool, True at special tokens and padding.
    """
    if loaded.is_kmer:
        tok = loaded.tokenizer
        ids = np.stack([tok.encode_codes(row) for row in codes])
        n = len(ids)
        inputs = np.empty((n, ids.shape[1] + 2), dtype=ids.dtype)
        inputs[:, 0], inputs[:, -1], inputs[:, 1:-1] = tok.cls_token_id, tok.sep_token_id, ids
        special = np.zeros(inputs.shape, dtype=bool)
        special[:, [0, -1]] = True
        return {"input_ids": inputs, "attention_mask": np.ones_like(inputs), "special": special}
    texts = [BASES[np.minimum(row, 4)].tobytes().decode() for row in codes]
    enc = loaded.tokenizer(
        texts, padding=True, return_special_tokens_mask=True, return_tensors="np"
    )
    mask = np.asarray(enc["attention_mask"])
    special = np.asarray(enc["special_tokens_mask"]).astype(bool) | (mask == 0)
    return {"input_ids": np.asarray(enc["input_ids"]), "attention_mask": mask, "special": special}


def tokens_to_nucleotides(token_states: np.ndarray, k: int, stride: int = 1) -> np.ndarray:
    """Per-nucleotide states: the mean over the k-mer tokens covering each nucleotide.

    Parameters
    ----------
    token_states : numpy.ndarray, shape (n, tokens, hidden)
        States of the k-mer tokens only (no special tokens); token i covers bases
        ``[i*stride, i*stride + k)``.

    Returns
    -------
    numpy.ndarray, shape (n, (tokens-1)*stride + k, hidden), float32
    """
    n, n_tok, hidden = token_states.shape
    length = (n_tok - 1) * stride + k
    total = np.zeros((n, length, hidden), dtype=np.float32)
    count = np.zeros(length, dtype=np.float32)
    for offset in range(k):
        end = offset + (n_tok - 1) * stride + 1
        total[:, offset:end:stride] += token_states
        count[offset:end:stride] += 1
    # Bases between strided tokens that no token covers stay zero (count 0).
    return total / np.maximum(count, 1)[None, :, None]


def hidden_states(
    loaded: LoadedModel,
    codes: np.ndarray,
    *,
    layers: tuple[int, ...] = (-1,),
    level: Level = "sequence",
    batch_size: int = 32,
) -> dict[int, np.ndarray]:
    """Contextual embeddings of windows, from any hidden layer(s).

    Parameters
    ----------
    codes : numpy.ndarray, shape (n, length), uint8
        Windows of base codes (see :func:`dnakmer.datasets.windows.sample_windows`).
    layers : tuple of int
        Indices into the model's ``hidden_states`` (0 = embedding output, -1 = last).
    level : {"sequence", "token", "nucleotide"}
        ``sequence``: mean over non-special tokens (not the untrained pooler), (n, H);
        ``token``: k-mer tokens without [CLS]/[SEP], (n, tokens, H) (k-mer models);
        ``nucleotide``: mean of the tokens covering each base, (n, length, H)
        (k-mer models).

    Returns
    -------
    dict of int to numpy.ndarray, float32
        Keyed by the layer indices as given.
    """
    if level not in ("sequence", "token", "nucleotide"):
        raise ValueError(f"level must be 'sequence', 'token' or 'nucleotide', got {level!r}")
    if level != "sequence" and not loaded.is_kmer:
        raise ValueError(f"level {level!r} needs a k-mer model; use level='sequence'")
    import torch

    enc = encode_windows(loaded, codes)
    keep = (~enc["special"]).astype(np.float32)
    parts: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    for rows, out in forward_batches(
        loaded,
        enc["input_ids"],
        enc["attention_mask"],
        batch_size=batch_size,
        output_hidden_states=True,
        encoder_only=True,
    ):
        states = out.hidden_states
        for layer in layers:
            h = states[layer].float()
            if level == "sequence":
                # Pool on the device: only (batch, hidden) crosses back to the host.
                w = torch.from_numpy(keep[rows]).to(h.device)
                pooled = (h * w[:, :, None]).sum(1) / w.sum(1).clamp(min=1)[:, None]
                parts[layer].append(pooled.cpu().numpy())
            else:
                parts[layer].append(h[:, 1:-1].cpu().numpy())
    result = {layer: np.concatenate(p).astype(np.float32) for layer, p in parts.items()}
    if level == "nucleotide":
        tok = loaded.tokenizer
        result = {layer: tokens_to_nucleotides(h, tok.k, tok.stride) for layer, h in result.items()}
    return result


def _check_layers(loaded: LoadedModel, layers: tuple[int, ...]) -> None:
    n_states = int(getattr(loaded.model.config, "num_hidden_layers", 0)) + 1
    bad = [layer for layer in layers if not -n_states <= layer < n_states]
    if not layers or bad:
        raise ValueError(
            f"layers {list(layers)}: the model has hidden states 0..{n_states - 1} "
            f"(or -{n_states}..-1)"
        )


def _tiles(length: int, window: int, step: int) -> list[tuple[int, int]]:
    """[start, end) windows covering a record; the last one may be shorter."""
    tiles, start = [], 0
    while True:
        end = min(start + window, length)
        tiles.append((start, end))
        if end >= length:
            return tiles
        start += step


def _window_geometry(loaded: LoadedModel, window_tokens: int | None) -> tuple[int, int, int]:
    """(window bases, step, shortest useful window) for tiling a genome."""
    n = window_tokens or loaded.max_tokens - 2
    if n < 1 or n + 2 > loaded.max_tokens:
        raise ValueError(f"window_tokens must be 1..{loaded.max_tokens - 2}, got {n}")
    if loaded.is_kmer:
        k, stride = loaded.k, loaded.tokenizer.stride
        # Window i+1 starts at the (n+1)-th token start of window i, so every k-mer
        # token of the record is embedded exactly once.
        return (n - 1) * stride + k, n * stride, k
    return n, n, 1


def embed_genome(
    loaded: LoadedModel,
    genome: Genome | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    layers: tuple[int, ...] = (-1,),
    level: Level = "sequence",
    window_tokens: int | None = None,
    batch_size: int = 32,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Tile every record into windows and store their embeddings.

    Writes, atomically (temporary folder renamed into place), the dataset layout
    shared by dnakmer: ``embedding.npy`` float32, of shape (n_windows, n_layers, hidden)
    for ``level="sequence"``, (n_windows, n_layers, window_tokens, hidden) for
    ``"token"`` and (n_windows, n_layers, window_bases, hidden) for ``"nucleotide"``
    (a shorter last window of a record is zero-padded; ``length.npy`` holds its valid
    tokens or bases), ``record.npy`` / ``start.npy`` / ``end.npy`` coordinates
    (memory-mappable with
    ``dnakmer.datasets.store.load_arrays``), ``samples.parquet`` (record name, start, end) and
    ``manifest.json``. The embeddings are written into a memory map, so the genome's
    size is bounded by disk, not RAM.

    Parameters
    ----------
    window_tokens : int, optional
        Tokens per window (default: the model's positions minus [CLS]/[SEP]). For k-mer
        models windows overlap by k-1 bases so each k-mer is in exactly one window.
    layers : tuple of int
        Hidden-state indices (0 = embeddings, -1 = last layer).
    level : {"sequence", "token", "nucleotide"}
        See :func:`hidden_states`; token and nucleotide levels need a k-mer model.

    Returns
    -------
    dict
        The manifest.
    """
    _check_layers(loaded, layers)
    if level not in ("sequence", "token", "nucleotide"):
        raise ValueError(f"level must be 'sequence', 'token' or 'nucleotide', got {level!r}")
    if level != "sequence" and not loaded.is_kmer:
        raise ValueError(f"level {level!r} needs a k-mer model; use level='sequence'")
    g = genome if isinstance(genome, Genome) else Genome.open(genome)
    window, step, shortest = _window_geometry(loaded, window_tokens)
    tiles = [
        (r, s, e)
        for r, length in enumerate(g.lengths)
        for s, e in _tiles(length, window, step)
        if e - s >= shortest
    ]
    if not tiles:
        raise ValueError(f"{g.path}: no record is long enough to embed")
    out = Path(out_dir)
    _check_output_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        n_tok = loaded.tokenizer.n_tokens(window) if loaded.is_kmer else window
        per_window = {"sequence": (), "token": (n_tok,), "nucleotide": (window,)}
        shape = (len(tiles), len(layers), *per_window[level], int(loaded.model.config.hidden_size))
        store = np.lib.format.open_memmap(
            tmp / "embedding.npy", mode="w+", dtype=np.float32, shape=shape
        )
        _fill_store(loaded, g, tiles, layers, level, store, batch_size)
        store.flush()
        del store
        _write_coordinates(tmp, loaded, g, tiles, level)
        manifest = _store_manifest(loaded, g, layers, level, window, step, list(shape))
        write_json(tmp / MANIFEST, manifest)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _check_output_dir(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty directory that holds no earlier embedding store."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        try:
            previous = read_manifest(out).get("kind")
        except (OSError, ValueError):
            previous = None
        if previous != EMBEDDINGS_KIND:
            raise FileExistsError(
                f"{out} is not empty and holds no dnakmer embeddings; pass overwrite=True"
            )


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an old ``out`` is moved aside first, so readers see
    the old store or the new one, never a missing or half-written one."""
    if not out.exists():
        os.replace(tmp, out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, trash / "old")
    os.replace(tmp, out)
    shutil.rmtree(trash, ignore_errors=True)


def _write_coordinates(
    tmp: Path, loaded: LoadedModel, g: Genome, tiles: list[tuple[int, int, int]], level: Level
) -> None:
    """record/start/end/length ``.npy`` fields and ``samples.parquet``."""
    import polars as pl

    coords = np.asarray(tiles, dtype=np.int64)
    np.save(tmp / "record.npy", coords[:, 0].astype(np.int32))
    np.save(tmp / "start.npy", coords[:, 1])
    np.save(tmp / "end.npy", coords[:, 2])
    span = coords[:, 2] - coords[:, 1]
    if level == "token":
        span = np.array([loaded.tokenizer.n_tokens(int(b)) for b in span], dtype=np.int64)
    np.save(tmp / "length.npy", span)
    names = [g.names[r] for r, _, _ in tiles]
    pl.DataFrame(
        {
            "window": np.arange(len(tiles)),
            "record": names,
            "start": coords[:, 1],
            "end": coords[:, 2],
        }
    ).write_parquet(tmp / PARQUET)


def _fill_store(
    loaded: LoadedModel,
    g: Genome,
    tiles: list[tuple[int, int, int]],
    layers: tuple[int, ...],
    level: Level,
    store: np.ndarray,
    batch_size: int,
) -> None:
    """Embed tiles in batches of equal length (full windows together, tails alone)."""
    by_length: dict[int, list[int]] = {}
    for i, (_, s, e) in enumerate(tiles):
        by_length.setdefault(e - s, []).append(i)
    with overall("windows embedded", len(tiles)) as advance:
        for idx in by_length.values():
            for lo in range(0, len(idx), batch_size * 4):
                chunk = idx[lo : lo + batch_size * 4]
                codes = np.stack(
                    [g.codes(g.names[tiles[i][0]], tiles[i][1], tiles[i][2]) for i in chunk]
                )
                states = hidden_states(
                    loaded, codes, layers=layers, level=level, batch_size=batch_size
                )
                for j, layer in enumerate(layers):
                    h = states[layer]
                    if level == "sequence":
                        store[chunk, j] = h
                    else:
                        store[chunk, j, : h.shape[1]] = h
                advance(len(chunk))


def _store_manifest(
    loaded: LoadedModel,
    g: Genome,
    layers: tuple[int, ...],
    level: Level,
    window: int,
    step: int,
    shape: list[int],
) -> dict[str, Any]:
    from dnakmer._core import __version__

    n = shape[0]
    return {
        "kind": EMBEDDINGS_KIND,
        "dnakmer_version": __version__,
        "model": str(loaded.path),
        "genome": {"path": str(g.path), "records": g.names, "lengths": g.lengths},
        "k": loaded.k if loaded.is_kmer else None,
        "layers": list(layers),
        "level": level,
        "window_bases": window,
        "step_bases": step,
        "n_samples": n,
        "fields": {
            "embedding": {"dtype": "float32", "shape": shape},
            "length": {"dtype": "int64", "shape": [n]},
            "record": {"dtype": "int32", "shape": [n]},
            "start": {"dtype": "int64", "shape": [n]},
            "end": {"dtype": "int64", "shape": [n]},
        },
    }
