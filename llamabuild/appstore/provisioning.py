"""Contents/embedded.provisionprofile: a CMS SignedData wrapping a plist, checked against the app.

TN3125 (Inside Code Signing: Provisioning Profiles) is the reference: the profile's
`Entitlements` is an allowlist every restricted entitlement the app claims must be in (a value
ending in `*` is a prefix wildcard, arrays such as keychain-access-groups are checked element by
element); on macOS the App Sandbox / Hardened Runtime keys are unrestricted; `ExpirationDate`
limits its life; `TeamIdentifier` names the team whose certificate signs the app; `Platform`
says OSX for a Mac profile. The CMS is parsed by llamabuild/inspect/cms.py (asn1crypto); its
signature is not verified here (Apple's chain is not on this machine; App Store Connect
re-checks it).
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llamabuild.appstore.metadata import Bundle, entitlements_of, policy
from llamabuild.core import plists
from llamabuild.core.errors import InputError
from llamabuild.core.findings import Finding, error
from llamabuild.core.mapped import file_kind, open_mapped
from llamabuild.inspect.cms import parse_signed_data

MAX_PROFILE = 1 << 20
"""A real profile is 8-30 KB; anything over 1 MiB is refused unread."""
PROFILE_HINT = "download the profile again (Xcode > Settings > Accounts, or the developer site)"


@dataclass(frozen=True)
class Profile:
    """The fields of a provisioning profile's plist that verify-app checks."""

    name: str | None
    team_ids: tuple[str, ...]
    platforms: tuple[str, ...]
    expires: datetime
    entitlements: Mapping[str, Any]


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} is not an array of strings")
    return tuple(value)


def parse_profile(der: bytes) -> Profile:
    """A profile from its bytes; InputError (bad CMS) or ValueError (bad payload)."""
    signed = parse_signed_data(der, what="embedded.provisionprofile")
    if signed.content is None:
        raise ValueError("the CMS signature carries no content (detached), not a profile")
    try:
        data = plists.parse(signed.content)
    except ValueError as exc:
        raise ValueError(f"its content is not a property list ({exc})") from None
    expires = data.get("ExpirationDate")
    if not isinstance(expires, datetime):
        raise ValueError("ExpirationDate is missing or not a date")
    entitlements = data.get("Entitlements")
    if not isinstance(entitlements, dict):
        raise ValueError("Entitlements is missing or not a dictionary")
    name = data.get("Name")
    return Profile(
        name=name if isinstance(name, str) else None,
        team_ids=_strings(data, "TeamIdentifier"),
        platforms=_strings(data, "Platform"),
        expires=expires if expires.tzinfo else expires.replace(tzinfo=UTC),
        entitlements=entitlements,
    )


def read_profile(path: Path) -> Profile:
    """The profile file: regular, at most MAX_PROFILE bytes, mapped; InputError/ValueError."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{file_kind(mode)}, not a regular file (not opened)")
    with open_mapped(path) as mm:
        if len(mm) > MAX_PROFILE:
            raise ValueError(f"{len(mm)} bytes, over the {MAX_PROFILE >> 10} KiB limit; not read")
        der = bytes(mm)
    return parse_profile(der)


def wildcard_match(allowed: str, claimed: str) -> bool:
    """TN3125: `TEAMID.*` allows any value starting with `TEAMID.`; `*` allows anything."""
    if allowed.endswith("*"):
        return claimed.startswith(allowed[:-1])
    return allowed == claimed


def value_allowed(claimed: Any, allowed: Any) -> bool:
    """A claimed entitlement value against the profile's allowlist value."""
    if isinstance(claimed, list):
        return all(value_allowed(c, allowed) for c in claimed)
    if isinstance(allowed, list):
        return any(value_allowed(claimed, a) for a in allowed)
    if isinstance(allowed, str) and isinstance(claimed, str):
        return wildcard_match(allowed, claimed)
    if isinstance(allowed, bool) and isinstance(claimed, bool):
        return allowed or not claimed  # a profile's true allows true and false
    return bool(allowed == claimed)


