"""The no-op engine: jobs that do nothing but end normally, for measuring the operator itself.

Submitting records the jobs as queued; :meth:`NoopEngine.run_pending` then "runs" each one in this
process: it reads the job's spec and writes the smallest valid manifest (exit code 0, no products)
where the job would, and reports the job SUCCEEDED from then on. Launch and registration can so be
timed at survey scale without starting a process, a cluster or a container per job. Its state lives
in memory only, so it serves one process (benchmarks and tests), never a real run.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from rapid import store
from rapid.engines.base import EngineJob, EngineState, Submission
from rapid.jobs.spec import Manifest

MANIFEST_NAME = "manifest.json"


class NoopEngine:
    """Jobs that end at once with exit code 0 and an empty manifest.

    Parameters
    ----------
    writers : int, optional
        Manifests written at once by :meth:`run_pending`. Default 8.
    """

    name = "noop"

    def __init__(self, *, writers: int = 8) -> None:
        if writers < 1:
            raise ValueError(f"writers must be at least 1, got {writers}")
        self.writers = writers
        self._lock = threading.Lock()
        self._jobs: dict[str, dict] = {}
        self._next = 0

    def submit(self, submissions: list[Submission]) -> list[str]:
        ids = []
        with self._lock:
            for sub in submissions:
                self._next += 1
                job_id = f"noop-{self._next}"
                self._jobs[job_id] = {"spec_uri": sub.spec_uri, "state": EngineState.QUEUED,
                                      "started": None, "ended": None}
                ids.append(job_id)
        return ids

    def poll(self, job_ids: list[str]) -> dict[str, EngineJob]:
        out = {}
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is None:
                out[job_id] = EngineJob(job_id, EngineState.UNKNOWN, reason="no such noop job")
            else:
                out[job_id] = EngineJob(job_id, job["state"],
                                        0 if job["state"] is EngineState.SUCCEEDED else None,
                                        job["started"], job["ended"])
        return out

    def cancel(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is not None and not job["state"].finished:
                job["state"] = EngineState.FAILED

    def run_pending(self) -> int:
        """Run every queued job: write its manifest and mark it SUCCEEDED; returns how many."""
        queued = [job for job in self._jobs.values() if job["state"] is EngineState.QUEUED]

        def run(job: dict) -> None:
            spec = json.loads(store.read_bytes(job["spec_uri"]))
            now = datetime.now(timezone.utc)
            manifest = Manifest(kind=spec["kind"], jid=spec["jid"], exitcode=0, started=now,
                                ended=now, message="noop")
            store.write_bytes(store.join(spec["product_prefix"], MANIFEST_NAME),
                              manifest.to_json())
            job.update(state=EngineState.SUCCEEDED, started=now, ended=now)

        with ThreadPoolExecutor(max_workers=self.writers) as pool:
            list(pool.map(run, queued))
        return len(queued)
