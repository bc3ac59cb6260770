"""The Typer application object and global options; commands live in sibling modules.

A command's module is imported only when that command runs (or a help lists it): `llamabuild
--version` or `llamabuild verify` never pay for the build, signing or smoke imports.
"""

from __future__ import annotations

import importlib
import logging
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import typer
from typer.core import TyperGroup

from llamabuild import __version__

# Command name -> the module (llamabuild.cli.<module>) whose @app.command registers it.
COMMANDS = {
    "source": "source",
    "build": "build",
    "doctor": "doctor",
    "dsym": "dsym",
    "entitlements": "entitlements",
    "sign": "sign",
    "notarize": "notarize",
    "smoke": "smoke",
    "verify": "verify",
    "verify-app": "verify_app",
    "privacy-manifest": "privacy",
    "verify-model": "verify_model",
    "rebuild": "rebuild",
    "release-summary": "release_summary",
    "xcode-phase": "xcode",
}


class LazyGroup(TyperGroup):
    """The root group: knows the command names, imports a command's module on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():  # modules imported earlier in this process
            _finish(command)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        for param in self.get_params(ctx):  # --verbose, --debug, --version, --help
            _fast_runtime_param(param)
        rest: list[str] = super().parse_args(ctx, args)
        return rest

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"llamabuild.cli.{COMMANDS[cmd_name]}")
            for info in app.registered_commands:
                if info.name == cmd_name:
                    command = typer.main.get_command_from_info(
                        info,
                        pretty_exceptions_short=app.pretty_exceptions_short,
                        rich_markup_mode=app.rich_markup_mode,
                    )
                    self.commands[cmd_name] = _finish(command)
        return super().get_command(ctx, cmd_name)


def _finish(command: Any) -> Any:
    if getattr(command, "_llamabuild_finished", False):
        return command
    command._llamabuild_finished = True
    # The whole first paragraph in `llamabuild --help`, never cut at 45 characters.
    if command.help and not command.short_help:
        command.short_help = " ".join(command.help.split("\n\n")[0].split())
    readable_params(command)
    return command


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise ValueError("not a flag value")


# The scalar types our commands take: converted as click did, without typer's pydantic
# TypeAdapter (importing pydantic and building adapters is ~0.2 s on every command).
_SCALARS: dict[Any, tuple[Callable[[Any], Any], str]] = {
    str: (str, "text"),
    Path: (Path, "path"),
    int: (int, "integer"),
    float: (float, "float"),
    bool: (_plain, "flag"),
}


def _converter(annotation: Any) -> tuple[Callable[[Any], Any], str] | None:
    """A converter for `T`, `T | None` or `list[T]` (T a scalar above), else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) != 1:
            return None
        annotation = rest[0]
    if get_origin(annotation) is list:
        inner = _converter(get_args(annotation)[0])
        if inner is None or get_origin(get_args(annotation)[0]) is not None:
            return None
        one, label = inner
        return (lambda v: [one(x) for x in (v if isinstance(v, list | tuple) else [v])]), label
    return _SCALARS.get(annotation)


def _fast_runtime_param(param: Any) -> None:
    """Give a parameter of a plain type a converter that needs no pydantic (typer >= 0.29
    coerces through pydantic; older typer has no `_runtime_param` and is left alone)."""
    descriptor = getattr(param, "type_descriptor", None)
    info = getattr(descriptor, "parameter_info", None)
    if not hasattr(param, "_runtime_param") or descriptor is None or info is None:
        return
    if getattr(descriptor, "file_annotation", None) is not None or info.parser is not None:
        return
    if getattr(info, "resolve_path", False) or getattr(info, "exists", False):
        return
    found = _converter(descriptor.annotation)
    if found is None:
        return
    try:
        from typer._coercion import RuntimeParam
    except ImportError:
        return
    convert, label = found

    class Plain(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return convert(value)
            except (TypeError, ValueError):
                raise typer.BadParameter(
                    f"{value!r} is not a valid {label}.", ctx=ctx, param=param
                ) from None

    param._runtime_param = Plain(parameter_info=info, annotation=descriptor.annotation)


def readable_params(command: Any) -> None:
    """Help a person reads: `--arch ARCH`, `--dsym PATH`, never `<list[str]>`; one default
    (a help text that states its own `[default: ...]` does not get typer's second one)."""
    make_help_option = command.get_help_option

    def get_help_option(ctx: Any) -> Any:  # click makes --help per context
        option = make_help_option(ctx)
        if option is not None:
            _fast_runtime_param(option)
        return option

    command.get_help_option = get_help_option
    for param in command.params:
        _fast_runtime_param(param)
        if param.metavar is None and not getattr(param, "is_flag", False):
            descriptor = getattr(param, "type_descriptor", None)
            annotation = str(getattr(descriptor, "annotation", ""))
            if "Path" in annotation:
                param.metavar = "PATH"
            elif param.name:
                param.metavar = param.name.upper()
        if "[default:" in (param.help or ""):
            param.show_default = False
        if type(param).__name__ == "TyperArgument":  # `PATH`, not `{PATH}` / `PATH <path>`
            name = param.metavar or (param.name or "ARG").upper()
            shown = name if param.required else f"[{name}]"
            param.get_usage_pieces = lambda ctx, shown=shown: [shown]
            param.display_type_rich = lambda ctx: ""


app = typer.Typer(
    name="llamabuild",
    cls=LazyGroup,
    help="Build, verify and sign a self-contained llama-server for sandboxed macOS apps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]

# Global options: accepted before or after the command (cli.run moves them to the front).
GLOBAL_FLAGS = ("--verbose", "-v", "--debug")


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
    """Build, verify and sign a self-contained llama-server for sandboxed macOS apps.

    --verbose/-v and --debug work before or after the command.
    """
    State.debug = debug
    level = logging.DEBUG if (verbose or debug) else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", force=True)
