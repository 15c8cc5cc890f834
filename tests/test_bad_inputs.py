"""Every input of the bad-input catalogue (tests/data/bad) through every entry point:
``Genome.open``, ``tokenize_fasta``, ``tokenize_genome``, ``KmerTokenizer.from_vocab``
and the ``dnakmer`` command line. Errors must be typed, carry path/line/record, leave no
output behind, and reach the terminal as one line; accepted inputs must read exactly
as the pure-Python reference reads them."""

from __future__ import annotations

import builtins
import functools
import gzip
import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import dnakmer
from dnakmer import exceptions
from dnakmer.cli import main
from fasta_reference import composition, parse_fasta
from reference_tokenizer import ReferenceTokenizer

BAD_DIR = Path(__file__).parent / "data" / "bad"
_spec = importlib.util.spec_from_file_location("make_bad_inputs", BAD_DIR / "make_bad_inputs.py")
assert _spec is not None and _spec.loader is not None
catalogue_module = importlib.util.module_from_spec(_spec)
sys.modules["make_bad_inputs"] = catalogue_module  # dataclasses look their module up
_spec.loader.exec_module(catalogue_module)

CATALOGUE = catalogue_module.catalogue()
FASTA = [e for e in CATALOGUE if e.kind == "fasta"]
VOCAB = [e for e in CATALOGUE if e.kind == "vocab"]
FS_ERRORS = [catalogue_module.DIRECTORY_ENTRY]
K = 6


def _ids(entries: list) -> list[str]:
    return [e.file for e in entries]


def _error_class(name: str) -> type[BaseException]:
    cls = getattr(exceptions, name, None) or getattr(builtins, name)
    assert issubclass(cls, BaseException)
    return cls


def _path(entry) -> Path:
    return BAD_DIR / entry.file


@functools.cache
def _reference_records(path: Path) -> list:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return parse_fasta(data)


@functools.cache
def _reference_ids(path: Path, name: str) -> list[int]:
    (record,) = [r for r in _reference_records(path) if r.name == name]
    return ReferenceTokenizer.dnabert(K).encode(record.sequence)


def _check_error(err: BaseException, entry, path: Path) -> None:
    assert entry.message in str(err)
    if isinstance(err, exceptions.DnakmerError):
        assert err.path == str(path)
        assert err.line == entry.line
        assert err.record == entry.record
        assert str(err).startswith(str(path))
        if entry.line is not None:
            assert f"{path}:{entry.line}: " in str(err)
        if entry.record is not None:
            assert f"record '{entry.record}'" in str(err)
    else:
        assert isinstance(err, OSError)
        assert err.filename == str(path)


def test_catalogue_is_reproducible_and_large_enough() -> None:
    for entry in CATALOGUE:
        assert _path(entry).read_bytes() == entry.content, entry.file
    assert (BAD_DIR / "CATALOGUE.md").read_text() == catalogue_module.catalogue_markdown()
    assert (BAD_DIR / catalogue_module.DIRECTORY).is_dir()
    assert len(CATALOGUE) >= 25
    assert len({e.file for e in CATALOGUE}) == len(CATALOGUE)
    listed = {p.name for p in BAD_DIR.iterdir()} - {"make_bad_inputs.py", "CATALOGUE.md"}
    assert listed == {e.file for e in CATALOGUE} | {catalogue_module.DIRECTORY}
    # Every scenario row is a test of tests/test_hostile.py, and every test there a row.
    import ast

    tree = ast.parse((Path(__file__).parent / "test_hostile.py").read_text())
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    tests = {name for name in functions if name.startswith("test_")}
    assert {row[0] for row in catalogue_module.SCENARIOS} == tests


def test_exception_hierarchy() -> None:
    assert issubclass(dnakmer.FastaFormatError, dnakmer.DnakmerError)
    assert issubclass(dnakmer.FastaFormatError, ValueError)
    assert issubclass(dnakmer.CompressionError, dnakmer.FastaFormatError)
    assert issubclass(dnakmer.VocabError, dnakmer.DnakmerError)
    assert issubclass(dnakmer.VocabError, ValueError)
    assert issubclass(dnakmer.RecordNotFoundError, KeyError)
    assert not issubclass(dnakmer.DnakmerError, ValueError)


