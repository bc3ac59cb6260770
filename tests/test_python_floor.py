"""Every Python that requires-python admits runs llamabuild, 3.11.0 included (Debian 12 ships
3.11.2).

mypy (python_version = 3.11) catches an API of 3.12, but not one a later 3.11 patch release
added: typeshed does not tell 3.11.2 from 3.11.7. The one such API the code meets is tarfile's
extraction filters (3.11.4): only llamabuild/source/archive.py may use them, behind a feature
check, with its own member check where they are missing (tests/test_source.py runs both paths).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ARCHIVE = ROOT / "llamabuild" / "source" / "archive.py"
FILTERS = {"data_filter", "tar_filter", "fully_trusted_filter", "extraction_filter"}


def floor() -> tuple[int, int]:
    m = re.fullmatch(r">=\s*(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert m, PYPROJECT["project"]["requires-python"]
    return int(m.group(1)), int(m.group(2))


def test_the_floor_is_the_one_the_checkers_assume() -> None:
    major, minor = floor()
    assert PYPROJECT["tool"]["mypy"]["python_version"] == f"{major}.{minor}"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{major}{minor}"
    assert sys.version_info[:2] >= (major, minor)


def uses_of_tar_filters(path: Path) -> list[str]:
    """`filter=` passed to extract/extractall, or a tarfile filter named, in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("extract", "extractall") and any(
                k.arg == "filter" for k in node.keywords
            ):
                found.append(f"{path.name}:{node.lineno} {node.func.attr}(filter=...)")
        elif isinstance(node, ast.Attribute) and node.attr in FILTERS:
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.Constant) and node.value in FILTERS:
            found.append(f"{path.name}:{node.lineno} {node.value!r}")
    return found


def test_tar_filters_only_behind_the_feature_check() -> None:
    elsewhere = [
        use
        for path in sorted((ROOT / "llamabuild").rglob("*.py"))
        if path != ARCHIVE
        for use in uses_of_tar_filters(path)
    ]
    assert elsewhere == [], "use llamabuild.source.archive.extract (3.11.0-3.11.3 lack filters)"
    tree = ast.parse(ARCHIVE.read_text())
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    check = ast.unparse(functions["has_data_filter"])
    assert 'hasattr(tarfile, "data_filter")' in check.replace("'", '"')
    unpack = ast.unparse(functions["_unpack_tar"])
    assert "if has_data_filter():" in unpack and "_write_member(" in unpack
