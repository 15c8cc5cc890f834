"""Reports: self-contained HTML with embedded figures and tables, checked in Chromium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from browser import chromium, inspect_page
from dnakmer import Genome
from dnakmer.report import Figure, Section, Table, render_html, write_report, write_summary

DATA = Path(__file__).parent / "data"


def gc_profile_png(path: Path, genome: Genome, window: int = 2000) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = genome.names[0]
    codes = genome.codes(name)
    n = len(codes) // window
    gc = ((codes[: n * window] >= 2) & (codes[: n * window] <= 3)).reshape(n, window).mean(1)
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.plot(np.arange(n) * window / 1000, gc)
    ax.set_xlabel("position (kb)")
    ax.set_ylabel("GC")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


@pytest.fixture
def report(tmp_path: Path) -> Path:
    genome = Genome.open(DATA / "yeast_chrI.fa.gz")
    png = gc_profile_png(tmp_path / "gc.png", genome)
    sections = [
        Section(
            "Genome",
            text=["Composition of the input <genome> & its GC profile."],
            findings=[f"{genome.names[0]}: {genome.lengths[0]:,} bp"],
            tables=[Table("Records", genome.stats())],
            figures=[Figure(png, "GC in 2 kb windows")],
        ),
        Section("Empty section"),
    ]
    return write_report(tmp_path / "report.html", "yeast chr I", sections, {"seed": 0})


def test_html_is_self_contained_and_escaped(report: Path) -> None:
    text = report.read_text()
    assert "data:image/png;base64," in text
    assert 'src="http' not in text and "<script" not in text
    assert "&lt;genome&gt; &amp; its" in text
    assert "230,218" in text and "0.3927" in text
    assert not [p for p in report.parent.iterdir() if p.name.endswith(".partial")]


def test_rejects_non_png_figure(tmp_path: Path) -> None:
    bad = tmp_path / "fig.png"
    bad.write_text("not a png")
    with pytest.raises(ValueError, match="not a PNG"):
        render_html("t", [Section("s", figures=[Figure(bad)])])


def test_long_tables_are_cut_with_a_note() -> None:
    frame = pl.DataFrame({"i": list(range(250))})
    text = render_html("t", [Section("s", tables=[Table("many", frame, max_rows=10)])])
    assert text.count("<tr>") == 11
    assert "240 more rows" in text


def test_summary_markdown(tmp_path: Path) -> None:
    path = write_summary(tmp_path / "summary.md", "Run", {"Masked tokens": ["rule explains 97 %"]})
    lines = path.read_text().splitlines()
    assert lines[0] == "# Run"
    assert "## Masked tokens" in lines and "- rule explains 97 %" in lines


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed")
def test_report_renders_in_chromium(report: Path) -> None:
    page = inspect_page(report)
    assert page["title"] == "yeast chr I"
    assert page["tables"] == 1
    assert len(page["images"]) == 1
    assert all(img["complete"] and img["naturalWidth"] > 0 for img in page["images"])
    assert page["errors"] == [] and page["console_errors"] == []


def test_summary_opens_with_its_table_and_cells_keep_their_lines(tmp_path: Path) -> None:
    cell = "k = 1: 0.300 (0.28\u20130.32)\nk = 2: a|b"
    table = pl.DataFrame({"model": ["m"], "next k-mer": [cell]})
    path = write_summary(tmp_path / "s.md", "Run", {"Topic": ["a finding"]}, table=table)
    text = path.read_text()
    assert text.index("| model | next k-mer |") < text.index("## Topic") < text.index("- a finding")
    assert "| m | k = 1: 0.300 (0.28\u20130.32)<br>k = 2: a\\|b |" in text


def test_html_cells_keep_their_lines() -> None:
    frame = pl.DataFrame({"cell": ["first line\nsecond <line>"]})
    text = render_html("t", [Section("s", tables=[Table("one", frame)])])
    assert "<td>first line<br>second &lt;line&gt;</td>" in text
