"""The Typer application object and global options; commands live in sibling modules."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from llamabuild import __version__

app = typer.Typer(
    name="llamabuild",
    help="Build, verify and sign a self-contained llama-server for sandboxed macOS apps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


class State:
    debug = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llamabuild {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Echo every external command (argv, cwd, exit).")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    State.debug = debug
    level = logging.DEBUG if (verbose or debug) else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", force=True)
