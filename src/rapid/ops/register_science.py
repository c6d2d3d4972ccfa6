"""Step 2: register the finished science jobs of a processing date.

Each job is closed from its manifest (started, ended, elapsed, queue wait, exit code) together with its
reference image (refimages, refimmeta, refimimages, refimcatalogs) and difference image (diffimages,
diffimmeta) in one transaction, so a crash never leaves a job closed without its products. A job that
crashed, or whose manifest is missing or corrupt, is closed with an error code and the reason, and
nothing of it is registered. Running it again adds nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rapid.db import operations as dbops
from rapid.db.records import (DiffImageMeta, DiffImageRecord, RefImageCatalog, RefImageMeta,
                              RefImageRecord)
from rapid.jobs.spec import Manifest
from rapid.ops.collect import finished_jobs
from rapid.ops.context import OpsContext

PPID_SCIENCE = 15


@dataclass
class RegisterReport:
    closed: dict[int, int] = field(default_factory=dict)  # jid -> exit code
    refimages: list[int] = field(default_factory=list)
    diffimages: list[int] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)  # jid -> why it closed with an error
    pending: int = 0  # jobs the engine has not finished yet


def _only(cls: type, meta: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in meta.items() if k in names}


def refimage_record(manifest: Manifest) -> RefImageRecord | None:
    ref = manifest.refimage
    if ref is None:
        return None
    image = manifest.product(ref.image)
    catalogs = ()
    if ref.catalog:
        cat = manifest.product(ref.catalog)
        catalogs = (RefImageCatalog(cattype=1, filename=cat.uri, checksum=cat.checksum),)
    return RefImageRecord(
        field=ref.field, fid=ref.fid, filename=image.uri, checksum=image.checksum,
        covfile=manifest.product(ref.coverage).uri, uncfile=manifest.product(ref.uncertainty).uri,
        psffile=manifest.product(ref.psf).uri if ref.psf else None,
        meta=RefImageMeta(**_only(RefImageMeta, ref.meta)), input_rids=tuple(ref.input_rids),
        catalogs=catalogs)


def diffimage_record(manifest: Manifest, job) -> DiffImageRecord | None:  # noqa: ANN001
    diff = manifest.diffimage
    if diff is None:
        return None
    image = manifest.product(diff.image)
    cat = manifest.product(diff.catalog)
    meta = DiffImageMeta(**_only(DiffImageMeta, diff.meta), catfilename=cat.uri,
                         catchecksum=cat.checksum)
    return DiffImageRecord(
        rid=diff.rid, expid=job.expid, sca=job.sca, fid=job.fid, field=job.field,
        mjdobs=diff.mjdobs, ra0=diff.ra0,
        dec0=diff.dec0, ra_corners=tuple(diff.ra_corners), dec_corners=tuple(diff.dec_corners),
        filename=image.uri, checksum=image.checksum, rfid=diff.rfid, meta=meta)


def register_science(ctx: OpsContext, procdate: str) -> RegisterReport:
    """Close out the finished science jobs of ``procdate`` and register their products."""
    report = RegisterReport()
    finished, report.pending = finished_jobs(ctx, procdate, PPID_SCIENCE)
    for item in finished:
        job, manifest = item.job, item.manifest
        with ctx.db.begin() as conn:
            if manifest is None:
                dbops.close_job(conn, job.jid, exitcode=item.exitcode_if_bad, message=item.problem,
                                started=item.engine_job.started, ended=item.engine_job.ended)
                report.closed[job.jid] = item.exitcode_if_bad
                report.problems[job.jid] = item.problem
                continue
            rfid, pid = dbops.register_science_result(
                conn, job.jid, exitcode=manifest.exitcode, started=manifest.started,
                ended=manifest.ended, message=manifest.message or None,
                manifest_uri=ctx.layout.manifest_uri(procdate, job.jid),
                refimage=refimage_record(manifest), diffimage=diffimage_record(manifest, job))
        report.closed[job.jid] = manifest.exitcode
        if rfid is not None and manifest.refimage is not None:
            report.refimages.append(rfid)
        if pid is not None:
            report.diffimages.append(pid)
    return report
