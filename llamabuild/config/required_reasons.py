"""The required-reason API table (llamabuild/data/required_reason_apis.toml, from Apple's
"Describing use of required reason API"): categories, their symbols and approved reason codes.

Data, in the config layer: llamabuild.toml's [privacy] reasons are checked against it when the
file is read (config/domain.py), and `privacy-manifest` / `verify-app` find categories with it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from llamabuild.config.settings import did_you_mean
from llamabuild.core.errors import ConfigError
from llamabuild.core.resources import data_text


@dataclass(frozen=True)
class Category:
    """One NSPrivacyAccessedAPIType: its symbols and approved reason codes (code -> meaning)."""

    type: str
    name: str
    symbols: frozenset[str]
    reasons: Mapping[str, str]
    source: str


@cache
def table() -> dict[str, Category]:
    """llamabuild/data/required_reason_apis.toml, by NSPrivacyAccessedAPIType."""
    data = tomllib.loads(data_text("required_reason_apis.toml"))
    return {
        key: Category(
            type=key,
            name=str(entry["name"]),
            symbols=frozenset(entry["symbols"]),
            reasons=dict(entry["reasons"]),
            source=str(entry["source"]),
        )
        for key, entry in data.items()
    }


def check_reasons(reasons: Mapping[str, Sequence[str]], where: str) -> None:
    """[privacy] reasons: known categories, each with reason codes Apple lists for it."""
    for kind, codes in reasons.items():
        key = f"privacy.reasons.{kind}"
        category = table().get(kind)
        if category is None:
            raise ConfigError(
                f"{where}: unknown required-reason category `{kind}`{did_you_mean(kind, table())}",
                hint="categories: " + ", ".join(table()),
            )
        bad = [c for c in codes if c not in category.reasons]
        if bad or not codes:
            allowed = "; ".join(f"{c} ({m})" for c, m in category.reasons.items())
            raise ConfigError(
                f"{where}: `{key}` = {list(codes)!r}: "
                + (f"{bad[0]!r} is not a reason code for {kind}" if bad else "no reason code"),
                hint=f"reason codes for {kind}: {allowed}",
            )
