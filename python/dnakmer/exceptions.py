"""The exceptions dnakmer raises.

Every error about bad input carries the file, line and record it concerns, both in its
message and as attributes, so callers can report or ``except`` by kind::

    DnakmerError
    ├── FastaFormatError (also a ValueError)   malformed FASTA
    │   └── CompressionError                   corrupt or truncated gzip / BGZF
    ├── VcfFormatError (also a ValueError)     malformed VCF, or a corrupt or truncated
    │                                          gzip / BGZF VCF
    ├── VocabError (also a ValueError)         unusable vocab.txt
    ├── RecordNotFoundError (also a KeyError)  unknown record name
    ├── AnnotationError (also a ValueError)    malformed or unusable GFF3 / GTF
    ├── ModelError (also a ValueError)         unusable checkpoint folder, or one whose
    │                                          code the user did not allow to run
    ├── DatasetError (also a ValueError)       corrupt or inconsistent dataset folder
    └── OutputBusyError (also an OSError)      another process is writing the same
                                               output folder

Missing files raise the built-in ``FileNotFoundError``; bad arguments ``ValueError``.
"""

from __future__ import annotations

__all__ = [
    "AnnotationError",
    "CompressionError",
    "DatasetError",
    "DnakmerError",
    "FastaFormatError",
    "ModelError",
    "OutputBusyError",
    "RecordNotFoundError",
    "VcfFormatError",
    "VocabError",
]


class DnakmerError(Exception):
    """Base class of dnakmer's own errors.

    Attributes
    ----------
    path : str or None
        File the error concerns.
    line : int or None
        1-based line number in that file.
    record : str or None
        FASTA record (or other named item) the error concerns.
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        record: str | None = None,
    ) -> None:
        super().__init__(message, path, line, record)
        self.message = message
        self.path = path
        self.line = line
        self.record = record

    def __str__(self) -> str:
        return self.message


class FastaFormatError(DnakmerError, ValueError):
    """The input is not valid FASTA."""


class CompressionError(FastaFormatError):
    """A gzip or BGZF stream is corrupt or truncated."""


class VcfFormatError(DnakmerError, ValueError):
    """The input is not valid VCF, or its gzip / BGZF stream is corrupt or truncated
    (``line`` is the line being read; ``record`` the CHROM of the bad record, when
    known)."""


class VocabError(DnakmerError, ValueError):
    """A vocabulary file does not hold the special tokens and every k-mer exactly once."""


class RecordNotFoundError(DnakmerError, KeyError):
    """A record name that the genome does not contain."""


class AnnotationError(DnakmerError, ValueError):
    """A GFF3 or GTF annotation is malformed, or does not fit the genome it is used with."""


class ModelError(DnakmerError, ValueError):
    """A checkpoint folder cannot be used: a corrupt or inconsistent file, or classes that
    live in the folder's own code while ``trust_remote_code`` is off."""


class OutputBusyError(DnakmerError, OSError):
    """Another process holds the lock of the output folder this one was to write."""


class DatasetError(DnakmerError, ValueError):
    """A saved dataset folder is corrupt or inconsistent: an unreadable manifest, missing
    keys, a missing, truncated or mis-shaped array, or values out of range (``path``
    names the file)."""
