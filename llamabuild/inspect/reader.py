"""Entry point of inspection: decide the format, refuse what is not a binary (exit 2)."""

from __future__ import annotations

import stat
from pathlib import Path

from llamabuild.errors import InputError
from llamabuild.inspect import structure
from llamabuild.inspect.model import Binary


def require_regular(path: Path) -> None:
    """InputError unless `path` is a regular file (after symlinks).

    A device (/dev/zero) would be read until memory runs out and a FIFO blocks forever, so
    both are refused before anything opens them.
    """
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        raise InputError(
            f"{path}: no such file", hint="check the path (quote it if it has spaces)"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    if stat.S_ISDIR(mode):
        raise InputError(
            f"{path}: is a directory, not a binary",
            hint="for an app bundle use `llamabuild verify-app`; else name the executable",
        )
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise InputError(
            f"{path}: {kind}, not a regular file",
            hint="pass the binary file itself (copy it out of the pipe or device first)",
        )


def read_input(path: Path) -> bytes:
    """The file's bytes, or a one-line InputError for every way a path can be wrong."""
    require_regular(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    if not data:
        raise InputError(f"{path}: empty file", hint="the build or copy that made it failed")
    return data


PARSERS = ("auto", "lief")


def inspect_binary(path: Path, parser: str = "auto") -> Binary:
    """Mach-O via its load commands (`auto`) or LIEF (`lief`); ELF always via LIEF."""
    data = read_input(path)
    kind = structure.sniff(data[:8])
    if kind in ("macho", "fat"):
        if parser == "lief":
            from llamabuild.inspect.macho_lief import inspect_macho as lief_macho

            return lief_macho(path, data)
        from llamabuild.inspect.macho import inspect_macho

        return inspect_macho(path, data)
    if kind == "elf":
        from llamabuild.inspect.elf import inspect_elf

        return inspect_elf(path, data)
    raise InputError(
        f"{path}: not an executable format (neither Mach-O nor ELF)",
        hint="pass the llama-server binary itself",
    )
