"""The layers of llamabuild/ point down, as pyproject.toml's import-linter contract says.

cli (and the schema generator) -> the orchestrating wings (builder, appstore, signing) ->
model, provenance -> inspect, source -> tools -> config -> core. Siblings joined by `|` must not
import each other. grimp counts imports inside functions too, so a lazy import kept for
start-up time is checked like any other.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = (
    "from importlinter.cli import lint_imports; "
    "raise SystemExit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
)


def layers() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in data["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [str(layer) for layer in contract["layers"]]


def test_the_layers_contract_has_at_least_six_layers_and_names_every_package() -> None:
    names = [n.strip() for layer in layers() for n in layer.split("|")]
    assert len(layers()) >= 6
    packages = {
        f"llamabuild.{p.name}"
        for p in (ROOT / "llamabuild").iterdir()
        if (p / "__init__.py").is_file()
    }
    assert packages <= set(names), f"packages in no layer: {sorted(packages - set(names))}"


def test_lint_imports_keeps_every_contract() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
