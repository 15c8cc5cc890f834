"""Progress of long work: what the library reports (dnakmer.progress), and what the
command line shows of it (a bar on a terminal, nothing with --quiet or into a pipe,
never printed log dictionaries)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dnakmer import progress

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def test_reports_reach_the_listener_with_stage_names() -> None:
    seen: list[tuple[str, int, int | None, str]] = []
    progress.report("nobody listens", 1, 2)  # no listener: nothing happens
    with progress.listening(lambda *a: seen.append(a)):
        progress.report("windows", 3, 10)
        with progress.stage("run 1/2"):
            progress.report("training steps", 5, 20, "loss 1.000")
    progress.report("after", 1, 1)
    assert seen == [("windows", 3, 10, ""), ("run 1/2: training steps", 5, 20, "loss 1.000")]


def test_overall_counts_pieces_as_one_and_hides_theirs() -> None:
    seen: list[tuple[str, int, int | None, str]] = []
    with progress.listening(lambda *a: seen.append(a)):
        with progress.overall("windows embedded", 5) as advance:
            progress.report("windows", 1, 2)  # a piece's own report: not shown
            advance(2)
            advance(3)
        progress.report("later", 1, 1)
    assert [s[:3] for s in seen] == [
        ("windows embedded", 0, 5), ("windows embedded", 2, 5), ("windows embedded", 5, 5),
        ("later", 1, 1),
    ]  # fmt: skip


def test_forward_passes_and_training_report_their_progress(tmp_path: Path, tiny3) -> None:
    pytest.importorskip("torch")
    from dnakmer.models import forward_batches
    from dnakmer.training.pretrain import ModelShape, pretrain
    from dnakmer.training.trainer import TrainOptions

    seen: list[tuple[str, int, int | None, str]] = []
    with progress.listening(lambda *a: seen.append(a)):
        ids = np.full((10, 8), 7, dtype=np.int64)
        for _ in forward_batches(tiny3, ids, batch_size=4):
            pass
        assert [s[1:3] for s in seen] == [(0, 10), (4, 10), (8, 10), (10, 10)]
        seen.clear()
        pretrain(DATA / "phix174.fa", tmp_path / "m", k=3, max_tokens=16,
                 shape=ModelShape(hidden=32, layers=1, heads=2, intermediate=64),
                 options=TrainOptions(max_steps=6, batch_size=4, eval_every=3, log_every=2,
                                      quiet=True),
                 n_train=32, n_eval=8)  # fmt: skip
    steps = [s for s in seen if s[0] == "training steps"]
    assert steps[-1][1:3] == (6, 6)
    assert sorted({s[1] for s in steps}) == list(range(1, 7)), "every step is reported"
    assert steps[-1][3].startswith("loss ") and "eval loss" in steps[-1][3]


def _pretrain_args(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dnakmer", "pretrain", str(DATA / "phix174.fa"), "--out",
            str(out), "--k", "3", "--window-tokens", "16", "--max-steps", "6", "--eval-every",
            "3", "--n-train", "32", "--n-val", "8", "--batch-size", "4", *extra]  # fmt: skip


def _read_all(fd: int) -> bytes:
    """Everything a pseudo-terminal's child writes, until it closes its end."""
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return seen
        if not chunk:
            return seen
        seen += chunk


def test_a_terminal_shows_one_bar_and_a_pipe_no_log_lines(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    piped = subprocess.run(_pretrain_args(tmp_path / "a"), capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert "{'loss'" not in piped.stdout + piped.stderr
    assert piped.stdout.strip().startswith("eval loss") and piped.stderr == ""
    # On a terminal: the bar (steps of the schedule, the loss), cleared at the end.
    main, child = pty.openpty()
    proc = subprocess.Popen(_pretrain_args(tmp_path / "b"), stdout=child, stderr=child,
                            env=os.environ | {"COLUMNS": "160"})  # fmt: skip
    os.close(child)
    seen = _read_all(main)
    assert proc.wait(300) == 0
    text = seen.decode(errors="replace")
    assert "training steps" in text and "6/6" in text and "loss" in text
    assert "{'loss'" not in text
    # --quiet: no bar on the terminal either.
    main, child = pty.openpty()
    proc = subprocess.Popen(_pretrain_args(tmp_path / "c", "--quiet"), stdout=child,
                            stderr=child)  # fmt: skip
    os.close(child)
    seen = _read_all(main)
    assert proc.wait(300) == 0
    assert "training steps" not in seen.decode(errors="replace")


@pytest.mark.parametrize("command", [["embed"], ["probe", "mask"], ["probe", "embeddings"],
                                     ["pretrain"], ["finetune", "nextkmer"],
                                     ["finetune", "classify"], ["tokenize"], ["interrogate"],
                                     ["demo"], ["stats"], ["nextkmer", "build"],
                                     ["nextkmer", "baselines"], ["tasks", "build"],
                                     ["variants", "score"], ["variants", "scan"]])  # fmt: skip
def test_slow_commands_take_quiet(command: list[str]) -> None:
    from typer.testing import CliRunner

    from dnakmer.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--quiet" in result.output


def test_reading_a_genome_reports_to_a_listener() -> None:
    """Genome.open without a callback of its own reports the bytes it reads when
    something listens (the command line's bar), and costs nothing otherwise."""
    from dnakmer import Genome

    seen: list[tuple[str, int, int | None, str]] = []
    with progress.listening(lambda *a: seen.append(a)):
        g = Genome.open(DATA / "yeast_chrI.fa.gz")
    assert g.lengths == [230_218]
    size = (DATA / "yeast_chrI.fa.gz").stat().st_size
    assert seen and seen[-1] == ("reading yeast_chrI.fa.gz", size, size, "")
    own: list[tuple[int, int]] = []
    with progress.listening(lambda *a: seen.append(a)):
        Genome.open(DATA / "phix174.fa", progress=lambda d, t: own.append((d, t)))
    assert own and seen[-1][0] == "reading yeast_chrI.fa.gz"  # its own callback instead
