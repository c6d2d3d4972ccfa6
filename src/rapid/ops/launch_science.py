"""Step 1: launch the science pipeline (ppid 15), one job per best L2 image in an observation range.

For each image the launcher decides the reference: the registered best reference of its (field,
filter) when there is one; otherwise the prior images to coadd (same filter, observed before, overlapping
the tile, nearest the tile centre first, at least 3 and at most 25). With fewer than 3 the job is
opened and closed at once with exit 33, never submitted. Only one job per (field, filter) builds a
reference at a time; the other images of that tile wait ("deferred") until its reference is
registered, and are launched by the next launch against it.

Idempotent: an image whose latest job for the processing date is in flight or ended normally is
skipped; a failed one is launched again (a new attempt; the earlier row is kept) up to the configured
number of attempts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from rapid import __version__, exitcodes
from rapid.db import bulk
from rapid.db import operations as dbops
from rapid.ingest.filters import RAPID_FILTERS
from rapid.jobs.spec import ImageInput, ReferenceInput, ScienceSpec, TileGrid
from rapid.ops.context import OpsContext
from rapid.ops.retry import in_transaction
from rapid.ops.submit import submit_specs
from rapid.ops.times import procdate_as_date
from rapid.sky import fields_overlapping, tile, unit_vector

PPID_SCIENCE = 15
# The cone query over-selects (its reach is a circle around the tile); take this many candidates
# per reference frame wanted before the exact footprint test.
PRIOR_CANDIDATES_PER_FRAME = 4


@dataclass
class LaunchReport:
    launched: list[int] = field(default_factory=list)  # jids submitted
    building_reference: list[int] = field(default_factory=list)  # of those, jids that build one
    no_reference: list[int] = field(default_factory=list)  # jids closed with exit 33
    deferred: int = 0  # images waiting for a reference being built
    skipped: int = 0  # in flight or already done for this procdate
    gave_up: int = 0  # failed max_attempts times
    failed_submit: list[int] = field(default_factory=list)

    @property
    def total_images(self) -> int:
        return (len(self.launched) + len(self.no_reference) + self.deferred + self.skipped
                + self.gave_up + len(self.failed_submit))


def image_input(row: Any) -> ImageInput:
    """The spec's view of one l2files row (joined with l2filemeta)."""
    return ImageInput(rid=row.rid, uri=row.filename, checksum=row.checksum, expid=row.expid,
                      sca=row.sca, fid=row.fid, filter=RAPID_FILTERS[row.fid - 1], field=row.field,
                      mjdobs=row.mjdobs, exptime=row.exptime, psf_uri=row.psffile)


def _radius_deg(ra0: float, dec0: float, corners: list[tuple[float, float]]) -> float:
    """Largest angular distance from a centre to its corners."""
    x0 = unit_vector(ra0, dec0)
    best = 0.0
    for ra, dec in corners:
        x = unit_vector(ra, dec)
        dot = max(-1.0, min(1.0, sum(float(a) * float(b) for a, b in zip(x0, x))))
        best = max(best, math.degrees(math.acos(dot)))
    return best


def _image_corners(row: Any) -> list[tuple[float, float]]:
    return [(getattr(row, f"ra{i}"), getattr(row, f"dec{i}")) for i in range(1, 5)]


def prior_images(conn: sa.Connection, row: Any, *, max_frames: int) -> list[Any]:
    """Prior best images of the same filter overlapping the tile of ``row``, nearest first.

    A cone query on image centres (tile radius plus image radius) finds the candidates cheaply;
    the exact test of each candidate's footprint against the tile then drops those that only
    come near it.
    """
    t = tile(row.field)
    reach = _radius_deg(t.ra0, t.dec0, list(t.corners)) + _radius_deg(row.ra0, row.dec0,
                                                                       _image_corners(row))
    x0, y0, z0 = (float(v) for v in unit_vector(t.ra0, t.dec0))
    near = dbops.prior_l2files_for_tile(conn, fid=row.fid, before=row.dateobs, x0=x0, y0=y0,
                                        z0=z0, min_dot=math.cos(math.radians(reach)),
                                        limit=PRIOR_CANDIDATES_PER_FRAME * max_frames)
    overlapping = []
    for prior in near:
        corners = _image_corners(prior)
        if row.field in fields_overlapping([c[0] for c in corners], [c[1] for c in corners]):
            overlapping.append(prior)
            if len(overlapping) == max_frames:
                break
    return overlapping


def _reference_input(ref: Any) -> ReferenceInput:
    return ReferenceInput(rfid=ref.rfid, version=ref.version, uri=ref.filename,
                          coverage_uri=ref.covfile, uncertainty_uri=ref.uncfile,
                          psf_uri=ref.psffile)


