"""The ready-to-copy GitHub Actions workflows in ci/: valid against GitHub's workflow schema
(check-jsonschema's bundled copy, offline), and every `llamabuild ...` line in them parses with
the real CLI, so an option rename cannot silently break a user's pipeline."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from llamabuild.cli import app

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exc  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
# The ready-to-copy workflows in ci/, then this repository's own CI (.github/workflows/).
WORKFLOWS = [
    *sorted((ROOT / "ci").glob("*.yml")),
    *sorted((ROOT / ".github/workflows").glob("*.yml")),
]
SCHEMA_CHECK = [
    sys.executable,
    "-m",
    "check_jsonschema",
    "--builtin-schema",
    "vendor.github-workflows",
]
_SHELL_OPS = {">", ">>", "<", "|", "||", "&&", ";", "&", "2>", "2>&1"}


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def run_scripts(workflow: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(job id, step name, run script) for every step with `run:`."""
    out = []
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            if "run" in step:
                out.append((job_id, step.get("name", ""), step["run"]))
    return out


def llamabuild_lines(script: str) -> list[list[str]]:
    """argv of each `llamabuild ...` command line (continuations joined, redirections cut)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    commands = []
    for line in joined.splitlines():
        lex = shlex.shlex(line.strip(), posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        tokens = list(lex)
        if not tokens or tokens[0] != "llamabuild":
            continue
        argv = []
        for tok in tokens[1:]:
            if tok in _SHELL_OPS or set(tok) <= set("<>|&;"):
                break
            argv.append(tok)
        commands.append(argv)
    return commands


def all_commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for wf in WORKFLOWS:
        for job_id, _name, script in run_scripts(load(wf)):
            for argv in llamabuild_lines(script):
                found.append((f"{wf.name}:{job_id}", shlex.join(argv), argv))
    return found


def parse_with_cli(argv: list[str]) -> Any:
    """Parse like `llamabuild ARGV` would (a click context), without running anything."""
    group: Any = typer.main.get_command(app)
    split = next(i for i, a in enumerate(argv) if not a.startswith("-"))
    root = group.make_context("llamabuild", argv[: split + 1])
    name = argv[split]
    command = group.get_command(root, name)
    if command is None:
        raise click_exc.UsageError(f"no such command {name!r}")
    return command.make_context(name, argv[split + 1 :], parent=root)


def test_there_are_workflows():
    assert [w.name for w in WORKFLOWS] == ["llamabuild.yml", "tests.yml"]


def test_own_ci_runs_the_suite_on_linux_and_an_apple_silicon_mac():
    """.github/workflows/tests.yml: ubuntu as .ci/run does, macos-14 (arm64) with the Mac-only
    tests (tests/test_mac_only.py, marker `mac`) and without Linux's real llama.cpp build."""
    job = load(ROOT / ".github/workflows/tests.yml")["jobs"]["suite"]
    rows = {row["os"]: row["select"] for row in job["strategy"]["matrix"]["include"]}
    assert rows["macos-14"] == "not real_llama or mac" and rows["ubuntu-24.04"] == ""
    steps = {s.get("name", ""): s for s in job["steps"]}
    assert steps["Install (Linux)"]["run"] == "bash ci/install.sh"
    assert "brew install redis" in steps["Install (macOS)"]["run"]
    assert "python -m pytest" in steps["Run the suite"]["run"]
    assert (ROOT / "tests" / "test_mac_only.py").is_file()


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_valid_against_the_github_workflow_schema(workflow):
    proc = subprocess.run(
        [*SCHEMA_CHECK, str(workflow)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_really_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken workflow.yml"
    broken.write_text(WORKFLOWS[0].read_text().replace("    steps:\n", "    stepz:\n", 1))
    proc = subprocess.run(
        [*SCHEMA_CHECK, str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "stepz" in proc.stdout


@pytest.mark.parametrize(
    ("where", "line", "argv"),
    [pytest.param(w, line, argv, id=f"{w} {line}") for w, line, argv in all_commands()],
)
def test_every_llamabuild_line_parses_with_the_real_cli(where, line, argv):
    try:
        ctx = parse_with_cli(argv)
    except click_exc.ClickException as exc:
        pytest.fail(f"{where}: `llamabuild {line}` does not parse: {exc.format_message()}")
    assert ctx.command.name == argv[0] or ctx.info_name == argv[0]


def test_the_parser_catches_a_bad_option():
    with pytest.raises(click_exc.NoSuchOption):
        parse_with_cli(["verify", "x", "--no-such-flag"])
    with pytest.raises(click_exc.UsageError):
        parse_with_cli(["no-such-command"])


# --- what the workflow does ------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return load(ROOT / "ci" / "llamabuild.yml")


def commands_of(job: dict[str, Any]) -> list[list[str]]:
    return [a for s in job["steps"] if "run" in s for a in llamabuild_lines(s["run"])]


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]


def test_macos_job(workflow):
    job = workflow["jobs"]["macos"]
    assert re.fullmatch(r"macos-(1[4-9]|[2-9]\d)", job["runs-on"])  # Apple Silicon, 14+
    assert uses(job, "actions/setup-python")
    cmds = commands_of(job)
    names = [c[0] for c in cmds]
    assert ["build", "--recipe", "$RECIPE"] in cmds and job["env"]["RECIPE"] == MATRIX_RECIPE
    assert names.index("build") < names.index("verify") < names.index("smoke")
    assert names.index("smoke") < names.index("sign")  # an inherit-signed helper cannot run alone
    assert "--require-sandbox" in cmds[len(names) - 1 - names[::-1].index("verify")]
    signs = [c for c in cmds if c[0] == "sign"]
    identities = {c[c.index("--identity") + 1] for c in signs}
    assert identities == {"$MACOS_SIGNING_IDENTITY", "-"}


def test_signing_identity_from_secrets_in_a_temporary_keychain(workflow):
    job = workflow["jobs"]["macos"]
    assert "secrets.MACOS_SIGNING_P12_BASE64" in job["env"]["HAS_SIGNING_IDENTITY"]
    steps = {s.get("name", ""): s for s in job["steps"]}
    imp = next(s for n, s in steps.items() if "keychain" in n and "Import" in n)
    assert imp["if"] == "env.HAS_SIGNING_IDENTITY == 'true'"
    assert "security create-keychain" in imp["run"] and "$RUNNER_TEMP" in imp["run"]
    assert "security import" in imp["run"]
    adhoc = next(s for n, s in steps.items() if "ad-hoc" in n)
    assert adhoc["if"] == "env.HAS_SIGNING_IDENTITY != 'true'"
    cleanup = next(s for n, s in steps.items() if "Remove the temporary keychain" in n)
    assert cleanup["if"].startswith("always()")
    for step in job["steps"]:
        run = step.get("run", "")
        assert not re.search(r"echo[^\n]*P12_PASSWORD", run)  # never printed


MATRIX_RECIPE = "${{ matrix.recipe }}"


def test_release_matrix_every_macos_recipe_then_one_summary(workflow):
    """The macOS recipes fan out on macOS runners (smoke where the runner runs the binary),
    the cross recipe on ubuntu; the last job summarizes every artifact with release-summary."""
    job = workflow["jobs"]["macos"]
    rows = {r["recipe"]: r for r in job["strategy"]["matrix"]["include"]}
    macos = {p.stem for p in (ROOT / "recipes").glob("macos-*.toml") if "cross" not in p.stem}
    assert set(rows) == macos and not job["strategy"]["fail-fast"]
    assert {r for r, row in rows.items() if not row["smoke"]} == {"macos-x86_64-metal"}
    assert rows["macos-universal"]["arch_a"] != rows["macos-universal"]["arch_b"]
    smoke = next(s for s in job["steps"] if "smoke" in s.get("run", ""))
    assert smoke["if"] == "matrix.smoke"
    assert workflow["jobs"]["cross"]["runs-on"].startswith("ubuntu-")
    release = workflow["jobs"]["release"]
    assert release["needs"] == ["macos", "cross"] and "cancelled()" in release["if"]
    [download] = uses(release, "actions/download-artifact")
    assert download["with"]["pattern"] == "llama-server-*"
    assert ["release-summary", download["with"]["path"], "--json"] in commands_of(release)


def test_shared_remote_cache_from_a_secret_else_the_actions_cache(workflow):
    assert workflow["env"]["LLAMABUILD_CCACHE_REMOTE"] == "${{ secrets.LLAMABUILD_CCACHE_REMOTE }}"
    for job_id in ("macos", "cross"):
        [ccache] = [
            c
            for c in uses(workflow["jobs"][job_id], "actions/cache")
            if "ccache" in c["with"]["path"]
        ]
        assert ccache["if"] == "env.LLAMABUILD_CCACHE_REMOTE == ''"


def test_caches_keyed_by_lock_and_recipe(workflow):
    for job_id, recipe in (("macos", MATRIX_RECIPE), ("cross", "macos-arm64-cpu-cross")):
        job = workflow["jobs"][job_id]
        caches = uses(job, "actions/cache")
        paths = {p for c in caches for p in c["with"]["path"].split()}
        # llamabuild/builder/plan.py puts ccache under the cache root; sources beside it.
        assert paths == {
            f".llamabuild-cache/{d}" for d in ("git", "downloads", "archives", "ccache")
        }
        assert job["env"]["LLAMABUILD_CACHE"].endswith("/.llamabuild-cache")
        for c in caches:
            assert recipe in c["with"]["key"]
            assert "hashFiles('llamabuild.lock'" in c["with"]["key"]


def test_artifacts(workflow):
    for job_id, recipe in (("macos", MATRIX_RECIPE), ("cross", "macos-arm64-cpu-cross")):
        [upload] = uses(workflow["jobs"][job_id], "actions/upload-artifact")
        assert upload["with"]["name"] == f"llama-server-{recipe}"
        paths = upload["with"]["path"].splitlines()
        for name in ("llama-server", "llama-server.dSYM", "manifest.json"):
            assert f"dist/{recipe}/{name}" in paths
        assert upload["with"]["if-no-files-found"] == "error"


def test_cross_job(workflow):
    job = workflow["jobs"]["cross"]
    assert job["runs-on"].startswith("ubuntu-")
    cmds = commands_of(job)
    assert ["build", "--recipe", "macos-arm64-cpu-cross"] in cmds
    assert any(c[0] == "verify" and "--arch" in c for c in cmds)
    [sign] = [c for c in cmds if c[0] == "sign"]
    assert sign[sign.index("--identity") + 1] == "-"


def test_no_server_ever_binds_all_interfaces():
    for wf in WORKFLOWS:
        assert "0.0.0.0" not in wf.read_text()


def test_quickstart_pins_into_the_one_default_lock():
    """A plain `llamabuild build` after the quick start must find the quick start's pin: the
    script writes ./llamabuild.lock (the default), not a lock of its own."""
    script = (ROOT / "ci" / "quickstart.sh").read_text()
    assert "--lock" not in script
    from llamabuild.source.lock import LOCK_NAME

    assert LOCK_NAME == "llamabuild.lock"  # the default of every command's --lock
    assert "/llamabuild.lock" in (ROOT / ".gitignore").read_text().splitlines()


def test_workflow_pins_the_cross_tools_as_the_cross_extra() -> None:
    """zig and ccache shape the bytes: the shipped workflow installs exactly the `cross` pins
    (rebuild refuses other versions)."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = extra["cross"]
    assert pins and all("==" in p for p in pins)
    assert all(p in extra["test"] for p in pins)
    text = (root / "ci" / "llamabuild.yml").read_text()
    assert all(p in text for p in pins)
