"""`llamabuild verify-model`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from llamabuild.model.kv_memory import ServerSettings
    from llamabuild.model.memory import MemoryEstimate
    from llamabuild.model.verify_model import ModelReport, Progress

MAX_SLOTS = 256  # LLAMA_MAX_SEQ (src/llama-cparams.h)


@app.command("verify-model")
def verify_model_cmd(
    model: Annotated[Path, typer.Argument(metavar="MODEL.gguf", help="The GGUF model file.")],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="dist/<recipe>/manifest.json: check against what the pinned llama.cpp loads.",
        ),
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(
            "--sha256", help="Expected sha256 [default: [models] in llamabuild.toml, if any]."
        ),
    ] = None,
    ctx: Annotated[
        int | None,
        typer.Option("--ctx", help="Context for the KV estimate [default: the model's own]."),
    ] = None,
    max_memory: Annotated[
        str | None,
        typer.Option("--max-memory", metavar="SIZE", help="Warn above this, e.g. 8G (GiB)."),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            "-np",
            help="llama-server slots [default: [server] in llamabuild.toml, else the server's "
            "auto: 4, unified cache].",
        ),
    ] = None,
    kv_unified: Annotated[
        bool | None,
        typer.Option(
            "--kv-unified/--no-kv-unified",
            help="One KV buffer for all slots, with an explicit -np [default: off; -np auto "
            "is always unified].",
        ),
    ] = None,
    swa_full: Annotated[
        bool | None,
        typer.Option(
            "--swa-full/--no-swa-full",
            help="Full-size sliding-window caches, as llama-server --swa-full [default: off].",
        ),
    ] = None,
    cache_type_k: Annotated[
        str | None,
        typer.Option("--cache-type-k", "-ctk", metavar="TYPE", help="K cache type [default: f16]."),
    ] = None,
    cache_type_v: Annotated[
        str | None,
        typer.Option("--cache-type-v", "-ctv", metavar="TYPE", help="V cache type [default: f16]."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a GGUF model loads in the pinned llama-server: format, tensors, memory, sha256."""
    from llamabuild.builder.model_pins import expected_sha256, load_capabilities
    from llamabuild.core import github, report
    from llamabuild.core.errors import UsageError
    from llamabuild.core.findings import exit_code
    from llamabuild.model.memory import parse_size
    from llamabuild.model.verify_model import ModelOptions, verify_model

    if ctx is not None and ctx <= 0:
        raise UsageError(f"--ctx {ctx} must be a positive token count", hint="e.g. --ctx 4096")
    opts = ModelOptions(
        caps=load_capabilities(manifest) if manifest is not None else None,
        sha256=expected_sha256(model, sha256),
        ctx=ctx,
        max_memory=parse_size(max_memory) if max_memory is not None else None,
        server=server_settings(
            parallel=parallel,
            kv_unified=kv_unified,
            swa_full=swa_full,
            cache_type_k=cache_type_k,
            cache_type_v=cache_type_v,
        ),
    )
    with _progress(enabled=opts.sha256 is not None and not json_out) as progress:
        result = verify_model(model, replace(opts, progress=progress))
    github.publish("llamabuild verify-model", result.findings, default_file=str(model))
    if json_out:
        report.emit_json(result, command="verify-model")
    else:
        render_model(result)
    raise typer.Exit(exit_code(result.findings))


