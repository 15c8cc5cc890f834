"""The package's layers (docs/architecture.md): each folder imports only those below it,
no module imports form a loop (in Python or in the Rust core), and the root and
``dnakmer.datasets`` load no torch.

Imports are read from the source with ``ast``, including those inside functions and
``TYPE_CHECKING`` blocks, so a lazy import cannot hide a dependency.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "dnakmer"
RUST = ROOT / "rust"

# Bottom to top. Modules directly in the package folder form the root layer.
LAYERS = ("root", "datasets", "models", "training", "probes", "study", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
# The compiled core counts as a root module.
KNOWN = set(MODULES) | {"dnakmer._core"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if module == "dnakmer.__main__":
        return "cli"  # ``python -m dnakmer`` is the command line
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "root"


def _resolve(module: str, name: str | None) -> str:
    """The module an import statement loads: ``from a import b`` is ``a.b`` when ``b``
    is a submodule, otherwise ``a``."""
    if name is not None and f"{module}.{name}" in KNOWN:
        return f"{module}.{name}"
    return module


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "dnakmer")
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; use absolute dnakmer.* imports"
            if node.module and node.module.split(".")[0] == "dnakmer":
                found.update(_resolve(node.module, a.name) for a in node.names)
    return found


GRAPH = {m: imports_of(p) - {m} for m, p in MODULES.items()}


def test_layers_are_the_documented_folders():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders == set(LAYERS) - {"root"}
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for layer in LAYERS[1:]:
        assert f"`{layer}/`" in doc, f"docs/architecture.md does not describe {layer}/"


def test_every_import_names_a_real_module():
    for module, targets in GRAPH.items():
        for target in targets:
            assert target in KNOWN, f"{module} imports {target}, which does not exist"


def test_no_module_imports_from_a_layer_above():
    rank = {name: i for i, name in enumerate(LAYERS)}
    wrong = [
        f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)})"
        for m, targets in GRAPH.items()
        for t in targets
        if rank[layer_of(t)] > rank[layer_of(m)]
    ]
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_loop():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_python_import_loop():
    assert _cycles(GRAPH) == []


def rust_graph() -> dict[str, set[str]]:
    """Top-level Rust modules and the other top-level modules they use (``crate::x``),
    test modules included; a module's subfolder (``rust/kmer/*.rs``) belongs to it."""
    graph: dict[str, set[str]] = {}
    for path in RUST.rglob("*.rs"):
        rel = path.relative_to(RUST)
        module = rel.parts[0].removesuffix(".rs")
        if module == "lib":
            continue
        used = set(re.findall(r"\bcrate::([a-z_0-9]+)", path.read_text()))
        graph.setdefault(module, set()).update(used - {module})
    return graph


def test_no_rust_module_loop():
    graph = rust_graph()
    assert {"windows", "window_tensors", "kmer", "fasta"} <= set(graph)
    assert "window_tensors" not in graph["windows"]
    assert _cycles(graph) == []
    assert _cycles({**graph, "windows": graph["windows"] | {"window_tensors"}})


def test_rust_dependencies_are_the_documented_ones():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = doc.split("## The Rust core", 1)[1].split("```")[1]
    documented = {}
    for line in block.strip().splitlines():
        name = line.split()[0].rstrip("/")
        deps = line.split("<-")[1] if "<-" in line else ""
        documented[name] = {d.strip() for d in deps.split(",") if d.strip()}
    graph = rust_graph()
    assert set(documented) == set(graph) - {"test_rng"}
    for name, deps in documented.items():
        if name == "py":
            continue
        assert graph[name] - {"error", "test_rng"} == deps, name


@pytest.mark.parametrize("layer", ["root", "datasets"])
def test_root_and_datasets_load_no_torch(layer):
    names = [m for m in MODULES if layer_of(m) == layer and m != "dnakmer.__main__"]
    assert names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sklearn', 'matplotlib') "
        "if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing the {layer} layer loaded {out}"
