"""README.md, docs/ and bench/README.md: every relative link names a file that exists, and every
`#anchor` a heading or `<a id>` in it (GitHub's heading slugs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    found = {slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, re.MULTILINE)}
    return found | set(re.findall(r'<a id="([^"]+)"></a>', text))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: broken links {broken}"


def test_docs_are_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in DOCS[1:]:
        assert str(doc.relative_to(ROOT)) in readme, doc


def test_readme_build_types_match_the_recipes():
    """The README once said every build is RelWithDebInfo while linux-x86_64-static is Release."""
    from llamabuild.config.recipes import load_recipe

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "RelWithDebInfo + dSYM for macOS, Release for Linux" in text
    assert load_recipe("macos-arm64-metal").cache_dict["CMAKE_BUILD_TYPE"] == "RelWithDebInfo"
    assert load_recipe("linux-x86_64-static").cache_dict["CMAKE_BUILD_TYPE"] == "Release"


# --- docs/development.md's map follows the package on disk ---------------------------------

PACKAGE = ROOT / "llamabuild"


def map_blocks() -> dict[str, str]:
    """Package path (`core`, `builder/platforms`) -> its entry in the map: from its line to
    the next package's line."""
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    block = text.split("## The map", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        head = re.match(r"^  ([a-z_]+(?:/[a-z_]+)*)/\s", line + " ")
        if head:
            current = head.group(1)
        elif re.match(r"^\S", line):
            current = ""
        if current:
            entries[current] = entries.get(current, "") + line + "\n"
    return entries


def packages() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for init in sorted(PACKAGE.rglob("__init__.py")):
        rel = init.parent.relative_to(PACKAGE).as_posix()
        if rel == ".":
            continue
        modules = sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__")
        out[rel] = modules
    return out


def test_every_package_and_module_is_on_the_map() -> None:
    entries = map_blocks()
    missing = [p for p in packages() if p not in entries]
    assert not missing, f"packages missing from docs/development.md's map: {missing}"
    unnamed = [
        f"{pkg}/{m}.py"
        for pkg, modules in packages().items()
        for m in modules
        if not re.search(rf"\b{m}\b", entries[pkg])
    ]
    assert not unnamed, f"modules missing from their package's entry in the map: {unnamed}"
    flat = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    top = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    assert all(name in top for name in flat), flat


def test_the_map_check_sees_a_missing_package(tmp_path: Path) -> None:
    assert "core" in map_blocks() and "builder/platforms" in map_blocks()
    assert "nonexistent" not in map_blocks()
