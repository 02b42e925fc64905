"""The house: arrows point down, the core is pure, and no module imports another in a cycle.

Read from the source with ``ast`` (nothing is imported), as docs/design-notes.md draws it:
cli -> render, batch, store, io -> core; nothing imports cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "alliance_cli"

# What each part may import (its own part always). api is the library surface over the parts.
ALLOWED = {
    "core": {"core"},
    "io": {"core", "io"},
    "batch": {"core", "io", "batch"},
    "store": {"core", "io", "store"},
    "render": {"core", "render"},
    "api": {"core", "io", "batch", "api"},
    "cli": {"core", "io", "batch", "store", "render", "cli", "api", ""},
    "": {"", "api", "cli"},  # alliance_cli/__init__.py and __main__.py
}
CORE_FORBIDDEN = {"typer", "rich", "yaml", "sqlite3", "click", "platformdirs"}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[1] not in ("__main__",) else ""


def _imports(path: Path, typing_too: bool = False) -> list[tuple[str, bool, int]]:
    """(imported module, at module level, line) for each import that runs (not the ones
    under ``if TYPE_CHECKING:``, which only type checkers read, unless ``typing_too``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if (
                isinstance(child, ast.If)
                and "TYPE_CHECKING" in ast.unparse(child.test)
                and not typing_too
            ):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, top, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                base = child.module
                found.append((base, top, child.lineno))
                # `from alliance_cli.cli import batch` imports the module alliance_cli.cli.batch
                for alias in child.names:
                    if (
                        (PACKAGE.parent / (base + "." + alias.name).replace(".", "/"))
                        .with_suffix(".py")
                        .exists()
                    ):
                        found.append((f"{base}.{alias.name}", top, child.lineno))
            deeper = top and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            visit(child, deeper)

    visit(tree, True)
    return found


FILES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {_module(f): _imports(f) for f in FILES}


EVERY_IMPORT = {_module(f): _imports(f, typing_too=True) for f in FILES}


@pytest.mark.parametrize("which", ["at module level", "lazy and for type checkers too"])
def test_no_import_cycle(which):
    """No module imports another in a circle: not at module level (Python would fail), and
    not counting imports inside functions or under TYPE_CHECKING either (issue 22: a lazy
    import is for start-up, and must point down like any other)."""
    graph = GRAPH if which == "at module level" else EVERY_IMPORT
    edges = {
        m: {i for i, top, _ in imps if (top or which != "at module level") and i in graph
            and i != m and not (m == "alliance_cli" or i == "alliance_cli")}
        for m, imps in graph.items()
    }  # fmt: skip
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                cycle = [*stack[stack.index(n) :], n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                walk(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            walk(m)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_arrows_point_down(module):
    part = _part(module)
    allowed = ALLOWED[part]
    for name, _, line in GRAPH[module]:
        if name.startswith("alliance_cli.") and name != "alliance_cli":
            target = _part(name)
            assert target in allowed, f"{module}:{line} imports {name} ({part} -> {target})"


@pytest.mark.parametrize("module", [m for m in sorted(GRAPH) if _part(m) == "core"])
def test_core_is_pure(module):
    for name, _, line in GRAPH[module]:
        assert name.split(".")[0] not in CORE_FORBIDDEN, f"{module}:{line} imports {name}"
        assert name not in ("os", "subprocess", "io", "tempfile"), f"{module}:{line}: {name}"


def test_every_module_says_what_it_holds():
    for path in FILES:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc, f"{path.relative_to(PACKAGE.parent)} has no docstring"


def _public_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    """Module-level functions and methods of module-level classes (not nested helpers)."""
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out.append(node)
        elif isinstance(node, ast.ClassDef):
            out += [n for n in node.body if isinstance(n, ast.FunctionDef)]
    return [f for f in out if not f.name.startswith("_")]


def test_public_functions_have_docstrings_and_type_hints():
    for path in FILES:
        for node in _public_functions(ast.parse(path.read_text(encoding="utf-8"))):
            if True:
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"
                if node.name in ("cells",):  # generated code's template names
                    continue
                assert ast.get_docstring(node), f"{where} has no docstring"
                assert node.returns is not None, f"{where} has no return type"
