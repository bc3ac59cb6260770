"""The `gguf` package's type tables (ggml types, block sizes, file types), loaded cheaply.

gguf/constants.py is plain Python (enums and dicts), but `import gguf` also runs the package's
__init__, which imports numpy, the reader and the writer: 0.25 s and ~15 MB on every
`verify-model`, for two tables. So the one module is loaded from the installed package on its
own (under a private name), unless gguf is already imported, in which case that copy is used.
Nothing is copied from it: the tables stay the gguf package's.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from llamabuild.core.errors import ToolNotFoundError


@cache
def constants() -> ModuleType:
    loaded = sys.modules.get("gguf.constants")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("gguf")
    if spec is None or not spec.submodule_search_locations:
        raise ToolNotFoundError(
            "the gguf package is not installed", hint="pip install gguf (a llamabuild dependency)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "constants.py"
    own = importlib.util.spec_from_file_location("llamabuild._gguf_constants", path)
    assert own is not None and own.loader is not None
    module = importlib.util.module_from_spec(own)
    sys.modules[own.name] = module  # enums pickle and repr by module name
    own.loader.exec_module(module)
    return module


def type_sizes() -> tuple[dict[int, tuple[int, int]], dict[int, str]]:
    """ggml type id -> (block size, bytes per block), and -> name in lower case."""
    table = constants().GGML_QUANT_SIZES
    sizes = {int(t): (int(b), int(s)) for t, (b, s) in table.items()}
    return sizes, {int(t): str(t.name).lower() for t in table}


def file_type_name(value: int) -> str:
    """general.file_type as llama.cpp names it (MOSTLY_Q4_0), or the number when unknown."""
    try:
        return str(constants().LlamaFileType(value).name)
    except ValueError:
        return str(value)
