"""The README's console examples: each ``$ command`` and the lines it prints, parsed from
the ```` ```console ```` blocks, and how printed output is compared with them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
ELISION = "..."


@dataclass(frozen=True)
class Example:
    """One command of a console block and the lines the README shows it printing
    (``...`` stands for lines left out)."""

    block: int
    command: str
    expected: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.command.split("#")[0].strip()


def examples(text: str | None = None) -> list[Example]:
    """Every ``$ command`` of every console block, in order."""
    text = README.read_text() if text is None else text
    out = []
    for b, block in enumerate(re.findall(r"```console\n(.*?)```", text, re.S)):
        command: str | None = None
        lines: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    out.append(Example(b, command, tuple(lines)))
                command, lines = line[2:], []
            elif command is not None and line.strip():
                lines.append(line.rstrip())
        if command is not None:
            out.append(Example(b, command, tuple(lines)))
    return out


def missing_lines(expected: tuple[str, ...], printed: str) -> list[str]:
    """The README lines not printed as shown: lines between ``...`` must be printed
    one after another, the groups in order (``...`` stands for any number of lines).
    Lines are compared without trailing blanks, so every number must match to the
    precision it is printed with. Returns the first group not found, or []."""
    got = [line.rstrip() for line in printed.splitlines()]
    groups: list[list[str]] = [[]]
    for want in expected:
        if want == ELISION:
            groups.append([])
        else:
            groups[-1].append(want)
    start = 0
    for group in (g for g in groups if g):
        for i in range(start, len(got) - len(group) + 1):
            if got[i : i + len(group)] == group:
                start = i + len(group)
                break
        else:
            return group
    return []
