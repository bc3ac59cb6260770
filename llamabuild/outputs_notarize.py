"""`llamabuild notarize --json`: the submission, Apple's verdict and its log's issues."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llamabuild.core.findings import FindingOutput
from llamabuild.core.jsonout import OMIT_NONE


@dataclass(frozen=True)
class NotaryIssueOutput:
    """One issue of the notary log (Apple's `issues` entries)."""

    severity: str
    message: str
    path: str | None = field(default=None, metadata=OMIT_NONE)
    architecture: str | None = field(default=None, metadata=OMIT_NONE)
    doc_url: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class NotarizeOutput:
    """What was submitted (the zip's name and sha256), how (engine, credentials by name only),
    Apple's status and log; `ok` only when the status is Accepted. `stapled` is always false:
    a bare executable has nowhere to hold a ticket (`staple_note`)."""

    ok: bool
    path: Path
    engine: str
    credentials: str
    submitted: bool
    zip_name: str
    zip_sha256: str | None
    submission_id: str | None
    status: str | None
    message: str | None
    log_summary: str | None
    issues: tuple[NotaryIssueOutput, ...]
    stapled: bool
    staple_note: str
    findings: tuple[FindingOutput, ...]
