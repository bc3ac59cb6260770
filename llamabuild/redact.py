"""Credentials out of URLs before llamabuild prints or records them.

A shared cache URL (`redis://user:password@host`, `http://token@host`) is a secret the team
puts in CI; the -v log, the manifest, findings and the step summary show it as
`redis://***@host`. A leaf module: the Runner, the settings checks and the builder use it.
"""

from __future__ import annotations

import re

REDACTED = "***"
# scheme://USERINFO@ -> the greedy class stops at the last '@' before the path, a space or
# ccache's attribute separator '|', so a password containing '@' is hidden whole.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s|]*@")


def redact_url(text: str) -> str:
    """`text` with the user-info of every URL in it replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
