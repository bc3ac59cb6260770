"""dist/<recipe>/llama-server.cdx.json: a CycloneDX 1.6 SBOM written with cyclonedx-python-lib.

The metadata component is the binary (sha256, one `llamabuild:arch` property per slice); the
components are the pinned llama.cpp, each vendored component the code model says is compiled
in, and each library the toolchain linked statically (with the symbols that prove it as
evidence occurrences). The serial number is derived from the binary's sha256 and the
timestamp is the build's SOURCE_DATE_EPOCH, so the same build gives the same bytes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from llamabuild import __version__
from llamabuild.config.domain import PinKind
from llamabuild.provenance.components import Component, Found
from llamabuild.source.lock import Pin

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

    from llamabuild.provenance.toolchain import ToolchainComponent

SBOM_NAME = "llama-server.cdx.json"
UPSTREAM = "ggml-org/llama.cpp"
UPSTREAM_URL = f"https://github.com/{UPSTREAM}"
GITHUB_RE = re.compile(r"github\.com[:/]([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class BinaryInfo:
    """The published binary as the SBOM describes it."""

    name: str
    sha256: str
    archs: tuple[str, ...]
    recipe: str


def pin_version(pin: Pin) -> str | None:
    """The commit (git), the label given with --ref (archive), else None."""
    return pin.commit or pin.ref


def llama_purl(pin: Pin) -> str:
    """pkg:github/<owner>/<repo>@<commit>: the pin's GitHub repo, else upstream llama.cpp."""
    m = GITHUB_RE.search(pin.url) if pin.kind is PinKind.GIT else None
    repo = f"{m.group(1)}/{m.group(2)}".lower() if m else UPSTREAM
    version = pin_version(pin)
    return f"pkg:github/{repo}" + (f"@{version}" if version else "")


def _licenses(
    expression: str | None, name: str | None
) -> list[LicenseExpression | DisjunctiveLicense]:
    """One SPDX id as a license, a compound as an expression, else a named license."""
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

    if expression and re.fullmatch(r"[A-Za-z0-9.+-]+", expression):
        return [DisjunctiveLicense(id=expression)]
    if expression:
        return [LicenseExpression(expression)]
    return [DisjunctiveLicense(name=name or "NOASSERTION")]


def _llama_cpp(pin: Pin, project: Component) -> CdxComponent:
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        XsUri,
    )
    from cyclonedx.model.component import Component as CdxComponent
    from packageurl import PackageURL

    refs = [ExternalReference(type=ExternalReferenceType.VCS, url=XsUri(UPSTREAM_URL))]
    if pin.url != UPSTREAM_URL:
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=pin.sha256)] if pin.sha256 else []
        kind = (
            ExternalReferenceType.DISTRIBUTION
            if pin.kind is PinKind.ARCHIVE
            else ExternalReferenceType.VCS
        )
        if pin.kind is not PinKind.DIR:
            refs.append(ExternalReference(type=kind, url=XsUri(pin.url), hashes=hashes))
    return CdxComponent(
        name="llama.cpp",
        version=pin_version(pin),
        bom_ref="llama.cpp",
        purl=PackageURL.from_string(llama_purl(pin)),
        licenses=_licenses(project.spec.license, project.spec.license_name),
        external_references=refs,
    )


def _vendored(comp: Component) -> CdxComponent:
    from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
    from cyclonedx.model.component import Component as CdxComponent
    from packageurl import PackageURL

    spec = comp.spec
    urls = [spec.url] if spec.url else []
    refs = [ExternalReference(type=ExternalReferenceType.WEBSITE, url=XsUri(u)) for u in urls]
    return CdxComponent(
        name=spec.name,
        version=comp.version,
        bom_ref=f"vendored:{spec.name}",
        purl=PackageURL.from_string(spec.purl) if spec.purl else None,
        licenses=_licenses(spec.license, spec.license_name),
        external_references=refs,
        properties=[Property(name="llamabuild:tree-path", value=p) for p in spec.paths],
    )