def server_settings(
    *,
    parallel: int | None,
    kv_unified: bool | None,
    swa_full: bool | None,
    cache_type_k: str | None,
    cache_type_v: str | None,
) -> ServerSettings:
    """The flags, else [server] in llamabuild.toml, else llama-server's defaults."""
    from llamabuild.config.project import load_project
    from llamabuild.core.errors import UsageError
    from llamabuild.model.kv_memory import KV_CACHE_TYPES, ServerSettings, from_config

    conf = from_config(load_project().server)
    settings = ServerSettings(
        parallel=parallel if parallel is not None else conf.parallel,
        kv_unified=kv_unified if kv_unified is not None else conf.kv_unified,
        swa_full=swa_full if swa_full is not None else conf.swa_full,
        cache_type_k=cache_type_k or conf.cache_type_k,
        cache_type_v=cache_type_v or conf.cache_type_v,
    )
    if settings.parallel is not None and settings.parallel < 0:
        settings = replace(settings, parallel=None)  # a negative -np is llama-server's auto
    if settings.parallel is not None and not 0 < settings.parallel <= MAX_SLOTS:
        raise UsageError(  # llama-server refuses 0 (common/arg.cpp:2547), LLAMA_MAX_SEQ over 256
            f"--parallel {settings.parallel} is not a slot count (1..{MAX_SLOTS}, or -1: auto)",
            hint="e.g. -np 1 for one user at a time",
        )
    for flag, value in (("k", settings.cache_type_k), ("v", settings.cache_type_v)):
        if value not in KV_CACHE_TYPES:
            raise UsageError(
                f"--cache-type-{flag} {value[:40]!r} is not a type llama-server accepts",
                hint="one of " + ", ".join(KV_CACHE_TYPES),
            )
    return settings


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar for hashing, on a terminal only (CI logs get no redraws)."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from llamabuild.core import report

    bar = Progress(
        "sha256",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=report.console(stderr=True),
        transient=True,
    )
    task = bar.add_task("sha256", total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)


def render_model(result: ModelReport) -> None:
    from llamabuild.core import report
    from llamabuild.model.memory import format_size
    from llamabuild.model.verify_model import memory_of

    out = result
    types = ", ".join(f"{n} x{c}" for n, c in out.tensor_types.items()) or "-"
    rows = [
        ("file", f"{out.path} ({format_size(out.size)}, GGUF v{out.gguf_version})"),
        ("architecture", out.architecture or "-"),
        ("name", out.name or "-"),
        ("file type", out.file_type or "-"),
        ("context length", str(out.context_length or "-")),
        ("tokenizer", out.tokenizer_model or "-"),
        ("chat template", "yes" if out.chat_template else "no"),
        ("tensors", f"{out.tensors} ({out.parameters:,} parameters): {types}"),
        *memory_rows(memory_of(result)),
        (
            "pinned llama.cpp",
            "checked" if out.checked_against_pin else "not checked (no --manifest)",
        ),
        ("sha256", out.sha256 or "not checked (no --sha256 or [models] pin)"),
    ]
    # Every value from the model's header is untrusted text: print_rows escapes it.
    report.print_rows("verify-model", ("check", "value"), rows)
    report.print_findings(result.findings)


def memory_rows(mem: MemoryEstimate) -> list[tuple[str, str]]:
    from llamabuild.model.memory import format_size

    parts = [f"{format_size(mem.weights_bytes)} weights"]
    if mem.kv_cache_bytes is None:
        parts.append("KV cache unknown")
    else:
        parts.append(f"{format_size(mem.kv_cache_bytes)} KV cache")
    if mem.recurrent_state_bytes:
        parts.append(f"{format_size(mem.recurrent_state_bytes)} recurrent state")
    rows = [("memory", f"{format_size(mem.total_bytes)} = " + " + ".join(parts))]
    s = mem.server
    if s is not None:
        unified = "one unified cache" if s.unified else "a cache per slot"
        window = f", window {mem.swa_window}" if mem.swa_window else ""
        full = ", --swa-full" if s.swa_full else ""
        rows.append(
            (
                "context",
                f"ctx {mem.ctx or '-'}, {s.slots} slot(s), {unified}, K {s.cache_type_k}, "
                f"V {s.cache_type_v}, {mem.attention or 'unknown'} attention{window}{full}",
            )
        )
    for c in mem.caches:
        what = (
            f"{c.cells} cells x {c.streams} stream(s)"
            if c.kind != "recurrent"
            else (f"{c.cells} row(s)")
        )
        rows.append((f"  {c.kind}", f"{format_size(c.bytes)}: {c.layers} layer(s), {what}"))
    rows.append(("compute buffer", mem.compute_buffer))
    return rows
