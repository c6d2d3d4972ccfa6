"""Steps 3 and 4: launch post-processing (ppid 17) for a processing date, then register it.

Step 3 opens one ppid-17 job per science job of the date that ended normally (exit code <= 32) with a
registered difference image; its spec names the products to stamp and the registered IDs and versions
to stamp into them. Step 4 records the stamped products' new checksums and status and closes the jobs.
Both steps are idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from rapid import exitcodes
from rapid.db import bulk
from rapid.db import operations as dbops
from rapid.jobs.spec import PostprocSpec, StampTarget
from rapid.ops.collect import Finished, finished_jobs
from rapid.ops.context import OpsContext
from rapid.ops.retry import in_transaction
from rapid.ops.submit import submit_specs
from rapid.ops.times import procdate_as_date

PPID_SCIENCE = 15
PPID_POSTPROC = 17


@dataclass
class PostprocLaunchReport:
    launched: list[int] = field(default_factory=list)
    skipped: int = 0
    gave_up: int = 0
    failed_submit: list[int] = field(default_factory=list)


@dataclass
class PostprocRegisterReport:
    closed: dict[int, int] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)
    stamped: int = 0
    pending: int = 0


def _targets(conn: sa.Connection, sci_job, procdate: str) -> list[StampTarget]:  # noqa: ANN001
    diff = dbops.diffimage_of_job(conn, sci_job.jid)
    if diff is None:
        return []
    common = {"RID": diff.rid, "EXPID": diff.expid, "FIELD": diff.field, "FID": diff.fid,
              "SCA": diff.sca, "PROCDATE": procdate, "JID": sci_job.jid}
    ref = dbops.refimage_by_rfid(conn, diff.rfid) if diff.rfid is not None else None
    diff_keys = {**common, "PID": diff.pid, "DIFFVER": diff.version, "SVID": diff.svid or 0}
    if ref is not None:
        diff_keys.update({"RFID": ref.rfid, "REFVER": ref.version})
    targets = [StampTarget(uri=diff.filename, kind="diff", keywords=diff_keys)]
    if ref is not None and ref.jid == sci_job.jid:  # this job built the reference
        targets.append(StampTarget(uri=ref.filename, kind="ref", keywords={
            "RFID": ref.rfid, "REFVER": ref.version, "FIELD": ref.field, "FID": ref.fid,
            "PROCDATE": procdate, "JID": sci_job.jid}))
    return targets


def launch_postproc(ctx: OpsContext, procdate: str) -> PostprocLaunchReport:
    """Launch post-processing for every normally-ended science job of ``procdate``.

    Decisions and job rows are taken in one transaction, as in the science launcher.
    """
    pdate = procdate_as_date(procdate)

    def plan_and_open(conn: sa.Connection) -> tuple[PostprocLaunchReport, list]:
        report = PostprocLaunchReport()
        sci_jobs = dbops.jobs_for_procdate(conn, pdate, ppid=PPID_SCIENCE, states=("done",))
        latest = bulk.latest_jobs_by_rid(conn, ppid=PPID_POSTPROC, procdate=pdate)
        chosen = []
        for sci in sci_jobs:
            if sci.exitcode is None or sci.exitcode > exitcodes.DOWNSTREAM_MAX:
                continue
            job = latest.get(sci.rid)
            attempt = 1 if job is None else job.attempt + 1
            if job is not None and job.parent_jid == sci.jid:
                if job.state != "done" or job.exitcode <= exitcodes.DOWNSTREAM_MAX:
                    report.skipped += 1
                    continue
                if job.attempt >= ctx.settings.operator.max_attempts:
                    report.gave_up += 1
                    continue
            targets = _targets(conn, sci, procdate)
            if targets:
                chosen.append((sci, attempt, targets))
        jids = bulk.open_jobs(conn, [{"ppid": PPID_POSTPROC, "rid": sci.rid, "attempt": attempt,
                                      "parent_jid": sci.jid, "fid": sci.fid, "expid": sci.expid,
                                      "sca": sci.sca, "field": sci.field}
                                     for sci, attempt, _ in chosen], procdate=pdate)
        opened = []
        for (sci, _, targets), jid in zip(chosen, jids):
            if jid is None:
                report.skipped += 1
            else:
                opened.append((sci, jid, targets))
        return report, opened

    report, opened = in_transaction(ctx.db, plan_and_open, write=True)
    specs = [PostprocSpec(jid=jid, procdate=procdate, science_jid=sci.jid, targets=targets,
                          product_prefix=ctx.layout.product_prefix(procdate, jid),
                          log_uri=ctx.layout.log_uri(procdate, jid))
             for sci, jid, targets in opened]
    report.launched, report.failed_submit = submit_specs(ctx, specs, name_prefix="rapid-post")
    return report


def _register_one(ctx: OpsContext, conn: sa.Connection, procdate: str,
                  item: Finished) -> tuple[int, str, int]:
    """Close one ppid-17 job in a SAVEPOINT; (exit code, problem, products stamped)."""
    job, manifest = item.job, item.manifest
    with conn.begin_nested():
        if manifest is None:
            dbops.close_job(conn, job.jid, exitcode=item.exitcode_if_bad, message=item.problem,
                            started=item.engine_job.started, ended=item.engine_job.ended)
            return item.exitcode_if_bad, item.problem, 0
        stamped = 0
        if manifest.exitcode <= exitcodes.DOWNSTREAM_MAX:
            for product in manifest.products:
                table = "diffimages" if product.name == "diff" else "refimages"
                key = dbops.product_key_by_filename(conn, table, product.uri)
                if key is not None:
                    dbops.set_product_checksum(conn, table, key, checksum=product.checksum,
                                               status=1)
                    stamped += 1
        dbops.close_job(conn, job.jid, exitcode=manifest.exitcode,
                        message=manifest.message or None, started=manifest.started,
                        ended=manifest.ended,
                        manifest_uri=ctx.layout.manifest_uri(procdate, job.jid))
    return manifest.exitcode, "", stamped


def register_postproc(ctx: OpsContext, procdate: str, *,
                      chunk: int = 500) -> PostprocRegisterReport:
    """Record the stamped products' checksums and close the finished ppid-17 jobs of ``procdate``.

    ``chunk`` jobs per transaction, each in its own SAVEPOINT (default 500).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    report = PostprocRegisterReport()
    finished, report.pending = finished_jobs(ctx, procdate, PPID_POSTPROC)
    for i in range(0, len(finished), chunk):
        part = finished[i:i + chunk]
        results = in_transaction(ctx.db, lambda conn: [_register_one(ctx, conn, procdate, item)
                                                       for item in part], write=True)
        for item, (code, problem, stamped) in zip(part, results):
            report.closed[item.job.jid] = code
            report.stamped += stamped
            if problem:
                report.problems[item.job.jid] = problem
    return report
