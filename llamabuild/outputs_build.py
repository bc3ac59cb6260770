"""The `--json` output models of `source` and `build --dry-run`, which carry the source and
plan types (kept apart from llamabuild.outputs_common so `verify` never imports the builder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llamabuild.builder.plan import DryRunOutput as DryRunOutput  # re-exported
from llamabuild.source import SourceTree
from llamabuild.source.lock import Pin


@dataclass(frozen=True)
class SourceOutput:
    """`llamabuild source --json`: the resolved tree, its pin, and the lock file."""

    ok: Literal[True]
    root: Path
    pin: Pin
    dirty: tuple[str, ...]
    lock_written: bool
    lock: Path

    @classmethod
    def of(cls, tree: SourceTree, lock: Path) -> SourceOutput:
        return cls(True, tree.root, tree.pin, tree.dirty, tree.lock_written, lock)
