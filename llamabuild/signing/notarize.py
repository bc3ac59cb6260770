"""`notarize`: preflight, zip, submit to Apple's notary service, read the verdict and its log.

Apple's notary service takes a zip, not a bare executable, and `notarytool submit` exits 0
even when the status is Invalid: the status decides here, and anything but Accepted is a
`notarization-rejected` finding carrying the log's issues. Before anything is uploaded the
binary must pass the checks notarization would fail on (signature integrity, Developer ID
readiness): a doomed upload costs minutes and a log fetch. A ticket cannot be stapled to a bare
executable (only to an .app, .dmg or .pkg); Gatekeeper fetches it online on first launch.
"""

from __future__ import annotations

import shutil
import stat
import sys
import tempfile
import zipfile
from dataclasses import field
from pathlib import Path
from typing import Protocol

from llamabuild.core.errors import InputError, ToolError
from llamabuild.core.files import open_atomic, sha256_file
from llamabuild.core.findings import Finding, error, has_errors
from llamabuild.core.jsonout import ALWAYS, INTERNAL, derived, model
from llamabuild.core.mapped import open_mapped, require_regular
from llamabuild.inspect import inspect_binary
from llamabuild.tools.notarytool import (
    ACCEPTED,
    Credentials,
    EngineNotary,
    Issue,
    NotaryLog,
    Notarytool,
    Submission,
)
from llamabuild.tools.runner import Runner, default_runner, which

DEFAULT_TIMEOUT_MIN = 60
"""How long `submit --wait` waits for a verdict (Apple: most within 5 minutes, some an hour)."""
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest zip date: the same bytes on every run
STAPLE_NOTE = (
    "not stapled: a ticket can only be stapled to an .app, .dmg or .pkg, never to a bare "
    "executable; Gatekeeper looks the ticket up online the first time it runs (ship it inside "
    "a notarized .app, .dmg or .pkg to work offline)"
)


class Notary(Protocol):
    name: str

    def validate(self, creds: Credentials) -> None: ...

    def submit(self, zip_path: Path, creds: Credentials, timeout_min: int) -> Submission: ...

    def log(self, submission_id: str, creds: Credentials) -> NotaryLog: ...


def choose_notary(runner: Runner | None = None) -> Notary:
    """notarytool on a Mac (xcrun), else the rcodesign engine's notary client."""
    runner = runner or default_runner()
    if sys.platform == "darwin":
        xcrun = which(["xcrun"])
        if xcrun is not None:
            return Notarytool(runner, xcrun)
    return EngineNotary(runner)


def zip_executable(path: Path, dest: Path) -> str:
    """`ditto -c -k --keepParent`-like zip of one executable (mode 0755, fixed date, so the
    same binary gives the same bytes); returns its sha256. Written atomically."""
    info = zipfile.ZipInfo(path.name, date_time=ZIP_DATE)
    info.create_system = 3  # unix: external_attr holds the mode
    info.external_attr = (stat.S_IFREG | 0o755) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with (
        open_mapped(path) as data,
        open_atomic(dest) as fh,
        zipfile.ZipFile(fh, "w") as zf,
        zf.open(info, "w") as out,
    ):
        for pos in range(0, len(data), 1 << 20):
            out.write(data[pos : pos + (1 << 20)])
    return sha256_file(dest)


def _accepted(r: NotarizeReport) -> bool:
    sub = r.submission
    return sub is not None and sub.status == ACCEPTED and not has_errors(r.findings)


@model
class NotarizeReport:
    """What was submitted (the zip's name and sha256), how (engine, credentials by name only),
    Apple's status and log; `ok` only when the status is Accepted. `stapled` is always false:
    a bare executable has nowhere to hold a ticket (`staple_note`)."""

    ok: bool = derived(_accepted)
    path: Path
    engine: str
    credentials: str
    submitted: bool = derived(lambda r: r.submission is not None)
    zip_name: str
    zip_sha256: str | None = field(default=None, metadata=ALWAYS)
    submission_id: str | None = derived(lambda r: r.submission.id if r.submission else None)
    status: str | None = derived(lambda r: r.submission.status if r.submission else None)
    message: str | None = derived(lambda r: r.submission.message if r.submission else None)
    log_summary: str | None = derived(lambda r: r.log.summary if r.log else None)
    issues: tuple[Issue, ...] = derived(lambda r: r.log.issues if r.log else ())
    stapled: bool = derived(lambda r: False)
    staple_note: str = derived(lambda r: STAPLE_NOTE)
    findings: list[Finding] = field(default_factory=list, metadata=ALWAYS)
    submission: Submission | None = field(default=None, metadata=INTERNAL)
    log: NotaryLog | None = field(default=None, metadata=INTERNAL)


def preflight(path: Path) -> list[Finding]:
    """What notarization would refuse, found locally: integrity and Developer ID readiness."""
    from llamabuild.inspect.developer_id import check_developer_id
    from llamabuild.inspect.integrity import integrity_findings

    if inspect_binary(path).format != "macho":
        raise InputError(
            f"{path}: only a macOS (Mach-O) executable can be notarized",
            hint="notarize the macOS build of llama-server",
        )
    return integrity_findings(path) + check_developer_id(path)


def rejected(sub: Submission, log: NotaryLog | None, path: Path) -> list[Finding]:
    """`notarization-rejected`: the status, then each issue of the log."""
    where = str(path)
    summary = (log.summary if log else None) or sub.message or "no summary"
    out = [
        error(
            "notarization-rejected",
            f"notarization status {sub.status} (submission {sub.id}): {summary}",
            path=where,
            hint="fix the issues below, sign again and resubmit; `llamabuild verify "
            "--profile developer-id` finds most of them locally",
        )
    ]
    for issue in log.issues if log else ():
        where_in = ", ".join(x for x in (issue.path, issue.architecture) if x)
        out.append(
            error(
                "notarization-rejected",
                f"{issue.severity}: {issue.message}" + (f" ({where_in})" if where_in else ""),
                path=where,
                hint=issue.doc_url or "see Apple's 'Resolving common notarization issues'",
            )
        )
    return out


def notarize(
    path: Path,
    creds: Credentials,
    timeout_min: int = DEFAULT_TIMEOUT_MIN,
    notary: Notary | None = None,
    keep_zip: Path | None = None,
) -> NotarizeReport:
    """Preflight, zip, submit and wait; the log is fetched unless the status is Accepted."""
    require_regular(path)  # a missing file is named before the credentials
    notary = notary or choose_notary()
    notary.validate(creds)  # refuse unusable credentials before any work
    report = NotarizeReport(path, notary.name, creds.describe(), f"{path.name}.zip")
    report.findings += preflight(path)
    if has_errors(report.findings):
        return report  # never upload what notarization will refuse
    with tempfile.TemporaryDirectory(prefix="llamabuild-notarize-") as tmp:
        zip_path = Path(tmp) / report.zip_name
        report.zip_sha256 = zip_executable(path, zip_path)
        if keep_zip is not None:
            with zip_path.open("rb") as src, open_atomic(keep_zip) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        sub = notary.submit(zip_path, creds, timeout_min)
    report.submission = sub
    if not sub.finished:
        raise ToolError(
            f"notarization still {sub.status or 'pending'} after {timeout_min} min "
            f"(submission {sub.id})",
            hint=f"check later: xcrun notarytool info {sub.id} (or rerun with a longer "
            "--timeout); nothing was decided yet",
        )
    if sub.status != ACCEPTED:
        report.log = notary.log(sub.id, creds) if sub.id else None
        report.findings += rejected(sub, report.log, path)
    return report
