"""The command line, run as a user runs it: a subprocess of ``python -m dnakmer``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dnakmer

DATA = Path(__file__).parent / "data"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dnakmer", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_version_and_help() -> None:
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"dnakmer {dnakmer.__version__}"
    helptext = run("--help")
    assert helptext.returncode == 0
    for command in ("stats", "vocab", "tokenize"):
        assert command in helptext.stdout


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; from dnakmer.cli import app; from typer.testing import CliRunner;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0;"
        "bad = [m for m in ('torch', 'transformers', 'sklearn', 'matplotlib') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_stats_formats_on_real_genome() -> None:
    js = run("stats", str(DATA / "yeast_chrI.fa.gz"), "--format", "json")
    assert js.returncode == 0, js.stderr
    (row,) = json.loads(js.stdout)
    assert row["length"] == 230_218
    assert row["softmasked"] == 29_731
    assert round(row["gc"], 4) == 0.3927
    csv = run("stats", str(DATA / "phix174.fa"), "--format", "csv")
    header, line = csv.stdout.strip().splitlines()
    assert header.split(",") == [
        "name",
        "length",
        "a",
        "c",
        "g",
        "t",
        "n",
        "other",
        "softmasked",
        "gc",
    ]
    assert line.split(",")[1] == "5386"
    table = run("stats")
    assert table.returncode == 0
    assert "48,502" in table.stdout


def test_vocab_then_tokenize_with_it(tmp_path: Path) -> None:
    out = run("vocab", "--k", "4", "--out", str(tmp_path / "vocab.txt"))
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "vocab.txt").read_text().splitlines()
    assert len(lines) == 5 + 4**4
    assert lines[:6] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "AAAA"]
    tok = run(
        "tokenize",
        str(DATA / "phix174.fa"),
        "--vocab",
        str(tmp_path / "vocab.txt"),
        "--k",
        "4",
        "--out",
        str(tmp_path / "tok"),
        "--quiet",
    )
    assert tok.returncode == 0, tok.stderr
    manifest = json.loads((tmp_path / "tok" / "manifest.json").read_text())
    assert manifest["k"] == 4 and manifest["dtype"] == "uint16"
    (rec,) = manifest["records"]
    ids = np.load(tmp_path / "tok" / rec["file"], mmap_mode="r")
    assert ids.shape == (5386 - 3,)
    seq = dnakmer.Genome.open(DATA / "phix174.fa").fetch(rec["name"])
    assert ids[0] == dnakmer.KmerTokenizer(4).encode(seq[:4])[0]


def test_tokenize_default_genome(tmp_path: Path) -> None:
    out = run("tokenize", "--out", "toks", "--k", "6", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "48,497 tokens" in out.stdout
    assert (tmp_path / "toks" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["stats", "no/such/file.fa"], "No such file or directory"),
        (["tokenize", "missing.fa", "--out", "x"], "No such file or directory"),
    ],
)
def test_errors_are_one_red_line(args: list[str], fragment: str, tmp_path: Path) -> None:
    out = run(*args, cwd=tmp_path)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error:") and fragment in lines[0]
    assert "Traceback" not in out.stderr


def _options() -> list[tuple[str, object]]:
    """Every numeric option of every command: (command path, parameter)."""
    import typing

    import typer

    from dnakmer.cli import app

    found = []

    def walk(cmd: typing.Any, path: list[str]) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
            return
        for p in cmd.params:
            ann = p.type_descriptor.annotation
            if set(typing.get_args(ann) or (ann,)) & {int, float, list[int]}:
                found.append((" ".join(path), p))

    walk(typer.main.get_command(app), [])
    return found


def test_every_numeric_option_is_bounded() -> None:
    """Counts, sizes, seeds and fractions are checked where they are parsed: none is
    left to fail later as an OverflowError or an empty run."""
    options = _options()
    assert len(options) > 60
    unbounded = [f"{cmd} {p.name}" for cmd, p in options if p.min is None]  # type: ignore[attr-defined]
    assert unbounded == []


@pytest.mark.parametrize(
    "args",
    [
        ["nextkmer", "build", "g.fa", "--out", "x", "--n-train", "-5"],
        ["tokenize", "--threads", "0", "--out", "x"],
        ["vocab", "--k", "9"],
        ["pretrain", "g.fa", "--out", "x", "--batch-size", "-1"],
        ["nextkmer", "build", "g.fa", "--out", "x", "--val-fraction", "1.5"],
        ["tasks", "build", "g.fa", "--gff", "a.gff", "--task", "splice", "--out", "x",
         "--seed", "-1"],
    ],
)
def test_out_of_range_options_are_usage_errors(args: list[str], tmp_path: Path) -> None:
    out = run(*args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "Invalid value for" in out.stderr and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


def _commands() -> list[tuple[list[str], object]]:
    """Every command and group: (path of names, click command)."""
    import typing

    import typer

    from dnakmer.cli import app

    found: list[tuple[list[str], object]] = []

    def walk(cmd: typing.Any, path: list[str]) -> None:
        found.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_help_of_every_command_is_clean() -> None:
    """No option shows a value type for a flag (<bool>), no help lost a bracketed
    default to the markup (a stray " ."), and every option and argument says what it is."""
    import re

    from typer.testing import CliRunner

    from dnakmer.cli import app

    commands = _commands()
    assert len(commands) > 15
    for path, cmd in commands:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, (path, result.output)
        text = re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", result.output))
        assert "<bool>" not in text, path
        assert not re.search(r" [.,;](\s|$)", text), (path, text)
        for p in cmd.params:  # type: ignore[attr-defined]
            assert (p.help or "").strip(), (path, p.name)
            assert "[" not in p.help.replace("[CLS]", "").replace("[SEP]", ""), (path, p.name)


# The arguments every command needs, to which each rule's example is added.
_BASE = {
    "nextkmer build": ["nextkmer", "build", "g.fa", "--out", "x"],
    "tasks build": ["tasks", "build", "g.fa", "--gff", "a.gff", "--task", "splice", "--out", "x"],
    "pretrain": ["pretrain", "g.fa", "--out", "x"],
    "finetune classify": ["finetune", "classify", "--model", "m", "--out", "x"],
    "interrogate": ["interrogate", "g.fa", "--model", "m", "--out", "x"],
    "demo": ["demo"],
}


def _rules() -> list[tuple[str, object]]:
    from dnakmer.cli import app  # noqa: F401  (the commands' modules register their rules)
    from dnakmer.cli.options import RULES

    return [(cmd, rule) for cmd, rules in sorted(RULES.items()) for rule in rules]


@pytest.mark.parametrize(("command", "rule"), _rules(), ids=lambda x: getattr(x, "when", x))
def test_options_that_do_not_go_together_are_usage_errors(
    command: str, rule: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every rule of every command (cli/options.py RULES): its example, an option that
    would be ignored or values that cannot hold together, is refused with exit 2 before
    anything is read or written."""
    import re

    from typer.testing import CliRunner

    from dnakmer.cli import app

    assert command in _BASE, f"add the arguments {command!r} needs to _BASE"
    monkeypatch.chdir(tmp_path)
    example = list(rule.example)  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, _BASE[command] + example, env={"COLUMNS": "300"})
    text = re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)
    assert result.exit_code == 2, text
    assert rule.when in text, text  # type: ignore[attr-defined]
    assert "Invalid value for" in text
    assert list(tmp_path.iterdir()) == []


