"""A stand-in for AWS Batch's compute environment: runs the containers of jobs moto recorded.

moto's Batch without Docker marks a job SUCCEEDED inside ``submit_job`` and runs nothing. This
helper does the part it leaves out: it reads each submitted job back with ``describe_jobs`` and
runs its container's command as ``<venv>/bin/rapid <command...>`` in a subprocess, with the
container's environment as moto recorded it (the job definition's, merged with the submit call's
``containerOverrides``) and the variables AWS Batch sets itself (``AWS_BATCH_JOB_ID``, and
``AWS_BATCH_JOB_ARRAY_INDEX`` in each child 0..size-1 of an array job). Nothing of the command is
rebuilt here, so a job that runs proves that what the engine submitted is runnable.

The host's environment stands in for the image's (``PATH``, ``HOME``, ...), less every ``RAPID_*``
and ``AWS_*`` variable of the test process: the child sees only what the job carries, plus
credentials, region and endpoint of the emulator, as a container's task role and VPC endpoints
would give it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DESCRIBE_BATCH = 100  # AWS Batch's limit on the ids of one describe_jobs call
OUTPUT_TAIL = 4000  # characters of a container's output kept for a failure message


@dataclass(frozen=True)
class ContainerRun:
    """One container run: the job it belongs to, what ran, and how it ended."""

    job_id: str
    command: tuple[str, ...]
    environment: Mapping[str, str]  # the job's own variables and Batch's, not the host's
    exit_code: int
    output: str  # last characters of stdout and stderr together


class BatchCompute:
    """Runs the containers of jobs submitted to a moto Batch endpoint, one subprocess each.

    Parameters
    ----------
    endpoint : str
        URL of the moto server (Batch and S3).
    region : str, optional
        AWS region of the emulator; default ``us-east-1``.
    executable : str or Path, optional
        The image's entry point; default ``rapid`` beside the running Python (the venv's).
    workers : int, optional
        Containers run at once; default 2.
    timeout : float, optional
        Seconds a container may run before it is killed; default 600.
    """

    def __init__(self, endpoint: str, *, region: str = "us-east-1",
                 executable: str | Path | None = None, workers: int = 2,
                 timeout: float = 600.0) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.endpoint = endpoint
        self.region = region
        self.executable = str(executable or Path(sys.executable).parent / "rapid")
        self.workers = workers
        self.timeout = timeout
        self.runs: list[ContainerRun] = []  # every run so far, in the order they were started

    # --- what moto recorded ----------------------------------------------------------------------
    def _client(self) -> Any:
        import boto3

        return boto3.client("batch", region_name=self.region, endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def _describe(self, client: Any, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(job_ids), DESCRIBE_BATCH):
            batch = job_ids[start:start + DESCRIBE_BATCH]
            for desc in client.describe_jobs(jobs=batch)["jobs"]:
                found[desc["jobId"]] = desc
        missing = [job_id for job_id in job_ids if job_id not in found]
        if missing:
            raise LookupError(f"the emulator has no record of jobs {missing}")
        return found

    def containers(self, job_ids: Iterable[str]) -> list[tuple[str, list[str], dict[str, str]]]:
        """(job id, command, environment) of every container the jobs run, from ``describe_jobs``.

        Parameters
        ----------
        job_ids : iterable of str
            Ids as the engine returned them: ``<jobId>`` of plain jobs, ``<arrayJobId>:<i>`` of
            array children. Every child of an array job named by any of its children runs.

        Returns
        -------
        list of tuple
            One entry per container, array children in index order.
        """
        client = self._client()
        parents = list(dict.fromkeys(job_id.partition(":")[0] for job_id in job_ids))
        described = self._describe(client, parents)
        out: list[tuple[str, list[str], dict[str, str]]] = []
        for parent in parents:
            desc = described[parent]
            size = (desc.get("arrayProperties") or {}).get("size")
            if not size:
                out.append((parent, *self._container(desc, job_id=parent, index=None)))
                continue
            children = [f"{parent}:{i}" for i in range(size)]
            child_descs = self._describe(client, children)
            for i, child in enumerate(children):
                out.append((child, *self._container(child_descs[child], job_id=child, index=i)))
        return out

    def _container(self, desc: Mapping[str, Any], *, job_id: str,
                   index: int | None) -> tuple[list[str], dict[str, str]]:
        container = desc.get("container") or {}
        command = [str(arg) for arg in container.get("command") or []]
        if not command:
            raise ValueError(f"job {job_id} has no container command")
        env = {item["name"]: str(item["value"]) for item in container.get("environment") or []}
        # Set by AWS Batch, not by the job (AWS_BATCH_* names are reserved to it).
        env["AWS_BATCH_JOB_ID"] = job_id
        env["AWS_BATCH_JOB_ATTEMPT"] = "1"
        env["AWS_BATCH_JQ_NAME"] = str(desc.get("jobQueue", "")).rpartition("/")[2]
        if index is None:
            env.pop("AWS_BATCH_JOB_ARRAY_INDEX", None)
        else:
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        return command, env

    # --- running ---------------------------------------------------------------------------------
    def _host_environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("RAPID_", "AWS_"))}
        env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region,
                    "AWS_ENDPOINT_URL": self.endpoint})
        return env

    def _run_one(self, job_id: str, command: list[str], env: dict[str, str]) -> ContainerRun:
        try:
            done = subprocess.run([self.executable, *command],
                                  env={**self._host_environment(), **env}, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=self.timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            text = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode()
            return ContainerRun(job_id, tuple(command), env, -9, text[-OUTPUT_TAIL:])
        return ContainerRun(job_id, tuple(command), env, done.returncode,
                            done.stdout[-OUTPUT_TAIL:])

    def run(self, job_ids: Iterable[str]) -> list[ContainerRun]:
        """Run the containers of ``job_ids`` (see :meth:`containers`) and return how each ended.

        Runs are kept in :attr:`runs` as well. A container that exits non-zero is reported, not
        raised: moto has already marked its job SUCCEEDED, so the caller decides what it means.
        """
        todo = self.containers(job_ids)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            runs = list(pool.map(lambda item: self._run_one(*item), todo))
        self.runs.extend(runs)
        return runs


@pytest.fixture
def batch_compute(aws_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> BatchCompute:
    """Every submit of the AWS Batch engine runs its containers before it returns.

    moto finishes a job inside ``submit_job``, so the containers must have run, and their manifests
    exist, by the time the engine's caller first polls; running them right after the original
    submit returns gives exactly that order.
    """
    from rapid.engines.awsbatch import BatchEngine

    compute = BatchCompute(aws_emulator.endpoint, region=aws_emulator.region)
    original = BatchEngine.submit

    def submit(self: BatchEngine, submissions: list) -> list[str]:
        ids = original(self, submissions)
        compute.run(ids)
        return ids

    monkeypatch.setattr(BatchEngine, "submit", submit)
    return compute