def restricted(key: str) -> bool:
    prefixes = policy()["provisioning"]["unrestricted_prefixes"]
    return not any(key.startswith(p) for p in prefixes)


def check_entitlements(
    claimed: Mapping[str, Any], profile: Profile | None, where: str
) -> list[Finding]:
    """`entitlement-not-in-profile` for each restricted key the profile does not allow."""
    out: list[Finding] = []
    for key, value in claimed.items():
        if not restricted(key):
            continue
        if profile is None:
            msg = f"the app claims the restricted entitlement {key} but has no profile"
            hint = "embed the App Store provisioning profile as Contents/embedded.provisionprofile"
        elif key not in profile.entitlements:
            msg = f"the app claims {key}, which its provisioning profile does not allow"
            hint = "enable the capability for the App ID and download the profile again"
        elif not value_allowed(value, profile.entitlements[key]):
            msg = (
                f"the app claims {key} = {value!r}; its provisioning profile allows "
                f"{profile.entitlements[key]!r}"
            )
            hint = "sign with the value the profile allows, or regenerate the profile"
        else:
            continue
        out.append(error("entitlement-not-in-profile", msg, path=where, hint=hint))
    return out


def _team(bundle: Bundle) -> str | None:
    binary = bundle.machos.get(bundle.main) if bundle.main else None
    for sl in binary.slices if binary else ():
        if sl.signature is not None and sl.signature.team_id:
            return sl.signature.team_id
    return None


def check_fields(profile: Profile, team: str | None, where: str, now: datetime) -> list[Finding]:
    """Expiry, platform and team of a readable profile."""
    out: list[Finding] = []
    name = f" {profile.name!r}" if profile.name else ""
    if profile.expires <= now:
        out.append(
            error(
                "provisioning-expired",
                f"the provisioning profile{name} expired on {profile.expires:%Y-%m-%d %H:%M} UTC",
                path=where,
                hint=PROFILE_HINT,
            )
        )
    platform = policy()["provisioning"]["platform"]
    if platform not in profile.platforms:
        out.append(
            error(
                "provisioning-platform",
                f"the provisioning profile is for {', '.join(profile.platforms) or 'no platform'}"
                f", not macOS ({platform})",
                path=where,
                hint="embed a Mac App Store profile (Platform OSX), not an iOS one",
            )
        )
    if team is not None and team not in profile.team_ids:
        out.append(
            error(
                "provisioning-team-mismatch",
                f"the app is signed by team {team}; the provisioning profile is for "
                f"{', '.join(profile.team_ids) or 'no team'}",
                path=where,
                hint="sign with a certificate of the profile's team, or use that team's profile",
            )
        )
    return out


def check_profile(bundle: Bundle, now: datetime | None = None) -> list[Finding]:
    """Every provisioning check for `bundle` (no profile: only the entitlements need one)."""
    rel = policy()["provisioning"]["path"]
    path = bundle.app / rel
    where = str(path)
    main = bundle.machos.get(bundle.main) if bundle.main else None
    claimed = entitlements_of(main) if main else {}
    try:
        path.lstat()
    except OSError:
        return check_entitlements(claimed, None, str(bundle.main or bundle.app))
    try:
        profile = read_profile(path)
    except (InputError, ValueError) as exc:
        reason = exc.message if isinstance(exc, InputError) else str(exc)
        for prefix in (f"{path}: ", "embedded.provisionprofile: "):
            reason = reason.removeprefix(prefix)
        msg = f"{rel}: not a readable provisioning profile ({reason})"
        return [error("provisioning-invalid", msg, path=where, hint=PROFILE_HINT)]
    out = check_fields(profile, _team(bundle), where, now or datetime.now(UTC))
    return out + check_entitlements(claimed, profile, where)
