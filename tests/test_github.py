"""GitHub Actions citizenship: annotations for findings and a markdown step summary, only when
GITHUB_ACTIONS=true; `--json` output unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from llamabuild.builder import manifest as mf
from llamabuild.builder.manifest import Manifest
from llamabuild.cli import run
from llamabuild.config.settings import from_mapping
from llamabuild.core import github
from llamabuild.core.errors import ConfigError
from llamabuild.core.findings import error, warning
from llamabuild.core.jsonout import to_jsonable
from llamabuild.inspect.structure import read_uuids


@pytest.fixture
def actions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    summary = tmp_path / "step summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


def test_summary_markdown_has_recipe_commit_outputs_and_findings(tmp_path):
    binary = tmp_path / "llama-server"
    binary.write_bytes(b"\xcf\xfa\xed\xfe" + b"x" * 5000)
    out = github.Output.of_file(binary, {"arm64": "01234567-89AB-CDEF-0123-456789ABCDEF"})
    assert out.sha256 == hashlib.sha256(binary.read_bytes()).hexdigest()
    md = github.summary_markdown(
        "llamabuild build",
        [
            error("rpath-dependency", "links @rpath/libmtmd.dylib | bad", arch="arm64", hint="fix"),
            warning("stray-rpath", "LC_RPATH\nwithout use"),
        ],
        recipe="macos-arm64-metal",
        commit="0c1e570" + "0" * 33,
        outputs=[out],
    )
    assert md.startswith("### llamabuild build: ❌ FAIL (1 error(s), 1 warning(s))")
    assert "- **recipe**: `macos-arm64-metal`" in md
    assert f"`{'0c1e570' + '0' * 33}`" in md
    assert f"| `{binary}` | `{out.sha256}` | arm64: 01234567-89AB-CDEF-0123-456789ABCDEF |" in md
    assert "links @rpath/libmtmd.dylib \\| bad (hint: fix)" in md  # a pipe cannot break the table
    assert "LC_RPATH<br>without use" in md
    assert md.endswith("\n\n")


def test_ok_summary_without_findings():
    md = github.summary_markdown("llamabuild verify", [], recipe="x")
    assert "✅ OK (0 error(s), 0 warning(s))" in md
    assert "| severity |" not in md


def test_nothing_outside_actions(tmp_path, monkeypatch, capsys):
    summary = tmp_path / "summary.md"
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    github.publish("t", [error("tool-missing", "m")])
    assert not summary.exists()
    assert capsys.readouterr().err == ""


def test_publish_appends_and_annotates(actions, capsys):
    github.publish("first", [error("tool-missing", "xcrun not found", hint="install Xcode")])
    github.publish("second", [])
    text = actions.read_text()
    assert text.startswith("# earlier step\n")  # appended, never overwritten
    assert text.index("### first") < text.index("### second")
    err = capsys.readouterr().err
    assert "::error title=llamabuild tool-missing::xcrun not found (hint: install Xcode)" in err


def test_unwritable_summary_is_not_fatal(monkeypatch, tmp_path):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no such dir" / "s.md"))
    assert github.append_summary("x") is None


def _manifest() -> Manifest:
    # The shape `llamabuild build` writes (llamabuild/builder/run.py), read by the one loader.
    data = {
        "schema": 1,
        "recipe": "macos-arm64-cpu-cross",
        "source": {"kind": "archive", "url": "/x/llama.tar.gz", "commit": None, "sha256": "e" * 64},
        "slices": [],
        "versions": {},
        "compilers": {},
        "host": {},
        "outputs": [
            {"path": "llama-server", "role": "binary", "sha256": "a" * 64, "uuids": {"arm64": "U"}},
            {"path": "llama-server.dSYM", "role": "dsym"},
            {
                "path": "llama-server.dSYM/Contents/Resources/DWARF/llama-server",
                "role": "dsym-dwarf",
                "uuids": {"x": None},
            },
        ],
        "inputs_key": "k",
        "verify": {"ok": True, "findings": []},
        "built_at": "2026-01-01T00:00:00+00:00",
    }
    return from_mapping(Manifest, data, "manifest.json")


def test_outputs_from_manifest():
    outs = mf.summary_outputs(_manifest())
    assert outs[0] == github.Output("llama-server", "a" * 64, {"arm64": "U"})
    assert outs[1] == github.Output("llama-server.dSYM", None, {})
    assert outs[2].uuids == {}  # an unknown UUID is left out


def test_manifest_shapes_the_build_never_writes_are_refused():
    with pytest.raises(ConfigError, match="outputs` must be a list of tables"):
        from_mapping(Manifest, {**to_jsonable(_manifest()), "outputs": {}}, "m.json")
    bad = to_jsonable(_manifest())
    bad["outputs"][0]["uuid"] = "U"
    with pytest.raises(ConfigError, match=r"unknown key 'outputs\[0\]\.uuid'"):
        from_mapping(Manifest, bad, "m.json")


def test_publish_manifest(actions):
    mf.publish_summary(_manifest(), [], "llamabuild build", root=Path("dist/macos-arm64-cpu-cross"))
    text = actions.read_text()
    assert "`macos-arm64-cpu-cross`" in text and "e" * 64 in text
    assert f"| `dist/macos-arm64-cpu-cross/llama-server` | `{'a' * 64}` | arm64: U |" in text
    assert "| `dist/macos-arm64-cpu-cross/llama-server.dSYM` | `-` | - |" in text


@pytest.mark.compile
def test_real_macho_output_uuid(clean_arm64):
    uuids = {a: u for a, u in read_uuids(clean_arm64).items() if u}
    out = github.Output.of_file(clean_arm64, uuids)
    md = github.summary_markdown("llamabuild verify", [], outputs=[out])
    assert f"arm64: {uuids['arm64']}" in md


def test_doctor_under_actions(actions, capsys):
    code = run(["doctor", "--recipe", "macos-arm64-metal", "--json"])
    cap = capsys.readouterr()
    data = json.loads(cap.out)  # stdout stays exactly one JSON object
    text = actions.read_text()
    assert "### llamabuild doctor (macos-arm64-metal)" in text
    if code == 1:
        assert "::error title=llamabuild tool-missing::" in cap.err
        assert "| error | `tool-missing` |" in text
    else:
        assert data["ok"] is True


def test_smoke_failure_under_actions_is_a_plain_error(actions, capsys, tmp_path):
    # smoke failures are errors (exit 3), not findings: one error line, no summary noise.
    code = run(["smoke", "--binary", str(tmp_path / "missing")])
    assert code == 2
    assert actions.read_text() == "# earlier step\n"


def test_untrusted_text_never_reaches_the_summary_raw() -> None:
    """release-summary's step summary wrote ESC and BEL from a manifest raw."""
    bad = "x\x1b]0;pwned\x07\x1b[31m<img src=x>`|"
    md = github.summary_markdown(
        "t",
        [error("rpath-dependency", bad, arch="arm\x1b", hint="h\x07")],
        recipe=bad,
        outputs=[github.Output(f"p{bad}", f"s{bad}", {"arm64": bad})],
        extra={f"k{bad}": bad},
    )
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in md)
    assert "\\x1b]0;pwned\\x07" in md and "| x\\x1b]0;pwned\\x07\\x1b[31m&lt;img" in md
