"""The rcodesign engine (apple-platform-py), for every machine without Apple's codesign.

The adapter's shape is every tool's (tools/__init__.py), but the engine runs in-process: what
is "found" on first use is the apple_platform package (its folder is `exe`), and the calls go
to the module instead of through the runner. Reading its answers is pure (`parse_entities`,
`parse_problems`). A PKCS#12 password is read from LLAMABUILD_P12_PASSWORD only, handed to the
engine in memory, and scrubbed from every message that leaves this module.
"""

from __future__ import annotations

import os
import plistlib
from pathlib import Path
from typing import Any

from llamabuild.core.errors import InputError, ToolError, ToolNotFoundError, UsageError
from llamabuild.core.findings import Finding, warning
from llamabuild.tools.runner import Tool
from llamabuild.tools.signer import ADHOC, DisplayInfo, SignRequest

HINT = "pip install apple-platform-py, or sign on a Mac with codesign"
PASSWORD_ENV = "LLAMABUILD_P12_PASSWORD"  # noqa: S105 (a variable name, not a secret)


def _engine() -> Any:
    try:
        import apple_platform
    except ImportError as exc:  # pragma: no cover - a dependency of llamabuild
        raise ToolNotFoundError(
            "the rcodesign engine (apple-platform-py) is not installed", hint=HINT
        ) from exc
    return apple_platform


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class Rcodesign(Tool):
    """Ad-hoc or PKCS#12 signing through apple-platform-py (no keychain, no Mac needed)."""

    name = "rcodesign"
    names = ("apple_platform",)
    hint = HINT

    def find(self) -> Path:
        return Path(_engine().__file__).parent

    def _signer(self, request: SignRequest) -> tuple[Any, str | None]:
        """(Signer or None for ad-hoc, the password to scrub from messages)."""
        if request.p12 is None:
            if request.identity != ADHOC:
                raise UsageError(
                    f"identity {request.identity!r} needs Apple's codesign and a keychain",
                    hint="off macOS sign ad-hoc (--identity -) or with --p12 FILE",
                )
            return None, None
        if not request.p12.is_file():
            raise InputError(f"{request.p12}: no such PKCS#12 file", hint="check the --p12 path")
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            raise UsageError(
                f"--p12 needs its password in the environment variable {PASSWORD_ENV}",
                hint=f"export {PASSWORD_ENV}=... (never pass it on the command line)",
            )
        ap = _engine()
        return ap.Signer(p12=ap.P12Key(path=str(request.p12), password=password)), password

    def sign(self, request: SignRequest, target: Path) -> None:
        ap = _engine()
        signer, secret = self._signer(request)
        kwargs: dict[str, Any] = {
            "binary_identifier": request.identifier,
            "code_signature_flags": ["runtime"] if request.runtime else [],
            "timestamp_url": None if (signer and request.timestamp) else "none",
        }
        if request.entitlements is not None:
            kwargs["entitlements_xml_file"] = str(request.entitlements)
        try:
            ap.sign(str(target), signer=signer, **kwargs)
        except ap.ApplePlatformError as exc:
            raise _translate(exc, secret) from None

    def verify(self, target: Path) -> list[Finding]:
        """The engine's advisory check; an ad-hoc signature's empty CMS slot is not a problem."""
        ap = _engine()
        try:
            problems = ap.verify_macho(str(target))
        except ap.ApplePlatformError as exc:
            raise _translate(exc, None) from None
        adhoc = not ap.reading.has_cms_signature(ap.read_signature(str(target)))
        return parse_problems(problems, adhoc, target)

    def display(self, target: Path) -> DisplayInfo:
        ap = _engine()
        try:
            entities = ap.read_signature(str(target))
        except ap.ApplePlatformError as exc:
            raise _translate(exc, None) from None
        return parse_entities(entities)


def parse_problems(problems: Any, adhoc: bool, target: Path) -> list[Finding]:
    """The engine's verify_macho() problems as warnings; an ad-hoc signature's empty CMS slot
    is not a problem (pure)."""
    out = []
    for p in problems:
        text = str(p.get("description", p) if isinstance(p, dict) else p)
        if adhoc and "CMS" in text:
            continue
        out.append(warning("rcodesign-verify", text, path=str(target)))
    return out


def parse_entities(entities: Any) -> DisplayInfo:
    """First Mach-O signature in an apple_platform.read_signature() result (pure)."""
    for item in entities if isinstance(entities, list) else []:
        entity = item.get("entity") if isinstance(item, dict) else None
        macho = entity.get("mach_o") if isinstance(entity, dict) else None
        sig = macho.get("signature") if isinstance(macho, dict) else None
        if not isinstance(sig, dict):
            continue
        cd = sig.get("code_directory") or {}
        flags_text = str(cd.get("flags", ""))
        inner = flags_text.partition("(")[2].rstrip(")")
        flags = tuple(f.strip().lower() for f in inner.split("|") if f.strip())
        ents = None
        lines = sig.get("entitlements_plist")
        if lines:
            try:
                value = plistlib.loads("\n".join(lines).encode("utf-8"))
                ents = value if isinstance(value, dict) else None
            except Exception:
                ents = None
        return DisplayInfo(identifier=cd.get("identifier"), flags=flags, entitlements=ents)
    return DisplayInfo()


def _translate(exc: Any, secret: str | None) -> Exception:
    """Engine errors -> our error family, with the password scrubbed from the text."""
    kind = type(exc).__name__
    message = _scrub(str(getattr(exc, "message", exc)), secret)
    if kind == "PrivateKeyError":
        return InputError(
            f"cannot open the PKCS#12 identity: {message}",
            hint=f"check {PASSWORD_ENV}; if it is right, re-export the .p12 with legacy "
            "encryption (openssl pkcs12 -export -legacy), which the engine reads",
        )
    if kind in ("CertificateError", "NoSigningCertificateError"):
        return InputError(
            f"unusable signing certificate: {message}",
            hint="the .p12 must hold a code-signing certificate and its private key "
            "(export both from Keychain Access)",
        )
    if kind == "TimestampError" or "time-stamp" in message.lower():
        return ToolError(
            f"timestamp server unreachable: {message}",
            hint="check the network, or sign with --no-timestamp",
        )
    if kind == "MachOError":
        return InputError(
            f"the engine cannot sign this Mach-O: {message}", hint=_macho_hint(message)
        )
    return ToolError(
        f"rcodesign engine failed ({kind}): {message}",
        hint="check the binary with `llamabuild verify`; if it passes, rerun with --debug and "
        "report it",
    )


HEADERPAD_HINT = (
    "the load commands fill the Mach-O header, leaving no room for LC_CODE_SIGNATURE: relink "
    "with -Wl,-headerpad_max_install_names (e.g. in CMAKE_EXE_LINKER_FLAGS), then sign again"
)


def _macho_hint(message: str) -> str:
    if "insufficient room" in message.lower():
        return HEADERPAD_HINT
    return "check the binary with `llamabuild verify` first (a truncated or corrupt Mach-O)"
