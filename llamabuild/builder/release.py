"""`llamabuild release-summary`: the release matrix's last job, one summary of every recipe.

Each matrix job uploads dist/<recipe>/ (binary, dSYM, manifest.json, verify.json); the final
job downloads them side by side and this reads every `<dir>/*/manifest.json` (the typed build
manifest) and the `verify.json` beside it (its findings, typed), so the release shows each
recipe's commit, sha256, UUIDs, verify verdict and compiler-cache hits in one place. Downloaded
artifacts are untrusted: only regular files are read, verify.json up to MAX_VERIFY_JSON bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamabuild.builder import manifest as mf
from llamabuild.builder.manifest import ManifestCcache, OutputRole
from llamabuild.config.settings import from_mapping
from llamabuild.core.errors import ConfigError, InputError
from llamabuild.core.findings import Finding, Severity

MAX_VERIFY_JSON = 16 << 20  # a verify --json of 40,000 findings is ~10 MB
VERIFY_JSON = "verify.json"


@dataclass(frozen=True)
class ReleaseEntry:
    """One recipe's artifact: what its manifest and verify.json say."""

    recipe: str
    artifact: Path
    commit: str | None
    binary_sha256: str | None
    uuids: dict[str, str | None]
    built_verified: bool
    verify_json: bool | None  # verify.json's `ok`; None when there is none
    findings: tuple[Finding, ...]
    ccache: ManifestCcache | None
    duration_s: float


@dataclass(frozen=True)
class ReleaseSummary:
    """`llamabuild release-summary --json`: every recipe of the release, and one verdict."""

    ok: bool
    root: Path
    recipes: tuple[ReleaseEntry, ...]


def summarize(root: Path) -> ReleaseSummary:
    """Every `<root>/*/manifest.json`; InputError (exit 2) when there is none."""
    manifests = sorted(p for p in root.glob(f"*/{mf.MANIFEST}") if p.is_file())
    if not manifests:
        raise InputError(
            f"{root}: no */{mf.MANIFEST} (one directory per recipe's artifact)",
            hint="download every artifact into it, e.g. actions/download-artifact with a pattern",
        )
    entries = tuple(_entry(p) for p in manifests)
    ok = all(e.built_verified and e.verify_json is not False for e in entries) and not any(
        f.severity is Severity.ERROR for e in entries for f in e.findings
    )
    return ReleaseSummary(ok=ok, root=root, recipes=entries)


def _entry(path: Path) -> ReleaseEntry:
    manifest = mf.read(path)  # ConfigError (exit 2) names the file and the key
    binary = manifest.output(OutputRole.BINARY)
    verify_ok, verify_findings = read_verify_json(path.parent / VERIFY_JSON)
    return ReleaseEntry(
        recipe=manifest.recipe,
        artifact=path.parent,
        commit=manifest.source.commit,
        binary_sha256=binary.sha256 if binary else None,
        uuids=dict(binary.uuids or {}) if binary else {},
        built_verified=manifest.verify.ok,
        verify_json=verify_ok,
        findings=_unique((*manifest.verify.findings, *verify_findings)),
        ccache=manifest.ccache,
        duration_s=manifest.duration_s,
    )


def read_verify_json(path: Path) -> tuple[bool | None, tuple[Finding, ...]]:
    """`verify --json` output: its `ok` and findings (None, () when the file is absent)."""
    if not path.exists():
        return None, ()
    if not path.is_file() or path.stat().st_size > MAX_VERIFY_JSON:
        raise InputError(f"{path}: not a regular file of at most {MAX_VERIFY_JSON} bytes")
    try:
        data: Any = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not JSON: {exc}", hint="re-run verify --json") from exc
    if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
        raise ConfigError(f"{path}: not a `verify --json` object", hint="re-run verify --json")
    raw = data.get("findings", [])
    findings = from_mapping(tuple[Finding, ...], raw, str(path))
    return data["ok"], findings


def _unique(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """The build's own verify and verify.json report the same findings: once each."""
    return tuple(dict.fromkeys(findings))


def verdicts(summary: ReleaseSummary) -> dict[str, str]:
    """recipe -> "ok" or what failed, for the step summary and the table."""
    out = {}
    for e in summary.recipes:
        errors = sum(f.severity is Severity.ERROR for f in e.findings)
        warnings = len(e.findings) - errors
        good = e.built_verified and e.verify_json is not False and not errors
        out[e.recipe] = f"{'ok' if good else 'FAIL'} ({errors} error(s), {warnings} warning(s))"
    return out
