from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.macho import MachOFactory, have_toolchain


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if have_toolchain():
        return
    skip = pytest.mark.skip(
        reason="clang-19 / ld64.lld-19 not installed (apt-get install clang-19 lld-19 llvm-19)"
    )
    for item in items:
        if "compile" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def macho(tmp_path_factory: pytest.TempPathFactory) -> MachOFactory:
    return MachOFactory(tmp_path_factory.mktemp("macho"))


@pytest.fixture(scope="session")
def clean_arm64(macho: MachOFactory) -> Path:
    from tests.fixtures.macho import system

    return macho.build("clean", system("libSystem", "libc++", "Metal", "Foundation", "Accelerate"))


pytest_plugins = ["tests.plugin_real_llama"]
