"""Command-line entry point: a thin Typer layer. Errors become one line + hint + exit code."""

from __future__ import annotations

import sys
import traceback

import click
import typer

from llamabuild.cli import verify as _verify  # noqa: F401  (registers the command)
from llamabuild.cli.app import State, app
from llamabuild.errors import LlamabuildError
from llamabuild.report import emit_json

__all__ = ["app", "main"]


def _fail(message: str, hint: str | None, code: int, argv: list[str]) -> int:
    if "--json" in argv:
        emit_json({"ok": False, "error": message, "hint": hint, "exit_code": code})
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="llamabuild", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return _fail("interrupted", None, 130, args)
    except LlamabuildError as exc:
        if State.debug:
            traceback.print_exc()
        return _fail(exc.message, exc.hint, exc.exit_code, args)
    except KeyboardInterrupt:
        return _fail("interrupted", None, 130, args)
    except Exception as exc:
        if State.debug:
            traceback.print_exc()
        return _fail(
            f"internal error: {type(exc).__name__}: {exc}",
            "rerun with --debug and report it",
            3,
            args,
        )
    return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run())
