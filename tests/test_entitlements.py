"""`llamabuild entitlements`: presets rendered from templates, parsed back, linted (every rule)."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

import pytest

from llamabuild.cli import run
from llamabuild.signing import entitlements as ent

SANDBOX = "com.apple.security.app-sandbox"
INHERIT = "com.apple.security.inherit"
GUIDE_SET = {
    SANDBOX: True,
    "com.apple.security.network.server": True,
    "com.apple.security.network.client": True,
    "com.apple.security.files.user-selected.read-only": True,
    "com.apple.security.files.user-selected.read-write": True,
}


def rules(findings) -> set[tuple[str, str]]:
    return {(f.rule, f.severity.value) for f in findings}


def test_templates_are_found_and_listed():
    root = Path(__file__).resolve().parents[1]
    assert ent.templates_dir() == root / "templates" / "entitlements"
    assert {"app-helper", "standalone-server"} <= set(ent.presets())
    assert "_plist" not in ent.presets()  # the shared layout is not a preset


def test_app_helper_is_exactly_sandbox_and_inherit():
    result = ent.resolve(preset="app-helper")
    assert result.data == {SANDBOX: True, INHERIT: True}
    assert result.findings == ()
    assert plistlib.loads(result.xml) == result.data


def test_default_preset_is_app_helper():
    assert ent.resolve().source == "preset app-helper"


def test_standalone_server_is_the_guides_set_without_the_exception():
    result = ent.resolve(preset="standalone-server")
    assert result.data == GUIDE_SET
    assert result.findings == ()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("false", False),
        ("42", 42),
        ("-3", -3),
        ("TEAM.group", "TEAM.group"),
        ("[a, b]", ["a", "b"]),
        ("[]", []),
        ("True", "True"),  # only the lower-case plist spellings are booleans
    ],
)
def test_set_values_are_typed(text, value):
    assert ent.parse_value(text) == value


def test_set_overrides_a_preset_key_without_duplicating_it():
    result = ent.resolve(
        preset="app-helper",
        sets=[f"{INHERIT}=false", "com.apple.security.application-groups=[T1.group, T1.x]"],
    )
    assert result.xml.count(INHERIT.encode()) == 1
    assert result.data[INHERIT] is False
    assert result.data["com.apple.security.application-groups"] == ["T1.group", "T1.x"]


def test_values_are_xml_escaped():
    result = ent.resolve(sets=["com.apple.security.application-groups=[a<b&c]"])
    assert result.data["com.apple.security.application-groups"] == ["a<b&c"]


def test_extra_keys_from_llamabuild_toml(tmp_path):
    (tmp_path / "llamabuild.toml").write_text(
        '[entitlements]\npreset = "standalone-server"\n'
        '"com.apple.security.application-groups" = ["TEAM.shared"]\n'
        '[sign]\nidentifier = "com.example.app.llama-server"\n'
    )
    cfg = ent.load_config(search_dir=tmp_path)
    assert cfg.preset == "standalone-server"
    assert cfg.identifier == "com.example.app.llama-server"
    result = ent.resolve(config=cfg, sets=["com.apple.security.network.client=false"])
    assert result.data == {
        **GUIDE_SET,
        "com.apple.security.network.client": False,
        "com.apple.security.application-groups": ["TEAM.shared"],
    }


# ------------------------------------------------------------------ one case per lint rule


def test_lint_unknown_key_says_did_you_mean():
    findings = ent.lint({SANDBOX: True, "com.apple.security.netwrk.client": True})
    assert rules(findings) == {("entitlement-unknown-key", "error")}
    assert "did you mean com.apple.security.network.client?" in findings[0].message


def test_lint_unknown_key_without_a_close_match():
    findings = ent.lint({"totally.made.up": True})
    assert rules(findings) == {("entitlement-unknown-key", "error")}
    assert "did you mean" not in findings[0].message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (SANDBOX, "YES"),
        (SANDBOX, 1),
        ("com.apple.security.application-groups", "TEAM.group"),
        ("com.apple.security.temporary-exception.files.absolute-path.read-only", [1]),
        ("com.apple.application-identifier", True),
    ],
)
def test_lint_wrong_value_type(key, value):
    assert ("entitlement-type", "error") in rules(ent.lint({SANDBOX: True, key: value}))


def test_lint_temporary_exception_is_a_warning():
    key = "com.apple.security.temporary-exception.files.absolute-path.read-only"
    findings = ent.lint({**GUIDE_SET, key: ["/tmp/"]})  # the guide's own plist
    assert rules(findings) == {("entitlement-temporary-exception", "warning")}


def test_lint_network_and_file_keys_next_to_inherit_warn():
    data = {SANDBOX: True, INHERIT: True, **GUIDE_SET}
    findings = ent.lint(data)
    assert rules(findings) == {("entitlement-ignored-with-inherit", "warning")}
    assert len(findings) == 4  # network.server, network.client, two files keys


def test_lint_inherit_without_sandbox_is_an_error():
    assert rules(ent.lint({INHERIT: True})) == {("entitlement-inherit-without-sandbox", "error")}
    both = ent.lint({INHERIT: True, SANDBOX: False})
    assert ("entitlement-inherit-without-sandbox", "error") in rules(both)


def test_every_key_type_in_the_data_file_is_understood():
    data = ent.key_data()
    assert set(data["keys"].values()) <= set(ent._TYPE_NAMES)
    assert SANDBOX in data["keys"]
    assert INHERIT in data["keys"]


# ------------------------------------------------------------------ CLI


def test_cli_prints_the_plist(capsys):
    assert run(["entitlements", "--preset", "app-helper"]) == 0
    out = capsys.readouterr().out
    assert plistlib.loads(out.encode()) == {SANDBOX: True, INHERIT: True}


def test_cli_json_and_output_file_in_a_folder_with_spaces(tmp_path, capsys):
    out_file = tmp_path / "My Project" / "llama-server.entitlements"
    code = run(["entitlements", "--preset", "standalone-server", "-o", str(out_file), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert payload["ok"] is True
    assert payload["output"] == str(out_file)
    assert payload["entitlements"] == GUIDE_SET
    assert plistlib.loads(out_file.read_bytes()) == GUIDE_SET
    assert [p.name for p in out_file.parent.iterdir()] == [out_file.name]  # no temp left


def test_cli_lint_error_exits_1_and_writes_nothing(tmp_path, capsys):
    out_file = tmp_path / "e.plist"
    code = run(
        ["entitlements", "--set", "com.apple.security.netwrk.client=true", "-o", str(out_file)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert not out_file.exists()
    assert "did you mean com.apple.security.network.client" in err


def test_cli_lints_an_existing_file(tmp_path, capsys):
    plist = tmp_path / "guide.entitlements"
    key = "com.apple.security.temporary-exception.files.absolute-path.read-only"
    plist.write_bytes(plistlib.dumps({**GUIDE_SET, key: ["/tmp/"]}))
    code = run(["entitlements", "--entitlements", str(plist), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0  # a warning does not fail
    assert [f["rule"] for f in payload["findings"]] == ["entitlement-temporary-exception"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--preset", "app-helpr"], "did you mean 'app-helper'"),
        (["--set", "no-equals-sign"], "expected KEY=VALUE"),
        (["--preset", "app-helper", "--entitlements", "x.plist"], "exclude each other"),
        (["--entitlements", "/nonexistent/e.plist"], "no such file"),
    ],
)
def test_cli_usage_errors_exit_2(capsys, args, needle):
    assert run(["entitlements", *args]) == 2
    assert needle in capsys.readouterr().err


def test_cli_bad_config_exits_2(tmp_path, capsys):
    cfg = tmp_path / "llamabuild.toml"
    cfg.write_text("[entitlements\n")
    assert run(["entitlements", "--config", str(cfg)]) == 2
    assert "invalid TOML" in capsys.readouterr().err
    cfg.write_text('[entitlements]\n"com.apple.x" = 2024-01-01\n')
    assert run(["entitlements", "--config", str(cfg)]) == 2


def test_cli_not_a_plist_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.plist"
    bad.write_text("<plist><dict><key>x</key></plist>")
    assert run(["entitlements", "--entitlements", str(bad)]) == 2
    assert "not a valid property list" in capsys.readouterr().err


@pytest.mark.parametrize("below", ["x.plist", "sub/x.plist"])
def test_cli_output_below_a_regular_file_exits_2(tmp_path, capsys, below):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    code = run(["entitlements", "-o", str(afile / below)])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot write" in err and "internal error" not in err and "hint:" in err
    assert afile.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no temp left


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_cli_output_mode_follows_the_umask_and_creates_parents(tmp_path, capsys, umask, mode):
    import os
    import stat

    out_file = tmp_path / "new" / "dir" / "x.plist"
    old = os.umask(umask)
    try:
        assert run(["entitlements", "-o", str(out_file)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out_file.stat().st_mode) == mode
    assert os.umask(old) == old  # the umask is left as it was


def test_cli_binary_plist_is_printed_as_xml(tmp_path, capsys):
    plist = tmp_path / "bin.plist"
    plist.write_bytes(plistlib.dumps(GUIDE_SET, fmt=plistlib.FMT_BINARY))
    assert run(["entitlements", "--entitlements", str(plist)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<?xml")
    assert plistlib.loads(out.encode()) == GUIDE_SET
    assert run(["entitlements", "--entitlements", str(plist), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["plist"].startswith("<?xml") and "\ufffd" not in payload["plist"]
    assert plistlib.loads(payload["plist"].encode()) == GUIDE_SET


def test_cli_xml_file_is_printed_as_written(tmp_path, capsys):
    plist = tmp_path / "commented.plist"
    text = plistlib.dumps(GUIDE_SET).decode().replace("<dict>", "<dict>\n<!-- mine -->", 1)
    plist.write_text(text)
    assert run(["entitlements", "--entitlements", str(plist)]) == 0
    assert capsys.readouterr().out == text


def test_cli_markup_in_paths_is_shown_literally(tmp_path, capsys):
    folder = tmp_path / "a[" / "[red]b"
    folder.mkdir(parents=True)
    plist = folder / "]c.plist"  # the path text contains "a[/[red]b/]c": rich markup
    key = "com.apple.security.temporary-exception.files.absolute-path.read-only"
    plist.write_bytes(plistlib.dumps({**GUIDE_SET, key: ["/tmp/"]}))
    out_file = folder / "[bold]out.plist"
    code = run(["entitlements", "--entitlements", str(plist), "-o", str(out_file)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"wrote {out_file} ({plist}, 6 keys)" in err
    assert f"Entitlements lint ({plist})" in err
    code = run(
        ["entitlements", "--entitlements", str(plist), "--set", "x.y=1", "-o", str(out_file)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert f"not written: {out_file}" in err
