"""The AWS Batch engine: one array job per submit call, polled by ``describe_jobs``.

A submit of many specs writes their URIs, in order, as a JSON index object beside the first spec
(``<folder>/batch-<uuid>.json``) and submits ONE array job of that size, whose children run ``rapid
job run`` with ``RAPID_SPEC_INDEX`` naming the index; child *i* runs entry
``AWS_BATCH_JOB_ARRAY_INDEX`` = *i* (:func:`spec_uri_from_environment`). A single spec is a plain
job with the spec URI on its command line. Job ids are ``<arrayJobId>:<index>`` for children, which
``describe_jobs`` and ``terminate_job`` take as they are, and ``<jobId>`` for plain jobs, so any
later process polls them with nothing but the ids. AWS Batch keeps finished jobs for about a week;
older ids are UNKNOWN.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rapid import store
from rapid.config import EngineSettings
from rapid.engines.awsbatch_states import job_from_description
from rapid.engines.base import EngineJob, EngineState, Submission

INDEX_ENV = "RAPID_SPEC_INDEX"
ARRAY_INDEX_ENV = "AWS_BATCH_JOB_ARRAY_INDEX"  # set by AWS Batch in each child of an array job
INDEX_VERSION = 1
MAX_ARRAY_SIZE = 10_000  # AWS Batch's limit on the children of one array job
DESCRIBE_BATCH = 100  # AWS Batch's limit on the ids of one describe_jobs call
CANCEL_REASON = "cancelled by rapid"
THROTTLED = {"TooManyRequestsException", "ThrottlingException"}


def _job_name(name: str) -> str:
    """An AWS Batch job name (up to 128 letters, digits, hyphens, underscores) for ``name``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"rapid-{name}")[:128]


def index_uri_for(spec_uri: str) -> str:
    """A fresh index object URI in the folder of ``spec_uri``."""
    folder, sep, _ = store.normalize_url(spec_uri).rpartition("/")
    if not sep or not folder:
        raise ValueError(f"spec_uri must name an object in a folder, got {spec_uri!r}")
    return f"{folder}/batch-{uuid.uuid4().hex}.json"


def write_spec_index(spec_uris: Sequence[str], *, names: Sequence[str] | None = None) -> str:
    """Write the index of an array job beside its first spec and return the index URI.

    Parameters
    ----------
    spec_uris : sequence of str
        Spec URIs; child *i* of the array job runs ``spec_uris[i]``.
    names : sequence of str, optional
        Names of the jobs, kept in the index for people reading it.

    Returns
    -------
    str
        URI of the index object (``<folder of spec_uris[0]>/batch-<uuid>.json``).
    """
    if not spec_uris:
        raise ValueError("spec_uris must not be empty")
    if names is not None and len(names) != len(spec_uris):
        raise ValueError(f"names must have one entry per spec URI, got {len(names)} for "
                         f"{len(spec_uris)}")
    uri = index_uri_for(spec_uris[0])
    body: dict[str, Any] = {"version": INDEX_VERSION, "spec_uris": list(spec_uris)}
    if names is not None:
        body["names"] = list(names)
    store.write_bytes(uri, json.dumps(body).encode())
    return uri


def spec_uri_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """The spec URI an array-job child runs, from ``RAPID_SPEC_INDEX`` and its array index.

    Parameters
    ----------
    environ : mapping, optional
        Environment to read (default ``os.environ``).

    Returns
    -------
    str or None
        The spec URI at entry ``AWS_BATCH_JOB_ARRAY_INDEX`` of the index object; None when
        ``RAPID_SPEC_INDEX`` is not set (the job was not submitted as an array job).
    """
    env = os.environ if environ is None else environ
    index_uri = env.get(INDEX_ENV, "").strip()
    if not index_uri:
        return None
    text = env.get(ARRAY_INDEX_ENV, "").strip()
    try:
        position = int(text)
    except ValueError:
        raise ValueError(f"{ARRAY_INDEX_ENV} must be an integer when {INDEX_ENV} is set, "
                         f"got {text!r}") from None
    body = json.loads(store.read_bytes(index_uri))
    if body.get("version") != INDEX_VERSION:
        raise ValueError(f"{INDEX_ENV} {index_uri} has version {body.get('version')!r}, "
                         f"expected {INDEX_VERSION}")
    uris = body["spec_uris"]
    if not 0 <= position < len(uris):
        raise ValueError(f"{ARRAY_INDEX_ENV} {position} is outside the {len(uris)} entries of "
                         f"{index_uri}")
    return str(uris[position])


