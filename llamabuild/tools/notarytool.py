"""Apple's `notarytool` (via `xcrun`, macOS only): submit a zip and wait, fetch the log.

Apple's service is not reachable from tests: they give a recording Runner and assert the exact
argv (`submit_argv`, `log_argv`), and feed recorded JSON (Apple's documented shapes) to
`parse_submission` and `parse_log`. Credentials are a keychain profile name or an App Store
Connect API key (a .p8 file path, its key id and issuer id): no secret is ever on the command
line, and the key file's contents are never read here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamabuild.core.errors import InputError, ToolError, UsageError
from llamabuild.core.jsonout import OMIT_NONE
from llamabuild.core.mapped import open_mapped, require_file
from llamabuild.tools.runner import Result, Tool, find_tool

HINT = "notarytool comes with Xcode 13+ on macOS (xcrun notarytool); off a Mac use an API key"
ACCEPTED = "Accepted"
TERMINAL = frozenset({"Accepted", "Invalid", "Rejected"})
IN_PROGRESS = "In Progress"


@dataclass(frozen=True)
class Credentials:
    """How notarytool authenticates: a stored keychain profile, or an API key triple."""

    keychain_profile: str | None = None
    key: Path | None = None  # AuthKey_XXXX.p8 (notarytool) or a unified JSON key (engine)
    key_id: str | None = None
    issuer: str | None = None

    def argv(self) -> list[str]:
        """notarytool's credential options (names and paths only, never key material)."""
        if self.keychain_profile:
            return ["--keychain-profile", self.keychain_profile]
        if self.key and self.key_id and self.issuer:
            return ["--key", str(self.key), "--key-id", self.key_id, "--issuer", self.issuer]
        raise UsageError(
            "notarization needs credentials",
            hint="pass --keychain-profile NAME (xcrun notarytool store-credentials), or "
            "--key AuthKey_ID.p8 --key-id ID --issuer ISSUER-UUID",
        )

    def describe(self) -> str:
        """What is shown to the user: the profile or key id, never a path's contents."""
        if self.keychain_profile:
            return f"keychain profile {self.keychain_profile}"
        return f"API key {self.key_id or '(from --key)'}"


@dataclass(frozen=True)
class Submission:
    """notarytool's (or the engine's) answer: id, status and message."""

    id: str | None
    status: str | None  # Accepted, Invalid, Rejected, In Progress; None: upload only
    message: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class Issue:
    """One issue of the notary log (Apple's `issues` entries)."""

    severity: str
    message: str
    path: str | None = field(default=None, metadata=OMIT_NONE)
    architecture: str | None = field(default=None, metadata=OMIT_NONE)
    doc_url: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class NotaryLog:
    status: str | None
    summary: str | None
    issues: tuple[Issue, ...]


def submit_argv(xcrun: Path, zip_path: Path, creds: Credentials, timeout_min: int) -> list[str]:
    return [
        str(xcrun), "notarytool", "submit", str(zip_path), "--wait",
        "--timeout", f"{timeout_min}m", "--output-format", "json", *creds.argv(),
    ]  # fmt: skip


def log_argv(xcrun: Path, submission_id: str, creds: Credentials) -> list[str]:
    return [
        str(xcrun), "notarytool", "log", submission_id, "--output-format", "json",
        *creds.argv(),
    ]  # fmt: skip


def _json_object(text: str, what: str) -> dict[str, Any]:
    """The JSON object in `text` (notarytool may print progress lines around it)."""
    start, end = text.find("{"), text.rfind("}")
    try:
        value = json.loads(text[start : end + 1]) if 0 <= start < end else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ToolError(
            f"{what}: no JSON in notarytool's output: {text.strip()[:200] or 'nothing'}",
            hint="rerun with --verbose; check the credentials with `xcrun notarytool history`",
        )
    return value


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


_STATUS = {s.lower().replace(" ", ""): s for s in (*TERMINAL, IN_PROGRESS)}


def _status(value: Any) -> str | None:
    """notarytool's spelling ("In Progress"); the engine may say "accepted" or "in_progress"."""
    text = _str(value)
    if text is None:
        return None
    return _STATUS.get(text.lower().replace(" ", "").replace("_", ""), text)


def parse_submission(text: str) -> Submission:
    """`notarytool submit --wait --output-format json` stdout, e.g.
    {"id": "…", "status": "Accepted", "message": "Processing complete"}; also the engine's
    Notary API response ({"data": {"id": …, "attributes": {"status": …}}})."""
    obj = _json_object(text, "notarization")
    data = obj.get("data")
    if isinstance(data, dict):  # Notary REST API shape
        found = data.get("attributes")
        attrs: dict[str, Any] = found if isinstance(found, dict) else {}
        status = _status(attrs.get("status"))
        return Submission(_str(data.get("id")), status, _str(attrs.get("name")))
    return Submission(_str(obj.get("id")), _status(obj.get("status")), _str(obj.get("message")))


def parse_log(text: str) -> NotaryLog:
    """`notarytool log ID` JSON: status, statusSummary and issues[{severity, message, path,
    architecture, docUrl}] (Apple's developer log format)."""
    obj = _json_object(text, "notarization log")
    issues = []
    for item in obj.get("issues") or ():
        if isinstance(item, dict):
            issues.append(
                Issue(
                    severity=_str(item.get("severity")) or "error",
                    message=_str(item.get("message")) or "(no message)",
                    path=_str(item.get("path")),
                    architecture=_str(item.get("architecture")),
                    doc_url=_str(item.get("docUrl")),
                )
            )
    return NotaryLog(_status(obj.get("status")), _str(obj.get("statusSummary")), tuple(issues))


