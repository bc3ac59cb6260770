"""THIRD_PARTY_NOTICES.txt and Credits.html: the full license text of every SBOM component.

Vendored code's texts are read out of the pinned tree (components.read_texts), never from a
copy in this repository; what the toolchain linked in (toolchain.py) carries the texts its
toolchain or distribution keeps, else the verbatim copies in llamabuild/data/licenses/, and a
statement of what its license asks (glibc's LGPL-2.1). A text already printed for an earlier
component (libgcc after libstdc++) is referred to, not repeated. Credits.html goes into the
app's Contents/Resources, where the standard About window shows it; the .txt is the same
content for a notices page or a review.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llamabuild.core.errors import ToolError
from llamabuild.core.resources import shipped_dir
from llamabuild.provenance.components import LicenseText

NOTICES_NAME = "THIRD_PARTY_NOTICES.txt"
CREDITS_NAME = "Credits.html"
CREDITS_TEMPLATE = "Credits.html.j2"
RULE = "=" * 78
WIDTH = 78


class Noticed(Protocol):
    """What the notices show of a component (vendored or from the toolchain)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str | None: ...
    @property
    def license(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def notice(self) -> str | None: ...
    @property
    def texts(self) -> tuple[LicenseText, ...]: ...


@dataclass(frozen=True)
class Text:
    """One license text of a section; `repeated`: printed in full by an earlier section."""

    file: str
    text: str
    repeated: bool


@dataclass(frozen=True)
class Section:
    """One component's part of the notices (the template renders these)."""

    title: str
    license: str
    url: str | None
    notice: tuple[str, ...]  # paragraphs
    texts: tuple[Text, ...]


def sections(components: Sequence[Noticed]) -> list[Section]:
    """One section per component, in order; each distinct text in full once."""
    seen: set[tuple[str, str]] = set()
    out = []
    for comp in components:
        texts = []
        for t in comp.texts:
            key = (t.file, t.text)
            texts.append(Text(t.file, t.text, key in seen))
            seen.add(key)
        paragraphs = tuple(p.strip() for p in (comp.notice or "").split("\n\n") if p.strip())
        out.append(Section(_title(comp), comp.license, comp.url, paragraphs, tuple(texts)))
    return out


def notices_text(components: Sequence[Noticed]) -> str:
    """Plain text: one section per component, llama.cpp first."""
    project = components[0]
    lines = [
        f"Third-party notices for llama-server, built from {_title(project)}.",
        "Each section is the license of code compiled or linked into the binary, as found in",
        "the source tree it was built from or in the toolchain that linked it.",
        "",
    ]
    for sec in sections(components):
        lines += [RULE, f"{sec.title} ({sec.license})"]
        if sec.url:
            lines.append(sec.url)
        lines.append(RULE)
        for paragraph in sec.notice:
            lines += ["", *textwrap.wrap(paragraph, WIDTH)]
        for text in sec.texts:
            if text.repeated:
                lines += ["", f"[{text.file}]: the same text as above.", ""]
            else:
                lines += ["", f"[{text.file}]", "", text.text.rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _title(comp: Noticed) -> str:
    return f"{comp.name} {comp.version}" if comp.version else comp.name


def credits_html(components: Sequence[Noticed]) -> str:
    """Credits.html from templates/Credits.html.j2, every value HTML-escaped."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(shipped_dir("templates"))),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    try:
        template = env.get_template(CREDITS_TEMPLATE)
        return template.render(project=_title(components[0]), sections=sections(components))
    except jinja2.TemplateError as exc:
        raise ToolError(f"template {CREDITS_TEMPLATE} failed to render: {exc}") from exc
