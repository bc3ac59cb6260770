"""Credentials out of URLs before llamabuild prints or records them.

A shared cache URL (`redis://user:password@host`, `http://token@host`) is a secret the team
puts in CI; the -v log, the manifest, findings and the step summary show it as
`redis://***@host`. A leaf module: the Runner, the settings checks and the builder use it.
"""

from __future__ import annotations

import re

REDACTED = "***"
# scheme:// (or a typo's scheme:/) then USERINFO@. The user-info runs to the LAST '@' of the
# text, as the remote URL parser splits it (builder/remote_cache.py), so a password holding
# '/', ':', '@', ' ', '|', '#' or '?' is hidden whole. Text between two URLs in one string is
# hidden with it: too much rather than a password (callers pass one URL or one env value).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*:/{1,2}).*@", re.DOTALL)
# What a rejected URL may still show: `scheme:/…` and, after its user-info, a host, port and
# path made only of characters no secret needs to be told from (a port is digits only, so
# `user:password` without its `@host` is not shown as host:port).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/{1,2}")
_PLAIN = re.compile(r"(?:[A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]*\])(?::[0-9]*)?(?:/[A-Za-z0-9._~/-]*)?")


def redact_url(text: str) -> str:
    """`text` with the user-info of every URL in it replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def redact_rejected(value: str) -> str:
    """What an error may show of a URL that failed its checks: its scheme, *** for anything
    that could be user-info, and the host, port and path only when plainly just that. A value
    without a `scheme:/` is not shown at all (it may be a bare `user:password`)."""
    head = _SCHEME.match(value)
    if head is None:
        return REDACTED
    _userinfo, at, tail = value[head.end() :].rpartition("@")
    userinfo = f"{REDACTED}@" if at else ""
    return f"{head.group()}{userinfo}{tail if _PLAIN.fullmatch(tail) else REDACTED}"