class Notarytool(Tool):
    """`xcrun notarytool` on a Mac."""

    name = "notarytool"
    names = ("xcrun",)
    hint = HINT

    def find(self) -> Path:
        return find_tool(self.names, self.hint)

    def validate(self, creds: Credentials) -> None:
        creds.argv()
        if creds.key is not None and not creds.keychain_profile:
            check_key_file(creds.key)

    def submit(self, zip_path: Path, creds: Credentials, timeout_min: int) -> Submission:
        """Upload and wait; notarytool exits 0 even for Invalid, so the status decides."""
        result = self.runner.run(submit_argv(self.exe, zip_path, creds, timeout_min), check=False)
        return parse_submission(_output(result))

    def log(self, submission_id: str, creds: Credentials) -> NotaryLog:
        result = self.runner.run(log_argv(self.exe, submission_id, creds), check=False)
        return parse_log(_output(result))


def _output(result: Result) -> str:
    """stdout, or the failure (a timeout or refused credentials prints no JSON)."""
    if "{" in result.stdout:
        return result.stdout
    raise ToolError(
        f"notarytool failed with exit code {result.returncode}: {result.tail(2) or 'no output'}",
        hint="check the credentials (xcrun notarytool history) and the network",
    )


ENGINE_HINT = (
    "off a Mac, pass --key KEY.json (a unified App Store Connect API key, `rcodesign "
    "encode-app-store-connect-api-key`), or --key-id and --issuer with AuthKey_<key-id>.p8 in "
    "~/.appstoreconnect/private_keys/"
)


MAX_KEY_BYTES = 64 << 10  # an AuthKey_ID.p8 is ~250 bytes, a unified JSON key under 1 KB
KEY_HINT = (
    "pass the App Store Connect API key file: AuthKey_<key-id>.p8 as downloaded, or a unified "
    "JSON key (`rcodesign encode-app-store-connect-api-key`)"
)


def check_key_file(path: Path) -> None:
    """Refuse (exit 2) a --key that is no API key, before anything is zipped or sent: missing,
    not a regular file (a FIFO is never opened), over 64 KiB (never read whole), or neither a
    PEM private key nor a unified JSON key. Messages name the file, never its contents."""
    require_file(path, KEY_HINT)
    size = path.stat().st_size
    if size > MAX_KEY_BYTES:
        raise InputError(f"{path}: {size} bytes, not an App Store Connect API key", hint=KEY_HINT)
    with open_mapped(path) as mm:
        raw = bytes(mm)
    if path.suffix == ".json":
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            data = None
        ok = isinstance(data, dict) and {"issuer_id", "key_id", "private_key"} <= data.keys()
    else:
        ok = b"-----BEGIN PRIVATE KEY-----" in raw and b"-----END PRIVATE KEY-----" in raw
    if not ok:
        what = "a unified JSON key" if path.suffix == ".json" else "a PEM private key (.p8)"
        raise InputError(f"{path}: not {what}", hint=KEY_HINT)


def engine_credentials(creds: Credentials) -> dict[str, Any]:
    """The engine's NotaryCredentials fields (pure): a unified JSON key file, or issuer + key
    id (the engine finds AuthKey_<id>.p8 itself). A keychain profile only exists on a Mac."""
    if not (creds.keychain_profile or creds.key or creds.key_id or creds.issuer):
        raise UsageError("notarization needs credentials", hint=ENGINE_HINT)
    if creds.keychain_profile:
        raise UsageError("--keychain-profile needs notarytool on a Mac", hint=ENGINE_HINT)
    if creds.key is not None and creds.key.suffix == ".json":
        return {"api_key_path": str(creds.key)}
    if creds.key_id and creds.issuer and creds.key is None:
        return {"api_issuer": creds.issuer, "api_key": creds.key_id}
    raise UsageError("these credentials cannot be used off a Mac", hint=ENGINE_HINT)


class EngineNotary(Tool):
    """The rcodesign engine's notary client (apple-platform-py), in-process, for every machine
    without notarytool; same methods as Notarytool."""

    name = "rcodesign"
    names = ("apple_platform",)
    hint = "pip install apple-platform-py (built with its notarize feature)"

    def find(self) -> Path:
        return Path(self._module().__file__ or ".").parent

    @staticmethod
    def _module() -> Any:
        import apple_platform.notarize as notary

        return notary

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        import apple_platform

        try:
            return getattr(self._module(), fn)(*args, **kwargs)
        except apple_platform.ApplePlatformError as exc:
            kind = type(exc).__name__
            raise ToolError(
                f"the rcodesign engine's notary client failed ({kind}): {exc}"[:400],
                hint="check the API key and the network (Apple's notary service)",
            ) from None

    def validate(self, creds: Credentials) -> None:
        if creds.key is not None:
            check_key_file(creds.key)
        engine_credentials(creds)

    def _creds(self, creds: Credentials) -> Any:
        return self._module().NotaryCredentials(**engine_credentials(creds))

    def submit(self, zip_path: Path, creds: Credentials, timeout_min: int) -> Submission:
        answer = self._call(
            "submit", str(zip_path), self._creds(creds), wait_seconds=timeout_min * 60
        )
        answer = answer if isinstance(answer, dict) else {}
        sub_id = _str(answer.get("submission_id"))
        response = answer.get("response")
        if not isinstance(response, dict):  # not finished within the wait
            return Submission(sub_id, IN_PROGRESS, "no result within the timeout")
        parsed = parse_submission(json.dumps(response))
        return Submission(parsed.id or sub_id, parsed.status, parsed.message)

    def log(self, submission_id: str, creds: Credentials) -> NotaryLog:
        answer = self._call("fetch_log", submission_id, self._creds(creds))
        return parse_log(json.dumps(answer if isinstance(answer, dict) else {}))
