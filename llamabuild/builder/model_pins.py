"""Where verify-model's expectations come from: the build's manifest and llamabuild.toml."""

from __future__ import annotations

from pathlib import Path

from llamabuild.core.errors import ConfigError
from llamabuild.model.bundled import BundleModels
from llamabuild.model.capabilities import PinCapabilities


def load_capabilities(manifest: Path) -> PinCapabilities:
    """The capabilities recorded in a build's manifest.json (ConfigError when it has none)."""
    from llamabuild.builder import manifest as mf

    caps = mf.read(manifest).capabilities
    if caps is None:
        raise ConfigError(
            f"{manifest}: no record of what the pinned llama.cpp loads "
            "(written by an older llamabuild, or a tree without llama.cpp's sources)",
            hint="rebuild with `llamabuild build` to record it",
        )
    return caps


def expected_sha256(model: Path, explicit: str | None, config: Path | None = None) -> str | None:
    """--sha256, else llamabuild.toml's [models] entry for the model's file name, else None."""
    from llamabuild.config.project import load_project
    from llamabuild.model.verify_model import check_sha256_text

    if explicit is not None:
        return check_sha256_text(explicit)
    pinned = load_project(config).models.get(model.name)
    return pinned.lower() if pinned is not None else None


def bundle_models(manifest: Path | None, config: Path | None = None) -> BundleModels:
    """verify-app's model expectations: --manifest's capabilities, llamabuild.toml's pins and
    [server] settings."""
    from llamabuild.config.project import load_project
    from llamabuild.model.kv_memory import from_config

    caps = load_capabilities(manifest) if manifest is not None else None
    project = load_project(config)
    return BundleModels(caps=caps, sha256=project.models, server=from_config(project.server))
