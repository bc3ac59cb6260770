"""The one error family. Each subclass owns its exit code; the CLI prints message + hint."""

from __future__ import annotations

LOOP_HINT = "the path is a symlink loop (or too many nested links); name the real file"
"""The hint of every ELOOP, wherever a path is resolved or opened."""


class LlamabuildError(Exception):
    """Base of every error a user can cause or meet. Never shown as a traceback."""

    exit_code: int = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(LlamabuildError):
    """Bad input or usage: a missing file, a malformed binary, an unknown flag (exit 2)."""

    exit_code = 2


class InputError(UsageError):
    """A file given by the user is missing, unreadable or not what it should be."""


class ConfigError(UsageError):
    """A recipe, llamabuild.toml, lock file or -D override is invalid."""


class ToolError(LlamabuildError):
    """An external program or the build failed (exit 3)."""

    exit_code = 3


class ToolNotFoundError(ToolError):
    """An external program the command needs is not installed."""


class BuildError(ToolError):
    """CMake, the compiler or the linker failed."""


class InterruptedBuild(LlamabuildError):
    """Stopped by Ctrl-C or SIGTERM; nothing half-written was published."""

    exit_code = 130
