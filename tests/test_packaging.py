"""llamabuild as a user gets it: the sdist and the wheel, built from a copy of this checkout,
installed (never editable) into fresh venvs, and every command run from a folder outside the
checkout, with nothing of the checkout on sys.path.

The venvs reach the dependencies through a .pth file naming this interpreter's site-packages
(no download), but no other .pth file there runs: the editable install of the checkout that a
developer has (`pip install -e`) stays out of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llamabuild"
SHIPPED = {"recipes": "_recipes", "templates": "_templates"}  # top-level folder -> in the wheel
NOT_SOURCE = {"__pycache__", "build", "dist", "venv"}  # plus every dot folder and *.egg-info
PROJECT = ROOT / "tests" / "cmake_project"


def _shippable(path: Path) -> bool:
    hidden = path.name.startswith(".") or "__pycache__" in path.parts
    return not hidden and path.suffix != ".pyc"


def package_dirs() -> list[str]:
    """Every package folder on disk: llamabuild/ and every folder under it with __init__.py."""
    return sorted(
        p.parent.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("__init__.py") if _shippable(p)
    )


def expected_wheel_files() -> set[str]:
    """Every file the wheel must carry: all of llamabuild/ (modules and data), and recipes/ and
    templates/ under their names inside the package."""
    want = {
        p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*") if p.is_file() and _shippable(p)
    }
    for top, inside in SHIPPED.items():
        for p in (ROOT / top).rglob("*"):
            if p.is_file() and _shippable(p):
                want.add(f"llamabuild/{inside}/{p.relative_to(ROOT / top).as_posix()}")
    return want


def run(argv: list[str | Path], **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, timeout=600, **kw
    )
    assert proc.returncode == 0, f"{argv}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _copy_checkout(dest: Path) -> Path:
    """The source tree as a fresh clone would have it, without caches or build output."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {
            n
            for n in names
            if n.startswith(".") or n in NOT_SOURCE or n.endswith((".egg-info", ".pyc"))
        }

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


_CAN_BUILD = """
import importlib.util, sys
import setuptools
major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
bdist_wheel = (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None
sys.exit(0 if major >= 68 and bdist_wheel else 1)
"""