class BatchEngine:
    """Jobs run as AWS Batch container jobs.

    Parameters
    ----------
    settings : EngineSettings
        Job queue, job definition, region and endpoint override (``batch_*``).
    client : optional
        A boto3 ``batch`` client; default one for ``settings.batch_region`` and
        ``settings.batch_endpoint_url``.
    attempts : int or None, optional
        AWS Batch attempts per job, sent as the job's ``retryStrategy``; default 1, since the
        operator relaunches failed jobs itself. None sends none, so the job definition's retry
        strategy (with its ``evaluateOnExit`` rules) applies.
    command : sequence of str, optional
        The container command before the spec URI; default ``("job", "run")``, the arguments to the
        image's ``rapid`` entry point.
    max_array_size : int, optional
        Children per array job; default 10,000, AWS Batch's limit.
    throttle_retries : int, optional
        Retries of a throttled call, with doubling pauses from ``throttle_pause`` seconds;
        default 6.
    throttle_pause : float, optional
        First pause after a throttled call, in seconds; default 1.0.
    """

    name = "awsbatch"

    def __init__(self, settings: EngineSettings, *, client: Any = None, attempts: int | None = 1,
                 command: Sequence[str] = ("job", "run"), max_array_size: int = MAX_ARRAY_SIZE,
                 throttle_retries: int = 6, throttle_pause: float = 1.0) -> None:
        if attempts is not None and not 1 <= attempts <= 10:
            raise ValueError(f"attempts must be None or between 1 and 10 (AWS Batch's range), "
                             f"got {attempts}")
        if not 2 <= max_array_size <= MAX_ARRAY_SIZE:
            raise ValueError(f"max_array_size must be between 2 and {MAX_ARRAY_SIZE}, "
                             f"got {max_array_size}")
        if throttle_retries < 0 or throttle_pause < 0:
            raise ValueError("throttle_retries and throttle_pause must not be negative")
        if not settings.batch_job_queue or not settings.batch_job_definition:
            raise ValueError("settings must name batch_job_queue and batch_job_definition")
        self.settings = settings
        self.attempts = attempts
        self.command = list(command)
        self.max_array_size = max_array_size
        self.throttle_retries = throttle_retries
        self.throttle_pause = throttle_pause
        if client is None:
            import boto3

            client = boto3.client("batch", region_name=settings.batch_region,
                                  endpoint_url=settings.batch_endpoint_url or None)
        self.client = client

    # --- interface -------------------------------------------------------------------------
    def submit(self, submissions: list[Submission]) -> list[str]:
        """Submit the jobs: one array job per ``max_array_size`` of them, a plain job for one.

        If a later array job cannot be submitted, the ones submitted before it are terminated, so a
        failed call leaves nothing running.
        """
        for sub in submissions:
            if not sub.spec_uri:
                raise ValueError(f"submission {sub.name!r} has an empty spec_uri")
        ids: list[str] = []
        parents: list[str] = []
        try:
            for start in range(0, len(submissions), self.max_array_size):
                chunk = submissions[start:start + self.max_array_size]
                if len(chunk) == 1:  # an array job needs at least two children
                    job_id = self._submit_plain(chunk[0])
                    parents.append(job_id)
                    ids.append(job_id)
                else:
                    parent = self._submit_array(chunk)
                    parents.append(parent)
                    ids.extend(f"{parent}:{i}" for i in range(len(chunk)))
        except Exception:
            for parent in parents:
                self._terminate(parent)
            raise
        return ids

    def poll(self, job_ids: list[str]) -> dict[str, EngineJob]:
        """The state of each job from ``describe_jobs``, 100 ids a call; unknown ids are UNKNOWN."""
        found: dict[str, EngineJob] = {}
        unique = list(dict.fromkeys(job_ids))
        for start in range(0, len(unique), DESCRIBE_BATCH):
            batch = unique[start:start + DESCRIBE_BATCH]
            response = self._call(self.client.describe_jobs, jobs=batch)
            for desc in response.get("jobs", []):
                job_id = desc.get("jobId")
                if job_id in batch:
                    found[job_id] = job_from_description(job_id, desc)
        return {job_id: found.get(job_id) or EngineJob(
                    job_id, EngineState.UNKNOWN, reason="AWS Batch has no record of the job")
                for job_id in unique}

    def cancel(self, job_ids: list[str]) -> None:
        """Terminate each job (queued or running) with the reason "cancelled by rapid"."""
        for job_id in dict.fromkeys(job_ids):
            self._terminate(job_id)

    # --- helpers -----------------------------------------------------------------------------
    def _common(self, first: Submission) -> dict[str, Any]:
        common: dict[str, Any] = {"jobName": _job_name(first.name),
                                  "jobQueue": self.settings.batch_job_queue,
                                  "jobDefinition": self.settings.batch_job_definition}
        if self.attempts is not None:
            common["retryStrategy"] = {"attempts": self.attempts}
        return common

    def _submit_plain(self, sub: Submission) -> str:
        response = self._call(self.client.submit_job, **self._common(sub),
                              containerOverrides={"command": self.command + [sub.spec_uri]})
        return str(response["jobId"])

    def _submit_array(self, chunk: list[Submission]) -> str:
        index_uri = write_spec_index([s.spec_uri for s in chunk], names=[s.name for s in chunk])
        response = self._call(
            self.client.submit_job, **self._common(chunk[0]),
            arrayProperties={"size": len(chunk)},
            containerOverrides={"command": list(self.command),
                                "environment": [{"name": INDEX_ENV, "value": index_uri}]})
        return str(response["jobId"])

    def _terminate(self, job_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._call(self.client.terminate_job, jobId=job_id, reason=CANCEL_REASON)
        except ClientError:
            pass  # an id AWS Batch no longer knows has nothing left to stop

    def _call(self, func: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """``func(**kwargs)``, retried with doubling pauses while AWS Batch throttles the caller."""
        from botocore.exceptions import ClientError

        pause = self.throttle_pause
        for attempt in range(self.throttle_retries + 1):
            try:
                return func(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in THROTTLED or attempt == self.throttle_retries:
                    raise
            time.sleep(pause)
            pause *= 2
        raise AssertionError("unreachable")
