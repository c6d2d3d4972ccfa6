"""The entry point every engine runs: ``rapid job run SPEC_URI``.

Reads the spec, runs the job it names, writes the job's log and then, last, its manifest. The process
exits 0 once the manifest is written, whatever the job's own exit code (that is in the manifest, and a
"no reference possible" outcome is no reason for a batch engine to retry); it exits non-zero only when
no manifest could be written.

Before any work the job takes its half of the start handshake with the operator: it writes its
"started" marker beside its products, THEN looks for a "withdrawn" tombstone beside its spec (names in
:mod:`rapid.ops.layout`). An operator that finds the job's row left "open" by a launcher that died
writes the tombstone first and looks for the marker after (:mod:`rapid.ops.wait`). Each side writes
before it reads and the store reads its own writes, so at least one of them sees the other's object:
either the operator sees the marker and waits for this job, or this job sees the tombstone and stops
(exit status :data:`WITHDRAWN`, no products, no manifest) while the operator relaunches it under a
new jid. The same image is never run to completion twice.
"""

from __future__ import annotations

import io
import logging
import sys
import traceback

from rapid import store
from rapid.jobs.spec import PostprocSpec, ScienceSpec, load_spec
from rapid.ops.layout import (
    MANIFEST_NAME,
    handshake_record,
    started_uri_for,
    withdrawn_uri_for,
)

UNREADABLE = 2  # exit status: no spec, or the store failed before any work
WITHDRAWN = 4  # exit status: the operator withdrew the job before it started; nothing was done


def _take_start(spec: ScienceSpec | PostprocSpec, spec_uri: str) -> bool:
    """Write the "started" marker, then whether the job may run (no tombstone is there).

    The order is the protocol: the marker must be in the store before the tombstone is looked for.
    """
    store.write_bytes(started_uri_for(spec.product_prefix), handshake_record(spec.jid))
    return not store.exists(withdrawn_uri_for(spec_uri))


def run_job(spec_uri: str) -> int:
    """Run the job whose spec is at ``spec_uri``; returns the process exit status.

    Parameters
    ----------
    spec_uri : str
        URI of the job spec.

    Returns
    -------
    int
        0 once the manifest is written; :data:`UNREADABLE` when the spec cannot be read or the
        store fails during the start handshake; :data:`WITHDRAWN` when the operator withdrew the
        job before it started (no work done, no manifest written).
    """
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        return _run(spec_uri, buffer)
    finally:
        root.removeHandler(handler)


def _run(spec_uri: str, buffer: io.StringIO) -> int:
    try:
        spec = load_spec(store.read_bytes(spec_uri))
    except Exception as exc:  # noqa: BLE001
        print(f"rapid job: cannot read job spec {spec_uri}: {exc}", file=sys.stderr)
        return UNREADABLE
    try:
        may_run = _take_start(spec, spec_uri)
    except OSError as exc:
        # Without the marker (or the tombstone check) the operator may relaunch this job, so no
        # work may start; the operator closes or times out this attempt.
        print(f"rapid job: job {spec.jid}: cannot record its start in the store: {exc}",
              file=sys.stderr)
        return UNREADABLE
    if not may_run:
        print(f"rapid job: job {spec.jid} was withdrawn by the operator before it started "
              f"({withdrawn_uri_for(spec_uri)}); nothing done", file=sys.stderr)
        return WITHDRAWN
    logging.getLogger("rapid.job").info("job %s (%s) from %s", spec.jid, spec.kind, spec_uri)
    if isinstance(spec, ScienceSpec):
        from rapid.science.job import run_science

        manifest = run_science(spec)
    elif isinstance(spec, PostprocSpec):
        from rapid.postproc.job import run_postproc

        manifest = run_postproc(spec)
    else:  # pragma: no cover - load_spec knows only these kinds
        return UNREADABLE
    logging.getLogger("rapid.job").info("job %s ended with exit code %s %s", spec.jid,
                                        manifest.exitcode, manifest.message)
    try:
        store.write_bytes(spec.log_uri, buffer.getvalue().encode())
    except OSError:
        traceback.print_exc()
    store.write_bytes(store.join(spec.product_prefix, MANIFEST_NAME), manifest.to_json())
    return 0
