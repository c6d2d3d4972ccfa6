"""The entry point every engine runs: ``rapid job run SPEC_URI``.

Reads the spec, runs the job it names, writes the job's log and then, last, its manifest. The process
exits 0 once the manifest is written, whatever the job's own exit code (that is in the manifest, and a
"no reference possible" outcome is no reason for a batch engine to retry); it exits non-zero only when
no manifest could be written.
"""

from __future__ import annotations

import io
import logging
import sys
import traceback

from rapid import store
from rapid.jobs.spec import PostprocSpec, ScienceSpec, load_spec
from rapid.ops.layout import MANIFEST_NAME


def run_job(spec_uri: str) -> int:
    """Run the job whose spec is at ``spec_uri``; returns the process exit status."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        spec = load_spec(store.read_bytes(spec_uri))
    except Exception as exc:  # noqa: BLE001
        print(f"rapid job: cannot read job spec {spec_uri}: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("rapid.job").info("job %s (%s) from %s", spec.jid, spec.kind, spec_uri)
    if isinstance(spec, ScienceSpec):
        from rapid.science.job import run_science

        manifest = run_science(spec)
    elif isinstance(spec, PostprocSpec):
        from rapid.postproc.job import run_postproc

        manifest = run_postproc(spec)
    else:  # pragma: no cover - load_spec knows only these kinds
        return 2
    logging.getLogger("rapid.job").info("job %s ended with exit code %s %s", spec.jid,
                                        manifest.exitcode, manifest.message)
    try:
        store.write_bytes(spec.log_uri, buffer.getvalue().encode())
    except OSError:
        traceback.print_exc()
    store.write_bytes(store.join(spec.product_prefix, MANIFEST_NAME), manifest.to_json())
    root.removeHandler(handler)
    return 0