def _runtime(comp: ToolchainComponent, binary: str) -> CdxComponent:
    """A library the toolchain linked in: the symbols it defines in `binary` are the evidence
    (CycloneDX occurrences); its Debian package, when dpkg knows the archive, is the purl."""
    from decimal import Decimal

    from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component_evidence import (
        AnalysisTechnique,
        ComponentEvidence,
        Identity,
        IdentityField,
        Method,
        Occurrence,
    )
    from packageurl import PackageURL

    pkg = comp.package
    purl: PackageURL | None = PackageURL.from_string(comp.purl) if comp.purl else None
    if pkg is not None:
        qualifiers = {"arch": pkg.arch, **({"distro": comp.distro} if comp.distro else {})}
        distro = (comp.distro or "debian").split("-")[0]
        purl = PackageURL("deb", distro, pkg.name, pkg.version, qualifiers)
    props = [
        Property(name="llamabuild:toolchain", value=comp.spec.toolchain),
        Property(name="llamabuild:linkage", value="static"),
        *(Property(name="llamabuild:archive", value=a) for a in comp.archives),
    ]
    if pkg is not None:
        props.append(Property(name="llamabuild:package", value=f"{pkg.name} {pkg.version}"))
    if comp.zig_version:
        props.append(Property(name="llamabuild:zig-version", value=comp.zig_version))
    if comp.evidence:
        value = "defines " + ", ".join(comp.evidence)
        occurrences = [  # a bom-ref each: without one the library's order is not stable
            Occurrence(bom_ref=f"toolchain:{comp.name}:{s}", location=binary, symbol=s)
            for s in comp.evidence
        ]
    else:
        value = f"{binary} has no symbol table: counted without evidence"
        occurrences = []
    method = Method(technique=AnalysisTechnique.BINARY_ANALYSIS, confidence=Decimal(1), value=value)
    identity = Identity(field=IdentityField.NAME, confidence=Decimal(1), methods=[method])
    return CdxComponent(
        name=comp.name,
        version=comp.version,
        bom_ref=f"toolchain:{comp.name}",
        purl=purl,
        cpe=comp.cpe,
        licenses=_licenses(comp.license, None),
        external_references=[
            ExternalReference(type=ExternalReferenceType.WEBSITE, url=XsUri(comp.spec.url))
        ],
        properties=props,
        evidence=ComponentEvidence(identity=[identity], occurrences=occurrences),
    )


def _timestamp(epoch: str | None) -> datetime:
    """SOURCE_DATE_EPOCH of the build (same inputs, same SBOM bytes), else now."""
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC)


def make_bom(
    binary: BinaryInfo,
    pin: Pin,
    found: Found,
    epoch: str | None = None,
    runtime: Sequence[ToolchainComponent] = (),
) -> Bom:
    """The SBOM of `binary`: llama.cpp, the vendored code in `found`, the toolchain's
    statically linked libraries in `runtime`."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType

    root = CdxComponent(
        name=binary.name,
        type=ComponentType.APPLICATION,
        version=pin_version(pin),
        bom_ref=binary.name,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=binary.sha256)],
        properties=[
            *(Property(name="llamabuild:arch", value=a) for a in binary.archs),
            Property(name="llamabuild:recipe", value=binary.recipe),
            Property(name="llamabuild:version", value=__version__),
        ],
    )
    llama = _llama_cpp(pin, found.project)
    parts = [llama, *(_vendored(c) for c in found.vendored)]
    parts += [_runtime(c, binary.name) for c in runtime]
    bom = Bom(
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"llamabuild:sbom:{binary.sha256}"),
        metadata=BomMetaData(component=root, timestamp=_timestamp(epoch)),
        components=parts,
    )
    bom.register_dependency(root, parts)
    return bom


def to_json(bom: Bom) -> str:
    """CycloneDX 1.6 JSON (sorted and stable: the library orders components by name)."""
    from cyclonedx.output.json import JsonV1Dot6

    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def validate(text: str) -> str | None:
    """The first schema error, or None; needs cyclonedx-python-lib[json-validation]."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return None if err is None else str(err)
