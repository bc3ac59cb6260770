"""Command-line entry point: a thin Typer layer. Errors become one line + hint + exit code."""

from __future__ import annotations

import errno
import sys
import traceback

import typer

from llamabuild.cli.app import GLOBAL_FLAGS, State, app
from llamabuild.core.errors import LlamabuildError

__all__ = ["app", "main"]


def _fail(message: str, hint: str | None, code: int, argv: list[str]) -> int:
    from llamabuild.core.report import emit_json, inert  # rich: only when there is an error to show

    if "--json" in argv:
        from llamabuild.core.report import ErrorReport

        emit_json(ErrorReport(ok=False, error=message, hint=hint, exit_code=code))
    # One line each, whatever a path or name in the message holds (ESC, CR, newlines).
    print(f"error: {inert(message)}", file=sys.stderr)
    if hint:
        print(f"hint: {inert(hint)}", file=sys.stderr)
    return code


from llamabuild.core.errors import LOOP_HINT  # noqa: E402

# A file-system error that reaches here unconverted still gets a hint, never a traceback.
ERRNO_HINTS = {
    errno.ELOOP: LOOP_HINT,
    errno.ENOENT: "check the path (quote it if it has spaces)",
    errno.ENOTDIR: "check the path: a part of it is a file, not a folder",
    errno.EISDIR: "name a file, not a folder",
    errno.EACCES: "check the permissions of the file and its folder",
    errno.EPERM: "check the permissions of the file and its folder",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ENOSPC: "free some disk space and rerun",
    errno.EROFS: "the file system is read-only; write somewhere else",
}
INPUT_ERRNOS = frozenset(
    {errno.ELOOP, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM}
    | {errno.ENAMETOOLONG}
)


def _cause_hint(exc: BaseException) -> str | None:
    """The hint for the OSError an error was raised from (if any), by its errno."""
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in ERRNO_HINTS:
            return ERRNO_HINTS[cause.errno]
        cause = cause.__cause__ or cause.__context__
    return None


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename is not None else ""
    return f"{where}{exc.strerror or exc}"


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors (typer >= 0.29 vendors click, so match by shape, not by class)."""
    return callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int)


def _usage_error(exc: Exception, args: list[str]) -> int:
    """A usage error as one `error:` line + one `hint:` line (exit 2), not click's box."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `llamabuild`: the help is the answer
        exc.show()  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    where = getattr(ctx, "command_path", "") or "llamabuild"
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(str(message).split()) or "bad usage"
    return _fail(message, f"run `{where} --help`", 2, args)


def global_flags_first(args: list[str]) -> list[str]:
    """--verbose/-v/--debug anywhere before `--` move to the front: they are root options,
    and click only takes a group's options before the command name."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    return [*flags, *rest, *args[end:]]


def run(argv: list[str] | None = None) -> int:
    args = global_flags_first(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="llamabuild", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted", None, 130, args)
    except LlamabuildError as exc:
        if State.debug:
            traceback.print_exc()
        return _fail(exc.message, exc.hint or _cause_hint(exc), exc.exit_code, args)
    except OSError as exc:  # a file-system error no command turned into its own message
        if State.debug:
            traceback.print_exc()
        hint = ERRNO_HINTS.get(exc.errno or 0, "rerun with --debug for the details")
        return _fail(_os_message(exc), hint, 2 if exc.errno in INPUT_ERRNOS else 3, args)
    except Exception as exc:  # the last line of defence: never a bare traceback
        if _is_usage_error(exc):
            return _usage_error(exc, args)
        if State.debug:
            traceback.print_exc()
        if isinstance(exc, RuntimeError) and str(exc).startswith("Symlink loop"):
            return _fail(str(exc), LOOP_HINT, 2, args)  # pathlib's resolve() before 3.13
        return _fail(
            f"internal error: {type(exc).__name__}: {exc}",
            "rerun with --debug and report it",
            3,
            args,
        )
    return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run())
