"""Credentials out of URLs: the user-info runs to the last '@', whatever the password holds;
a URL that failed its checks shows nothing that could be a secret."""

from __future__ import annotations

import pytest

from llamabuild.core.redact import redact_rejected, redact_url

SECRET = "Alpha7qX"


@pytest.mark.parametrize(
    "password",
    ["pw", "S3/CRET", "a:b", "a@b", "a b", "a|b", "a#b", "a?b", "/:@ |#?&%", "a%2Fb", "a\nb"],
)
@pytest.mark.parametrize("user", ["default", "", None])
def test_any_userinfo_is_redacted_whole(password: str, user: str | None) -> None:
    userinfo = password if user is None else f"{user}:{password}"
    schemes = ["redis://", "http://"] + ([] if userinfo.startswith("/") else ["redis:/"])
    for scheme in schemes:  # a typo's single slash too
        url = f"{scheme}{userinfo}{SECRET}@cache.example:6379/0"
        assert redact_url(url) == f"{scheme}***@cache.example:6379/0"
        value = f"{url}|connect-timeout=500|operation-timeout=3000"  # CCACHE_REMOTE_STORAGE
        assert redact_url(value) == f"{scheme}***@cache.example:6379/0|connect-timeout=500|" + (
            "operation-timeout=3000"
        )


def test_text_without_userinfo_is_kept() -> None:
    for text in ("redis://cache.example:6379", "http://h:8080/c", "no URL here", "a@b"):
        assert redact_url(text) == text
    assert redact_url(f"cache redis://u:{SECRET}@h failed") == "cache redis://***@h failed"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (f"redis:/default:{SECRET}@cache.example", "redis:/***@cache.example"),
        (f"redis://default:{SECRET} x@cache.example:1/0", "redis://***@cache.example:1/0"),
        (f"redis://:{SECRET}|x@h", "redis://***@h"),
        (f"rsync://u:{SECRET}@h", "rsync://***@h"),
        (f"redis://default:{SECRET}", "redis://***"),  # no @host: it all may be a password
        (f"redis://u:{SECRET}/x y", "redis://***"),
        (f"http://h/c|bearer-token={SECRET}", "http://***"),  # a ccache attribute's secret
        (f"redis://:pw@h/0?{SECRET}", "redis://***@***"),
        (f"redis:default:{SECRET}@h", "***"),  # no scheme:/ : not shown at all
        (f"{SECRET}:{SECRET}", "***"),
        ("ftp://cache.example", "ftp://cache.example"),
        ("redis://", "redis://"),
        ("redis://[::1]:6379/2", "redis://[::1]:6379/2"),
    ],
)
def test_rejected_url_shows_no_secret(value: str, shown: str) -> None:
    assert redact_rejected(value) == shown
