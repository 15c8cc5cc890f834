"""Small real genomes shipped inside the package, for examples and the default input."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["demo_genome", "demo_models_dir", "example_genome", "phix174"]


def _path(name: str) -> Path:
    return Path(str(resources.files("dnakmer") / "data" / name))


def example_genome() -> Path:
    """Phage lambda, NC_001416.1 (48,502 bp, gzip): the default input of the CLI."""
    return _path("lambda_phage.fa.gz")


def phix174() -> Path:
    """Phage phiX174, NC_001422 (5,386 bp, plain FASTA)."""
    return _path("phix174.fa")


def demo_genome() -> Path:
    """E. coli K-12 W3110, NC_007779.1 (4,646,332 bp, gzip): the genome of ``dnakmer demo``
    and of its shipped models' pretraining."""
    return _path("ecoli_k12.fa.gz")


def demo_models_dir() -> Path:
    """The folder of the three pretrained demo models and ``COMMANDS.md``."""
    return _path("models")
