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

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dnakmer._core import __version__
from dnakmer.exceptions import DatasetError

__all__ = [
    "DATASET_KINDS_PREFIX",
    "load_arrays",
    "read_manifest",
    "require_keys",
    "write_dataset",
]

MANIFEST = "manifest.json"
PARQUET = "samples.parquet"
DATASET_KINDS_PREFIX = "dnakmer."


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a dataset directory (a JSON object), or :class:`DatasetError`."""
    p = Path(path) / MANIFEST
    if not p.exists():
        raise FileNotFoundError(2, "No dnakmer manifest.json (not a dataset directory?)", str(p))
    try:
        manifest = json.loads(p.read_bytes())
    except (UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"{p}: not valid JSON ({e})", path=str(p)) from None
    if not isinstance(manifest, dict):
        raise DatasetError(f"{p}: expected a JSON object", path=str(p))
    return manifest


def require_keys(path: str | os.PathLike[str], manifest: dict[str, Any], keys: list[str]) -> None:
    """:class:`DatasetError` naming the manifest when any of ``keys`` (``a.b`` for
    nested ones) is missing."""
    missing = []
    for key in keys:
        node: Any = manifest
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(key)
                break
            node = node[part]
    if missing:
        p = Path(path) / MANIFEST
        raise DatasetError(f"{p}: missing keys {missing}", path=str(p))


def load_arrays(
    path: str | os.PathLike[str], fields: list[str] | None = None, *, mmap: bool = True
) -> dict[str, np.ndarray]:
    """The ``.npy`` fields of a dataset, memory-mapped read-only by default; each is
    checked against the dtype and shape the manifest records, and all against its
    ``n_samples`` (:class:`DatasetError` naming the file otherwise)."""
    manifest = read_manifest(path)
    require_keys(path, manifest, ["fields", "n_samples"])
    recorded = manifest["fields"]
    names = fields if fields is not None else list(recorded)
    mode = "r" if mmap else None
    out = {}
    for name in names:
        f = Path(path) / f"{name}.npy"
        if not f.is_file():
            raise DatasetError(f"{f}: missing (the manifest lists field {name!r})", path=str(f))
        try:
            arr = np.load(f, mmap_mode=mode, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DatasetError(f"{f}: not a complete .npy file ({e})", path=str(f)) from None
        want = recorded.get(name) if isinstance(recorded, dict) else None
        if want is not None and (
            str(arr.dtype) != want.get("dtype") or list(arr.shape) != want.get("shape")
        ):
            raise DatasetError(
                f"{f}: holds {arr.dtype}{list(arr.shape)}, the manifest says "
                f"{want.get('dtype')}{want.get('shape')}",
                path=str(f),
            )
        if arr.ndim == 0 or len(arr) != manifest["n_samples"]:
            raise DatasetError(
                f"{f}: {len(arr) if arr.ndim else 0} rows, the manifest says "
                f"{manifest['n_samples']} samples",
                path=str(f),
            )
        out[name] = arr
    return out


@contextlib.contextmanager
def _named(path: Path) -> Iterator[None]:
    """Give an OSError raised while writing ``path`` (a full disk) the file's name."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        if e.errno is None and _disk_full(path):  # NumPy's short write: "N requested ..."
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({e})", str(path)) from e
        raise OSError(e.errno or errno.EIO, e.strerror or str(e), str(path)) from e
    except Exception as e:  # polars wraps I/O errors of its own
        if "No space left" in str(e) or "os error 28" in str(e):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
        raise


def _disk_full(path: Path) -> bool:
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


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
            with _named(tmp / f"{name}.npy"):
                np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
            fields[name] = {"dtype": str(arr.dtype), "shape": list(arr.shape)}
        if parquet:
            with _named(tmp / PARQUET):
                _parquet_table(columns).write_parquet(tmp / PARQUET)
        full = {
            **manifest,
            "dnakmer_version": __version__,
            "n_samples": next(iter(lengths.values()), 0),
            "fields": fields,
        }
        with _named(tmp / MANIFEST):
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
