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
    from llamabuild.model.verify_model import ModelReport, Progress


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
    json_out: JsonOpt = False,
) -> None:
    """Check a GGUF model loads in the pinned llama-server: format, tensors, memory, sha256."""
    from llamabuild.builder.model_pins import expected_sha256, load_capabilities
    from llamabuild.core import github, report
    from llamabuild.core.errors import UsageError
    from llamabuild.core.findings import exit_code
    from llamabuild.model.verify_model import ModelOptions, parse_size, verify_model

    if ctx is not None and ctx <= 0:
        raise UsageError(f"--ctx {ctx} must be a positive token count", hint="e.g. --ctx 4096")
    opts = ModelOptions(
        caps=load_capabilities(manifest) if manifest is not None else None,
        sha256=expected_sha256(model, sha256),
        ctx=ctx,
        max_memory=parse_size(max_memory) if max_memory is not None else None,
    )
    with _progress(enabled=opts.sha256 is not None and not json_out) as progress:
        result = verify_model(model, replace(opts, progress=progress))
    github.publish("llamabuild verify-model", result.findings, default_file=str(model))
    if json_out:
        report.emit_json(result, command="verify-model")
    else:
        render_model(result)
    raise typer.Exit(exit_code(result.findings))


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
    from llamabuild.model.verify_model import format_size, memory_of

    out = result
    mem = memory_of(result)
    kv = "unknown" if mem.kv_cache_bytes is None else format_size(mem.kv_cache_bytes)
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
        (
            "memory",
            f"{format_size(mem.total_bytes)} = {format_size(mem.weights_bytes)} weights"
            f" + {kv} KV cache (f16, ctx {mem.ctx or '-'})",
        ),
        (
            "pinned llama.cpp",
            "checked" if out.checked_against_pin else "not checked (no --manifest)",
        ),
        ("sha256", out.sha256 or "not checked (no --sha256 or [models] pin)"),
    ]
    # Every value from the model's header is untrusted text: print_rows escapes it.
    report.print_rows("verify-model", ("check", "value"), rows)
    report.print_findings(result.findings)