def test_every_command_with_rules_is_tested() -> None:
    from dnakmer.cli.options import RULES

    assert set(RULES) == set(_BASE)
    assert sum(len(r) for r in RULES.values()) >= 20


def test_warnings_and_errors_are_one_plain_line(tmp_path: Path) -> None:
    """A warning is one line without a file name or code line; an operating-system
    error is its reason and file, without ``[Errno N]`` and quotes."""
    out = run("stats", str(DATA / "bad" / "bgzf_no_eof.fa.gz"), "--format", "csv")
    assert out.returncode == 0
    assert out.stderr.splitlines() == [
        f"warning: {DATA / 'bad' / 'bgzf_no_eof.fa.gz'}: BGZF file has no end-of-file block; "
        "it may be truncated"
    ]
    missing = run("interrogate", str(DATA / "phix174.fa"), "--model", "nonexistent", "--out",
                  str(tmp_path / "run"))  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == ["error: No such checkpoint folder: nonexistent"]
    assert not (tmp_path / "run").exists()


def test_probe_mask_follows_the_study_rule_for_every_model(tmp_path: Path) -> None:
    """Masked bases for every model; the neighbour-rule analysis only where tokens
    overlap, as in the study: a nucleotide model gets the reason instead."""
    pytest.importorskip("torch")
    models = Path(dnakmer.__file__).parent / "data" / "models"
    for name, rule in (("nucleotide", False), ("overlapping-6mer", True)):
        out = tmp_path / name
        res = run("probe", "mask", str(DATA / "phix174.fa"), "--model", str(models / name),
                  "--out", str(out), "--n-windows", "8", "--window-tokens", "40",
                  "--quiet")  # fmt: skip
        assert res.returncode == 0, res.stderr
        summary = json.loads((out / "bases" / "summary.json").read_text())
        assert summary["span"]["n"] == 8 * 6 and 0.0 <= summary["span"]["accuracy"] <= 1.0
        assert "Masked bases" in res.stdout and "Markov chain, order" in res.stdout
        if rule:
            assert (out / "tokens.parquet").is_file() and not (out / "skipped.json").exists()
            assert "Masked tokens against the neighbour rule" in res.stdout
        else:
            reason = json.loads((out / "skipped.json").read_text())["reason"]
            assert "single-nucleotide tokens share no bases" in reason
            assert not (out / "tokens.parquet").exists()
            assert "not run, single-nucleotide tokens" in res.stdout.replace("\n", " ")