def _decide(ctx: OpsContext, conn: sa.Connection, images: list[Any], pdate,  # noqa: ANN001
            report: LaunchReport) -> list[tuple[Any, int, Any, list[Any]]]:
    """Which images to launch now: (row, attempt, reference or None, prior images to coadd)."""
    sci = ctx.settings.science
    latest = bulk.latest_jobs_by_rid(conn, ppid=PPID_SCIENCE, procdate=pdate)
    todo = []
    for row in images:
        job = latest.get(row.rid)
        if job is not None:
            if job.state != "done" or job.exitcode <= exitcodes.DOWNSTREAM_MAX \
                    or job.exitcode == exitcodes.NO_REFERENCE:
                report.skipped += 1
                continue
            if job.attempt >= ctx.settings.operator.max_attempts:
                report.gave_up += 1
                continue
        todo.append((row, 1 if job is None else job.attempt + 1))
    keys = {(row.field, row.fid) for row, _ in todo}
    refs = bulk.best_refimages_for(conn, keys, ppid=PPID_SCIENCE)
    busy = bulk.references_in_progress_for(conn, keys - set(refs))
    chosen = []
    for row, attempt in todo:
        key = (row.field, row.fid)
        ref = refs.get(key)
        priors: list[Any] = []
        if ref is None:
            if key in busy:
                report.deferred += 1
                continue
            priors = prior_images(conn, row, max_frames=sci.reference_max_frames)
            if len(priors) >= sci.reference_min_frames:
                # The earliest image that can build the tile's reference does; the others wait.
                busy.add(key)
        chosen.append((row, attempt, ref, priors))
    return chosen


def launch_science(ctx: OpsContext, start: datetime, end: datetime, procdate: str, *,
                   only_new: bool = False) -> LaunchReport:
    """Launch science jobs for the best L2 images observed in ``start``..``end``.

    The decisions for all images are taken and their job rows opened in one transaction (which
    holds SQLite's write lock throughout), with a few set-at-a-time queries; the specs are then
    written and submitted together. Two launchers on the same range never open the same attempt
    twice: the unique constraint on (ppid, rid, procdate, attempt) refuses the second.

    Parameters
    ----------
    ctx : OpsContext
        Settings, database, engine and store layout.
    start, end : datetime
        Observation range (inclusive, timezone-aware).
    procdate : str
        Processing date ``YYYYMMDD`` the jobs belong to.
    only_new : bool, optional
        Leave out images that have a science job of another processing date (what the
        long-running operator wants: each image processed once). Default False.

    Returns
    -------
    LaunchReport
    """
    sci = ctx.settings.science
    pdate = procdate_as_date(procdate)

    def plan_and_open(conn: sa.Connection) -> tuple[LaunchReport, list[tuple[Any, int, Any, list]]]:
        report = LaunchReport()
        images = dbops.best_l2files_between(conn, start, end)
        if only_new:
            done_before = bulk.rids_with_jobs(conn, ppid=PPID_SCIENCE, other_than=pdate)
            images = [row for row in images if row.rid not in done_before]
        chosen = _decide(ctx, conn, images, pdate, report)
        jids = bulk.open_jobs(conn, [{"ppid": PPID_SCIENCE, "rid": row.rid, "attempt": attempt,
                                      "fid": row.fid, "expid": row.expid, "sca": row.sca,
                                      "field": row.field} for row, attempt, _, _ in chosen],
                              procdate=pdate)
        opened = []
        for (row, _, ref, priors), jid in zip(chosen, jids):
            if jid is None:  # another launcher opened this attempt first
                report.skipped += 1
                continue
            if ref is None and len(priors) < sci.reference_min_frames:
                dbops.close_job(conn, jid, exitcode=exitcodes.NO_REFERENCE,
                                message=f"no reference possible: {len(priors)} prior images of "
                                        f"field {row.field} in {RAPID_FILTERS[row.fid - 1]}, "
                                        f"need {sci.reference_min_frames}")
                report.no_reference.append(jid)
                continue
            if ref is None:
                report.building_reference.append(jid)
            opened.append((row, jid, ref, priors))
        return report, opened

    report, opened = in_transaction(ctx.db, plan_and_open, write=True)
    specs: list[ScienceSpec] = []
    tiles: dict[int, Any] = {}
    for row, jid, ref, priors in opened:
        t = tiles.get(row.field) or tiles.setdefault(row.field, tile(row.field))
        specs.append(ScienceSpec(
            jid=jid, procdate=procdate, science=image_input(row),
            tile=TileGrid(field=row.field, ra0=t.ra0, dec0=t.dec0, size=sci.reference_size,
                          scale_arcsec=sci.reference_scale_arcsec),
            reference=_reference_input(ref) if ref is not None else None,
            reference_inputs=[image_input(p) for p in priors],
            product_prefix=ctx.layout.product_prefix(procdate, jid),
            log_uri=ctx.layout.log_uri(procdate, jid),
            reference_zero_point=sci.reference_zero_point,
            detection_threshold=sci.detection_threshold,
            detection_minarea=sci.detection_minarea, software_version=__version__))
    submitted, failed = submit_specs(ctx, specs, name_prefix="rapid-sci")
    report.launched.extend(submitted)
    report.failed_submit.extend(failed)
    return report
