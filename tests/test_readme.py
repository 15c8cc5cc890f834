"""The README's Python examples run as written (in a temporary directory laid out like
the root of a clone)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "dnakmer.models" in BLOCKS[index] or "probe" in BLOCKS[index]:
        pytest.importorskip("torch")
    cwd = Path.cwd()
    (tmp_path / "tests").symlink_to(README.parent / "tests")  # as from the root of a clone
    os.chdir(tmp_path)
    try:
        exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), {})
    finally:
        os.chdir(cwd)
    assert capsys.readouterr().out.strip()


# --- console examples ------------------------------------------------------------------

from readme_console import ELISION, examples, missing_lines  # noqa: E402

ROOT = README.parent
CONSOLE = examples()
DEMO = [e for e in CONSOLE if e.name.startswith("dnakmer demo")]
COMMANDS = [e for e in CONSOLE if e not in DEMO]


def test_readme_console_blocks_are_parsed() -> None:
    assert len(COMMANDS) >= 12 and len(DEMO) == 1
    assert all(e.name.startswith("dnakmer ") for e in CONSOLE)


@pytest.fixture(scope="module")
def console_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Every console example but the demo, in README order, from a folder laid out like
    the root of a clone (``tests/`` and ``python/`` linked), through the ``dnakmer``
    command: exit code and what it printed (stdout and stderr as they came)."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    work = tmp_path_factory.mktemp("clone")
    for name in ("tests", "python"):
        (work / name).symlink_to(ROOT / name)
    shim = work / ".bin"
    shim.mkdir()
    (shim / "dnakmer").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dnakmer "$@"\n')
    (shim / "dnakmer").chmod(0o755)
    env = os.environ | {"PATH": f"{shim}:{os.environ['PATH']}", "COLUMNS": "200"}
    env.pop("DNAKMER_DEBUG", None)
    out = {}
    for example in COMMANDS:
        proc = subprocess.run(
            ["bash", "-c", example.command], cwd=work, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1200,
        )  # fmt: skip
        out[example.command] = (proc.returncode, proc.stdout)
    return out


@pytest.mark.parametrize("example", COMMANDS, ids=lambda e: e.name[:70])
def test_readme_console_example(example, console_run) -> None:  # type: ignore[no-untyped-def]
    """The command runs as written from the clone's root and prints what the README
    shows (numbers to their printed precision); an example that shows an error fails
    with exit code 1."""
    pytest.importorskip("torch")
    code, printed = console_run[example.command]
    fails = any(line.startswith("error:") for line in example.expected)
    assert code == (1 if fails else 0), printed
    assert missing_lines(example.expected, printed) == [], printed


def test_readme_demo_example(demo_run: tuple[Path, str]) -> None:
    from conftest import DEMO_COMMAND

    (example,) = DEMO
    assert example.name == DEMO_COMMAND
    assert ELISION in example.expected
    assert missing_lines(example.expected, demo_run[1]) == [], demo_run[1]


def test_console_comparison_keeps_lines_together_between_elisions() -> None:
    printed = "a\nb 0.31\nc\nd\n"
    assert missing_lines(("a", "b 0.31"), printed) == []
    assert missing_lines(("a", "...", "d"), printed) == []
    assert missing_lines(("a", "c"), printed) == ["a", "c"]  # not one after the other
    assert missing_lines(("b 0.3",), printed) == ["b 0.3"]  # to the printed precision
    assert missing_lines(("c", "...", "a"), printed) == ["a"]  # groups in order
