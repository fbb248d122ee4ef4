"""The shape of the code: no import cycle among our modules, no module too long to read.

Imports are counted as ``../shared/tools/import_cycles.py`` counts them: every ``import``
in a module, at its top, inside a function or under ``TYPE_CHECKING``, each resolved to
the longest module of ours it names; an import of a package by its own submodule is not
an edge (that is how a submodule reaches its siblings' re-exports, not a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sparsemod", "server")
MAX_LINES = 400

# Today's modules over MAX_LINES, each at its length today: they may shrink, not grow.
# Take a module off the list once it is MAX_LINES or shorter.
LONG: dict[str, int] = {}


def modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` but the migrations."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root)
            if "migrations" in rel.parts:
                continue
            name = ".".join(rel.with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, anywhere in its body."""
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        is_package = path.name == "__init__.py"
        package = m if is_package else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for n in names:
                target = _resolve(n, mods)
                if target is None or target == m:
                    continue
                own_package = m.startswith(target + ".") and mods[target].name == "__init__.py"
                if not own_package:
                    graph[m].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_cycle():
    assert cycles(import_graph(modules())) == []


def test_no_module_is_longer_than_its_limit():
    too_long = {}
    for path in sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > LONG.get(rel, MAX_LINES):
            too_long[rel] = (lines, LONG.get(rel, MAX_LINES))
    assert too_long == {}, "module: (lines, limit)"


def test_every_long_module_is_still_long():
    short = {rel: n for rel in LONG if (n := _lines(ROOT / rel)) <= MAX_LINES}
    assert short == {}, "take these off LONG"


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_function_level_import_closes_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.a import A\n")
    (pkg / "a.py").write_text("from pkg.sub import b\nA = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import A\n    return A\n")
    (pkg / "sub" / "c.py").write_text("from pkg import A\n")  # its own package: no edge
    graph = import_graph(modules(tmp_path, ("pkg",)))
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.sub", "pkg.sub.b"},
        "pkg.sub": set(),
        "pkg.sub.b": {"pkg.a"},
        "pkg.sub.c": set(),
    }
    assert cycles(graph) == [["pkg.a", "pkg.sub.b"]]
