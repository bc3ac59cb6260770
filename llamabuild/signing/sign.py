"""`sign`: sign a copy beside the binary, read the signature back independently, then publish.

The signer (codesign or the rcodesign engine) is never trusted to report its own work: the
signed copy is parsed by llamabuild.inspect (a separate, pure SuperBlob parser) and compared
with what was asked. Only a copy that proves right replaces the input (os.replace), so a failed
or wrong signing leaves the input untouched.
"""

from __future__ import annotations

import plistlib
import shutil
import tempfile
from dataclasses import field, replace
from pathlib import Path
from typing import Any

from llamabuild.core.errors import InputError
from llamabuild.core.findings import Finding, error, has_errors
from llamabuild.core.jsonout import ALWAYS, INTERNAL, Plain, derived, model, plain
from llamabuild.inspect import Binary, inspect_binary
from llamabuild.inspect.binary import Slice
from llamabuild.inspect.developer_id import STANDALONE_PRESET, check_developer_id
from llamabuild.inspect.integrity import integrity_findings
from llamabuild.signing.entitlements import Entitlements
from llamabuild.tools.codesign import Codesign
from llamabuild.tools.rcodesign import Rcodesign
from llamabuild.tools.runner import Runner, default_runner, which
from llamabuild.tools.signer import DisplayInfo, Signer, SignRequest

__all__ = ["SignReport", "SignRequest", "Signer", "choose_signer", "prove", "sign_binary"]


def choose_signer(request: SignRequest, runner: Runner | None = None) -> Signer:
    """By capability: a PKCS#12 file needs the engine; else codesign when it is on PATH."""
    runner = runner or default_runner()
    if request.p12 is None:
        found = which(["codesign"])
        if found is not None:
            return Codesign(runner, found)
    return Rcodesign(runner)


@model
class SignReport:
    """`llamabuild sign --json`: what was asked, and the signature read back from the file."""

    ok: bool = derived(lambda r: r.published and not has_errors(r.findings))
    path: Path
    signed: bool = derived(lambda r: r.published)
    engine: str
    request: SignRequest = field(metadata=INTERNAL)
    rendered: Entitlements = field(metadata=INTERNAL)
    identity: str = derived(lambda r: "p12" if r.request.p12 else r.request.identity)
    p12: Path | None = derived(lambda r: r.request.p12)
    identifier: str | None = derived(lambda r: r.request.identifier)
    runtime: bool = derived(lambda r: r.request.runtime)
    timestamp: bool = derived(lambda r: r.request.timestamp and not r.request.adhoc)
    entitlements_source: str = derived(lambda r: r.rendered.source)
    entitlements: dict[str, Plain] = derived(lambda r: plain(r.rendered.data))
    slices: tuple[Slice, ...] = derived(lambda r: r.binary.slices if r.binary else ())
    findings: list[Finding] = field(default_factory=list, metadata=ALWAYS)
    binary: Binary | None = field(default=None, metadata=INTERNAL)
    published: bool = field(default=False, metadata=INTERNAL)


