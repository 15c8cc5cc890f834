"""Self-contained HTML reports and plain-text summaries of a run.

A report is a list of :class:`Section`, each with text, tables (polars DataFrames) and
figures (PNG files). Figures are embedded as base64 data URIs and the page carries its
own CSS and no scripts, so ``report.html`` opens offline, anywhere, as one file.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from dnakmer import __version__
from dnakmer._io import write_text

__all__ = ["Figure", "Section", "Table", "render_html", "write_report", "write_summary"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .8rem 0 1.4rem; font-size: .88rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; }
th { background: #f6f8fa; text-align: left; }
td { vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3rem; }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { font-size: .88rem; color: #57606a; }
.meta { font-size: .85rem; color: #57606a; }
.finding { background: #f6f8fa; border-left: 4px solid #0969da; padding: .5rem .9rem; }
"""


@dataclass(frozen=True)
class Figure:
    """A PNG file shown with a caption."""

    path: Path
    caption: str = ""


@dataclass(frozen=True)
class Table:
    """A table shown with a title; at most ``max_rows`` rows are rendered."""

    title: str
    frame: pl.DataFrame
    caption: str = ""
    max_rows: int = 200


@dataclass
class Section:
    """One part of a report: paragraphs, tables and figures, in that order."""

    title: str
    text: Sequence[str] = ()
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    findings: Sequence[str] = ()


def _cell(value: Any) -> tuple[str, bool]:
    if value is None:
        return "", False
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, float):
        return (f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e6 else f"{value:.4f}"), True
    return html.escape(str(value)).replace("\n", "<br>"), False


def _md_cell(value: Any) -> str:
    """A Markdown table cell: lines joined by ``<br>``, pipes escaped."""
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", "<br>")


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.frame.columns)
    rows = []
    for row in t.frame.head(t.max_rows).iter_rows():
        cells = []
        for v in row:
            text, numeric = _cell(v)
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if t.frame.height > t.max_rows:
        more = f'<p class="meta">{t.frame.height - t.max_rows:,} more rows in the run folder.</p>'
    caption = f"<caption>{html.escape(t.title)}</caption>"
    note = f'<p class="meta">{html.escape(t.caption)}</p>' if t.caption else ""
    body = "".join(rows)
    return (
        f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}{note}"
    )


def _figure_html(f: Figure) -> str:
    data = Path(f.path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"{f.path} is not a PNG file")
    b64 = base64.b64encode(data).decode("ascii")
    alt = html.escape(f.caption or Path(f.path).stem)
    cap = f"<figcaption>{html.escape(f.caption)}</figcaption>" if f.caption else ""
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{b64}">{cap}</figure>'


def render_html(
    title: str, sections: Sequence[Section], meta: Mapping[str, Any] | None = None
) -> str:
    """The report as one HTML document (figures embedded, no external resources)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    info = {"dnakmer": __version__, **(meta or {})}
    parts.append(
        '<p class="meta">'
        + " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in info.items())
        + "</p>"
    )
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        parts.extend(f'<p class="finding">{html.escape(x)}</p>' for x in s.findings)
        parts.extend(f"<p>{html.escape(p)}</p>" for p in s.text)
        parts.extend(_table_html(t) for t in s.tables)
        parts.extend(_figure_html(f) for f in s.figures)
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    path: str | os.PathLike[str],
    title: str,
    sections: Sequence[Section],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write :func:`render_html` to ``path`` atomically and return the path."""
    return write_text(path, render_html(title, sections, meta))


def write_summary(
    path: str | os.PathLike[str],
    title: str,
    findings: Mapping[str, Sequence[str]],
    meta: Mapping[str, Any] | None = None,
    table: pl.DataFrame | None = None,
) -> Path:
    """Write a Markdown summary: an optional table first (a cell's lines joined by
    ``<br>``), then one heading per topic and one bullet per finding."""
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {title}", "", f"dnakmer {__version__}, {when}"]
    lines += [f"{k}: {v}" for k, v in (meta or {}).items()]
    if table is not None and table.height:
        lines += ["", "| " + " | ".join(table.columns) + " |"]
        lines += ["| " + " | ".join("---" for _ in table.columns) + " |"]
        lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in table.iter_rows()]
    for topic, items in findings.items():
        lines += ["", f"## {topic}", ""]
        lines += [f"- {x}" for x in items]
    return write_text(path, "\n".join(lines) + "\n")
