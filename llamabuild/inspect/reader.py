"""Entry point of inspection: decide the format, refuse what is not a binary (exit 2)."""

from __future__ import annotations

from pathlib import Path

from llamabuild.core.errors import InputError
from llamabuild.core.mapped import open_mapped, require_regular
from llamabuild.inspect import structure
from llamabuild.inspect.binary import Binary, Parser

__all__ = ["PARSERS", "inspect_binary", "require_regular"]

PARSERS = tuple(Parser)


def inspect_binary(path: Path, parser: str = Parser.AUTO) -> Binary:
    """Mach-O and ELF via their own headers (`auto`) or LIEF (`lief`).

    The file is mapped, never read whole: what the parsers touch is what gets paged in.
    """
    with open_mapped(path) as data:
        kind = structure.sniff(data[:8])
        if kind in ("macho", "fat"):
            if parser == Parser.LIEF:
                from llamabuild.inspect.macho_lief import inspect_macho as lief_macho

                return lief_macho(path, data)
            from llamabuild.inspect.macho import inspect_macho

            return inspect_macho(path, data)
        if kind == "elf":
            from llamabuild.inspect.elf import inspect_elf

            return inspect_elf(path, data, parser)
    raise InputError(
        f"{path}: not an executable format (neither Mach-O nor ELF)",
        hint="pass the llama-server binary itself",
    )
