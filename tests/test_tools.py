"""The adapters in llamabuild/tools/ have one shape: a `Tool` subclass per program, found on
first use (never at import or construction), with pure argv builders and parsers beside it."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from pathlib import Path

import pytest

from llamabuild.core.errors import ToolNotFoundError
from llamabuild.tools import XcrunTool
from llamabuild.tools.ccache import Ccache
from llamabuild.tools.cmake import CMake, Ninja
from llamabuild.tools.dsymutil import Dsymutil
from llamabuild.tools.runner import Runner, Tool

TOOLS = Path(__file__).resolve().parent.parent / "llamabuild" / "tools"
SHARED = ("__init__", "runner", "signer")  # the wrapper and the signer protocol: no adapters
ADAPTER_MODULES = sorted(p.stem for p in TOOLS.glob("*.py") if p.stem not in SHARED)


def adapters() -> list[type[Tool]]:
    found: list[type[Tool]] = []
    for stem in ADAPTER_MODULES:
        module = importlib.import_module(f"llamabuild.tools.{stem}")
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__
            and not cls.__name__.startswith("_")
            and not dataclasses.is_dataclass(cls)  # a parsed result (FileApiReply), not a tool
        ]
    return found


def test_every_adapter_class_is_a_tool_with_a_hint() -> None:
    classes = adapters()
    assert {c.__name__ for c in classes} >= {
        "CMake", "Ninja", "Ccache", "Codesign", "Dsymutil", "Git", "InstallNameTool", "Lipo",
        "Rcodesign", "Strip", "Zig",
    }  # fmt: skip
    for cls in classes:
        assert issubclass(cls, Tool), f"{cls.__module__}.{cls.__name__} is not a Tool"
        assert cls.names and cls.hint, cls


def test_adapters_search_only_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("llamabuild.tools.cmake._pypi_bin_dirs", list)
    monkeypatch.setattr("llamabuild.tools.ccache.python_scripts", list)
    runner = Runner()
    cmake = CMake(runner)  # nothing is looked up yet
    with pytest.raises(ToolNotFoundError) as err:
        cmake.ninja  # noqa: B018
    assert err.value.hint == Ninja.hint
    assert Ccache(runner).optional() is None


def test_xcrun_tools_fall_back_to_llvm_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    llvm = tmp_path / "dsymutil-19"
    llvm.write_text("#!/bin/sh\n")
    llvm.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    tool = Dsymutil(Runner())
    assert isinstance(tool, XcrunTool)
    assert not tool.apple and tool.prefix == (str(llvm),)
    pinned = Dsymutil(Runner(), exe=Path("/usr/bin/xcrun"))
    assert pinned.apple and pinned.prefix == ("/usr/bin/xcrun", "dsymutil")
    assert os.environ["PATH"] == str(tmp_path)
