"""Every llamabuild module imports, and no two modules import each other, even indirectly.

The graph is grimp's (the one import-linter checks the layers on, tests/test_layers.py): every
`import`, module-level or inside a function, `if TYPE_CHECKING:` included, so a lazy import
kept for start-up time is still an edge. A cycle is a strongly connected component of more
than one module.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llamabuild"


def module_names(package: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append(".".join(parts))
    return out


def import_graph(package: str = "llamabuild") -> dict[str, set[str]]:
    """Module -> the modules it imports (all of them: grimp counts function-level imports)."""
    graph = grimp.build_graph(package, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 100
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(
        " <-> ".join(c) + "\n  " + "\n  ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c)
        for c in found
    )


@pytest.mark.parametrize("module", [m for m in module_names() if m != "llamabuild.__main__"])
def test_every_module_imports(module: str) -> None:
    importlib.import_module(module)


def test_the_graph_sees_function_level_and_type_checking_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub.b import X\n"
    )
    (pkg / "sub" / "b.py").write_text("from ..a import Y\ndef late():\n    import pkg.c\n")
    (pkg / "c.py").write_text("def later():\n    import pkg.sub.b\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = import_graph("pkg")
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.a", "pkg.c"}  # the function-level import counts
    assert cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
