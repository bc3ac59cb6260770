"""`llamabuild verify`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app
from llamabuild.config.versions import DEFAULT_MIN_MACOS

if TYPE_CHECKING:
    from llamabuild.inspect.policy import Policy
    from llamabuild.inspect.verify_binary import VerifyReport


@app.command("verify")
def verify_cmd(
    path: Annotated[Path, typer.Argument(help="The binary (Mach-O thin/fat, or ELF).")],
    arch: Annotated[
        list[str] | None, typer.Option("--arch", help="Allowed architecture (repeatable).")
    ] = None,
    min_macos: Annotated[
        str, typer.Option("--min-macos", help="Deployment target; a newer minos is an error.")
    ] = DEFAULT_MIN_MACOS,
    elf_policy: Annotated[
        str, typer.Option("--elf-policy", help="ELF only: 'glibc' (glibc NEEDED only) or 'static'.")
    ] = "glibc",
    dsym: Annotated[
        Path | None, typer.Option("--dsym", help="A .dSYM whose UUIDs must match, per arch.")
    ] = None,
    require_sandbox: Annotated[
        bool,
        typer.Option("--require-sandbox", help="Error unless signed with app-sandbox enabled."),
    ] = False,
    parser: Annotated[
        str,
        typer.Option("--parser", help="Mach-O reader: 'auto' (load commands) or 'lief'."),
    ] = "auto",
    symbols: Annotated[
        bool,
        typer.Option("--symbols", help="JSON: list every imported symbol {name, dylib, weak}."),
    ] = False,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="'app-store' (default) or 'developer-id': also hardened runtime, secure "
            "timestamp, Developer ID certificate, no get-task-allow (notarization).",
        ),
    ] = "app-store",
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="The build's manifest.json: the embedded Metal kernels must be the ones it "
            "recorded.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a binary's linkage, architectures, minos and UUIDs against the App Store policy."""
    from llamabuild.core import github, report
    from llamabuild.core.errors import UsageError
    from llamabuild.core.findings import exit_code
    from llamabuild.inspect.binary import VerifyProfile
    from llamabuild.inspect.policy import Policy, parse_archs, parse_min_macos
    from llamabuild.inspect.reader import PARSERS
    from llamabuild.inspect.verify_binary import verify

    if elf_policy not in ("glibc", "static"):
        raise UsageError(f"unknown --elf-policy {elf_policy!r}", hint="use 'glibc' or 'static'")
    if parser not in PARSERS:
        raise UsageError(f"unknown --parser {parser!r}", hint=f"use one of {', '.join(PARSERS)}")
    if profile not in tuple(VerifyProfile):
        names = ", ".join(VerifyProfile)
        raise UsageError(f"unknown --profile {profile!r}", hint=f"use one of {names}")
    policy = Policy(
        archs=parse_archs(arch),
        min_macos=parse_min_macos(min_macos),
        elf=elf_policy,
        require_sandbox=require_sandbox,
    )
    kernels = None
    if manifest is not None:
        from llamabuild.builder.manifest import read as read_manifest

        recorded = read_manifest(manifest)
        kernels = {a: s.metal_embed for s in recorded.slices for a in s.archs}
    result = verify(
        path, policy, dsym=dsym, parser=parser, profile=VerifyProfile(profile), kernels=kernels
    )
    if github.in_actions():  # Output.of_file hashes the whole binary: only when it is shown
        uuids = {s.arch: s.uuid for s in result.binary.slices if s.uuid}
        github.publish(
            "llamabuild verify",
            result.findings,
            outputs=[github.Output.of_file(path, uuids)],
            default_file=str(path),
        )
    if json_out:
        report.emit_json(result.listing(symbols), command="verify")
    else:
        render_verify(result, policy)
    raise typer.Exit(exit_code(result.findings))


def render_verify(result: VerifyReport, policy: Policy) -> None:
    from llamabuild.core import report
    from llamabuild.core.report import escape
    from llamabuild.inspect.binary import import_counts
    from llamabuild.inspect.policy import verdict

    out = report.console()
    b = result.binary
    # Paths, dylib names and rpaths come from the file: report.escape makes them inert.
    out.print(f"[bold]{escape(str(b.path))}[/] ({b.format}{', fat' if b.fat else ''})")
    for s in b.slices:
        if b.format == "elf":
            head = f"{s.arch} {s.filetype}  build-id {s.uuid or '-'}"
            head += f"  interpreter {s.interpreter or '- (static)'}"
        else:
            head = f"{s.arch} {s.filetype}  uuid {s.uuid or '-'}  minos {s.minos or '-'}"
            head += f"  sdk {s.sdk or '-'}  signed {'yes' if s.signed else 'no'}"
        if not s.dylibs and not s.rpaths:  # a fully static ELF: nothing to tabulate
            out.print(escape(head))
            out.print("  no dynamic dependencies, no rpaths")
            continue
        counts = import_counts(s)
        rows: list[tuple[str, ...]] = []
        for d in s.dylibs:
            why = verdict(b, d, policy)
            n = counts.pop(d.name, 0)
            rows.append((d.name, d.kind, str(n) if b.format == "macho" else "", why or "ok"))
        for special, n in counts.items():  # flat or weak lookup, self, main executable
            rows.append((special, "lookup", str(n), "ok"))
        for rp in s.rpaths:
            rows.append((rp, "rpath", "", ""))
        report.print_rows(head, ("dependency", "kind", "imports", "verdict"), rows)
    report.print_findings(result.findings)
