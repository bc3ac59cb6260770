"""Where the shipped data folders are: recipes/ and templates/.

They live at the top of the repository (the layout users asked for). A wheel carries them as
llamabuild/_recipes and llamabuild/_templates (pyproject maps the folders); a checkout or an
editable install reads them in place.
"""

from __future__ import annotations

from pathlib import Path

from llamabuild.errors import ToolError

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """The shipped `recipes` or `templates` folder, wherever this install keeps it."""
    for candidate in (_PACKAGE / f"_{name}", _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise ToolError(
        f"llamabuild's {name}/ folder is missing from this install",
        hint="reinstall llamabuild (pip install llamabuild or pip install -e <checkout>)",
    )
