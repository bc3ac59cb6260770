"""`verify-model`: will this GGUF load in the llama-server that was built?

The header is walked by gguf_read (bounded; tensor data is never read); the ggml type tables
(block sizes, names) and the file-type names come from the `gguf` package (gguf_tables).
With the pinned tree's capabilities (manifest.json), the architecture, every tensor type and
the GGUF version must be ones the pinned llama.cpp knows. Memory is estimated from the
model's own metadata; the sha256 pin is checked by streaming the mapped file through hashlib.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llamabuild.core.errors import InputError, UsageError
from llamabuild.core.findings import Finding, error, has_errors, warning
from llamabuild.core.jsonout import INTERNAL, OMIT_NONE, derived, json_view, model
from llamabuild.core.mapped import hash_mapped, open_mapped
from llamabuild.model import gguf_tables
from llamabuild.model.capabilities import PinCapabilities
from llamabuild.model.gguf_read import (
    GGUF_DEFAULT_ALIGNMENT,
    GgufHeader,
    LongString,
    MetaValue,
    TensorInfo,
    read_header,
)
from llamabuild.model.kv_memory import ServerSettings
from llamabuild.model.memory import MemoryEstimate, estimate_memory, memory_findings

GGUF_UINT32 = 4  # the value type gguf.cpp requires of general.alignment
INT64_MAX = (1 << 63) - 1
SIZE_MAX = (1 << 64) - 1  # a 64-bit size_t, as on every machine llama-server ships to
MAX_TEMPLATE_BYTES = 64 << 10  # parsed in < 0.3 s; real chat templates are < 20 KB
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
MAX_LISTED = 3  # tensor names quoted in one finding

Progress = Callable[[int, int], None]  # (bytes hashed, total)


def memory_of(r: ModelReport) -> MemoryEstimate:
    assert r.memory is not None, "the estimate is made before the report is printed"
    return r.memory


@model
class ModelReport:
    """One GGUF model as read from its header (tensor data is never read, only hashed)."""

    path: Path
    head: GgufHeader = field(metadata=INTERNAL)
    ok: bool = derived(lambda r: not has_errors(r.findings))
    size: int = derived(lambda r: r.head.file_size)
    gguf_version: int = derived(lambda r: r.head.version)
    architecture: str | None = derived(lambda r: r.text("general.architecture"))
    name: str | None = derived(lambda r: r.text("general.name"))
    file_type: str | None = derived(lambda r: file_type_name(r.number("general.file_type")))
    context_length: int | None = derived(lambda r: r.arch_number("context_length"))
    tokenizer_model: str | None = derived(lambda r: r.text("tokenizer.ggml.model"))
    chat_template: bool = derived(lambda r: "tokenizer.chat_template" in r.head.metadata)
    tensors: int = derived(lambda r: len(r.head.tensors))
    parameters: int = derived(lambda r: sum(_elements(t) for t in r.head.tensors))
    tensor_types: dict[str, int] = derived(lambda r: dict(sorted(r.type_counts.items())))
    """ggml type name -> how many tensors have it."""
    memory: MemoryEstimate | None = field(
        default=None, metadata=json_view(memory_of, MemoryEstimate)
    )
    checked_against_pin: bool = derived(lambda r: r.pinned)
    """A manifest's capabilities were given."""
    sha256: str | None = field(default=None, metadata=OMIT_NONE)
    sha256_expected: str | None = field(default=None, metadata=OMIT_NONE)
    findings: list[Finding] = field(default_factory=list)
    weights_bytes: int = field(default=0, metadata=INTERNAL)
    type_counts: dict[str, int] = field(default_factory=dict, metadata=INTERNAL)
    pinned: bool = field(default=False, metadata=INTERNAL)

    def meta(self, key: str) -> MetaValue | None:
        return self.head.metadata.get(key)

    def text(self, key: str) -> str | None:
        v = self.meta(key)
        return v if isinstance(v, str) else None

    def number(self, key: str) -> int | None:
        v = self.meta(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def arch_number(self, suffix: str) -> int | None:
        return self.number(f"{self.architecture}.{suffix}") if self.architecture else None


@dataclass(frozen=True)
class ModelOptions:
    caps: PinCapabilities | None = None
    sha256: str | None = None
    ctx: int | None = None
    max_memory: int | None = None
    server: ServerSettings = field(default_factory=ServerSettings)
    progress: Progress | None = None


def file_type_name(value: int | None) -> str | None:
    return None if value is None else gguf_tables.file_type_name(value)


def _elements(t: TensorInfo) -> int:
    n = 1
    for d in t.shape:
        n *= max(d, 0)
    return n


def verify_model(path: Path, options: ModelOptions | None = None) -> ModelReport:
    """Every check on the GGUF at `path`; InputError when it cannot be read as one."""
    opts = options or ModelOptions()
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a GGUF file", hint="name the .gguf file")
    with open_mapped(path) as mm:
        report = ModelReport(path, read_header(mm, len(mm), str(path)))
        report.findings += check_metadata(report)
        report.findings += check_tensors(report, opts.caps)
        if opts.caps is not None:
            report.pinned = True
            report.findings += check_pin(report, opts.caps)
        report.memory = estimate_memory(
            report.architecture,
            report.head.metadata,
            report.weights_bytes,
            opts.ctx,
            opts.server,
            opts.max_memory,
        )
        arch = report.architecture  # no estimate warning where an error already says why
        arch_known = arch is not None and (opts.caps is None or arch in opts.caps.architectures)
        report.findings += memory_findings(report.memory, str(path), arch_known)
        if opts.sha256 is not None:
            report.sha256_expected = opts.sha256.lower()
            report.sha256 = hash_mapped(mm, progress=opts.progress).hexdigest()
            if report.sha256 != report.sha256_expected:
                report.findings.append(_sha_mismatch(report))
    return report


# --- metadata --------------------------------------------------------------------------------


def check_metadata(report: ModelReport) -> list[Finding]:
    """general.architecture present, no duplicate keys, a valid alignment, a parsable template."""
    where = str(report.path)
    out: list[Finding] = []
    if report.architecture is None:
        out.append(
            error(
                "model-metadata-missing",
                "no general.architecture string: llama.cpp cannot choose a model loader",
                path=where,
                hint="convert the model again with llama.cpp's convert_hf_to_gguf.py",
            )
        )
    if report.head.duplicate_keys:
        keys = ", ".join(repr(k) for k in report.head.duplicate_keys[:MAX_LISTED])
        out.append(_invalid(f"duplicate metadata key(s) {keys} (gguf.cpp refuses them)", where))
    align = report.meta("general.alignment")
    if align is not None and report.head.types.get("general.alignment") != GGUF_UINT32:
        out.append(_invalid("general.alignment is not a UINT32 (gguf.cpp refuses it)", where))
    elif align is not None and not (isinstance(align, int) and align > 0 and not align & align - 1):
        out.append(_invalid(f"general.alignment {align!r} is not a power of two", where))
    template = report.meta("tokenizer.chat_template")
    if template is not None:
        out += check_template(template, where)
    return out


def alignment(report: ModelReport) -> int:
    align = report.meta("general.alignment")
    if (
        isinstance(align, int)
        and not isinstance(align, bool)
        and align > 0
        and not align & align - 1
    ):
        return align
    return GGUF_DEFAULT_ALIGNMENT


def check_template(template: MetaValue, where: str) -> list[Finding]:
    """Parse (never render or run) the chat template with jinja2; a syntax error is a warning.
    Parsing is bounded: a template over MAX_TEMPLATE_BYTES is measured, not parsed (1 MiB took
    7-10 s and 170 MB)."""
    hint = "llama-server falls back to a built-in template or fails to chat; fix the template"
    size = template.length if isinstance(template, LongString) else None
    if isinstance(template, str):
        encoded = len(template.encode("utf-8", "replace"))
        size = encoded if encoded > MAX_TEMPLATE_BYTES else None
    if size is not None:
        msg = (
            f"tokenizer.chat_template is {size >> 10} KiB, over the {MAX_TEMPLATE_BYTES >> 10} "
            "KiB llamabuild parses: not checked"
        )
        return [warning("chat-template-unchecked", msg, path=where, hint="check it by hand")]
    if not isinstance(template, str):
        msg = "tokenizer.chat_template is not a string (not checked)"
        return [warning("chat-template-invalid", msg, path=where, hint=hint)]
    import jinja2

    try:
        jinja2.Environment(autoescape=False).parse(template)  # noqa: S701 - parsed only
    except (jinja2.TemplateSyntaxError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        msg = f"the chat template does not parse: {str(exc)[:200]}" + (
            f" (line {line})" if line else ""
        )
        return [warning("chat-template-invalid", msg, path=where, hint=hint)]
    return []


# --- tensors ---------------------------------------------------------------------------------


def _invalid(message: str, where: str) -> Finding:
    return error(
        "gguf-invalid",
        message,
        path=where,
        hint="llama.cpp refuses this file: download or convert the model again",
    )


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def check_tensors(report: ModelReport, caps: PinCapabilities | None) -> list[Finding]:
    """Types known, shapes sane, data inside the file, aligned, no overlaps or duplicates."""
    where, head = str(report.path), report.head
    align = alignment(report)
    data_start = -(-head.header_end // align) * align
    sizes, names = gguf_tables.type_sizes()
    problems: dict[str, list[str]] = {}
    unknown: dict[int, list[str]] = {}
    spans: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    expected: int | None = 0  # gguf.cpp: each tensor's data right after the previous one's, padded
    for t in head.tensors:
        if expected is not None and t.offset != expected:
            what = "tensor data not where gguf.cpp expects it (in order, each padded)"
            problems.setdefault(what, []).append(f"{t.name} at {t.offset}, expected {expected}")
            expected = None  # one is enough: the rest follow from it
        if t.name in seen:
            problems.setdefault("duplicate tensor name(s)", []).append(t.name)
        seen.add(t.name)
        name = names.get(t.type_id) or (caps.type_name(t.type_id) if caps else None)
        if name is None:
            unknown.setdefault(t.type_id, []).append(t.name)
            expected = None  # its size is unknown: the layout cannot be followed further
            continue
        report.type_counts[name] = report.type_counts.get(name, 0) + 1
        nbytes = _tensor_bytes(t, sizes.get(t.type_id), problems)
        if nbytes is None:
            expected = None
            continue
        report.weights_bytes += nbytes
        if expected is not None:
            expected += -(-nbytes // align) * align
        if t.offset % align:
            problems.setdefault(f"tensor data not aligned to {align} bytes", []).append(t.name)
        if data_start + t.offset + nbytes > head.file_size:
            problems.setdefault("tensor data past the end of the file", []).append(t.name)
        spans.append((t.offset, t.offset + nbytes, t.name))
    reach = 0  # the furthest end of the spans before this one
    for start, end, name in sorted(spans):
        if start < reach:
            problems.setdefault("tensor data overlapping another tensor's", []).append(name)
        reach = max(reach, end)
    out = [_invalid(f"{what}: {_listed(ns)}", where) for what, ns in problems.items()]
    return out + [_unknown_type(type_id, ns, caps, where) for type_id, ns in unknown.items()]


def _tensor_bytes(
    t: TensorInfo, size: tuple[int, int] | None, problems: dict[str, list[str]]
) -> int | None:
    """Bytes of the tensor's data, or None (recorded in `problems`) when its shape is bad."""
    if any(d < 0 for d in t.shape):
        problems.setdefault("negative dimension(s)", []).append(t.name)
        return None
    if _elements(t) > INT64_MAX:
        problems.setdefault("element count over INT64_MAX", []).append(t.name)
        return None
    if size is None:  # a type the pin knows but this gguf package does not: size unknown
        return 0
    block, per_block = size
    if t.shape and t.shape[0] % block:
        what = f"row size not a multiple of the type's {block}-element block"
        problems.setdefault(what, []).append(t.name)
        return None
    nbytes = _elements(t) // block * per_block
    if nbytes > SIZE_MAX - 1024:  # ggml_nbytes, then padded: gguf.cpp refuses the wrap
        problems.setdefault("size in bytes over SIZE_MAX", []).append(t.name)
        return None
    return nbytes


def _unknown_type(
    type_id: int, tensors: list[str], caps: PinCapabilities | None, where: str
) -> Finding:
    known = "the pinned llama.cpp" if caps is not None else "ggml (the gguf package)"
    return error(
        "tensor-type-unsupported",
        f"tensor type id {type_id} is unknown to {known}: {_listed(tensors)}",
        path=where,
        hint="use a quantization the pinned llama.cpp supports, or pin a newer llama.cpp",
    )


# --- against the pinned tree -----------------------------------------------------------------


def check_pin(report: ModelReport, caps: PinCapabilities) -> list[Finding]:
    """Architecture, tensor types and GGUF version all known to the pinned llama.cpp."""
    where = str(report.path)
    out: list[Finding] = []
    arch = report.architecture
    if arch is not None and arch not in caps.architectures:
        out.append(
            error(
                "model-arch-unsupported",
                f"architecture {arch!r} is not in the pinned llama.cpp's table "
                f"(LLM_ARCH_NAMES, {len(caps.architectures)} names): llama-server would fail "
                f"with `unknown model architecture: '{arch}'`",
                path=where,
                hint=f"pin a llama.cpp that knows {arch!r} and rebuild, or use another model",
            )
        )
    for name, count in sorted(report.type_counts.items()):
        if name not in caps.tensor_types:
            out.append(
                error(
                    "tensor-type-unsupported",
                    f"tensor type {name} ({count} tensor(s)) is not in the pinned ggml's "
                    "enum ggml_type",
                    path=where,
                    hint="requantize to a type the pin supports, or pin a newer llama.cpp",
                )
            )
    if report.head.version not in caps.gguf_versions:
        versions = ", ".join(str(v) for v in caps.gguf_versions)
        out.append(
            error(
                "gguf-version-unsupported",
                f"GGUF version {report.head.version}; the pinned llama.cpp reads {versions}",
                path=where,
                hint="convert the model with the pinned llama.cpp's tools",
            )
        )
    return out


# --- sha256 ----------------------------------------------------------------------------------


def check_sha256_text(value: str) -> str:
    if not SHA256_RE.fullmatch(value):
        raise UsageError(f"--sha256 {value!r} is not 64 hex digits", hint="copy it again")
    return value.lower()


def _sha_mismatch(report: ModelReport) -> Finding:
    return error(
        "model-sha256-mismatch",
        f"sha256 {report.sha256} differs from the pinned {report.sha256_expected}",
        path=str(report.path),
        hint="the file is corrupt or another model: download it again, or update the pin",
    )
