"""Write job specs to the store and submit them to the engine in one call.

A job row is opened before its spec is written; if writing or submitting fails, the row is closed at
once with exit 73 ("submission failed"), so nothing ever waits on a job that was never submitted.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rapid import exitcodes, store
from rapid.db import bulk
from rapid.db import operations as dbops
from rapid.engines.base import Submission
from rapid.jobs.spec import PostprocSpec, ScienceSpec
from rapid.ops.context import OpsContext
from rapid.ops.retry import in_transaction

WRITERS = 8  # specs written at once
SLICE = 1000  # specs written, submitted and recorded together


def _write_specs(ctx: OpsContext, specs: list[ScienceSpec | PostprocSpec]) -> list[str]:
    """Write every spec to the store; many at once, since each write waits on storage."""
    uris = [ctx.layout.spec_uri(spec.procdate, spec.jid) for spec in specs]
    if len(specs) < 2 * WRITERS:
        for spec, uri in zip(specs, uris):
            store.write_bytes(uri, spec.to_json())
        return uris
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        # list() re-raises the first failed write here.
        list(pool.map(lambda pair: store.write_bytes(pair[1], pair[0].to_json()),
                      zip(specs, uris)))
    return uris


def submit_specs(ctx: OpsContext, specs: list[ScienceSpec | PostprocSpec], *,
                 name_prefix: str) -> tuple[list[int], list[int]]:
    """Write and submit ``specs``; returns (submitted jids, jids whose submission failed).

    Parameters
    ----------
    ctx : OpsContext
    specs : list of ScienceSpec or PostprocSpec
        Specs of jobs whose rows are open.
    name_prefix : str
        Prefix of the job names shown by the engine.

    Returns
    -------
    tuple of (list of int, list of int)
    """
    submitted: list[int] = []
    failed: list[int] = []
    # In slices, so that no job row stays "open" for long while thousands of specs are written.
    for i in range(0, len(specs), SLICE):
        done, bad = _submit_slice(ctx, specs[i:i + SLICE], name_prefix=name_prefix)
        submitted += done
        failed += bad
    return submitted, failed


def _submit_slice(ctx: OpsContext, specs: list[ScienceSpec | PostprocSpec], *,
                  name_prefix: str) -> tuple[list[int], list[int]]:
    if not specs:
        return [], []
    try:
        uris = _write_specs(ctx, specs)
        subs = [Submission(name=f"{name_prefix}-jid{spec.jid}", spec_uri=uri)
                for spec, uri in zip(specs, uris)]
        job_ids = ctx.engine.submit(subs)
    except Exception as exc:  # noqa: BLE001 - any failure closes the rows it opened
        message = f"submission failed: {type(exc).__name__}: {exc}"

        def close(conn) -> None:  # noqa: ANN001
            for spec in specs:
                dbops.close_job(conn, spec.jid, exitcode=exitcodes.NOT_SUBMITTED, message=message)

        in_transaction(ctx.db, close)
        return [], [spec.jid for spec in specs]
    items = [(spec.jid, job_id, uri) for spec, uri, job_id in zip(specs, uris, job_ids)]
    in_transaction(ctx.db, lambda conn: bulk.mark_submitted_many(conn, items,
                                                                 engine=ctx.engine.name))
    return [spec.jid for spec in specs], []