@pytest.fixture(params=["one stream", "split"])
def threads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Threads for a read: one stream, or a plain file cut at record headers into
    pieces as small as the file allows (which the core does from 4 MiB on)."""
    if request.param == "one stream":
        return 1
    monkeypatch.setenv("DNAKMER_SPLIT_MIN_BYTES", "2")
    return 3


@pytest.mark.parametrize("entry", FASTA + FS_ERRORS, ids=_ids(FASTA + FS_ERRORS))
def test_genome_open(entry, threads: int) -> None:
    path = _path(entry)
    if entry.error is not None:
        with pytest.raises(_error_class(entry.error)) as info:
            dnakmer.Genome.open(path, threads=threads)
        _check_error(info.value, entry, path)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        genome = dnakmer.Genome.open(path, threads=threads)
    messages = [str(w.message) for w in caught]
    if entry.warning:
        assert any(entry.warning in m and str(path) in m for m in messages), messages
    else:
        assert messages == []
    reference = _reference_records(path)
    assert genome.names == list(entry.names) == [r.name for r in reference]
    assert genome.lengths == list(entry.lengths) == [len(r.sequence) for r in reference]
    stats = genome.stats().to_dicts()
    for rec, row in zip(reference, stats, strict=True):
        assert genome.fetch(rec.name) == rec.sequence
        expected = composition(rec.sequence)
        assert {key: row[key] for key in expected} == expected


@pytest.mark.parametrize("entry", FASTA + FS_ERRORS, ids=_ids(FASTA + FS_ERRORS))
def test_tokenize_fasta(entry, threads: int) -> None:
    path = _path(entry)
    tok = dnakmer.KmerTokenizer(K)
    if entry.error is not None:
        with pytest.raises(_error_class(entry.error)) as info:
            dnakmer.tokenize_fasta(path, tok, threads=threads)
        _check_error(info.value, entry, path)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = dnakmer.tokenize_fasta(path, tok, threads=threads)
    if entry.warning:
        assert any(entry.warning in str(w.message) for w in caught)
    expected = {r.name: _reference_ids(path, r.name) for r in _reference_records(path)}
    assert list(got) == list(expected)
    for name, ids in got.items():
        assert ids.dtype == np.uint16
        assert ids.tolist() == expected[name], name


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.mark.parametrize("entry", FASTA + FS_ERRORS, ids=_ids(FASTA + FS_ERRORS))
def test_tokenize_genome(entry, tmp_path: Path, threads: int) -> None:
    path = _path(entry)
    out = tmp_path / "tokens"
    tok = dnakmer.KmerTokenizer(K)
    if entry.error is not None:
        with pytest.raises(_error_class(entry.error)) as info:
            dnakmer.tokenize_genome(path, tok, out, threads=threads)
        _check_error(info.value, entry, path)
        # Neither the failing record, nor the ones finished before it, nor temp files.
        assert _leftovers(out) == []
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifest = dnakmer.tokenize_genome(path, tok, out, threads=threads)
    if entry.warning:
        assert any(entry.warning in str(w.message) for w in caught)
    reference = ReferenceTokenizer.dnabert(K)
    records = _reference_records(path)
    assert [r["name"] for r in manifest["records"]] == [r.name for r in records]
    for rec, meta in zip(records, manifest["records"], strict=True):
        ids = np.load(out / meta["file"], mmap_mode="r")
        assert ids.tolist() == _reference_ids(path, rec.name)
        assert meta["bases"] == len(rec.sequence)
        assert meta["n_unk"] == ids.tolist().count(reference.unk)
    assert _leftovers(out) == sorted(["manifest.json", *(m["file"] for m in manifest["records"])])


def test_failure_removes_records_finished_before_it(tmp_path: Path) -> None:
    # chrA and chrB are complete before the duplicate name on line 5 stops the read.
    out = tmp_path / "tokens"
    with pytest.raises(dnakmer.FastaFormatError, match="duplicate record name"):
        dnakmer.tokenize_genome(BAD_DIR / "duplicate_names.fa", dnakmer.KmerTokenizer(2), out)
    assert _leftovers(out) == []
    # The directory is usable again at once, without overwrite=True.
    manifest = dnakmer.tokenize_genome(BAD_DIR / "crlf.fa", dnakmer.KmerTokenizer(2), out)
    assert manifest["counts"]["records"] == 2


@pytest.mark.parametrize("entry", VOCAB, ids=_ids(VOCAB))
def test_from_vocab(entry) -> None:
    path = _path(entry)
    if entry.error is not None:
        with pytest.raises(_error_class(entry.error)) as info:
            dnakmer.KmerTokenizer.from_vocab(path)
        _check_error(info.value, entry, path)
        return
    tok = dnakmer.KmerTokenizer.from_vocab(path)
    lines = path.read_text().splitlines()
    assert tok.vocab_size == entry.lengths[0] == len(lines)
    assert tok.vocab == lines
    assert [tok.token_to_id(t) for t in lines] == list(range(len(lines)))
    reference = ReferenceTokenizer(lines)
    seq = "ACGTTGCAnnACGTRYaaattt"
    assert tok.encode(seq).tolist() == reference.encode(seq)


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
        sys.exit(0)
    captured = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


def _check_cli_error(code: int, err: str, entry, path: Path) -> None:
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert str(path) in lines[0]
    if entry.error in {"FastaFormatError", "CompressionError", "VocabError"}:
        assert entry.message in lines[0]


@pytest.mark.filterwarnings("ignore:.*no end-of-file block")
@pytest.mark.parametrize("entry", FASTA + FS_ERRORS, ids=_ids(FASTA + FS_ERRORS))
def test_cli_stats_and_tokenize(entry, tmp_path: Path, capsys, monkeypatch) -> None:
    path = _path(entry)
    out = tmp_path / "tokens"
    monkeypatch.delenv("DNAKMER_DEBUG", raising=False)
    stats = _run_cli(["stats", str(path), "--format", "csv"], capsys)
    tokenize = _run_cli(["tokenize", str(path), "-o", str(out), "-q"], capsys)
    if entry.error is not None:
        _check_cli_error(stats[0], stats[2], entry, path)
        _check_cli_error(tokenize[0], tokenize[2], entry, path)
        assert _leftovers(out) == []
        return
    assert stats[0] == 0 and tokenize[0] == 0
    header, *rows = stats[1].strip().splitlines()
    assert header.startswith("name,length,")
    assert [r.split(",")[:2] for r in rows] == [
        [n, str(n_bp)] for n, n_bp in zip(entry.names, entry.lengths, strict=True)
    ]
    assert f"{len(entry.names)} records, {sum(entry.lengths):,} bases" in tokenize[1]


BAD_VOCAB = [e for e in VOCAB if e.error]


@pytest.mark.parametrize("entry", BAD_VOCAB, ids=_ids(BAD_VOCAB))
def test_cli_tokenize_with_bad_vocab(entry, tmp_path: Path, capsys) -> None:
    path = _path(entry)
    out = tmp_path / "tokens"
    args = ["tokenize", str(BAD_DIR / "crlf.fa"), "--vocab", str(path), "-o", str(out), "-q"]
    code, _, err = _run_cli(args, capsys)
    _check_cli_error(code, err, entry, path)
    assert _leftovers(out) == []


def test_missing_file_is_file_not_found(tmp_path: Path, capsys) -> None:
    path = tmp_path / "absent.fa"
    for call in (
        lambda: dnakmer.Genome.open(path),
        lambda: dnakmer.tokenize_fasta(path, dnakmer.KmerTokenizer(3)),
        lambda: dnakmer.KmerTokenizer.from_vocab(path),
    ):
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert info.value.filename == str(path)
        assert info.value.errno == 2
    code, _, err = _run_cli(["stats", str(path)], capsys)
    assert code == 1 and err.count("\n") == 1 and str(path) in err and "No such file" in err


def test_unreadable_file_is_permission_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.fa"
    path.write_bytes(b">chr1\nACGT\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user (root) who can read a mode-000 file")
        with pytest.raises(PermissionError) as info:
            dnakmer.Genome.open(path)
        assert info.value.filename == str(path)
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize("name", ["nul_bytes.fa", "truncated_bgzf.fa.gz", "vocab_duplicate.txt"])
def test_cli_in_a_fresh_interpreter(name: str, tmp_path: Path) -> None:
    """No bad input may take the interpreter down (a panic or abort shows here)."""
    path = BAD_DIR / name
    if name.startswith("vocab"):
        args = ["tokenize", str(BAD_DIR / "crlf.fa"), "--vocab", str(path), "-q"]
    else:
        args = ["tokenize", str(path), "-q"]
    env = {k: v for k, v in os.environ.items() if k != "DNAKMER_DEBUG"}
    proc = subprocess.run(
        [sys.executable, "-m", "dnakmer", *args, "-o", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert str(path) in proc.stderr


# --- bad parameters: a clear ValueError/TypeError naming the parameter ----------------

_TOK = dnakmer.KmerTokenizer(3)
_PHIX = Path(__file__).parent / "data" / "phix174.fa"
BAD_PARAMETERS = {
    "k=0": (lambda: dnakmer.KmerTokenizer(0), ValueError, "k must be between 1 and 8, got 0"),
    "k=9": (lambda: dnakmer.KmerTokenizer(9), ValueError, "k must be between 1 and 8, got 9"),
    "stride=0": (lambda: dnakmer.KmerTokenizer(3, 0), ValueError, "stride must be at least 1"),
    "bad char": (lambda: _TOK.encode("ACGT1"), ValueError,
                 "invalid sequence character '1' at position 4"),
    "bad char in batch": (lambda: _TOK.encode_batch(["ACGT", "AC#T"]), ValueError,
                          "sequence 1: invalid sequence character '#' at position 2"),
    "max_length=2": (lambda: _TOK.encode_batch(["ACGT"], max_length=2), ValueError,
                     "max_length must exceed the 2 special tokens, got 2"),
    "padding=left": (lambda: _TOK.encode_batch(["ACGT"], padding="left"), ValueError,
                     "padding must be True, False, 'longest', 'max_length' or 'do_not_pad'"),
    "batch of str": (lambda: _TOK.encode_batch("ACGT"), TypeError,
                     "takes a list of sequences, not a single str"),
    "batch item int": (lambda: _TOK.encode_batch(["ACGT", 5]), TypeError,
                       "a sequence must be str or bytes, not int"),
    "decode id": (lambda: _TOK.decode([69]), ValueError,
                  "token id 69 is outside the vocabulary (size 69)"),
    "code 5": (lambda: _TOK.encode_codes(np.array([0, 1, 5], dtype=np.uint8)), ValueError,
               "invalid base code 5 at 2"),
    "interval": (lambda: dnakmer.Genome.open(_PHIX).fetch("NC_001422", 10, 5387), ValueError,
                 "interval [10, 5387) is outside record 'NC_001422' of length 5386"),
    "record": (lambda: dnakmer.Genome.open(_PHIX).codes("chrX"), dnakmer.RecordNotFoundError,
               "no record named 'chrX'"),
    "out_dir is a file": (lambda: dnakmer.tokenize_genome(_PHIX, _TOK, _PHIX),
                          NotADirectoryError, "exists and is not a directory"),
    # Absurd sizes: a Python error before any allocation, never an abort or a panic.
    "max_length 1e12": (lambda: _TOK.encode_batch(["ACGT"], max_length=10**12,
                                                  padding="max_length"),
                        MemoryError, "cannot allocate the padded token ids"),
    "max_length 2**63": (lambda: _TOK.encode_batch(["ACGT", "AC"], max_length=2**63,
                                                   padding="max_length"),
                         ValueError, "2 rows of max_length 9223372036854775808 tokens do not"),
    "max_length 2**64": (lambda: _TOK.encode_batch(["ACGT"], max_length=2**64), OverflowError,
                         "int too big"),
    "offsets 1e13": (lambda: _TOK.offsets(10**13), MemoryError,
                     "cannot allocate the token offsets"),
    "offsets 2**63": (lambda: dnakmer.KmerTokenizer(3, 3).offsets(2**63), ValueError,
                      "tokens overflow 64-bit offsets"),
}


@pytest.mark.parametrize("case", sorted(BAD_PARAMETERS))
def test_bad_parameters(case: str) -> None:
    call, error, message = BAD_PARAMETERS[case]
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_progress_callback_error_propagates_and_leaves_nothing(
    tmp_path: Path, threads: int
) -> None:
    def fail(done: int, total: int) -> None:
        raise RuntimeError(f"stop at {done} of {total}")

    with pytest.raises(RuntimeError, match="stop at"):
        dnakmer.Genome.open(_PHIX, progress=fail, threads=threads)
    out = tmp_path / "tokens"
    with pytest.raises(RuntimeError, match="stop at"):
        dnakmer.tokenize_genome(_PHIX, _TOK, out, progress=fail, threads=threads)
    assert _leftovers(out) == []
    with pytest.raises(RuntimeError, match="stop at"):
        dnakmer.tokenize_fasta(_PHIX, _TOK, progress=fail, threads=threads)


def test_debug_variable_shows_the_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNAKMER_DEBUG", "1")
    with pytest.raises(dnakmer.FastaFormatError, match="duplicate record name 'chrA'"):
        main(["stats", str(BAD_DIR / "duplicate_names.fa")])
