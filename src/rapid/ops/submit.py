"""Write job specs to the store and submit them to the engine in one call.

A job row is opened before its spec is written; if writing or submitting fails, the row is closed at
once with exit 73 ("submission failed"), so nothing ever waits on a job that was never submitted.
"""

from __future__ import annotations

from rapid import exitcodes, store
from rapid.db import operations as dbops
from rapid.engines.base import Submission
from rapid.jobs.spec import PostprocSpec, ScienceSpec
from rapid.ops.context import OpsContext


def submit_specs(ctx: OpsContext, specs: list[ScienceSpec | PostprocSpec], *,
                 name_prefix: str) -> tuple[list[int], list[int]]:
    """Write and submit ``specs``; returns (submitted jids, jids whose submission failed)."""
    if not specs:
        return [], []
    uris = []
    try:
        for spec in specs:
            uri = ctx.layout.spec_uri(spec.procdate, spec.jid)
            store.write_bytes(uri, spec.to_json())
            uris.append(uri)
        subs = [Submission(name=f"{name_prefix}-jid{spec.jid}", spec_uri=uri)
                for spec, uri in zip(specs, uris)]
        job_ids = ctx.engine.submit(subs)
    except Exception as exc:  # noqa: BLE001 - any failure closes the rows it opened
        with ctx.db.begin() as conn:
            for spec in specs:
                dbops.close_job(conn, spec.jid, exitcode=exitcodes.NOT_SUBMITTED,
                                message=f"submission failed: {type(exc).__name__}: {exc}")
        return [], [spec.jid for spec in specs]
    with ctx.db.begin() as conn:
        for spec, uri, job_id in zip(specs, uris, job_ids):
            dbops.mark_submitted(conn, spec.jid, engine=ctx.engine.name, engine_job_id=job_id,
                                 spec_uri=uri)
    return [spec.jid for spec in specs], []
