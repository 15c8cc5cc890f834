"""A small budget of the reader fuzzing of ``tests/fuzz_reader.py`` (hostile byte
streams, plain, gzip and BGZF, against the pure-Python reference); the long run and its
result are in benches/RESULTS.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz_reader import run


@pytest.mark.parametrize("first", [0, 100_000])
def test_hostile_streams_match_the_reference(first: int, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("DNAKMER_SPLIT_MIN_BYTES", "64")
    stats = run(range(first, first + 150), tmp_path)
    assert stats["failures"] == []
    # Both outcomes occur: streams read and compared, streams rejected with typed errors.
    assert stats["read"] > 30 and stats["rejected"] > 30
