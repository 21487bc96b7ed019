"""The layout stays true: imports point down the layers, and no module imports itself in a circle.

Every ``import``/``from ... import`` in the project's Python files is read with ``ast`` (those at
module level and inside functions alike; only ``if TYPE_CHECKING:`` blocks are left out, as they
never run), then checked against the layers the README describes:

    kb  <-  ingest, assistant  <-  evaluation  <-  webapp, benchmarks, app.py
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("kb", "ingest", "assistant", "evaluation", "webapp", "benchmarks")
# what each top-level part may import of ours (besides itself)
ALLOWED = {
    "kb": set(),
    "ingest": {"kb"},
    "assistant": {"kb"},
    "evaluation": {"kb", "ingest", "assistant"},
    "webapp": {"kb", "ingest", "assistant", "evaluation"},
    "benchmarks": {"kb", "ingest", "assistant", "evaluation", "webapp"},
    "app": {"kb", "webapp"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [REPO / "app.py"] + [p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))]
    return {module_name(p): p for p in files}


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for block in ast.walk(tree) if _type_checking_block(block) for n in ast.walk(block)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # "pkg.mod.func" -> "pkg.mod"
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_imports_point_down_the_layers():
    wrong = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        for target in targets
        if (top := name.split(".")[0]) != (other := target.split(".")[0]) and other not in ALLOWED[top]
    ]
    assert wrong == []


def test_no_import_circle():
    edges = graph()
    # a package's __init__ re-exporting its own modules is not a circle of design: leave those out
    edges = {
        name: {
            t
            for t in targets
            if not (Path(project_modules()[name]).name == "__init__.py" and t.startswith(name + "."))
        }
        for name, targets in edges.items()
    }
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(
                    " -> ".join(path[path.index(nxt) :] + [node, nxt]) if nxt in path else f"{node} -> {nxt}"
                )
            elif nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert circles == []


def test_the_checks_see_real_imports():
    """The walker itself: it finds known arrows, so an empty list above means something."""
    edges = graph()
    assert "kb.store" in edges["ingest.pipeline"]
    assert "ingest.pipeline" in edges["evaluation.runner"]  # a lazy import inside a function
    assert "evaluation.results" in edges["evaluation.report"]
    assert "webapp.pages.chat" in edges["webapp.ui"]
    assert not any(
        t.startswith("ingest") for name, ts in edges.items() if name.startswith("assistant") for t in ts
    )
