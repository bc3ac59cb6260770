"""Named values shared by modules that must stay light to import (verify's path)."""

from __future__ import annotations

SANDBOX_KEY = "com.apple.security.app-sandbox"
"""The App Sandbox entitlement: verify's --require-sandbox and the entitlement lint check it."""
