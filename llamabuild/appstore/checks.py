"""The App Store preflight of `verify-app`, past linkage: one call from
llamabuild/appstore/verify_app.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from llamabuild.appstore import privacy
from llamabuild.appstore.metadata import inspect_bundle
from llamabuild.appstore.provisioning import check_profile
from llamabuild.core.findings import Finding, Severity
from llamabuild.inspect import Binary

STRICT_RULES = frozenset({"privacy-api-undeclared"})
"""Warnings `verify-app --strict` reports as errors (enforcement not confirmed for a Mac
helper; --strict is for teams who want the upload refused here rather than by Apple)."""


@dataclass(frozen=True)
class AppStoreResult:
    findings: list[Finding] = field(default_factory=list)
    required_reason_apis: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    """Bundle-relative Mach-O path -> required-reason category -> the symbols it imports."""


def check_app(
    app: Path, files: Iterable[Path], known: Mapping[Path, Binary], strict: bool = False
) -> AppStoreResult:
    """Info.plist, the provisioning profile and the privacy manifests of `app`.

    `files`: the bundle's regular files (one walk, by the caller); `known`: binaries already
    inspected (the helper), so a 14 MB server is not read twice."""
    files = list(files)
    bundle, out = inspect_bundle(app, files, known)
    out += check_profile(bundle)
    uses = {bundle.rel(p): privacy.categories_of(b) for p, b in bundle.machos.items()}
    uses = {rel: cats for rel, cats in uses.items() if cats}
    manifests = [p for p in files if p.name == privacy.MANIFEST_NAME]
    declared, found = privacy.read_manifests(manifests)
    out += found + privacy.undeclared(app, uses, declared)
    if strict:
        out = [
            dataclasses.replace(f, severity=Severity.ERROR) if f.rule in STRICT_RULES else f
            for f in out
        ]
    return AppStoreResult(findings=out, required_reason_apis=uses)