def sign_binary(
    path: Path,
    request: SignRequest,
    entitlements: Entitlements,
    signer: Signer | None = None,
) -> SignReport:
    """Sign `path` (thin or fat Mach-O) and prove it; publish only a proven signature.

    A symlink is followed: its target is signed in place and the link stays a link (replacing
    the link itself would leave the real file unsigned). The default identifier is still the
    name that was given.
    """
    given_name = path.name
    if path.is_symlink():
        path = path.resolve()
    before = inspect_binary(path)
    if before.format != "macho":
        raise InputError(
            f"{path}: only Mach-O binaries can be code signed (this is {before.format})",
            hint="sign the macOS build of llama-server",
        )
    request = replace(request, identifier=request.identifier or given_name)
    signer = signer or choose_signer(request)
    report = SignReport(path, signer.name, request, entitlements)
    report.findings += list(entitlements.findings)
    if has_errors(report.findings):
        return report  # never sign with entitlements that failed the lint
    try:
        work_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.sign-", dir=path.parent))
    except OSError as exc:
        raise InputError(
            f"{path.parent}: cannot create a temporary copy beside the binary ({exc.strerror})",
            hint="the folder must be writable",
        ) from exc
    try:
        work = work_dir / path.name  # same name: codesign's default identifier stays the same
        shutil.copy2(path, work)
        ent_file = work_dir / "entitlements.plist"
        # Canonical XML of the parsed data: no template comments reach a signer's parser.
        ent_file.write_bytes(plistlib.dumps(entitlements.data))
        request = replace(request, entitlements=ent_file)
        report.request = request
        signer.sign(request, work)
        report.findings += signer.verify(work)
        shown = signer.display(work)
        report.binary = inspect_binary(work)
        report.findings += prove(report.binary, request, entitlements.data, shown, signer.name)
        report.findings += integrity_findings(work, label=str(path))  # hashes match the file
        if not has_errors(report.findings):
            work.replace(path)  # atomic: same folder, same filesystem
            report.published = True
            report.binary = replace(report.binary, path=path)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if report.published and developer_id_intended(request, entitlements):
        # Signed as asked; whether notarization will take it is a verdict (exit 1), not a
        # reason to withhold the signature.
        report.findings += check_developer_id(path)
    return report


def developer_id_intended(request: SignRequest, entitlements: Entitlements) -> bool:
    """The standalone-server preset signed with an identity: a Developer ID distribution."""
    return not request.adhoc and entitlements.source == f"preset {STANDALONE_PRESET}"


def entitlement_diff(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Human-readable differences between two entitlement dicts (empty when equal)."""
    out = [f"missing {k}" for k in expected if k not in actual]
    out += [f"unexpected {k}" for k in actual if k not in expected]
    out += [
        f"{k} is {actual[k]!r}, not {expected[k]!r}"
        for k in expected
        if k in actual and actual[k] != expected[k]
    ]
    return out


def prove(
    binary: Binary,
    request: SignRequest,
    expected: dict[str, Any],
    shown: DisplayInfo | None = None,
    engine: str = "signer",
) -> list[Finding]:
    """Every slice carries the identifier, runtime flag and entitlements that were asked."""
    out: list[Finding] = []
    hint = "the signer did not do what was asked; re-run with --verbose and report it"
    for sl in binary.slices:
        sig = sl.signature
        a = sl.arch
        if not sl.signed or sig is None:
            out.append(error("signature-missing", "no code signature after signing", arch=a))
            continue
        if sig.identifier != request.identifier:
            out.append(
                error(
                    "signature-identifier",
                    f"identifier is {sig.identifier!r}, not {request.identifier!r}",
                    arch=a,
                    hint=hint,
                )
            )
        if request.runtime and "runtime" not in sig.flags:
            flags = ", ".join(sig.flags) or "none"
            msg = f"hardened runtime flag missing (flags: {flags})"
            out.append(error("signature-runtime", msg, arch=a, hint=hint))
        if not request.adhoc and sig.adhoc:
            msg = "reads back ad-hoc, but an identity was asked"
            out.append(error("signature-adhoc", msg, arch=a, hint=hint))
        diff = entitlement_diff(expected, sig.entitlements or {})
        if diff:
            out.append(
                error(
                    "signature-entitlements",
                    "embedded entitlements differ from the rendered plist: " + "; ".join(diff),
                    arch=a,
                    hint=hint,
                )
            )
    if shown is not None:
        out += _second_opinion(shown, request, expected, engine)
    return out


def _second_opinion(
    shown: DisplayInfo, request: SignRequest, expected: dict[str, Any], engine: str
) -> list[Finding]:
    """The signer's own display must agree too (it reads the slice it prefers)."""
    out: list[Finding] = []
    if shown.identifier is not None and shown.identifier != request.identifier:
        out.append(
            error(
                "signer-display",
                f"{engine} shows identifier {shown.identifier!r}, not {request.identifier!r}",
            )
        )
    if shown.entitlements is not None:
        diff = entitlement_diff(expected, shown.entitlements)
        if diff:
            msg = f"{engine} shows other entitlements: " + "; ".join(diff)
            out.append(error("signer-display", msg))
    return out
