"""Release provenance of a build: the SBOM and the third-party notices, published beside the
binary (dist/<recipe>/llama-server.cdx.json, THIRD_PARTY_NOTICES.txt, Credits.html).

`write` is the one entry point builder/run.py calls after a build; everything it reads comes
from the CMake code model of each slice, the pinned source tree, and (for what the toolchain
links statically: glibc, libstdc++, libc++, ...) the toolchain CMake used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llamabuild.core.files import sha256_file, write_atomic
from llamabuild.core.findings import Finding

if TYPE_CHECKING:
    from llamabuild.source.lock import Pin

__all__ = ["Provenance", "write"]


@dataclass(frozen=True)
class Provenance:
    """What `write` published into the staging dir."""

    sbom: Path
    notices: Path
    credits: Path
    findings: tuple[Finding, ...]


def write(
    source_root: Path,
    pin: Pin,
    build_dirs: Sequence[Path],
    target: str,
    binary: Path,
    recipe: str,
    out_dir: Path,
    epoch: str | None = None,
) -> Provenance:
    """The SBOM and notices of `binary` (the `target` built in `build_dirs`) into `out_dir`."""
    from llamabuild.inspect import inspect_binary
    from llamabuild.provenance import notices, sbom
    from llamabuild.provenance.components import find_components
    from llamabuild.provenance.fileapi import compilers, linked_tree
    from llamabuild.provenance.linkcheck import LinkEvidence
    from llamabuild.provenance.toolchain import find_toolchain_components

    linked = [linked_tree(d, target) for d in build_dirs]
    evidence = LinkEvidence(binary)
    found = find_components(source_root, linked, sbom.pin_version(pin), evidence.linked)
    parsed = inspect_binary(binary)
    archs = tuple(s.arch for s in parsed.slices)
    findings = list(found.findings)
    runtime = find_toolchain_components(
        binary, parsed.format, [compilers(d) for d in build_dirs], findings
    )
    info = sbom.BinaryInfo(binary.name, sha256_file(binary), archs, recipe)
    paths = Provenance(
        sbom=out_dir / sbom.SBOM_NAME,
        notices=out_dir / notices.NOTICES_NAME,
        credits=out_dir / notices.CREDITS_NAME,
        findings=tuple(findings),
    )
    bom = sbom.make_bom(info, pin, found, epoch, runtime)
    write_atomic(paths.sbom, sbom.to_json(bom).encode("utf-8"))
    write_atomic(paths.notices, notices.notices_text([*found.all, *runtime]).encode("utf-8"))
    write_atomic(paths.credits, notices.credits_html([*found.all, *runtime]).encode("utf-8"))
    return paths
