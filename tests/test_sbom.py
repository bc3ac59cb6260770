"""The SBOM and third-party notices of a build (llamabuild/provenance/), on a copy of
tests/cmake_project with fake vendored directories laid out like llama.cpp's: a static library
linked by llama-server, a static library of which the linker takes one member only, a
header-only library linked transitively, one linked only by another tool, and one not built at
all. Real cmake + ninja + cc builds, the shipped vendored-components table, no mocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from llamabuild.config.domain import PinKind
from llamabuild.core.resources import data_text
from llamabuild.provenance import shipped_notices
from llamabuild.provenance.components import find_components, load_table
from llamabuild.provenance.fileapi import linked_tree
from llamabuild.provenance.linkcheck import LinkEvidence
from llamabuild.provenance.sbom import llama_purl, validate
from llamabuild.source.lock import Pin
from tests.fixtures.macho import ARCH_TARGET, MachOFactory, have_toolchain, tool
from tests.test_build import PROJECT, RECIPE
from tests.test_schemas import assert_valid
from tests.test_verify_app import make_app, parts  # noqa: F401  (parts: the Mach-O fixture)

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")

LICENSE = 'MIT License\n\nCopyright (c) 2023 The ggml authors <test fixture> & "friends"\n'
FILES = {
    "LICENSE": LICENSE,
    "vendor/CMakeLists.txt": "add_subdirectory(cpp-httplib)\nadd_subdirectory(hash)\n"
    "add_subdirectory(nlohmann)\nadd_subdirectory(stb)\n",
    "vendor/cpp-httplib/CMakeLists.txt": "add_library(cpp-httplib STATIC httplib.c)\n"
    "target_include_directories(cpp-httplib PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n",
    "vendor/cpp-httplib/httplib.h": '#define CPPHTTPLIB_VERSION "0.0.1-test"\n'
    "int httplib_answer(void);\n",
    "vendor/cpp-httplib/httplib.c": "int httplib_answer(void) { return 1; }\n",
    "vendor/cpp-httplib/LICENSE": "The MIT License (MIT)\nCopyright (c) 2099 httplib-test\n",
    "vendor/hash/CMakeLists.txt": "add_library(vendor-hash STATIC xxhash/xxhash.c "
    "sha256/sha256.c)\ntarget_include_directories(vendor-hash PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}"
    " PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})\n",
    "vendor/hash/xxhash/xxhash.h": "#define XXH_VERSION_MAJOR 0\n#define XXH_VERSION_MINOR 8\n"
    "#define XXH_VERSION_RELEASE 3\n",
    "vendor/hash/xxhash/xxhash.c": "int XXH_fixture_unused(int x) { return x * 31; }\n",
    "vendor/hash/xxhash/LICENSE": "xxHash fixture BSD-2-Clause text\n",
    "vendor/hash/sha256/sha256.c": '#include "rotate-bits/rotate-bits.h"\n'
    "int sha256_answer(void) { return ROTL(1); }\n",
    "vendor/hash/sha256/LICENSE": "2010-06-11 : fixture : Public domain\n",
    "vendor/hash/rotate-bits/rotate-bits.h": "#define ROTL(x) ((x) << 1)\n",
    "vendor/hash/rotate-bits/LICENSE.md": "MIT License\nCopyright (c) 2021 rotate-fixture\n",
    "vendor/nlohmann/CMakeLists.txt": "add_library(nlohmann INTERFACE)\n"
    "target_include_directories(nlohmann INTERFACE ${CMAKE_CURRENT_SOURCE_DIR})\n",
    "vendor/nlohmann/json.hpp": "#define NLOHMANN_JSON_VERSION_MAJOR 3\n"
    "#define NLOHMANN_JSON_VERSION_MINOR 99\n#define NLOHMANN_JSON_VERSION_PATCH 1\n",
    "licenses/LICENSE-jsonhpp": "MIT License\n\nCopyright (c) 2013-2099 json-fixture\n",
    "vendor/stb/CMakeLists.txt": "add_library(stb INTERFACE)\n",
    "vendor/stb/stb_image.h": "/* stb_image - v9.99 - fixture */\n",
    "vendor/miniaudio/miniaudio.h": "/* miniaudio fixture: in the tree, never built */\n",
    "tools/other/CMakeLists.txt": "add_executable(llama-other other.c)\n"
    "target_link_libraries(llama-other PRIVATE stb)\n",
    "tools/other/other.c": "int main(void) { return 0; }\n",
}
SERVER_CALLS = "int httplib_answer(void);\nint sha256_answer(void);\n"
LINKED = {"llama.cpp", "cpp-httplib", "nlohmann-json", "sha256.c", "rotate-bits.h"}
NOT_LINKED = {"xxHash", "stb_image", "miniaudio", "subprocess.h", "sha1"}


def vendored_project(dest: Path) -> Path:
    """tests/cmake_project plus the vendored layout above (written here, in the test's tmp)."""
    shutil.copytree(PROJECT, dest)
    for rel, text in FILES.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    root = dest / "CMakeLists.txt"
    text = root.read_text().replace(
        "add_subdirectory(ggml)\n",
        "set(CMAKE_EXPORT_COMPILE_COMMANDS ON)\nadd_subdirectory(ggml)\n",
    )
    others = "add_subdirectory(vendor)\nadd_subdirectory(tools/other)\n"
    root.write_text(text.replace("add_subdirectory(vendor/minihttp)\n", others))
    ggml = dest / "ggml" / "src" / "CMakeLists.txt"
    ggml.write_text(ggml.read_text() + "target_link_libraries(ggml PUBLIC nlohmann)\n")
    server_cmake = dest / "tools" / "server" / "CMakeLists.txt"
    server_cmake.write_text(
        server_cmake.read_text().replace(
            "target_link_libraries(llama-server PRIVATE ggml)",
            "target_link_libraries(llama-server PRIVATE ggml cpp-httplib vendor-hash)",
        )
    )
    server = dest / "tools" / "server" / "server.c"
    calls = "ggml_answer() + httplib_answer() + sha256_answer());"
    server.write_text(SERVER_CALLS + server.read_text().replace("ggml_answer());", calls))
    return dest


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    proj = tmp_path / "My App"
    (proj / "recipes").mkdir(parents=True)
    (proj / "recipes" / "test-native.toml").write_text(RECIPE.format(policy="glibc"))
    vendored_project(proj / "llama src")
    monkeypatch.chdir(proj)
    monkeypatch.setenv("LLAMABUILD_CACHE", str(tmp_path / "cache"))
    return proj


def build(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = run(["build", "-r", "test-native", "--source", "llama src", "--json"])
    return code, json.loads(capsys.readouterr().out)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sbom_lists_what_is_linked_and_validates(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = build(capsys)
    assert code == 0, out
    dist = work / "dist" / "test-native"
    text = (dist / "llama-server.cdx.json").read_text()
    assert validate(text) is None  # the CycloneDX 1.6 JSON schema, strict
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6" and bom["bomFormat"] == "CycloneDX"
    names = {c["name"] for c in bom["components"]}
    assert names == LINKED
    assert not names & NOT_LINKED
    # A dynamic C build: glibc is libc.so.6 at run time, nothing of the toolchain is listed
    # (tests/test_toolchain_components.py builds the static ones).
    assert not [c for c in bom["components"] if c["bom-ref"].startswith("toolchain:")]
    by_name = {c["name"]: c for c in bom["components"]}
    assert by_name["cpp-httplib"]["version"] == "0.0.1-test"
    assert by_name["nlohmann-json"]["version"] == "3.99.1"  # header-only, linked through ggml
    assert by_name["llama.cpp"]["purl"] == "pkg:github/ggml-org/llama.cpp"  # a dir: no commit
    assert by_name["sha256.c"]["licenses"] == [{"license": {"name": "Public Domain"}}]
    root = bom["metadata"]["component"]
    assert root["name"] == "llama-server" and root["type"] == "application"
    assert root["hashes"] == [{"alg": "SHA-256", "content": sha256(dist / "llama-server")}]
    assert {"name": "llamabuild:arch", "value": "x86_64"} in root["properties"]
    (dep,) = [d for d in bom["dependencies"] if d["ref"] == "llama-server"]
    assert len(dep["dependsOn"]) == len(LINKED)
    # xxhash.c was compiled into libvendor-hash.a, but nothing calls it: the linker left it.
    build_dir = Path(out["manifest"]["slices"][0]["configure_argv"][-1])
    assert list(build_dir.rglob("xxhash.c.o"))


def test_manifest_records_sbom_and_notices(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = build(capsys)
    assert code == 0, out
    dist = work / "dist" / "test-native"
    manifest = json.loads((dist / "manifest.json").read_text())
    assert_valid("manifest", manifest)
    roles = {o["role"]: o for o in manifest["outputs"]}
    for role, name in [
        ("sbom", "llama-server.cdx.json"),
        ("notices", "THIRD_PARTY_NOTICES.txt"),
        ("credits", "Credits.html"),
    ]:
        assert roles[role]["path"] == name and roles[role]["sha256"] == sha256(dist / name)
    assert not [f for f in manifest["verify"]["findings"] if f["rule"] == "license-text-missing"]
    code, again = build(capsys)
    assert code == 0 and again["skipped"] is True  # the SBOM is part of the no-op check


def test_notices_carry_every_license_text_from_the_tree(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(capsys)[0] == 0
    dist = work / "dist" / "test-native"
    notices = (dist / "THIRD_PARTY_NOTICES.txt").read_text()
    credits = (dist / "Credits.html").read_text()
    src = work / "llama src"
    for rel in [
        "LICENSE",
        "vendor/cpp-httplib/LICENSE",
        "licenses/LICENSE-jsonhpp",
        "vendor/hash/sha256/LICENSE",
        "vendor/hash/rotate-bits/LICENSE.md",
    ]:
        assert (src / rel).read_text().strip() in notices, rel
        assert f"[{rel}]" in notices
    for absent in ["xxHash fixture", "vendor/stb", "miniaudio"]:
        assert absent not in notices
    assert "built from llama.cpp" in notices
    # Credits.html: the same texts, HTML-escaped (the fixture's LICENSE has <, > and &).
    assert "&lt;test fixture&gt; &amp; &#34;friends&#34;" in credits
    assert "<test fixture>" not in credits
    assert "rotate-fixture" in credits and "json-fixture" in credits


def test_missing_license_text_is_a_warning_and_still_published(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "llama src" / "vendor" / "cpp-httplib" / "LICENSE").unlink()
    code, out = build(capsys)
    assert code == 0 and out["published"] is True
    (finding,) = [f for f in out["findings"] if f["rule"] == "license-text-missing"]
    assert finding["severity"] == "warning" and "cpp-httplib" in finding["message"]


def test_code_model_walk_follows_link_libraries(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = build(capsys)
    assert code == 0
    build_dir = Path(out["manifest"]["slices"][0]["configure_argv"][-1])
    tree = linked_tree(build_dir, "llama-server")
    assert {"llama-server", "ggml", "cpp-httplib", "vendor-hash", "nlohmann"} <= set(tree.targets)
    assert "llama-other" not in tree.targets and "stb" not in tree.targets
    assert "tools/server/server.c" in tree.files
    assert {"vendor/hash/xxhash/xxhash.c", "vendor/hash/sha256/sha256.c"} <= set(tree.archived)
    assert tree.dirs == ("vendor/nlohmann",)
    assert tree.objects["vendor/hash/xxhash/xxhash.c"].endswith("xxhash.c.o")
    other = linked_tree(build_dir, "llama-other")
    assert other.dirs == ("vendor/stb",)


def as_older_cmake(build_dir: Path, dest: Path) -> Path:
    """The reply as CMake before codemodel 2.9 writes it (checked against CMake 3.31.6): no
    INTERFACE targets, no linkLibraries; the include directories are all that is left."""
    shutil.copytree(build_dir / ".cmake", dest / ".cmake")
    shutil.copy2(build_dir / "compile_commands.json", dest)
    for path in (dest / ".cmake" / "api" / "v1" / "reply").glob("*.json"):
        data = json.loads(path.read_text())
        for key in ("linkLibraries", "interfaceLinkLibraries", "abstractTargets"):
            data.pop(key, None)
        for config in data.get("configurations", []):
            config.pop("abstractTargets", None)
        path.write_text(json.dumps(data))
    return dest


def test_older_cmake_finds_header_only_libraries_through_include_dirs(
    work: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = build(capsys)
    assert code == 0
    build_dir = Path(out["manifest"]["slices"][0]["configure_argv"][-1])
    old = linked_tree(as_older_cmake(build_dir, tmp_path / "old"), "llama-server")
    assert old.dirs == () and "vendor/nlohmann" in old.include_dirs
    binary = work / "dist" / "test-native" / "llama-server"
    found = find_components(work / "llama src", [old], None, LinkEvidence(binary).linked)
    assert {c.name for c in found.all} == LINKED  # nlohmann still found; xxHash still not
    assert found.not_linked == ("xxHash",)


def test_shipped_table_is_well_formed() -> None:
    from license_expression import get_spdx_licensing

    raw = tomllib.loads(data_text("vendored_components.toml"))
    table = load_table()
    names = [c.name for c in table.component]
    assert len(names) == len(set(names)) == len(raw["component"])
    spdx = get_spdx_licensing()
    for spec in (table.project, *table.component):
        assert spec.source and spec.texts, spec.name
        assert (spec.license is None) != (spec.license_name is None), spec.name
        if spec.license:
            assert not spdx.validate(spec.license).errors, spec.license
        for rel in (*spec.paths, *(t.file for t in spec.texts)):
            assert ".." not in Path(rel).parts and not Path(rel).is_absolute()


def test_purl_of_each_pin_kind() -> None:
    commit = "0c1e570" + "0" * 33
    git = Pin(kind=PinKind.GIT, url="https://github.com/Acme/llama.cpp.git", commit=commit)
    assert llama_purl(git) == f"pkg:github/acme/llama.cpp@{commit}"
    mirror = Pin(kind=PinKind.GIT, url="https://gitlab.example/x/llama.cpp", commit=commit)
    assert llama_purl(mirror) == f"pkg:github/ggml-org/llama.cpp@{commit}"
    archive = Pin(kind=PinKind.ARCHIVE, url="https://x/y.tar.gz", ref="0c1e570", commit="0c1e570")
    assert llama_purl(archive) == "pkg:github/ggml-org/llama.cpp@0c1e570"


# --- verify-app: notices-missing ----------------------------------------------------------------


def fake_app(tmp_path: Path) -> Path:
    resources = tmp_path / "A.app" / "Contents" / "Resources"
    resources.mkdir(parents=True)
    (resources / "llama-server").write_bytes(b"\xcf\xfa\xed\xfe")
    return tmp_path / "A.app"


def rules(app: Path) -> list[str]:
    helper = app / "Contents" / "Resources" / "llama-server"
    return [f.rule for f in shipped_notices.check_notices(app, helper)]


def test_notices_found_in_credits_or_a_localized_rtf(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    res = app / "Contents" / "Resources"
    assert rules(app) == ["notices-missing"]
    (res / "Credits.html").write_text("<p>Made with love</p>")  # names nothing
    assert rules(app) == ["notices-missing"]
    (res / "en.lproj").mkdir()
    (res / "en.lproj" / "Credits.rtf").write_text(r"{\rtf1 This app uses llama.cpp (MIT)}")
    assert rules(app) == []


def test_notices_found_in_a_licenses_folder(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    folder = app / "Contents" / "Resources" / "Licenses"
    folder.mkdir()
    (folder / "server.txt").write_text("llama.cpp: MIT License")
    assert rules(app) == []
    (folder / "server.txt").write_text("ggml")
    (app / "Contents" / "Resources" / "Credits.rtfd").mkdir()
    (app / "Contents" / "Resources" / "Credits.rtfd" / "TXT.rtf").write_text("llama.cpp")
    assert rules(app) == []


def test_notices_check_never_opens_a_fifo(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    os.mkfifo(app / "Contents" / "Resources" / "Credits.html")
    assert rules(app) == ["notices-missing"]  # returned: no blocking open()


def test_no_helper_no_notices_finding(tmp_path: Path) -> None:
    app = fake_app(tmp_path)
    (app / "Contents" / "Resources" / "llama-server").unlink()
    assert rules(app) == []


def test_verify_app_warns_notices_missing(
    capsys: pytest.CaptureFixture[str],
    parts: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path, parts)
    (app / "Contents" / "Resources" / "Credits.html").unlink()
    code = run(["verify-app", str(app), "--json"])
    rep = json.loads(capsys.readouterr().out)
    found = [f for f in rep["findings"] if f["rule"] == "notices-missing"]
    assert code == 0 and len(found) == 1 and found[0]["severity"] == "warning"
    assert "Credits.html" in found[0]["hint"]


def test_cyclonedx_is_not_imported_by_verify_app() -> None:
    code = "import sys, llamabuild.appstore.verify_app; print('cyclonedx' in sys.modules)"
    root = Path(__file__).parent.parent
    argv = [sys.executable, "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


# --- CI: attest and upload the SBOM and notices -------------------------------------------------

PUBLISHED = ("llama-server.cdx.json", "THIRD_PARTY_NOTICES.txt", "Credits.html")


def test_ci_attests_and_uploads_sbom_and_notices() -> None:
    import yaml

    workflow = yaml.safe_load((Path(__file__).parent.parent / "ci" / "llamabuild.yml").read_text())
    jobs = [  # every job that builds (not the release summary)
        job
        for job in workflow["jobs"].values()
        if any("llamabuild build" in str(step.get("run", "")) for step in job["steps"])
    ]
    assert len(jobs) >= 2
    for job in jobs:
        assert job["permissions"]["id-token"] == "write"
        assert job["permissions"]["attestations"] == "write"
        uses = [str(s.get("uses", "")).split("@")[0] for s in job["steps"]]
        attest = job["steps"][uses.index("actions/attest-build-provenance")]
        upload = job["steps"][uses.index("actions/upload-artifact")]
        assert uses.index("actions/attest-build-provenance") < uses.index("actions/upload-artifact")
        assert attest["if"] == "github.event_name != 'pull_request'"  # no id-token there
        subjects = attest["with"]["subject-path"].split()
        uploaded = upload["with"]["path"].split()
        for name in (*PUBLISHED, "llama-server", "manifest.json"):
            assert any(p.endswith("/" + name) for p in subjects), name
        for name in PUBLISHED:
            assert any(p.endswith("/" + name) for p in uploaded), name


# --- the link check on Mach-O (thin and fat), as zig and Apple's linker produce it -------------


@pytest.mark.compile
@pytest.mark.skipif(not have_toolchain(), reason="needs clang-19, ld64.lld-19")
def test_link_check_on_macho_archive_members(macho: MachOFactory, tmp_path: Path) -> None:
    """A static library of two members; the program calls one: only that one is linked."""
    slices = []
    for arch in ("arm64", "x86_64"):
        objects = []
        for name, body in (
            ("used", "int used(void) { return 7; }"),
            ("spare", "int spare(void) { return 9; }"),
        ):
            src = tmp_path / f"{name}.c"
            src.write_text(body + "\n")
            obj = tmp_path / f"{name}-{arch}.o"
            target = f"{ARCH_TARGET[arch]}14.0"
            subprocess.run(
                [tool("clang"), "-target", target, "-c", str(src), "-o", str(obj)], check=True
            )
            objects.append(obj)
        archive = tmp_path / f"libvendor-{arch}.a"
        subprocess.run([tool("llvm-ar"), "rcs", str(archive), *map(str, objects)], check=True)
        main = "int used(void);\nint main(void) { return used(); }\n"
        slices.append(macho.build(f"prog-{arch}", arch=arch, source=main, extra_ld=[str(archive)]))
    for binary in (slices[0], macho.fat("prog-fat", slices)):
        evidence = LinkEvidence(binary)
        assert evidence.linked(str(tmp_path / "used-arm64.o"))
        assert not evidence.linked(str(tmp_path / "spare-arm64.o"))
        assert evidence.linked(None)  # no object to look at: counted
