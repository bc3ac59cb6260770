"""The `--json` output models of `source` and `build --dry-run`, which carry the source and
plan types (kept apart from llamabuild.outputs so `verify` never imports the builder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llamabuild.builder.plan import PlanReport, SliceReport
from llamabuild.recipes import Recipe
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


@dataclass(frozen=True)
class DryRunOutput:
    """`llamabuild build --dry-run --json`: everything `build` would run, nothing run."""

    ok: Literal[True]
    dry_run: Literal[True]
    recipe: Recipe
    source: SourceTree
    dist: Path
    versions: dict[str, str]
    inputs_key: str
    slices: tuple[SliceReport, ...]

    @classmethod
    def of(cls, plan: PlanReport) -> DryRunOutput:
        p = plan
        return cls(True, True, p.recipe, p.source, p.dist, p.versions, p.inputs_key, p.slices)
