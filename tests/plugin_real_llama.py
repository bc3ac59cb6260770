"""Session fixtures around the real llama.cpp build (filled by the build work)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_llama_server() -> Path:
    """A real llama-server built from the llama-cpp-python sdist with linux-x86_64-static."""
    env = os.environ.get("LLAMABUILD_TEST_LLAMA_SERVER")
    if env:
        return Path(env)
    pytest.skip("real llama-server build not wired yet")
