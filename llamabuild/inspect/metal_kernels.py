"""What inspect/metal.py cannot read from the bytes alone: a stripped binary's kernel groups
(their start/end symbols are in its dSYM), and how many bf16 kernels survive the Metal
language the SDK implies (the C preprocessor decides: tools/preprocessor.py).

Run apart from the parse (inspect/metal.py stays pure); verify and verify-app call `complete`
on a Binary before the policy judges it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from llamabuild.config.versions import version_tuple
from llamabuild.core.errors import LlamabuildError, ToolError, ToolNotFoundError
from llamabuild.core.mapped import open_mapped
from llamabuild.inspect import structure as st
from llamabuild.inspect.binary import Binary, Buffer, MetalLibrary, MetalSource, MetalSpan, Slice
from llamabuild.inspect.metal import read_metal, table
from llamabuild.inspect.symtab import defined_external
from llamabuild.tools.preprocessor import Preprocessor, host_names, sanitized
from llamabuild.tools.runner import Runner

Counts = dict[tuple[str, str], int]  # (group sha256, language) -> bf16 kernels
# The pinned tree has 34 groups, 10 with bf16 kernels; a binary with more than this many to
# preprocess is not ggml's (each is one clang run): its count is left unknown and said so.
MAX_GROUPS = 256


def complete(binary: Binary, dsym: Path | None = None, runner: Runner | None = None) -> Binary:
    """`binary` with each embedded library's groups read (from `dsym` when stripped) and its
    bf16 kernels counted; a Binary without Metal comes back as it is."""
    if not any(_embedded(s) for s in binary.slices):
        return binary
    slices = list(binary.slices)
    if dsym is not None and any(_stripped(s) for s in slices):
        slices = _from_dsym(binary.path, dsym, slices)
    counter = _Counter(Preprocessor(runner or Runner()))
    with open_mapped(binary.path) as buf:
        slices = [
            replace(s, metal=counter.count(buf, s.metal)) if _embedded(s) and s.metal else s
            for s in slices
        ]
    return replace(binary, slices=tuple(slices))


def _embedded(sl: Slice) -> bool:
    return sl.metal is not None and sl.metal.library is MetalSource.EMBEDDED


def _stripped(sl: Slice) -> bool:
    return sl.metal is not None and sl.metal.library is MetalSource.EMBEDDED and not sl.metal.kinds


def _from_dsym(binary: Path, dsym: Path, slices: list[Slice]) -> list[Slice]:
    """The stripped slices read again with their dSYM's symbols; a dSYM that cannot be read
    changes nothing (check_dsym says what is wrong with it)."""
    from llamabuild.inspect.dsym import find_dwarf_file

    try:
        dwarf = find_dwarf_file(dsym, binary.name)
        if dwarf is None:
            return slices
        with open_mapped(dwarf) as dbuf:
            raws = st.read_slices(st.as_reader(dbuf), len(dbuf), str(dwarf))
            symbols = {r.arch: defined_external(dbuf, r, b"_ggml_") for r in raws}
        with open_mapped(binary) as buf:
            raws = st.read_slices(st.as_reader(buf), len(buf), str(binary))
            return [_reread(buf, sl, raws, symbols) for sl in slices]
    except LlamabuildError:
        return slices


def _reread(
    buf: Buffer, sl: Slice, raws: Iterable[st.RawSlice], symbols: dict[str, dict[str, int]]
) -> Slice:
    raw = next((r for r in raws if r.offset == sl.offset), None)
    if not _stripped(sl) or raw is None or not symbols.get(sl.arch):
        return sl
    return replace(sl, metal=read_metal(buf, raw, sl.dylibs, sl.sdk, symbols[sl.arch]))


class _Counter:
    """bf16 kernels per group and language, each counted once (a universal binary's slices
    carry the same groups)."""

    def __init__(self, preprocessor: Preprocessor) -> None:
        self.preprocessor = preprocessor
        self.counts: Counts = {}

    def count(self, buf: Buffer, metal: MetalLibrary) -> MetalLibrary:
        t = table()
        marker = t["bf16_marker"].encode()
        texts = [(sp, bytes(buf[sp.offset : sp.offset + sp.size])) for sp in metal.spans]
        texts = [(sp, text) for sp, text in texts if marker in text and b"host_name" in text]
        keep = t["bf16_language"]
        if len({sp.sha256 for sp, _text in texts}) > MAX_GROUPS:
            note = f"not counted: more than {MAX_GROUPS} kernel groups with bf16 host names"
            return replace(metal, bf16_note=note)
        try:
            defined = self._total(texts, keep)
            kept = None
            if metal.msl_default is not None:
                same = version_tuple(metal.msl_default) == version_tuple(keep)
                kept = defined if same else self._total(texts, metal.msl_default)
        except ToolNotFoundError as exc:
            bf16 = t["bf16_marker"]
            spelled = sum(bf16 in n for _sp, text in texts for n in host_names(text.decode()))
            note = f"not preprocessed: {exc} ({spelled} bf16 host names spelled in the text)"
            return replace(metal, bf16_defined=spelled or None, bf16_note=note)
        except ToolError as exc:
            return replace(metal, bf16_note=f"not counted: {exc}")
        if kept is None:
            note = "no SDK recorded: the default language is unknown"
            return replace(metal, bf16_defined=defined, bf16_note=note)
        return replace(metal, bf16_defined=defined, bf16_kernels=kept)

    def _total(self, texts: list[tuple[MetalSpan, bytes]], language: str) -> int:
        todo = [(sp, text) for sp, text in texts if (sp.sha256, language) not in self.counts]
        if todo:
            with tempfile.TemporaryDirectory(prefix="llamabuild-metal-") as tmp:
                for sp, text in todo:
                    source = Path(tmp) / f"{sp.sha256[:16]}.metal"
                    source.write_text(sanitized(text.decode("utf-8")), encoding="utf-8")
                    names = self.preprocessor.host_names(source, language)
                    bf16 = table()["bf16_marker"]
                    self.counts[(sp.sha256, language)] = sum(bf16 in n for n in names)
        return sum(self.counts[(sp.sha256, language)] for sp, _text in texts)
