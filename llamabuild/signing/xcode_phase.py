"""`xcode-phase`: the Run Script build phase that signs and verifies the bundled llama-server.

Everything comes from the variables Xcode exports to a Run Script; findings come out as
`error:` / `warning:` lines, which Xcode shows in its issue navigator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from llamabuild.config.versions import DEFAULT_MIN_MACOS
from llamabuild.core.errors import InputError, UsageError
from llamabuild.core.findings import Finding, has_errors
from llamabuild.core.jsonout import ALWAYS, INTERNAL, derived, model
from llamabuild.inspect.policy import Policy
from llamabuild.inspect.verify_binary import VerifyReport, verify
from llamabuild.signing import entitlements as ent
from llamabuild.signing.sign import Signer, SignReport, SignRequest, sign_binary

BINARY_NAME = "llama-server"


@dataclass(frozen=True)
class PhaseInputs:
    """The Xcode build settings the phase needs, resolved to paths."""

    app: Path
    binary: Path
    srcroot: Path
    signing_allowed: bool
    identity: str | None
    bundle_id: str | None = None
    min_macos: str | None = None
    archive: bool = False


def read_env(env: Mapping[str, str], binary_name: str = BINARY_NAME) -> PhaseInputs:
    """Resolve paths from Xcode's variables; a missing one is a usage error naming it."""

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    missing = [n for n in ("BUILT_PRODUCTS_DIR", "SRCROOT") if not get(n)]
    wrapper = get("WRAPPER_NAME") or (f"{p}.app" if (p := get("PRODUCT_NAME")) else None)
    if wrapper is None:
        missing.append("WRAPPER_NAME (or PRODUCT_NAME)")
    allowed = (get("CODE_SIGNING_ALLOWED") or "YES").upper() != "NO"
    identity = get("EXPANDED_CODE_SIGN_IDENTITY")
    if allowed and identity is None:
        missing.append("EXPANDED_CODE_SIGN_IDENTITY")
    if missing:
        raise UsageError(
            "xcode-phase: missing Xcode build variable(s): " + ", ".join(missing),
            hint="run it from a Run Script build phase, or export them "
            "(CODE_SIGNING_ALLOWED=NO skips signing)",
        )
    built = Path(str(get("BUILT_PRODUCTS_DIR")))
    app = built / str(wrapper)
    resources = get("UNLOCALIZED_RESOURCES_FOLDER_PATH")
    res_dir = built / resources if resources else app / "Contents" / "Resources"
    return PhaseInputs(
        app=app,
        binary=res_dir / binary_name,
        srcroot=Path(str(get("SRCROOT"))),
        signing_allowed=allowed,
        identity=identity,
        bundle_id=get("PRODUCT_BUNDLE_IDENTIFIER"),
        min_macos=get("MACOSX_DEPLOYMENT_TARGET"),
        archive=get("ACTION") == "install",
    )


@model
class PhaseReport:
    """`llamabuild xcode-phase --json`: the signing (unless not allowed) and the verification."""

    ok: bool = derived(lambda r: not has_errors(r.findings))
    inputs: PhaseInputs = field(metadata=INTERNAL)
    app: Path = derived(lambda r: r.inputs.app)
    binary: Path = derived(lambda r: r.inputs.binary)
    signing_allowed: bool = derived(lambda r: r.inputs.signing_allowed)
    sign: SignReport | None = field(default=None, metadata=ALWAYS)
    verify: VerifyReport | None = field(default=None, metadata=ALWAYS)
    findings: list[Finding] = field(default_factory=list, metadata=ALWAYS)


def run_phase(
    env: Mapping[str, str],
    *,
    preset: str | None = None,
    entitlements_file: Path | None = None,
    identifier: str | None = None,
    timestamp: bool | None = None,
    binary_name: str = BINARY_NAME,
    signer: Signer | None = None,
) -> PhaseReport:
    """Sign (unless CODE_SIGNING_ALLOWED=NO) then verify the bundled binary."""
    inputs = read_env(env, binary_name)
    if not inputs.binary.is_file():
        raise InputError(
            f"{inputs.binary}: not found in the app bundle",
            hint=f"add {binary_name} to Copy Bundle Resources and place this phase after it",
        )
    report = PhaseReport(inputs)
    if inputs.signing_allowed:
        config = ent.load_config(search_dir=inputs.srcroot)
        rendered = ent.resolve(preset=preset, file=entitlements_file, config=config)
        default_id = f"{inputs.bundle_id}.{binary_name}" if inputs.bundle_id else binary_name
        request = SignRequest(
            identity=inputs.identity or "-",
            identifier=identifier or config.identifier or default_id,
            runtime=True,
            timestamp=inputs.archive if timestamp is None else timestamp,
        )
        report.sign = sign_binary(inputs.binary, request, rendered, signer=signer)
        report.findings += report.sign.findings
        if not report.sign.published:
            return report
    # Not ARCHS: a Debug build sets it to the active arch only, and a universal binary is fine.
    policy = Policy(
        min_macos=inputs.min_macos or DEFAULT_MIN_MACOS,
        require_sandbox=inputs.signing_allowed,
    )
    report.verify = verify(inputs.binary, policy)
    report.findings += report.verify.findings
    return report
