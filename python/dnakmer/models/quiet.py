"""Silencing the Hugging Face libraries' progress bars and warnings around a block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["quiet_transformers"]


@contextlib.contextmanager
def quiet_transformers(enabled: bool = True, errors_only: bool = False) -> Iterator[None]:
    """No progress bars from transformers (and, with ``errors_only``, no warnings) inside
    the block; the previous settings come back afterwards."""
    from transformers.utils import logging as hf_logging

    if not enabled:
        yield
        return
    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    if errors_only:
        hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
