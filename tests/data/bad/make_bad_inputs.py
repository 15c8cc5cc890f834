"""Write the bad-input catalogue: odd and broken FASTA and vocab files, each with the
outcome dnakmer must give, and ``CATALOGUE.md`` describing them.

Run from anywhere: ``python tests/data/bad/make_bad_inputs.py``. Output is byte-for-byte
reproducible (fixed seeds, gzip mtime 0), and ``tests/test_bad_inputs.py`` checks that
the committed files equal what this script writes.
"""

from __future__ import annotations

import itertools
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from fasta_reference import bgzf_block, bgzf_compress, gzip_members  # noqa: E402

LONG_LINE_BASES = 3 * 1024 * 1024 + 11
DIRECTORY = "directory.fa"
# Two records of 18 and 16 bases, re-encoded by several entries.
TWO_RECORDS = b">chr1 first record\nACGTACGTAC\nGGTTAACC\n>chr2\nTTTTGGGGCCCCAAAA\n"


@dataclass(frozen=True)
class BadInput:
    """One catalogue entry.

    ``error`` names the exception class (``None``: the input is accepted), ``message`` a
    fragment of its text, ``line``/``record`` its attributes. For accepted FASTA inputs
    ``names``/``lengths`` are the records read; for vocabularies ``lengths`` holds the
    vocabulary size.
    """

    file: str
    what: str
    content: bytes
    kind: str = "fasta"
    error: str | None = None
    message: str = ""
    line: int | None = None
    record: str | None = None
    names: tuple[str, ...] = ()
    lengths: tuple[int, ...] = ()
    warning: str | None = None
    notes: str = ""
    tags: tuple[str, ...] = field(default=())

    def outcome(self) -> str:
        """The expected outcome as one Markdown cell."""
        if self.error is None:
            if self.kind == "vocab":
                text = f"accepted: vocabulary of {self.lengths[0]} tokens"
            else:
                pairs = zip(self.names, self.lengths, strict=True)
                recs = ", ".join(f"`{n}` {n_bp:,} bp" for n, n_bp in pairs)
                text = f"accepted: {recs}"
            if self.warning:
                text += f"; warns `{self.warning}`"
        else:
            text = f"`{self.error}`: `{self.message}`"
            if self.line is not None:
                text += f", line {self.line}"
            if self.record is not None:
                text += f", record `{self.record}`"
        return text + (f" ({self.notes})" if self.notes else "")


def _random_bases(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(n))


def _dnabert_vocab(k: int) -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return specials + ["".join(p) for p in itertools.product("ATCG", repeat=k)]


def _vocab_text(tokens: list[str]) -> bytes:
    return ("\n".join(tokens) + "\n").encode()


