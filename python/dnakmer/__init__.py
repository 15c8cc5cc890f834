"""dnakmer: genomes to model-ready k-mer tensors, and probes of what DNA language
models learn.

The core (FASTA reading, tokenization) is compiled Rust; ``import dnakmer`` never
imports torch or transformers.
"""

from dnakmer._core import __version__
from dnakmer.data import example_genome
from dnakmer.exceptions import (
    AnnotationError,
    CompressionError,
    DatasetError,
    DnakmerError,
    FastaFormatError,
    ModelError,
    OutputBusyError,
    RecordNotFoundError,
    VcfFormatError,
    VocabError,
)
from dnakmer.genome import Genome
from dnakmer.tokenizer import KmerTokenizer, tokenize_fasta, tokenize_genome
from dnakmer.vcf import read_vcf

__all__ = [
    "AnnotationError",
    "CompressionError",
    "DatasetError",
    "DnakmerError",
    "FastaFormatError",
    "Genome",
    "KmerTokenizer",
    "ModelError",
    "OutputBusyError",
    "RecordNotFoundError",
    "VcfFormatError",
    "VocabError",
    "__version__",
    "example_genome",
    "read_vcf",
    "tokenize_fasta",
    "tokenize_genome",
]
