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

import sqlalchemy as sa

from rapid.db import operations as dbops
from rapid.db.records import (DiffImageMeta, DiffImageRecord, RefImageCatalog, RefImageMeta,
                              RefImageRecord)
from rapid.jobs.spec import Manifest
from rapid.ops.collect import Finished, finished_jobs
from rapid.ops.context import OpsContext
from rapid.ops.retry import in_transaction

PPID_SCIENCE = 15
CHUNK = 500  # jobs registered per transaction


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


def _register_one(ctx: OpsContext, conn: sa.Connection, procdate: str,
                  item: Finished) -> tuple[int, str, int | None, int | None]:
    """Close one job and register its products in a SAVEPOINT; (exit code, problem, rfid, pid)."""
    job, manifest = item.job, item.manifest
    if manifest is not None:
        try:
            refimage, diffimage = refimage_record(manifest), diffimage_record(manifest, job)
        except (KeyError, ValueError) as exc:
            manifest, problem = None, f"manifest inconsistent: {exc}"
        else:
            try:
                rfid, pid = dbops.register_science_result(
                    conn, job.jid, exitcode=manifest.exitcode, started=manifest.started,
                    ended=manifest.ended, message=manifest.message or None,
                    manifest_uri=ctx.layout.manifest_uri(procdate, job.jid),
                    refimage=refimage, diffimage=diffimage)
                return manifest.exitcode, "", rfid, pid
            except (ValueError, sa.exc.IntegrityError) as exc:
                # The savepoint rolled back whatever this job had added.
                manifest, problem = None, f"registration refused: {exc}"
    else:
        problem = item.problem
    try:
        with conn.begin_nested():
            dbops.close_job(conn, job.jid, exitcode=item.exitcode_if_bad, message=problem,
                            started=item.engine_job.started, ended=item.engine_job.ended)
    except ValueError as exc:  # closed meanwhile (another operator) with another exit code
        return item.exitcode_if_bad, f"{problem}; not closed: {exc}", None, None
    return item.exitcode_if_bad, problem, None, None


def register_science(ctx: OpsContext, procdate: str, *, chunk: int = CHUNK) -> RegisterReport:
    """Close out the finished science jobs of ``procdate`` and register their products.

    Jobs are registered ``chunk`` at a time in one transaction, each in a SAVEPOINT of its own,
    so one job's products and its closing are still all or nothing; a chunk whose connection is
    lost is run again from the start.

    Parameters
    ----------
    ctx : OpsContext
    procdate : str
        Processing date ``YYYYMMDD``.
    chunk : int, optional
        Jobs per transaction. Default 500.

    Returns
    -------
    RegisterReport
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    report = RegisterReport()
    finished, report.pending = finished_jobs(ctx, procdate, PPID_SCIENCE)
    for i in range(0, len(finished), chunk):
        part = finished[i:i + chunk]
        results = in_transaction(ctx.db, lambda conn: [_register_one(ctx, conn, procdate, item)
                                                       for item in part], write=True)
        for item, (code, problem, rfid, pid) in zip(part, results):
            jid = item.job.jid
            report.closed[jid] = code
            if problem:
                report.problems[jid] = problem
            if rfid is not None and item.manifest is not None and item.manifest.refimage:
                report.refimages.append(rfid)
            if pid is not None:
                report.diffimages.append(pid)
    return report
