"""tools/preprocessor.py: clang -E on kernel text that came out of an untrusted binary. What
could read a file or poke the compiler is removed first; the program is stopped by a timeout
and by a bound on its output. Real clang throughout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llamabuild.core.errors import ToolError
from llamabuild.tools import preprocessor
from llamabuild.tools.preprocessor import Preprocessor, preprocess_argv, sanitized
from llamabuild.tools.runner import Runner, which

pytestmark = pytest.mark.skipif(
    which(Preprocessor.names) is None, reason="needs clang (apt-get install clang-19)"
)

HIDDEN = [
    '#include "/etc/passwd"',
    '#/* a comment is a space */include "/etc/passwd"',
    '#  \\\n  include "/etc/passwd"',
    '%:include "/etc/passwd"',
    "%: include_next <stdio.h>",
    '#import "/etc/passwd"',
    '#embed "/etc/passwd"',
    "#pragma clang __debug crash",
    "  #  pragma once",
]


@pytest.mark.parametrize("line", HIDDEN)
def test_every_way_to_spell_a_file_read_is_removed(line: str) -> None:
    out = sanitized(f"#define KEEP 1\n{line}\n#if KEEP\nint x;\n#endif\n")
    assert "passwd" not in out and "stdio" not in out and "pragma" not in out
    assert "#define KEEP 1" in out and "#if KEEP" in out


def test_strings_and_conditions_survive() -> None:
    text = 'const char *s = "/* not a comment */";\n'
    text += "#if __METAL_VERSION__ >= 310 // new\nx\n#endif\n"
    out = sanitized(text)
    assert '"/* not a comment */"' in out and "#if __METAL_VERSION__ >= 310" in out


def test_the_argv(tmp_path: Path) -> None:
    argv = preprocess_argv(("/usr/bin/xcrun", "clang"), tmp_path / "g.metal", "3.1")
    assert argv[:3] == ["/usr/bin/xcrun", "clang", "-E"]
    assert "-D__METAL_VERSION__=310" in argv and "-DGGML_METAL_HAS_BF16=1" in argv
    assert {"-nostdinc", "-undef", "-P"} <= set(argv) and argv[-1] == str(tmp_path / "g.metal")
    assert preprocessor.metal_version("4.0") == 400 and preprocessor.metal_version("2.4") == 240


def test_host_names_at_two_languages(tmp_path: Path) -> None:
    src = tmp_path / "group with spaces.metal"
    src.write_text(
        "#if __METAL_VERSION__ < 310\n#undef GGML_METAL_HAS_BF16\n#endif\n"
        '#define NAME(x) host_name("kernel_" #x)\n'
        "template [[NAME(add)]] kernel k<float>;\n"
        "#if defined(GGML_METAL_HAS_BF16)\ntemplate [[NAME(add_bf16)]] kernel k<bfloat>;\n#endif\n"
    )
    tool = Preprocessor(Runner())
    assert tool.host_names(src, "3.1") == ["kernel_add", "kernel_add_bf16"]
    assert tool.host_names(src, "3.0") == ["kernel_add"]


@pytest.mark.timeout(60)
def test_a_macro_bomb_is_stopped_by_the_output_bound(tmp_path: Path) -> None:
    lines = ['#define A0 host_name("kernel_bf16") x']
    lines += [f"#define A{i} " + " ".join([f"A{i - 1}"] * 8) for i in range(1, 12)]
    src = tmp_path / "bomb.metal"
    src.write_text("\n".join([*lines, "A11"]) + "\n")
    with pytest.raises(ToolError, match="wrote more than"):
        Preprocessor(Runner()).host_names(src, "3.1")


@pytest.mark.timeout(60)
def test_an_include_of_a_fifo_is_stopped_by_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `sanitized` removes, run anyway: the FIFO never answers; the timeout ends it."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    src = tmp_path / "g.metal"
    src.write_text(f'#include "{fifo}"\n')
    monkeypatch.setattr(preprocessor, "TIMEOUT_S", 1.0)
    with pytest.raises(ToolError, match="timed out"):
        Preprocessor(Runner()).host_names(src, "3.1")
    src.write_text(sanitized(src.read_text()))
    assert Preprocessor(Runner()).host_names(src, "3.1") == []