def build_python(work: Path) -> Path:
    """A Python that builds llamabuild without build isolation: this one if its setuptools
    (>= 68, as pyproject's build-system requires) can make wheels, else a venv made for
    building, into which pip fetches setuptools and wheel once from the index."""
    mine = subprocess.run([sys.executable, "-c", _CAN_BUILD], capture_output=True, check=False)
    if mine.returncode == 0:
        return Path(sys.executable)
    env_dir = work / "build env"
    run([sys.executable, "-m", "venv", env_dir])
    python = env_dir / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "setuptools>=68"])
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "wheel"])
    return python


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path  # built from the tree (`pip wheel .`)
    wheel_from_sdist: Path  # what `pip install llamabuild-*.tar.gz` builds and installs


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    work = tmp_path_factory.mktemp("packaging")
    python = build_python(work)
    tree = _copy_checkout(work / "source tree")
    pip_wheel = [python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    pip_wheel += ["--disable-pip-version-check", "--no-index", "-w"]
    sdist_dir = work / "sdist"
    script = "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))"
    run([python, "-c", script, sdist_dir], cwd=tree)
    (sdist,) = sdist_dir.glob("llamabuild-*.tar.gz")
    run([*pip_wheel, work / "wheel", tree])
    run([*pip_wheel, work / "wheel from sdist", sdist])
    (wheel,) = (work / "wheel").glob("llamabuild-*.whl")
    (from_sdist,) = (work / "wheel from sdist").glob("llamabuild-*.whl")
    return Dists(sdist, wheel, from_sdist)


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


@pytest.mark.slow
def test_wheel_has_every_package_and_data_file(dists: Dists) -> None:
    packages = package_dirs()
    assert {"llamabuild/model", "llamabuild/appstore", "llamabuild/cli"} <= set(packages)
    want = expected_wheel_files()
    assert any(n.startswith("llamabuild/_templates/entitlements/") for n in want)
    for wheel in (dists.wheel, dists.wheel_from_sdist):
        names = wheel_names(wheel)
        missing_packages = [p for p in packages if f"{p}/__init__.py" not in names]
        assert missing_packages == [], f"{wheel.name} lacks packages {missing_packages}"
        assert sorted(want - names) == [], f"{wheel.name} lacks files"
        tops = {n.split("/", 1)[0] for n in names}
        assert tops == {"llamabuild", "llamabuild-0.1.0.dist-info"}, tops  # no stray top level
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # The sdist holds everything the wheel is built from: both wheels carry the same files.
    assert wheel_names(dists.wheel) == wheel_names(dists.wheel_from_sdist)


@pytest.mark.slow
def test_sdist_has_the_sources_recipes_templates_and_data(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as tf:
        names = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    want = {"pyproject.toml", "README.md", "PKG-INFO"}
    want |= {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*") if p.is_file()}
    want |= {
        p.relative_to(ROOT).as_posix()
        for top in SHIPPED
        for p in (ROOT / top).rglob("*")
        if p.is_file()
    }
    assert sorted({n for n in want if _shippable(Path(n))} - names) == []


# --- installed into a fresh venv, run from outside the checkout -------------------------------


def dependency_dirs() -> list[str]:
    """Where this interpreter finds llamabuild's dependencies."""
    return [
        p
        for p in sys.path
        if p and Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()
    ]


def make_venv(where: Path) -> Path:
    """A fresh venv seeing this interpreter's packages through a plain path list (a .pth file
    of paths: the .pth files in those folders, an editable install's among them, never run)."""
    run([sys.executable, "-m", "venv", "--without-pip", where])
    python = where / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    site = Path(purelib.stdout.strip())
    (site / "_llamabuild_test_deps.pth").write_text("\n".join(dependency_dirs()) + "\n")
    return python


# Run inside the venv: where everything is imported from, and the commands of the installed app.
CHECK = """
import importlib, json, pkgutil, sys
import typer
import llamabuild
from llamabuild.cli import app
from llamabuild.core.resources import schema_dir, shipped_dir

modules = {}
for info in pkgutil.walk_packages(llamabuild.__path__, "llamabuild."):
    if info.name != "llamabuild.__main__":  # running it is `python -m llamabuild`
        modules[info.name] = importlib.import_module(info.name).__file__
group = typer.main.get_command(app)
print(json.dumps({
    "file": llamabuild.__file__,
    "modules": modules,
    "recipes": str(shipped_dir("recipes")),
    "templates": str(shipped_dir("templates")),
    "schemas": str(schema_dir()),
    "commands": list(group.list_commands(None)),
    "sys_path": sys.path,
    "meta_path": [repr(finder) for finder in sys.meta_path],
}))
"""


def checkout_commands() -> list[str]:
    import typer

    from llamabuild.cli import app

    group: Any = typer.main.get_command(app)
    return list(group.list_commands(None))


def project_for_dry_runs(where: Path, recipes: list[str]) -> Path:
    """A project folder with a small llama.cpp-like tree that declares every flag `recipes` set
    (the stale-flag check runs in a dry run too)."""
    tree = where / "llama src"
    shutil.copytree(PROJECT, tree)
    cmake = tree / "CMakeLists.txt"
    text = cmake.read_text()
    for name in recipes:
        recipe = tomllib.loads((ROOT / "recipes" / f"{name}.toml").read_text())
        for key, value in recipe.get("cache", {}).items():
            if isinstance(value, bool) and not re.search(rf"\b{re.escape(key)}\b", text):
                text += f'option({key} "declared for tests/test_packaging.py" OFF)\n'
    cmake.write_text(text)
    return where


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.parametrize("dist", ["wheel", "sdist"])
def test_installed_package_runs_every_command_outside_the_checkout(
    dists: Dists, dist: str, tmp_path: Path, clean_arm64: Path
) -> None:
    from tests.fixtures.gguf_models import write_model

    venv_dir = tmp_path / "venv of the installed package"
    python = make_venv(venv_dir)
    wheel = dists.wheel if dist == "wheel" else dists.wheel_from_sdist
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index"]
    run([*pip, "--no-deps", "--ignore-installed", wheel])
    here = tmp_path / "somewhere else"
    here.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "GITHUB_", "LLAMABUILD_")) and k != "VIRTUAL_ENV"
    }
    env["LLAMABUILD_CACHE"] = str(tmp_path / "cache")

    # Everything is imported from the venv; nothing of the checkout is reachable.
    found = json.loads(run([python, "-I", "-c", CHECK], cwd=here, env=env).stdout)
    site = Path(found["file"]).parent.parent
    assert site.is_relative_to(venv_dir), found["file"]
    assert found["modules"] and all(
        Path(f).is_relative_to(site / "llamabuild") for f in found["modules"].values()
    ), found["modules"]
    packages = {p.replace("/", ".") for p in package_dirs()} - {"llamabuild"}
    assert packages <= set(found["modules"])
    assert found["recipes"] == str(site / "llamabuild" / "_recipes")
    assert found["templates"] == str(site / "llamabuild" / "_templates")
    assert found["schemas"] == str(site / "llamabuild" / "schemas")
    assert not [p for p in found["sys_path"] if p and Path(p).resolve().is_relative_to(ROOT)]
    assert not [f for f in found["meta_path"] if "ditable" in f]  # no editable finder
    assert found["commands"] == checkout_commands()

    exe = venv_dir / "bin" / "llamabuild"

    def llamabuild(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        return run([exe, *argv], cwd=here, env=env)

    assert "0.1.0" in llamabuild("--version").stdout
    assert "Usage" in llamabuild("--help").stdout
    for command in found["commands"]:
        out = llamabuild(command, "--help").stdout
        assert "Usage" in out and command in out, command

    report = json.loads(llamabuild("verify", clean_arm64, "--json").stdout)
    assert report["ok"] is True and report["format"] == "macho"

    model = write_model(tmp_path / "tiny model.gguf")
    report = json.loads(llamabuild("verify-model", model, "--json").stdout)
    assert report["ok"] is True, report

    report = json.loads(llamabuild("privacy-manifest", clean_arm64, "--json").stdout)
    assert "NSPrivacyTracking" in report["manifest"]  # templates/PrivacyInfo.xcprivacy.j2

    for preset in ("app-helper", "standalone-server"):  # templates/entitlements/*.plist.j2
        report = json.loads(llamabuild("entitlements", "--preset", preset, "--json").stdout)
        assert "com.apple.security" in json.dumps(report), preset

    recipes = ["linux-x86_64-static", "macos-arm64-cpu-cross"]  # from the wheel's _recipes
    project_for_dry_runs(here, recipes)
    for recipe in recipes:
        out = llamabuild("build", "-r", recipe, "--source", "llama src", "--dry-run", "--json")
        plan = json.loads(out.stdout)
        assert plan["dry_run"] is True and plan["recipe"]["name"] == recipe
    assert not (here / "llamabuild.lock").exists()  # a dry run pins nothing


def test_shipped_dirs_resolve_in_this_install() -> None:
    from llamabuild.core.resources import shipped_dir

    assert (shipped_dir("recipes") / "macos-arm64-metal.toml").is_file()
    assert (shipped_dir("templates") / "entitlements" / "app-helper.plist.j2").is_file()


# --- CI installs what users get --------------------------------------------------------------

WORKFLOWS = sorted([*(ROOT / "ci").glob("*.yml"), *(ROOT / ".github" / "workflows").glob("*.yml")])
EDITABLE = re.compile(r"(^|\s)(-e|--editable)(=|\s|$)")


def pip_installs(workflow: Path) -> list[str]:
    """Every `pip install` command line of a workflow's run steps (continuations joined)."""
    data = yaml.safe_load(workflow.read_text())
    lines = []
    for job in data["jobs"].values():
        for step in job.get("steps", []):
            script = re.sub(r"\\\n\s*", " ", step.get("run", ""))
            lines += [line.strip() for line in script.splitlines() if "pip install" in line]
    return lines


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_install_llamabuild_non_editable(workflow: Path) -> None:
    installs = pip_installs(workflow)
    assert installs, f"{workflow.name} installs nothing with pip"
    assert [line for line in installs if EDITABLE.search(line)] == []


def test_own_ci_replaces_the_editable_install_of_ci_install_sh() -> None:
    """ci/install.sh installs editable (a developer's checkout); the Linux job then installs
    the package itself, and a step checks that `import llamabuild` is not the checkout."""
    job = yaml.safe_load((ROOT / ".github/workflows/tests.yml").read_text())["jobs"]["suite"]
    names = [s.get("name", "") for s in job["steps"]]
    steps = {s.get("name", ""): s for s in job["steps"]}
    after = steps[names[names.index("Install (Linux)") + 1]]
    assert after.get("if") == "runner.os == 'Linux'"
    assert re.search(r"pip install .*--force-reinstall.* \.$", after["run"].strip())
    check = next(s for s in job["steps"] if "import llamabuild" in s.get("run", ""))
    assert "if" not in check and names.index(check["name"]) < names.index("Run the suite")
