"""verify-app's model check: every regular `.gguf` file in the bundle, as verify-model sees it.

The bundle walk (llamabuild/appstore/verify_app.py) hands over regular files only, so a FIFO named
`model.gguf` is never opened here (scan_bundle reports it as a special file).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from llamabuild.core.errors import InputError
from llamabuild.core.findings import Finding, error
from llamabuild.model.capabilities import PinCapabilities
from llamabuild.model.kv_memory import ServerSettings
from llamabuild.model.verify_model import ModelOptions, ModelReport, verify_model


@dataclass(frozen=True)
class BundleModels:
    """What bundled models are checked against: the build's capabilities (--manifest) and
    the sha256 pins of llamabuild.toml's [models] (file name -> sha256); memory is sized with
    its [server] settings."""

    caps: PinCapabilities | None = None
    sha256: Mapping[str, str] = field(default_factory=dict)
    server: ServerSettings = field(default_factory=ServerSettings)  # [server]: the app's


def check_bundle_models(
    files: Iterable[Path], opts: BundleModels | None = None
) -> tuple[tuple[ModelReport, ...], list[Finding]]:
    """Each `.gguf` among `files` verified; an unreadable one is a `gguf-invalid` finding."""
    opts = opts or BundleModels()
    outputs: list[ModelReport] = []
    findings: list[Finding] = []
    for path in files:
        if path.suffix.lower() != ".gguf":
            continue
        pin = opts.sha256.get(path.name)
        try:
            model_opts = ModelOptions(caps=opts.caps, sha256=pin, server=opts.server)
            report = verify_model(path, model_opts)
        except InputError as exc:
            findings.append(error("gguf-invalid", exc.message, path=str(path), hint=exc.hint))
            continue
        outputs.append(report)
        findings += report.findings
    return tuple(outputs), findings
