"""On-disk layout shared by every dataset dnakmer builds (next-k-mer, annotation tasks).

A dataset is a directory::

    manifest.json       parameters, counts, input hashes, field dtypes/shapes
    <field>.npy         one array per field, first axis = sample (memory-mappable)
    samples.parquet     the same fields as one table (2-D fields as fixed-size lists),
                        readable by polars, pyarrow and Hugging Face ``datasets``

The directory is built under a temporary sibling name and renamed into place, so a
reader never sees a half-written dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dnakmer._core import __version__

__all__ = ["DATASET_KINDS_PREFIX", "load_arrays", "read_manifest", "write_dataset"]

MANIFEST = "manifest.json"
PARQUET = "samples.parquet"
DATASET_KINDS_PREFIX = "dnakmer."


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a dataset directory."""
    p = Path(path) / MANIFEST
    if not p.exists():
        raise FileNotFoundError(2, "No dnakmer manifest.json (not a dataset directory?)", str(p))
    manifest: dict[str, Any] = json.loads(p.read_text())
    return manifest


def load_arrays(
    path: str | os.PathLike[str], fields: list[str] | None = None, *, mmap: bool = True
) -> dict[str, np.ndarray]:
    """The ``.npy`` fields of a dataset, memory-mapped read-only by default."""
    manifest = read_manifest(path)
    names = fields if fields is not None else list(manifest["fields"])
    mode = "r" if mmap else None
    return {n: np.load(Path(path) / f"{n}.npy", mmap_mode=mode) for n in names}


def _parquet_table(columns: Mapping[str, np.ndarray]) -> Any:
    import polars as pl

    series = []
    for name, arr in columns.items():
        if arr.ndim == 1:
            series.append(pl.Series(name, arr))
        elif arr.ndim == 2:
            # A 2-D NumPy array becomes a fixed-size list column (Arrow FixedSizeList).
            series.append(pl.Series(name, arr))
        else:
            raise ValueError(f"field {name!r} has {arr.ndim} dimensions; at most 2 are supported")
    return pl.DataFrame(series)


def write_dataset(
    out_dir: str | os.PathLike[str],
    columns: Mapping[str, np.ndarray],
    manifest: Mapping[str, Any],
    *,
    parquet: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``columns`` (equal first dimension) and ``manifest`` to ``out_dir`` atomically.

    ``manifest`` must have a ``kind`` starting with ``"dnakmer."``; ``fields``,
    ``n_samples`` and ``dnakmer_version`` are added. An existing dnakmer dataset at
    ``out_dir`` is replaced; any other non-empty directory needs ``overwrite=True``.
    """
    out = Path(out_dir)
    kind = str(manifest.get("kind", ""))
    if not kind.startswith(DATASET_KINDS_PREFIX):
        raise ValueError(f"manifest kind must start with {DATASET_KINDS_PREFIX!r}, got {kind!r}")
    lengths = {name: len(a) for name, a in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"fields differ in length: {lengths}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        try:
            previous = read_manifest(out).get("kind", "")
        except (OSError, ValueError):
            previous = ""
        if not str(previous).startswith(DATASET_KINDS_PREFIX):
            raise FileExistsError(
                f"{out} is not empty and is not a dnakmer dataset; pass overwrite=True"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        fields = {}
        for name, arr in columns.items():
            arr = np.ascontiguousarray(arr)
            np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
            fields[name] = {"dtype": str(arr.dtype), "shape": list(arr.shape)}
        if parquet:
            _parquet_table(columns).write_parquet(tmp / PARQUET)
        full = {
            **manifest,
            "dnakmer_version": __version__,
            "n_samples": next(iter(lengths.values()), 0),
            "fields": fields,
        }
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2) + "\n")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, trash / "old")
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
