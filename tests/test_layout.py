"""The shape of llamabuild/ stays readable: few flat modules, no output twins, small modules
and functions (issue 20's rules; docs/development.md has the map)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llamabuild"
MAX_FLAT = 10
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_at_most_ten_modules_sit_flat_in_the_package() -> None:
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= MAX_FLAT, flat


def test_no_output_twin_modules() -> None:
    assert not [p for p in sources() if p.name.startswith("outputs")]


def test_no_module_over_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def _is_typer_command(node: ast.FunctionDef) -> bool:
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"
        for d in node.decorator_list
    )


def function_lengths(path: Path) -> dict[str, int]:
    """Lines per function; for a Typer command only its body (Typer makes the option list the
    signature, so that part is not the function's to shorten)."""
    out: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = (
                node.body[0].lineno
                if isinstance(node, ast.FunctionDef) and _is_typer_command(node)
                else node.lineno
            )
            assert node.end_lineno is not None
            out[node.name] = node.end_lineno - first + 1
    return out


def test_no_function_over_80_lines() -> None:
    long = {
        f"{p.relative_to(ROOT)}:{name}": n
        for p in sources()
        for name, n in function_lengths(p).items()
        if n > MAX_FUNCTION_LINES
    }
    assert not long, long
