"""THIRD_PARTY_NOTICES.txt and Credits.html: the full license text of every SBOM component.

Both are rendered from the texts read out of the pinned tree (components.read_texts), never from
a copy in this repository. Credits.html goes into the app's Contents/Resources, where the
standard About window shows it; the .txt is the same content for a notices page or a review.
"""

from __future__ import annotations

from collections.abc import Sequence

from llamabuild.errors import ToolError
from llamabuild.provenance.components import Component
from llamabuild.resources import shipped_dir

NOTICES_NAME = "THIRD_PARTY_NOTICES.txt"
CREDITS_NAME = "Credits.html"
CREDITS_TEMPLATE = "Credits.html.j2"
RULE = "=" * 78


def notices_text(components: Sequence[Component]) -> str:
    """Plain text: one section per component, llama.cpp first."""
    project = components[0]
    lines = [
        f"Third-party notices for llama-server, built from {_title(project)}.",
        "Each section is the license of code compiled into the binary, as found in the source",
        "tree it was built from.",
        "",
    ]
    for comp in components:
        lines += [RULE, f"{_title(comp)} ({comp.license})"]
        if comp.spec.url:
            lines.append(comp.spec.url)
        lines.append(RULE)
        for text in comp.texts:
            lines += ["", f"[{text.file}]", "", text.text.rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _title(comp: Component) -> str:
    return f"{comp.name} {comp.version}" if comp.version else comp.name


def credits_html(components: Sequence[Component]) -> str:
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
        return template.render(project=components[0], components=list(components))
    except jinja2.TemplateError as exc:
        raise ToolError(f"template {CREDITS_TEMPLATE} failed to render: {exc}") from exc
