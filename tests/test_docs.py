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
