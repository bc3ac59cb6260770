"""dSYM creation and checking (placeholder: filled by the dSYM work)."""

from __future__ import annotations

from pathlib import Path

from llamabuild.findings import Finding
from llamabuild.inspect.model import Binary


def check_dsym(binary: Binary, dsym: Path) -> list[Finding]:
    raise NotImplementedError
