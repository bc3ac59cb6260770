"""The wheel carries recipes/ and templates/ (top-level in the repo) and the policy data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_recipes_templates_and_data(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("llamabuild-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for recipe in (ROOT / "recipes").glob("*.toml"):
        assert f"llamabuild/_recipes/{recipe.name}" in names
    for template in (ROOT / "templates").rglob("*.j2"):
        rel = template.relative_to(ROOT / "templates").as_posix()
        assert f"llamabuild/_templates/{rel}" in names
    for data in (ROOT / "llamabuild" / "data").iterdir():
        assert f"llamabuild/data/{data.name}" in names


def test_shipped_dirs_resolve_in_this_install():
    from llamabuild.resources import shipped_dir

    assert (shipped_dir("recipes") / "macos-arm64-metal.toml").is_file()
    assert (shipped_dir("templates") / "entitlements" / "app-helper.plist.j2").is_file()
