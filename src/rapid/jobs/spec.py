"""Job specs and product manifests: small versioned records serialised as JSON.

A job reads only its spec and the objects the spec names. The manifest is the job's last write, so its
presence means the job finished; registration trusts nothing else from a job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION = 1
MANIFEST_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes | str):  # type: ignore[no-untyped-def]
        return cls.model_validate_json(data)


class ImageInput(_Record):
    """One registered L2 image as a job needs it."""

    rid: int
    uri: str
    checksum: str
    expid: int
    sca: int
    fid: int
    filter: str
    field: int
    mjdobs: float
    exptime: float
    psf_uri: str | None = None


class ReferenceInput(_Record):
    """A registered reference image the job uses as it is."""

    rfid: int
    version: int
    uri: str
    coverage_uri: str
    uncertainty_uri: str
    psf_uri: str | None = None


class TileGrid(_Record):
    """The sky tile whose north-up grid a reference is built on."""

    field: int
    ra0: float
    dec0: float
    size: int = 7000
    scale_arcsec: float = 0.11


class ScienceSpec(_Record):
    """Spec of one science job (ppid 15) on one L2 image."""

    kind: Literal["science"] = "science"
    spec_version: int = SPEC_VERSION
    jid: int
    ppid: int = 15
    procdate: str
    science: ImageInput
    tile: TileGrid
    reference: ReferenceInput | None = None  # use this registered reference ...
    reference_inputs: list[ImageInput] = Field(default_factory=list)  # ... or coadd these
    product_prefix: str  # <product root>/<procdate>/jid<jid>
    log_uri: str
    reference_zero_point: float = 17.0
    detection_threshold: float = 5.0
    detection_minarea: int = 2
    software_version: str = ""


class StampTarget(_Record):
    """One product whose FITS header a post-processing job stamps."""

    uri: str
    kind: Literal["diff", "ref"]
    keywords: dict[str, Any]


class PostprocSpec(_Record):
    """Spec of one post-processing job (ppid 17) for one science job."""

    kind: Literal["postproc"] = "postproc"
    spec_version: int = SPEC_VERSION
    jid: int
    ppid: int = 17
    procdate: str
    science_jid: int
    targets: list[StampTarget]
    product_prefix: str
    log_uri: str


class Product(_Record):
    name: str  # e.g. "diff", "scorr", "refimage", "candidates"
    uri: str
    size: int
    checksum: str  # MD5 hex


class RefImageResult(_Record):
    """A reference image built by the job, for registration."""

    field: int
    fid: int
    image: str  # product names
    coverage: str
    uncertainty: str
    psf: str | None = None
    catalog: str | None = None
    input_rids: list[int]
    meta: dict[str, float | int | None]


class DiffImageResult(_Record):
    """The difference image made by the job, for registration."""

    rid: int
    rfid: int | None  # None: the reference built by this same job
    mjdobs: float
    image: str  # product names
    uncertainty: str
    psf: str
    scorr: str
    catalog: str
    ra_corners: list[float]
    dec_corners: list[float]
    ra0: float
    dec0: float
    meta: dict[str, float | int | None]


class Manifest(_Record):
    """What a job made, written last."""

    manifest_version: int = MANIFEST_VERSION
    kind: Literal["science", "postproc"]
    jid: int
    exitcode: int
    message: str = ""
    started: datetime
    ended: datetime
    products: list[Product] = Field(default_factory=list)
    refimage: RefImageResult | None = None
    diffimage: DiffImageResult | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    software_version: str = ""

    def product(self, name: str) -> Product:
        for prod in self.products:
            if prod.name == name:
                return prod
        raise KeyError(f"manifest of job {self.jid} has no product {name!r}")


def load_spec(data: bytes | str) -> ScienceSpec | PostprocSpec:
    """Parse a spec of either kind from JSON."""
    import json

    kind = json.loads(data).get("kind")
    if kind == "science":
        return ScienceSpec.from_json(data)
    if kind == "postproc":
        return PostprocSpec.from_json(data)
    raise ValueError(f"job spec has unknown kind {kind!r}")
