"""`llamabuild privacy-manifest`: a PrivacyInfo.xcprivacy for the required-reason APIs a binary
imports, with the reasons llamabuild.toml [privacy] gives."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from llamabuild.appstore.privacy import PrivacyManifestReport
    from llamabuild.config.project import ProjectConfig
    from llamabuild.inspect import Binary


@app.command("privacy-manifest")
def privacy_manifest_cmd(
    binary: Annotated[Path, typer.Argument(metavar="BINARY", help="The Mach-O (llama-server).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write PrivacyInfo.xcprivacy here (else stdout)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="llamabuild.toml to read [privacy] from (default: ./)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write the privacy manifest declaring the required-reason APIs BINARY imports."""
    from llamabuild.cli.entitlements import write_atomic
    from llamabuild.config.project import load_project
    from llamabuild.core import report
    from llamabuild.inspect import inspect_binary

    project = load_project(config)  # a bad [privacy] is refused before the binary is read
    result = build_manifest(inspect_binary(binary), project)
    if out is not None:
        write_atomic(out, result.manifest.encode("utf-8"), parents=False)
        result = _with_output(result, out)
    if json_out:
        report.emit_json(result, command="privacy-manifest")
        return
    err = report.console(stderr=True)
    for cat in result.categories:
        line = f"{cat.type}: {', '.join(cat.symbols)} -> {', '.join(cat.reasons)}"
        err.print(report.escape(line))
    if out is None:
        sys.stdout.write(result.manifest)  # data, byte for byte
        sys.stdout.flush()
    else:
        err.print(f"wrote {report.escape(str(out))} ({len(result.categories)} categories)")


def _with_output(result: PrivacyManifestReport, out: Path) -> PrivacyManifestReport:
    import dataclasses

    return dataclasses.replace(result, output=out)


def build_manifest(binary: Binary, config: ProjectConfig) -> PrivacyManifestReport:
    """Categories of `binary`, reasons from `config`, the rendered and re-checked manifest.

    A category without a configured reason is a ConfigError (exit 2) naming what to set: a
    manifest that leaves it out would be ITMS-91053 again, and llamabuild cannot know why the
    app calls the API."""
    from llamabuild.appstore import privacy
    from llamabuild.appstore.privacy import FoundCategory, PrivacyManifestReport
    from llamabuild.core.errors import ConfigError, InputError

    if binary.format != "macho":
        raise InputError(
            f"{binary.path}: an {binary.format.upper()} file; privacy manifests are for Mach-O",
            hint="pass the macOS build of the binary",
        )
    found = privacy.categories_of(binary)
    reasons = config.privacy.reasons
    where = str(config.path or "llamabuild.toml")
    missing = privacy.missing_reasons(found, reasons)
    if missing:
        table = privacy.table()
        example = ", ".join(f'{k} = ["<code>"]' for k in missing)
        codes = "; ".join(f"{k}: {', '.join(table[k].reasons)}" for k in missing)
        raise ConfigError(
            f"{binary.path.name} uses {', '.join(missing)}, but {where} [privacy] gives no reason",
            hint=f"add to {where}: [privacy] reasons = {{ {example} }} (reason codes: {codes})",
        )
    xml = privacy.render(list(found), reasons)
    privacy.validate_rendered(xml, found)
    table = privacy.table()
    return PrivacyManifestReport(
        binary=binary.path,
        ok=True,
        categories=tuple(
            FoundCategory(
                type=k,
                name=table[k].name,
                symbols=syms,
                reasons=tuple(reasons[k]),
                source=table[k].source,
            )
            for k, syms in found.items()
        ),
        output=None,
        manifest=xml.decode("utf-8"),
    )
