"""The rule registry: every rule id a finding can carry, read from llamabuild/data/rules.toml.

Policy is data: each rule's severity, the command whose checks raise it, one line saying when,
and where its hint is written. `findings.error()` / `warning()` refuse an id that is not
registered (or one registered with the other severity), and the catalogue in docs/rules.md is
generated from here:

    python -m llamabuild.core.rules > docs/rules.md
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from functools import cache

from llamabuild.core.resources import data_text

SEVERITIES = ("error", "warning")
# The catalogue's sections, in pipeline order: area -> (title, what the section is about).
AREAS = {
    "verify": ("`llamabuild verify`", "linkage, architectures, deployment target, signature"),
    "dsym": ("`llamabuild dsym` and `verify --dsym`", "the dSYM against its binary"),
    "verify-app": ("`llamabuild verify-app`", "the helper inside an .app or .xcarchive"),
    "verify-model": ("`llamabuild verify-model`", "a GGUF model against the pinned llama.cpp"),
    "build": ("`llamabuild build`", "flags and cache values (the build also runs verify)"),
    "rebuild": ("`llamabuild rebuild`", "a build recreated from its manifest"),
    "entitlements": ("`llamabuild entitlements`", "the entitlements lint (sign runs it too)"),
    "sign": ("`llamabuild sign`", "the signature read back after signing"),
    "notarize": ("`llamabuild notarize`", "Apple's notary service verdict and log"),
    "smoke": ("`llamabuild smoke`", "the built server serves"),
    "doctor": ("`llamabuild doctor`", "the tools a recipe needs"),
}
COMMANDS = (*AREAS, "xcode-phase")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    area: str
    when: str
    source: str
    also: tuple[str, ...] = ()


def parse(data: dict[str, object]) -> dict[str, Rule]:
    """Rules from rules.toml's tables; a malformed entry is a ValueError naming it."""
    rules: dict[str, Rule] = {}
    for rule_id, entry in data.items():
        if not isinstance(entry, dict):
            raise ValueError(f"rules.toml: [{rule_id}] is not a table")
        unknown = set(entry) - {"severity", "area", "when", "source", "also"}
        rule = Rule(
            id=rule_id,
            severity=str(entry.get("severity")),
            area=str(entry.get("area")),
            when=str(entry.get("when", "")),
            source=str(entry.get("source", "")),
            also=tuple(entry.get("also", ())),
        )
        problems = [f"unknown keys {sorted(unknown)}"] if unknown else []
        if rule.severity not in SEVERITIES:
            problems.append(f"severity {rule.severity!r}")
        if rule.area not in AREAS:
            problems.append(f"area {rule.area!r}")
        if not rule.when or "\n" in rule.when:
            problems.append("`when` must be one line")
        if not rule.source:
            problems.append("no source")
        problems += [f"also {c!r}" for c in rule.also if c not in COMMANDS or c == rule.area]
        if problems:
            raise ValueError(f"rules.toml: [{rule_id}]: " + "; ".join(problems))
        rules[rule_id] = rule
    return rules


@cache
def registry() -> dict[str, Rule]:
    text = data_text("rules.toml")
    return parse(tomllib.loads(text))


def check(rule_id: str, severity: str) -> None:
    """Refuse a finding whose rule is not registered, or registered with another severity."""
    rule = registry().get(rule_id)
    if rule is None:
        raise ValueError(f"rule {rule_id!r} is not registered in llamabuild/data/rules.toml")
    if rule.severity != severity:
        raise ValueError(f"rule {rule_id!r} is registered as {rule.severity}, not {severity}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def catalogue() -> str:
    """docs/rules.md: one table per area, in pipeline order."""
    rules = registry()
    out = [
        "# Rule catalogue",
        "",
        "<!-- Generated from llamabuild/data/rules.toml by `python -m llamabuild.core.rules > "
        "docs/rules.md`; do not edit (tests/test_rules_documented.py fails when it differs). -->",
        "",
        "Every finding carries one of these rule ids. An `error` makes the command exit 1; a "
        '`warning` is reported and does not. "also" names other commands that report the '
        'rule; "source" is where it is raised and its hint is written.',
        "",
        f"{len(rules)} rules: "
        + ", ".join(
            f"[{area}](#{area})" for area in AREAS if any(r.area == area for r in rules.values())
        )
        + ".",
    ]
    for area, (title, about) in AREAS.items():
        members = [r for r in rules.values() if r.area == area]
        if not members:
            continue
        out += [
            "",
            f'<a id="{area}"></a>',
            f"## {title}",
            "",
            f"{about[0].upper()}{about[1:]}.",
            "",
            "| rule | severity | when | also | source |",
            "| --- | --- | --- | --- | --- |",
        ]
        out += [
            f"| `{r.id}` | {r.severity} | {_cell(r.when)} | {', '.join(r.also) or '-'} "
            f"| [`{r.source}`](../{r.source}) |"
            for r in members
        ]
    return "\n".join(out) + "\n"


def main() -> int:
    sys.stdout.write(catalogue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