def test_tokenize_replaces_only_the_same_run_without_overwrite(tmp_path: Path) -> None:
    """An earlier genome's tokens are not replaced by another genome's, or by other
    settings, unless --overwrite; the same command again replaces them."""
    phix = str(DATA / "phix174.fa")
    assert run("tokenize", phix, "--out", "tok", "--k", "3", "-q", cwd=tmp_path).returncode == 0
    again = run("tokenize", phix, "--out", "tok", "--k", "3", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    for args in (["--k", "3"], [phix, "--k", "4"], [phix, "--k", "3", "--stride", "3"]):
        other = run("tokenize", *args, "--out", "tok", "-q", cwd=tmp_path)
        assert other.returncode == 1, other.stderr
        assert "another genome or other tokenizer settings" in other.stderr
        assert "--overwrite" in other.stderr
        manifest = json.loads((tmp_path / "tok" / "manifest.json").read_text())
        assert manifest["input"]["path"] == phix and manifest["k"] == 3
    lam = run("tokenize", "--k", "3", "--out", "tok", "-q", "--overwrite", cwd=tmp_path)
    assert lam.returncode == 0, lam.stderr
    assert "48,500 tokens" in lam.stdout


DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _doc_section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_docs_list_every_combination_rule() -> None:
    from dnakmer.cli import app  # noqa: F401  (the commands' modules register their rules)
    from dnakmer.cli.options import RULES

    rules = _doc_section(DOC.read_text(), "## Options that go only with others")
    for command, table in RULES.items():
        assert f"### `{command}`" in rules, command
        section = rules.split(f"### `{command}`", 1)[1].split("\n### ", 1)[0]
        for rule in table:
            assert rule.when in section, (command, rule.when)


def test_docs_vocabulary_names_options_the_commands_have() -> None:
    """Every option of the vocabulary table exists, with its short flag, in every command
    the row names; every short flag of the short-flag table means what the doc says in
    every command that has it."""
    import re

    commands = {" ".join(path): cmd for path, cmd in _commands() if not hasattr(cmd, "commands")}
    text = DOC.read_text()
    rows = [line for line in _doc_section(text, "## Vocabulary").splitlines()
            if line.startswith("| ") and not line.startswith(("| concept", "| ---"))]  # fmt: skip
    assert len(rows) > 30
    for row in rows:
        _, names, where, _ = (c.strip() for c in row.strip("|").split(" | "))
        names_in_row = re.findall(r"`([^`]+)`", names)
        # Commands named in the "commands" column (before any parenthesis).
        listed = re.findall(r"`([a-z][a-z ]+)`", where)
        assert listed and all(c in commands for c in listed), row
        for command in listed:
            params = commands[command].params  # type: ignore[attr-defined]
            for name in names_in_row:
                if name == "GENOME":
                    assert any(p.param_type_name == "argument" and p.metavar == "GENOME"
                               for p in params), (command, row)  # fmt: skip
                else:
                    assert any(name in p.opts for p in params), (command, name)
    shorts = dict(re.findall(r"\| `(-\w)` \| `(--[\w-]+)` \|", _doc_section(text, "## Short")))
    assert len(shorts) >= 12
    for command, cmd in commands.items():
        for p in cmd.params:  # type: ignore[attr-defined]
            for opt in p.opts:
                if re.fullmatch(r"-\w", opt):
                    assert shorts.get(opt) in p.opts, (command, opt, p.opts)


def test_no_command_reads_the_genome_from_an_option_it_could_take_as_argument() -> None:
    commands = {" ".join(path): cmd for path, cmd in _commands() if not hasattr(cmd, "commands")}
    with_option = sorted(c for c, cmd in commands.items()
                         if any("--genome" in p.opts for p in cmd.params))  # type: ignore[attr-defined]  # fmt: skip
    assert with_option == [
        "finetune classify", "nextkmer baselines", "variants scan", "variants score",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "option",
    ["--out", "--overwrite", "--quiet", "--threads", "--device", "--seed", "--batch-size",
     "--n-seeds", "--n-windows", "--window-tokens", "--split", "--val-fraction",
     "--test-fraction", "--val-record", "--test-record", "--block-size", "--max-steps",
     "--orders", "--model", "--trust-remote-code"],
)  # fmt: skip
def test_shared_options_have_one_name_short_flag_and_help(option: str) -> None:
    found = {
        " ".join(path): p
        for path, cmd in _commands()
        if not hasattr(cmd, "commands")
        for p in cmd.params  # type: ignore[attr-defined]
        if option in p.opts
    }
    multi = {"--model": "interrogate"}  # the study takes several models
    found = {c: p for c, p in found.items() if multi.get(option) != c}
    assert len(found) >= 2, found
    assert len({p.help for p in found.values()}) == 1, {c: p.help for c, p in found.items()}
    assert len({tuple(sorted(p.opts)) for p in found.values()}) == 1