def _long_single_line() -> bytes:
    # A 4 kb random unit repeated keeps the gzip small; an N run and a soft-masked
    # stretch make the middle of the line (far past the 1 MiB read buffer) distinctive.
    unit = _random_bases(4096, seed=3)
    seq = (unit * (LONG_LINE_BASES // len(unit) + 1))[:LONG_LINE_BASES]
    mid = LONG_LINE_BASES // 2
    seq = seq[:mid] + "N" * 100 + seq[mid + 100 : mid + 1100].lower() + seq[mid + 1100 :]
    return gzip_members(f">chrLong one line of {LONG_LINE_BASES} bp\n{seq}\n".encode())


def _structure_inputs() -> list[BadInput]:
    """Records and lines: missing, empty, duplicated, unterminated."""
    return [
        BadInput("empty.fa", "empty file", b"", error="FastaFormatError",
                 message="no FASTA records found", line=1),
        BadInput("no_header.fa", "sequence lines and no header at all",
                 b"ACGTACGT\nACGT\n", error="FastaFormatError",
                 message="sequence data before the first '>' header line", line=1),
        BadInput("sequence_before_header.fa", "blank lines, then sequence, then a header",
                 b"\n\nNNNNACGT\n>chr1\nACGT\n", error="FastaFormatError",
                 message="sequence data before the first '>' header line", line=3),
        BadInput("header_only.fa", "a header and no sequence", b">chr1 only a header\n",
                 names=("chr1",), lengths=(0,)),
        BadInput("gt_only.fa", "a header line that is just '>'", b">\nACGT\n",
                 error="FastaFormatError", message="header line has no record name", line=1),
        BadInput("header_whitespace_only.fa", "header of spaces and a tab",
                 b">chr1\nAC\n>  \t \nACGT\n", error="FastaFormatError",
                 message="header line has no record name", line=3),
        BadInput("duplicate_names.fa", "two records named chrA",
                 b">chrA first\nACGT\n>chrB\nGG\n>chrA second\nTT\n",
                 error="FastaFormatError",
                 message="duplicate record name 'chrA' (first defined on line 1)",
                 line=5, record="chrA"),
        BadInput("zero_length_record.fa", "an empty record between two others",
                 b">chr1\nACGTACGT\n>empty\n>chr2\nACGT\n", names=("chr1", "empty", "chr2"),
                 lengths=(8, 0, 4), notes="0 tokens for the empty record"),
        BadInput("no_final_newline.fa", "last line lacks its newline",
                 b">chr1\nACGT\n>chr2\nGGCCA", names=("chr1", "chr2"), lengths=(4, 5)),
        BadInput("header_no_newline.fa", "file ends with a header without newline",
                 b">chr1\nACGT\n>chr2", names=("chr1", "chr2"), lengths=(4, 0)),
        BadInput("blank_lines.fa", "blank and whitespace-only lines everywhere",
                 b"\n\n>chr1\n\nAC GT\n \t\nAC\tGT\n\n>chr2\n\n", names=("chr1", "chr2"),
                 lengths=(8, 0), notes="space and tab inside sequence lines are ignored"),
        BadInput("header_too_long.fa.gz", "a header line of 1 MiB and 10 bytes", gzip_members(
                 b">" + b"x" * ((1 << 20) + 10) + b"\nACGT\n"), error="FastaFormatError",
                 message="header line is longer than", line=1),
        BadInput("long_single_line.fa.gz", f"one sequence line of {LONG_LINE_BASES:,} bases",
                 _long_single_line(), names=("chrLong",), lengths=(LONG_LINE_BASES,),
                 notes="N 100, softmasked 1,000"),
    ]


def _encoding_inputs() -> list[BadInput]:
    """Bytes and line endings that are not plain ASCII FASTA."""
    return [
        BadInput("binary_garbage.bin", "PNG signature then random bytes",
                 b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(2048),
                 error="FastaFormatError",
                 message="not a FASTA file: byte 0x89 where a '>' header line was expected",
                 line=1),
        BadInput("nul_bytes.fa", "NUL bytes inside a sequence line",
                 b">chr1\nACGTACGT\nACG\x00\x00TACGT\n", error="FastaFormatError",
                 message="invalid sequence character byte 0x00 at column 4",
                 line=3, record="chr1"),
        BadInput("non_utf8_header.fa", "Latin-1 byte in a header",
                 b">chr1\nAC\n>chr2 caf\xe9 latin-1\nACGT\n", error="FastaFormatError",
                 message="header line is not valid UTF-8", line=3),
        BadInput("header_control_char.fa", "BEL control byte in a header",
                 b">chr1\x07bell\nACGT\n", error="FastaFormatError",
                 message="header line contains control character U+0007", line=1),
        BadInput("crlf.fa", "Windows line endings", TWO_RECORDS.replace(b"\n", b"\r\n"),
                 names=("chr1", "chr2"), lengths=(18, 16), notes="same as the LF file"),
        BadInput("crlf_leading_blank.fa", "CRLF file that starts with blank lines",
                 b"\r\n  \r\n>chr1\r\nACGT\r\n", names=("chr1",), lengths=(4,)),
        BadInput("cr_only_line_endings.fa", "classic Mac OS line endings (CR only)",
                 TWO_RECORDS.replace(b"\n", b"\r"), error="FastaFormatError",
                 message="CR-only line endings", line=1),
        BadInput("utf8_bom.fa", "UTF-8 byte-order mark before the first '>'",
                 b"\xef\xbb\xbf" + TWO_RECORDS, names=("chr1", "chr2"), lengths=(18, 16),
                 notes="the mark is skipped"),
        BadInput("utf16.fa", "UTF-16 LE text with its byte-order mark",
                 "\ufeff>chr1\nACGT\n".encode("utf-16-le"), error="FastaFormatError",
                 message="UTF-16", line=1),
        BadInput("fastq.fq", "a FASTQ file", b"@read1\nACGT\n+\nIIII\n",
                 error="FastaFormatError", message="FASTQ", line=1),
        BadInput("genbank_origin.fa", "GenBank ORIGIN lines (digits) under a header",
                 b">chr1\n        1 acgtacgtac gtacgtacgt\n", error="FastaFormatError",
                 message="invalid sequence character '1' at column 9", line=2, record="chr1"),
        BadInput("protein.fa", "a protein FASTA", b">sp|P69905|HBA_HUMAN\nMVLSPADKTNVKAAWGKVGA\n",
                 error="FastaFormatError",
                 message="invalid sequence character 'L' at column 3 (not a nucleotide",
                 line=2, record="sp|P69905|HBA_HUMAN",
                 notes="'M' and 'V' are IUPAC codes, 'L' is not"),
        BadInput("gt_inside_sequence.fa", "'>' in the middle of a sequence line",
                 b">chr1\nACGT>chr2\nACGT\n", error="FastaFormatError",
                 message="invalid sequence character '>' at column 5 ('>' must start a line)",
                 line=2, record="chr1"),
    ]


def _compression_inputs() -> list[BadInput]:
    """Damaged, odd and valid-but-unusual gzip and BGZF files."""
    big = f">big\n{_random_bases(200_000, seed=1)}\n".encode()
    gz_big = gzip_members(big)
    bgzf_big = bgzf_compress(big)
    bad_crc = bytearray(bgzf_compress(b">chr1\nACGTACGTACGT\n"))
    crc_at = len(bgzf_block(b">chr1\nACGTACGTACGT\n")) - 8
    bad_crc[crc_at] ^= 0xFF
    gff = b"##gff-version 3\nchrI\tSGD\tgene\t335\t649\t.\t+\t.\tID=YAL069W\n"
    return [
        BadInput("empty.fa.gz", "gzip of an empty file", gzip_members(b""),
                 error="FastaFormatError", message="no FASTA records found", line=1),
        BadInput("truncated.fa.gz", "gzip cut in the middle of the deflate stream",
                 gz_big[: len(gz_big) // 2], error="CompressionError",
                 message="gzip stream is truncated"),
        BadInput("truncated_bgzf.fa.gz", "BGZF cut in the middle of a block",
                 bgzf_big[: len(bgzf_big) // 2], error="CompressionError",
                 message="bgzf stream is truncated"),
        BadInput("gzip_of_gff.gff.gz", "gzip of a GFF3 file (not FASTA)", gzip_members(gff),
                 error="FastaFormatError",
                 message="not a FASTA file: '#' where a '>' header line was expected", line=1),
        BadInput("gzip_trailing_garbage.fa.gz", "a complete gzip member, then text",
                 gzip_members(TWO_RECORDS) + b"this is not gzip\n", error="CompressionError",
                 message="trailing bytes after the last gzip member"),
        BadInput("bgzf_no_eof.fa.gz", "BGZF without the empty end-of-file block",
                 bgzf_compress(TWO_RECORDS, eof_block=False), names=("chr1", "chr2"),
                 lengths=(18, 16), warning="BGZF file has no end-of-file block"),
        BadInput("bgzf_bad_crc.fa.gz", "BGZF block whose CRC32 does not match its data",
                 bytes(bad_crc), error="CompressionError", message="BGZF block CRC mismatch"),
        BadInput("bgzf_then_gzip.fa.gz", "BGZF blocks followed by a plain gzip member",
                 bgzf_compress(TWO_RECORDS) + gzip_members(b">chr3\nACGT\n"),
                 error="CompressionError", message="mixes BGZF with other gzip members"),
        BadInput("multi_member.fa.gz", "gzip of three concatenated members (valid)",
                 gzip_members(TWO_RECORDS, n_members=3), names=("chr1", "chr2"), lengths=(18, 16)),
    ]


def _alphabet_inputs() -> list[BadInput]:
    """Sequence characters other than upper-case ACGT, and records shorter than k."""
    return [
        BadInput("mixed_case.fa", "soft-masked (lowercase) stretches",
                 b">chr1\nACGTacgtNNnnACGT\nacgtACGT\n", names=("chr1",), lengths=(24,),
                 notes="softmasked 10, N 4; tokens ignore case"),
        BadInput("iupac.fa", "every IUPAC ambiguity code, U and X, both cases",
                 b">chr1\nACGTRYKMSWBDHVNUXACGT\nrykmswbdhvnuxacgt\n", names=("chr1",),
                 lengths=(38,), notes="other 24, N 2; k-mers touching them are [UNK]"),
        BadInput("gap_stop_symbols.fa", "alignment gaps '-', stops '*' and '.'",
                 b">chr1\nACGT--ACGT**ACGT..ACGTACGT\n", names=("chr1",), lengths=(26,),
                 notes="other 6; k-mers touching them are [UNK]"),
        BadInput("rna_uracil.fa", "RNA: U instead of T", b">rna1\nACGUACGUACGU\n",
                 names=("rna1",), lengths=(12,), notes="U counts as other; its k-mers are [UNK]"),
        BadInput("shorter_than_k.fa", "records of 1 to 6 bases (k = 6 is the default)",
                 b">len1\nA\n>len3\nACG\n>len5\nACGTA\n>len6\nACGTAC\n",
                 names=("len1", "len3", "len5", "len6"), lengths=(1, 3, 5, 6),
                 notes="0, 0, 0 and 1 tokens at k = 6"),
    ]


def _vocab_inputs() -> list[BadInput]:
    v3 = _dnabert_vocab(3)
    shuffled = v3[:]
    random.Random(5).shuffle(shuffled)
    dup = [*v3, "ATC"]
    return [
        BadInput("vocab_missing_kmer.txt", "DNABERT 3-mer vocab without GCA",
                 _vocab_text([t for t in v3 if t != "GCA"]), kind="vocab", error="VocabError",
                 message="1 of the 64 3-mers are missing, e.g. GCA"),
        BadInput("vocab_duplicate.txt", "DNABERT 3-mer vocab with ATC twice",
                 _vocab_text(dup), kind="vocab", error="VocabError",
                 message=f"duplicate token 'ATC' (first on line {v3.index('ATC') + 1})",
                 line=len(dup)),
        BadInput("vocab_empty.txt", "empty vocabulary file", b"", kind="vocab",
                 error="VocabError", message="vocabulary is empty"),
        BadInput("vocab_crlf.txt", "vocab.txt with Windows line endings",
                 _vocab_text(v3).replace(b"\n", b"\r\n"), kind="vocab", error="VocabError",
                 message="surrounding whitespace (CRLF line endings?)", line=1),
        BadInput("vocab_missing_special.txt", "no [MASK] token",
                 _vocab_text([t for t in v3 if t != "[MASK]"]), kind="vocab",
                 error="VocabError", message="special token [MASK] is missing"),
        BadInput("vocab_mixed_k.txt", "3-mers plus one 4-mer", _vocab_text([*v3, "ACGT"]),
                 kind="vocab", error="VocabError",
                 message="k-mer 'ACGT' has length 4 but earlier k-mers have length 3",
                 line=len(v3) + 1),
        BadInput("vocab_lowercase.txt", "a lowercase k-mer",
                 _vocab_text([t.lower() if t == "AAT" else t for t in v3]), kind="vocab",
                 error="VocabError",
                 message="token 'aat' is neither a [SPECIAL] token nor an uppercase ACGT k-mer",
                 line=v3.index("AAT") + 1),
        BadInput("vocab_not_utf8.txt", "Latin-1 byte in a token",
                 _vocab_text(v3).replace(b"[MASK]", b"[M\xc4SK]"), kind="vocab",
                 error="VocabError", message="not valid UTF-8", line=5),
        BadInput("vocab_shuffled.txt", "valid 3-mer vocab in random order",
                 _vocab_text(shuffled), kind="vocab", lengths=(69,),
                 notes="ids are line numbers"),
        BadInput("vocab_extra_tokens.txt", "valid vocab with extra [BRACKETED] tokens",
                 _vocab_text([*v3, "[BOS]", "[EOS]"]), kind="vocab", lengths=(71,)),
        BadInput("vocab_no_final_newline.txt", "last line lacks its newline",
                 _vocab_text(v3).rstrip(b"\n"), kind="vocab", lengths=(69,)),
    ]


def catalogue() -> list[BadInput]:
    """Every catalogue entry, in the order of ``CATALOGUE.md``."""
    return [
        *_structure_inputs(),
        *_encoding_inputs(),
        *_compression_inputs(),
        *_alphabet_inputs(),
        *_vocab_inputs(),
    ]


DIRECTORY_ENTRY = BadInput(
    DIRECTORY, "a directory where a file is expected", b"", kind="dir",
    error="IsADirectoryError", message="Is a directory",
)
UNREADABLE_ENTRY = BadInput(
    "(made by the test)", "a FASTA file with mode 000", b"", kind="unreadable",
    error="PermissionError", message="Permission denied",
    notes="skipped when running as root, who can read it anyway",
)


SCENARIOS = [
    # (test in tests/test_hostile.py, what is done, expected outcome)
    ("test_fifo_is_read_once_as_a_stream",
     "a FIFO read by `Genome.open`, `tokenize_fasta` and `tokenize_genome` with 2 threads",
     "read once, as a stream: the regular file's records and ids; the manifest holds the "
     "sha256 of the bytes streamed"),
    ("test_a_file_that_changes_while_read_is_an_error",
     "the file is truncated, extended or rewritten while `Genome.open` or "
     "`tokenize_genome` reads it (1 and 2 threads)",
     "`OSError`: `the file changed while it was read`; no record file or manifest is left"),
    ("test_two_writers_of_one_folder",
     "a second `tokenize` (API or CLI, with `--overwrite`) into a folder being written",
     "`OutputBusyError` (one line, exit 1); the first writer's output is whole"),
    ("test_training_and_study_folders_take_one_writer",
     "`pretrain`, `finetune` or `interrogate` into a folder another run is writing",
     "`OutputBusyError` before anything is written; the other run's files stay; a folder "
     "made for a run that failed is removed"),
    ("test_a_manifest_cannot_send_deletions_outside_its_folder",
     "a `manifest.json` whose record files are absolute, `../` or directory paths",
     "only plain `.npy` names inside the folder are removed; nothing outside is touched"),
    ("test_stale_temporaries_of_dead_writers_are_removed",
     "hidden temporaries of a writer that died (`kill -9`) in the output folder",
     "removed by the next run (under the folder's lock); other hidden files stay"),
    ("test_a_stopped_tokenize_leaves_nothing_behind",
     "`dnakmer tokenize` stopped by SIGTERM, SIGINT or SIGKILL while writing a record",
     "SIGTERM / SIGINT: exit 143 / 130 and an empty folder; SIGKILL: the next run cleans "
     "up and succeeds"),
    ("test_corrupt_datasets_name_the_file",
     "a next-k-mer dataset with labels beyond 4^k, a manifest without keys or not JSON, a "
     "truncated, shortened or missing `.npy`, split counts or base codes that do not fit",
     "`DatasetError` naming the file (`nextkmer baselines`: one line, exit 1)"),
    ("test_corrupt_task_datasets_name_the_file",
     "an annotation-task dataset with labels beyond its label names, counts that differ "
     "from the manifest, unknown split names or strands, base codes above 3, windows off "
     "their record, token ids beyond the vocabulary, fewer than two label names",
     "`DatasetError` naming the file, on load and in fine-tuning (`finetune classify`: "
     "one line, exit 1, no output folder)"),
    ("test_corrupt_models_name_the_file",
     "a checkpoint whose `model.safetensors` is zeroed, truncated, empty or has a broken "
     "header, whose `config.json` or `dnakmer.json` is not JSON or has a bad stride, or "
     "whose `vocab.txt` is larger than its embedding",
     "`ModelError` naming the file, before any weight is used (CLI: one line, exit 1)"),
    ("test_a_full_disk_names_the_file_and_leaves_nothing",
     "`tokenize` and a next-k-mer dataset written to a file system that fills up",
     "`OSError`: `No space left on device` naming the file; no temporary is left"),
    ("test_an_endless_record_under_a_memory_limit",
     "a record that never ends (a FIFO) read into memory by `Genome.open` or "
     "`tokenize_fasta` under a 1.2 GB address-space limit",
     "`MemoryError`: `cannot allocate room for ...`, no abort"),
    ("test_record_names_longer_than_a_file_name",
     "`tokenize` of records whose names are 5,000 characters long",
     "accepted: record files cut to at most 205 characters, unique; whole names in the "
     "manifest"),
]  # fmt: skip
# tests/test_fuzz.py (and `python tests/fuzz_reader.py --seconds 600`): random FASTA
# documents damaged by random mutations, plain, gzip or BGZF (compressed bytes damaged
# too): every reader gives the reference's records and ids, or a typed error where the
# reference rejects the bytes.


def catalogue_markdown() -> str:
    """The text of ``CATALOGUE.md``."""
    lines = [
        "# Bad and odd inputs",
        "",
        "Generated by `make_bad_inputs.py` (do not edit by hand); checked by",
        "`tests/test_bad_inputs.py` against `Genome.open`, `tokenize_fasta`,",
        "`tokenize_genome`, `KmerTokenizer.from_vocab` and the `dnakmer` CLI (one line on",
        "stderr, exit code 1). Every error is a `dnakmer.DnakmerError` subclass with `.path`,",
        "`.line` and `.record`, or a built-in `OSError` subclass for file-system problems.",
        "",
        "| file | what it is | expected outcome |",
        "|---|---|---|",
    ]
    for entry in [*catalogue(), DIRECTORY_ENTRY, UNREADABLE_ENTRY]:
        lines.append(f"| `{entry.file}` | {entry.what} | {entry.outcome()} |")
    lines += [
        "",
        "## Scenarios",
        "",
        "Made by the tests of `tests/test_hostile.py` (inputs that change or block while",
        "they are read, concurrent writers, signals):",
        "",
        "| test | what is done | expected outcome |",
        "|---|---|---|",
    ]
    for test, what, outcome in SCENARIOS:
        lines.append(f"| `{test}` | {what} | {outcome} |")
    lines += [
        "",
        "## Fuzzing",
        "",
        "`tests/fuzz_reader.py` makes hostile byte streams: random FASTA documents (IUPAC",
        "codes, soft-masking, gaps, blank lines, CRLF, a byte-order mark) damaged by random",
        "flipped, inserted, deleted or repeated bytes, NULs, stray `>` and CRs and cuts,",
        "stored plain, as gzip or as BGZF whose compressed bytes may be damaged too. Every",
        "reader (`Genome.open` on 1 and 2 threads, `tokenize_fasta`, `tokenize_genome`) must",
        "give the records and ids of the pure-Python reference, or a typed error where the",
        "reference rejects the bytes (a damaged container may also be refused with",
        "`CompressionError` where Python's gzip module is lenient, e.g. a BGZF block whose",
        "flags or size field were changed). `tests/test_fuzz.py` runs 300 cases; the long",
        "run (`python tests/fuzz_reader.py --seconds 600`) is recorded in",
        "`benches/RESULTS.md`.",
    ]
    return "\n".join(lines) + "\n"


def write_all(out_dir: Path = HERE) -> None:
    """Write every input and ``CATALOGUE.md`` into ``out_dir``."""
    for entry in catalogue():
        (out_dir / entry.file).write_bytes(entry.content)
    (out_dir / DIRECTORY).mkdir(exist_ok=True)
    (out_dir / DIRECTORY / "README").write_text("A directory where a FASTA file is expected.\n")
    (out_dir / "CATALOGUE.md").write_text(catalogue_markdown())


if __name__ == "__main__":
    write_all()
