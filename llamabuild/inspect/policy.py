"""Linkage policy: a Binary and the allowlist data file in, findings out. Pure."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from llamabuild.config.constants import SANDBOX_KEY as SANDBOX_KEY  # re-exported
from llamabuild.config.versions import DEFAULT_MIN_MACOS, version_tuple
from llamabuild.config.versions import parse_min_macos as parse_min_macos  # re-exported for the CLI
from llamabuild.core.errors import UsageError
from llamabuild.core.findings import Finding, error, warning
from llamabuild.core.resources import data_text
from llamabuild.inspect.binary import Binary, Dylib, MetalLibrary, MetalSource, Slice
from llamabuild.inspect.metal import table as metal_table


@dataclass(frozen=True)
class Policy:
    """What verify enforces. `archs` empty means any arch; `elf` is "static" or "glibc"."""

    archs: tuple[str, ...] = ()
    min_macos: str | None = DEFAULT_MIN_MACOS
    elf: str = "glibc"
    require_sandbox: bool = False
    # verify-app: the app's LSMinimumSystemVersion, the oldest macOS the helper is launched
    # on when it is below `min_macos` (what the Metal kernels must survive there).
    app_min_macos: str | None = None

    @property
    def oldest_macos(self) -> str | None:
        known = [v for v in (self.min_macos, self.app_min_macos) if v]
        return min(known, key=version_tuple) if known else None


# Names the Mach-O reader (structure.arch_name) and the ELF reader (elf._MACHINES) report.
KNOWN_ARCHS = (
    "arm64",
    "arm64e",
    "arm64_32",
    "x86_64",
    "x86_64h",
    "i386",
    "armv7",
    "arm",
    "ppc",
    "ppc64",
    "aarch64",
    "riscv64",
)


def parse_archs(archs: list[str] | None) -> tuple[str, ...]:
    """--arch values, refused (exit 2) unless an architecture name verify can report."""
    for a in archs or ():
        if a not in KNOWN_ARCHS:
            raise UsageError(f"unknown --arch {a!r}", hint=f"use one of {', '.join(KNOWN_ARCHS)}")
    return tuple(archs or ())


@cache
def allowlist() -> dict[str, Any]:
    text = data_text("system_libraries.toml")
    return tomllib.loads(text)


def newer(version: str | None, target: str | None) -> bool:
    """True when `version` (a "since" from the data, "always" = never) is after `target`."""
    if version is None or version == "always" or target is None:
        return False
    return version_tuple(version) > version_tuple(target)


@dataclass(frozen=True)
class SymbolRule:
    """Names matching `pattern` (one regex for the data file's fnmatch patterns) and a version."""

    pattern: re.Pattern[str]
    version: str | None  # symbols: first macOS that has them; non-public: public from then on
    source: str


@dataclass(frozen=True)
class Availability:
    """The availability and App Store tables of system_libraries.toml, compiled once."""

    usr_lib: dict[str, str]  # install name -> first macOS that ships it ("always")
    frameworks: dict[str, str]  # framework name -> first macOS
    symbols: tuple[SymbolRule, ...]
    non_public: tuple[SymbolRule, ...]
    rpath_system_prefixes: tuple[str, ...]

    @property
    def any_symbol(self) -> re.Pattern[str]:
        """Matches a name that any symbol or non-public rule might match."""
        return _any_symbol(self.symbols + self.non_public)

    def library_since(self, install_name: str) -> str | None:
        if install_name in self.usr_lib:
            return self.usr_lib[install_name]
        m = _FRAMEWORK.match(install_name)
        return self.frameworks.get(m.group(1)) if m else None


_FRAMEWORK = re.compile(r"/System/Library/Frameworks/([^/]+)\.framework/")


def _rules(groups: list[dict[str, Any]], key: str) -> tuple[SymbolRule, ...]:
    return tuple(
        SymbolRule(
            re.compile("|".join(fnmatch.translate(p) for p in g["patterns"])),
            g.get(key),
            g["source"],
        )
        for g in groups
    )


@cache
def _any_symbol(rules: tuple[SymbolRule, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{r.pattern.pattern})" for r in rules) or "(?!)")


@cache
def availability() -> Availability:
    data = allowlist()["macho"]
    return Availability(
        usr_lib={n: g["since"] for g in data["libraries"] for n in g["names"]},
        frameworks={n: g["since"] for g in data["frameworks"] for n in g["names"]},
        symbols=_rules(data["symbols"], "since"),
        non_public=_rules(data["non_public"], "public_since"),
        rpath_system_prefixes=tuple(data["rpath"]["system_prefixes"]),
    )


def classify_dylib(name: str) -> tuple[str, str, str | None] | None:
    """None when allowed, else (rule, reason, hint) for a Mach-O dependency."""
    data = allowlist()["macho"]
    for entry in data["forbidden"]:
        if name.startswith(entry["prefix"]):
            return entry["rule"], f"not allowed ({entry['prefix']}…)", entry.get("hint")
    if any(fnmatch.fnmatchcase(name, g) for g in data["allowed_globs"]):
        return None
    if name in availability().usr_lib:
        return None
    if name.startswith("/usr/lib/"):
        return (
            "not-shipped-with-macos",
            "not shipped with macOS",
            "this /usr/lib dylib does not exist on a user's Mac; link it statically or drop it",
        )
    if name.startswith("/System/Library/PrivateFrameworks/"):
        return "private-framework", "a private framework", "App Review rejects private frameworks"
    return (
        "non-system-dependency",
        "outside the system allowlist",
        "only /System/Library/Frameworks and macOS's own /usr/lib dylibs may be linked",
    )


def dylib_verdict(dylib: Dylib, target: str | None) -> tuple[str, str, str | None] | None:
    """classify_dylib, then availability: a strong link to a library newer than `target`."""
    found = classify_dylib(dylib.name)
    if found:
        return found
    since = availability().library_since(dylib.name)
    if dylib.kind != "weak" and newer(since, target):
        return (
            "library-too-new",
            f"first shipped in macOS {since}, the deployment target is {target}",
            "dyld cannot load it on older macOS: turn the feature that links it off "
            "(e.g. GGML_RPC_RDMA=OFF) or link it weakly (-weak_library / -weak_framework)",
        )
    return None


def classify_needed(name: str, policy: Policy) -> str | None:
    """None when an ELF NEEDED entry is allowed by the policy, else the reason."""
    if policy.elf == "static":
        return "a static binary may not have NEEDED"
    return None if name in allowlist()["elf"]["glibc"] else "not glibc"


def verdict(binary: Binary, dylib: Dylib, policy: Policy) -> str | None:
    """The reason a dependency is refused (for tables), None when it is allowed."""
    if binary.format == "elf":
        return classify_needed(dylib.name, policy)
    found = dylib_verdict(dylib, policy.min_macos)
    return found[1] if found else None


def check(binary: Binary, policy: Policy) -> list[Finding]:
    findings: list[Finding] = []
    for sl in binary.slices:
        if binary.format == "macho":
            findings += _check_macho_slice(sl, policy)
        else:
            findings += _check_elf(sl, policy)
    return findings


def _check_macho_slice(sl: Slice, policy: Policy) -> list[Finding]:
    out: list[Finding] = []
    a = sl.arch
    for dylib in sl.dylibs:
        found = dylib_verdict(dylib, policy.min_macos)
        if found:
            rule, reason, hint = found
            out.append(
                error(rule, f"links {dylib.name} ({dylib.kind}): {reason}", arch=a, hint=hint)
            )
    if sl.uuid is None:
        out.append(
            error(
                "missing-uuid",
                "no LC_UUID: crash reports cannot be symbolicated",
                arch=a,
                hint="do not link with -no_uuid",
            )
        )
    out += _check_arch(sl, policy, "build for the architectures you ship (CMAKE_OSX_ARCHITECTURES)")
    if policy.min_macos and sl.filetype in ("execute", "dylib", "bundle"):
        if sl.minos is None:
            out.append(warning("missing-minos", "no LC_BUILD_VERSION or LC_VERSION_MIN", arch=a))
        elif version_tuple(sl.minos) > version_tuple(policy.min_macos):
            out.append(
                error(
                    "minos-too-new",
                    f"minos {sl.minos} is newer than the deployment target {policy.min_macos}",
                    arch=a,
                    hint="set CMAKE_OSX_DEPLOYMENT_TARGET to the app's deployment target",
                )
            )
    if policy.require_sandbox:
        out += _check_sandbox(sl)
    out += check_symbols(sl, policy.min_macos)
    out += check_rpaths(sl)
    out += check_metal(sl, policy.oldest_macos)
    return out


METAL_RULES = {"missing": "metal-library-missing", "broken": "metal-library-broken"}


def check_metal(sl: Slice, min_macos: str | None = None) -> list[Finding]:
    """ggml's embedded Metal kernels (inspect/metal.py read them into the slice, and
    inspect/metal_kernels.py counted its bf16 kernels)."""
    metal = sl.metal
    if metal is None:
        return []
    hint = (
        "build with GGML_METAL_EMBED_LIBRARY=ON (the default with Metal) from a clean build dir, "
        "so the kernels' source is flattened into __DATA,__ggml_metallib"
    )
    out = [error(METAL_RULES[kind], why, arch=sl.arch, hint=hint) for kind, why in metal.problems]
    if metal.library is MetalSource.EMBEDDED:
        out += _check_bf16(sl, metal, min_macos)
        if metal.tensor_api and not metal.sets_language:
            out.append(
                warning(
                    "metal-tensor-language",
                    "the kernels hold Metal 4 tensor-API code but the binary never sets "
                    "MTLCompileOptions.languageVersion: on a Metal 4 GPU they will not compile",
                    arch=sl.arch,
                    hint="build from a llama.cpp that sets language 4.0 on the tensor path, or "
                    "launch llama-server with GGML_METAL_TENSOR_DISABLE=1",
                )
            )
    return out


def check_kernels(sl: Slice, recorded: Mapping[str, str] | None) -> list[Finding]:
    """`verify --manifest`: the slice's embedded groups against the sha256 the build recorded
    for each flattened `ggml-metal-embed-<kind>.metal` (builder/metal_check.py)."""
    groups = sl.metal.groups if sl.metal is not None else {}
    if recorded is None and not groups:
        return []
    hint = "verify the binary the build published beside this manifest, or rebuild"
    if recorded is None:
        why = (
            f"the manifest records no Metal kernels for {sl.arch}, the binary embeds {len(groups)}"
        )
        return [error("metal-library-mismatch", why, arch=sl.arch, hint=hint)]
    out = []
    for kind in sorted(recorded.keys() | groups.keys()):
        have, want = groups.get(kind), recorded.get(kind)
        if have == want:
            continue
        if have is None:
            why = f"kernel group {kind!r} the build flattened is not embedded (or is broken)"
        elif want is None:
            why = f"kernel group {kind!r} is embedded but the build flattened no such group"
        else:
            why = (
                f"kernel group {kind!r} differs from the build's text (sha256 {have[:12]}, "
                f"built {want[:12]})"
            )
        out.append(error("metal-library-mismatch", why, arch=sl.arch, hint=hint))
    return out


def _check_bf16(sl: Slice, metal: MetalLibrary, min_macos: str | None) -> list[Finding]:
    t = metal_table()
    defined = metal.bf16_defined or 0
    if not defined:
        return []
    kept = metal.bf16_kernels
    default = metal.msl_default
    if default is not None and version_tuple(default) < version_tuple(t["bf16_language"]):
        lost = defined - (kept or 0)
        if lost > 0:
            return [
                error(
                    "metal-bf16-dropped",
                    f"SDK {sl.sdk} makes Metal {default} the default language: {lost} of "
                    f"{defined} bf16 kernels compile out, while ggml enables bf16 on the GPU "
                    '("Function kernel_..._bf16... was not found in the library")',
                    arch=sl.arch,
                    hint=f"build with the macOS {t['bf16_macos']} SDK or newer (Xcode 15+)",
                )
            ]
    if min_macos and version_tuple(min_macos) < version_tuple(t["bf16_macos"]):
        env = t["bf16_disable_env"]
        return [
            warning(
                "metal-bf16-old-macos",
                f"the deployment target {min_macos} is below {t['bf16_macos']}: there the OS "
                f"compiles at Metal 3.0 at most and the {defined} bf16 kernels drop, while ggml "
                "enables bf16 on the GPU",
                arch=sl.arch,
                hint=f"launch llama-server with {env}=1 on macOS below {t['bf16_macos']} "
                f"(or raise the deployment target to {t['bf16_macos']})",
            )
        ]
    return []


def check_symbols(sl: Slice, target: str | None) -> list[Finding]:
    """Imports newer than the target (strong only) or non-public for App Store validation."""
    table = availability()
    out: list[Finding] = []
    candidate = table.any_symbol.match  # one regex for all rules: most names match none
    for imp in sl.imports:
        if not candidate(imp.name):
            continue
        rule = next((r for r in table.non_public if r.pattern.match(imp.name)), None)
        if rule is not None and (rule.version is None or newer(rule.version, target)):
            until = f" below macOS {rule.version}" if rule.version else ""
            out.append(
                error(
                    "non-public-symbol",
                    f"imports {imp.name} from {imp.dylib}: App Store validation reports it as "
                    f"a non-public symbol (ITMS-90338){until}",
                    arch=sl.arch,
                    hint=f"raise the deployment target to {rule.version} or build without it"
                    if rule.version
                    else "build without the code that uses it",
                )
            )
            continue
        rule = next((r for r in table.symbols if r.pattern.match(imp.name)), None)
        if rule is not None and not imp.weak and newer(rule.version, target):
            out.append(
                error(
                    "symbol-too-new",
                    f"imports {imp.name} from {imp.dylib}: first in macOS {rule.version}, "
                    f"the deployment target is {target}",
                    arch=sl.arch,
                    hint=f"raise the deployment target to {rule.version}, or build without it "
                    "(Accelerate's new LAPACK: GGML_ACCELERATE=OFF or GGML_BLAS=OFF)",
                )
            )
    return out


def check_rpaths(sl: Slice) -> list[Finding]:
    """Absolute rpaths into the linking machine are errors; unused relative ones, warnings."""
    out: list[Finding] = []
    has_rpath_dep = any(d.name.startswith("@rpath/") for d in sl.dylibs)
    system = availability().rpath_system_prefixes
    for rp in sl.rpaths:
        if rp.startswith(("@loader_path", "@executable_path")) or rp.startswith(system):
            if not has_rpath_dep:
                out.append(
                    warning(
                        "stray-rpath",
                        f"LC_RPATH {rp} but no @rpath dependency",
                        arch=sl.arch,
                        hint="leftover of a dynamic build; remove it (CMAKE_SKIP_RPATH=ON)",
                    )
                )
            continue
        where = (
            "a path of the machine that linked it"
            if rp.startswith("/")
            else ("relative to the working directory")
        )
        out.append(
            error(
                "host-rpath",
                f"LC_RPATH {rp}: {where}; dyld searches it on the user's Mac",
                arch=sl.arch,
                hint="a dylib planted there would load into the app: build with "
                "CMAKE_SKIP_RPATH=ON (or remove it: install_name_tool -delete_rpath) and re-sign",
            )
        )
    return out


def _check_arch(sl: Slice, policy: Policy, hint: str | None) -> list[Finding]:
    """`arch-not-allowed` for a slice outside --arch (Mach-O and ELF alike)."""
    if not policy.archs or sl.arch in policy.archs:
        return []
    msg = f"architecture {sl.arch} is not one of {', '.join(policy.archs)}"
    return [error("arch-not-allowed", msg, arch=sl.arch, hint=hint)]


def _check_elf(sl: Slice, policy: Policy) -> list[Finding]:
    out: list[Finding] = []
    a = sl.arch
    out += _check_arch(sl, policy, None)
    for d in sl.dylibs:
        why = classify_needed(d.name, policy)
        if why:
            out.append(
                error(
                    "elf-needed",
                    f"NEEDED {d.name}: {why}",
                    arch=a,
                    hint="link it statically or turn the feature off (GGML_OPENMP, LLAMA_OPENSSL)",
                )
            )
    for rp in sl.rpaths:
        out.append(warning("elf-rpath", f"RPATH/RUNPATH {rp}", arch=a))
    return out


def _check_sandbox(sl: Slice) -> list[Finding]:
    """App Store: "App sandbox not enabled" unless the helper's entitlements enable it."""
    ents = sl.signature.entitlements if sl.signature else None
    if not sl.signed:
        why = "the binary is not signed"
    elif not ents:
        why = "the signature carries no entitlements"
    elif ents.get(SANDBOX_KEY) is not True:
        why = f"{SANDBOX_KEY} is not true in its entitlements"
    else:
        return []
    return [
        error(
            "sandbox-missing",
            f"App Sandbox not enabled: {why}",
            arch=sl.arch,
            hint="sign it with `llamabuild sign --preset app-helper`",
        )
    ]
