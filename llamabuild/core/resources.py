"""Where shipped files are: the one way to find them.

`data_file("x.toml")` is llamabuild/data/x.toml, `schema_dir()` llamabuild/schemas/, and
`shipped_dir("recipes" | "templates")` the top-level recipes/ and templates/ folders.

They live at the top of the repository (the layout users asked for). A wheel carries them as
llamabuild/_recipes and llamabuild/_templates (pyproject maps the folders); a checkout or an
editable install reads them in place.
"""

from __future__ import annotations

from pathlib import Path

from llamabuild.core.errors import ToolError

_PACKAGE = Path(__file__).resolve().parent.parent  # llamabuild/


def shipped_dir(name: str) -> Path:
    """The shipped `recipes` or `templates` folder, wherever this install keeps it."""
    for candidate in (_PACKAGE / f"_{name}", _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise ToolError(
        f"llamabuild's {name}/ folder is missing from this install",
        hint="reinstall llamabuild (pip install llamabuild or pip install -e <checkout>)",
    )


def data_file(name: str) -> Path:
    """llamabuild/data/<name> (TOML tables and templates the code reads)."""
    return _PACKAGE / "data" / name


def data_text(name: str) -> str:
    return data_file(name).read_text(encoding="utf-8")


def schema_dir() -> Path:
    """llamabuild/schemas: the generated JSON Schemas (python -m llamabuild.schema)."""
    return _PACKAGE / "schemas"
