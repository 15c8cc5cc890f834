"""Shared fixtures: a tiny DNABERT-shaped checkpoint saved to disk, the lambda genome, the
demo run, and the ``gpu`` marker, which skips when CUDA is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dnakmer import Genome, example_genome


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pretrained_files() -> frozenset[str]:
    """What `dnakmer pretrain` leaves in its output folder."""
    return frozenset(
        {
            "config.json",
            "model.safetensors",
            "vocab.txt",
            "tokenizer_config.json",
            "dnakmer.json",
            "history.json",
        }
    )


@pytest.fixture(scope="session")
def pretrained_bpe_files(pretrained_files: frozenset[str]) -> frozenset[str]:
    """What `dnakmer pretrain --tokenization bpe` leaves: tokenizer.json for vocab.txt."""
    return (pretrained_files - {"vocab.txt"}) | {"tokenizer.json"}


def save_tiny_checkpoint(folder: Path, k: int, **kwargs: int) -> Path:
    """A random tiny BertForMaskedLM and its DNABERT tokenizer files in ``folder``."""
    from dnakmer.models import DnaKmerTokenizer, tiny_bert

    tiny_bert(k, **kwargs).save_pretrained(folder)
    DnaKmerTokenizer(k=k).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoint folder of a k=3 model (hidden 32, 2 layers, 64 positions)."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny3"), 3, max_positions=80)


@pytest.fixture(scope="session")
def tiny3(tiny3_dir: Path):  # returns dnakmer.models.LoadedModel
    from dnakmer.models import load

    return load(tiny3_dir, device="cpu")


@pytest.fixture(scope="session")
def lambda_genome() -> Genome:
    return Genome.open(example_genome())


DEMO_COMMAND = "dnakmer demo --out demo"
"""The demo as README.md runs it (test_readme compares the README's output with it)."""


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``dnakmer demo --out demo`` run once, in a folder of its own: the run folder and
    what the command printed."""
    from typer.testing import CliRunner

    from dnakmer.cli import app

    work = tmp_path_factory.mktemp("demo")
    cwd = Path.cwd()
    os.chdir(work)
    try:
        result = CliRunner().invoke(app, [*DEMO_COMMAND.split()[1:], "--quiet"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return work / "demo", result.output
