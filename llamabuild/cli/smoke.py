"""`llamabuild smoke`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from llamabuild.builder.smoke import SmokeReport


@app.command("smoke")
def smoke_cmd(
    binary: Annotated[
        Path | None,
        typer.Option(
            "--binary", help="llama-server to test [default: dist/<recipe>/llama-server]."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="A .gguf model [default: a generated tiny llama model]."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for /health, and per request.")
    ] = 60.0,
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1 [default: a free random port].")
    ] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Start llama-server on 127.0.0.1, check /health, /v1/models and a 1-token chat, stop it."""
    from llamabuild.builder.smoke import default_binary, run_smoke
    from llamabuild.config.project import load_project
    from llamabuild.core import github, report
    from llamabuild.core.errors import InputError, ToolError
    from llamabuild.core.findings import error
    from llamabuild.core.report import escape
    from llamabuild.model.kv_memory import server_flags

    if binary is None:
        binary = default_binary()
        if not binary.exists():
            raise InputError(
                f"no --binary given and {binary} does not exist",
                hint="run `llamabuild build` first, or pass --binary PATH",
            )
    err = report.console(stderr=True)

    def show_log(tail: str) -> None:
        err.print("server log (last lines):", markup=False)
        err.print(tail, markup=False)

    status = None
    if sys.stderr.isatty() and not json_out:
        status = err.status("starting llama-server")
        status.start()

    def progress(elapsed: float, state: str) -> None:
        if status is not None:
            status.update(f"waiting for /health: {elapsed:4.1f} s ({escape(state)})")

    try:
        result = run_smoke(
            binary,
            model=model,
            timeout=timeout,
            port=port,
            progress=progress,
            on_log=show_log,
            server_flags=server_flags(load_project().server),  # the app's [server] settings
        )
    except ToolError as exc:
        # Under GitHub Actions the failure is also an annotation and a summary section.
        failed = error("smoke-failed", exc.message, path=str(binary), hint=exc.hint)
        github.publish("llamabuild smoke", [failed], extra={"binary": str(binary)})
        raise
    finally:
        if status is not None:
            status.stop()
    github.publish("llamabuild smoke", [], outputs=[], extra=_summary_rows(result))
    if json_out:
        report.emit_json(result, command="smoke")
    else:
        render(result)


def _summary_rows(result: SmokeReport) -> dict[str, str]:
    rows = {"binary": str(result.binary), "model": result.models[0] if result.models else "-"}
    rows.update({f"{k} (ms)": f"{v * 1000:.1f}" for k, v in result.timings.items()})
    rows["stopped by"] = result.stopped_by
    return rows


def render(result: SmokeReport) -> None:
    from rich.table import Table

    from llamabuild.core import report
    from llamabuild.core.report import escape

    out = report.console()
    model = escape(str(result.model)) + (
        " (generated tiny llama)" if result.model_generated else ""
    )
    out.print(f"[bold]{escape(str(result.binary))}[/] on 127.0.0.1:{result.port}, model {model}")
    table = Table(title="smoke timings", title_justify="left")
    table.add_column("step")
    table.add_column("ms", justify="right")
    labels = {
        "healthy": "start until /health 200",
        "models": "GET /v1/models",
        "chat": "POST /v1/chat/completions (max_tokens 1)",
        "stop": f"stop ({result.stopped_by})",
        "total": "total",
    }
    for key, label in labels.items():
        if key in result.timings:
            table.add_row(escape(label), f"{result.timings[key] * 1000:.1f}")
    out.print(table)
    # Model names and the finish reason come from the server: never markup.
    out.print(f"[bold green]OK[/]: {escape(result.summary())}")
