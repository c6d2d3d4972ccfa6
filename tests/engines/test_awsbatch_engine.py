"""The AWS Batch engine against moto on 127.0.0.1: array jobs, batched polls, failures, index."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rapid import store
from rapid.config import Settings
from rapid.engines import awsbatch
from rapid.engines.awsbatch import BatchEngine, spec_uri_from_environment, write_spec_index
from rapid.engines.awsbatch_states import job_from_description
from rapid.engines.base import EngineState, Submission, make_engine


class Recording:
    """A boto3 client wrapper that counts calls and keeps their keyword arguments."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()
        self.kwargs: list[tuple[str, dict]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target):
            return target

        def call(**kwargs: Any) -> Any:
            self.calls[name] += 1
            self.kwargs.append((name, kwargs))
            return target(**kwargs)
        return call


@pytest.fixture
def batch(aws_emulator) -> Recording:
    return Recording(boto3.client("batch", region_name=aws_emulator.region,
                                  endpoint_url=aws_emulator.endpoint))


def _specs(tmp_path: Path, n: int, *, base: str | None = None) -> list[Submission]:
    folder = base or (tmp_path / "store" / "pipeline" / "20281008").as_uri()
    subs = []
    for jid in range(1, n + 1):
        uri = f"{folder}/jid{jid}.json"
        store.write_bytes(uri, json.dumps({"jid": jid}).encode())
        subs.append(Submission(f"sci-jid{jid}", uri))
    return subs


def _wait(engine: BatchEngine, ids: list[str], timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = engine.poll(ids)
        if all(s.state.finished for s in states.values()):
            return states
        time.sleep(0.1)
    raise AssertionError(f"jobs did not finish: {engine.poll(ids)}")


def _environment(desc: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in desc["container"]["environment"]}


def test_three_specs_are_one_array_job_whose_children_find_their_specs(aws_emulator, batch,
                                                                       tmp_path):
    engine = BatchEngine(aws_emulator.settings, client=batch, attempts=2)
    subs = _specs(tmp_path, 3)
    ids = engine.submit(subs)
    assert batch.calls["submit_job"] == 1
    _, kwargs = batch.kwargs[0]
    assert kwargs["arrayProperties"] == {"size": 3}
    assert kwargs["retryStrategy"] == {"attempts": 2}
    assert kwargs["jobName"] == "rapid-sci-jid1"
    assert kwargs["containerOverrides"]["command"] == ["job", "run"]
    parent = ids[0].split(":")[0]
    assert ids == [f"{parent}:0", f"{parent}:1", f"{parent}:2"]
    states = _wait(engine, ids)
    assert [states[i].state for i in ids] == [EngineState.SUCCEEDED] * 3
    assert states[ids[0]].exit_status == 0
    assert states[ids[0]].started.tzinfo is timezone.utc
    # each child reads its spec URI from the index named in its environment
    [child] = batch.describe_jobs(jobs=[ids[2]])["jobs"]
    env = _environment(child)
    index_uri = env[awsbatch.INDEX_ENV]
    assert index_uri.startswith(subs[0].spec_uri.rsplit("/", 1)[0] + "/batch-")
    for i, sub in enumerate(subs):
        assert spec_uri_from_environment({awsbatch.INDEX_ENV: index_uri,
                                          awsbatch.ARRAY_INDEX_ENV: str(i)}) == sub.spec_uri


def test_one_spec_is_a_plain_job_with_the_uri_on_its_command(aws_emulator, batch, tmp_path):
    engine = BatchEngine(aws_emulator.settings, client=batch)
    [sub] = _specs(tmp_path, 1)
    [job] = engine.submit([sub])
    assert ":" not in job
    _, kwargs = batch.kwargs[0]
    assert "arrayProperties" not in kwargs
    assert kwargs["retryStrategy"] == {"attempts": 1}
    [desc] = batch.describe_jobs(jobs=[job])["jobs"]
    assert desc["container"]["command"] == ["job", "run", sub.spec_uri]
    assert _wait(engine, [job])[job].state is EngineState.SUCCEEDED


def test_more_than_max_array_size_is_split_into_several_array_jobs(aws_emulator, batch, tmp_path):
    engine = BatchEngine(aws_emulator.settings, client=batch, max_array_size=2, attempts=None)
    ids = engine.submit(_specs(tmp_path, 5))
    assert batch.calls["submit_job"] == 3  # 2 + 2 children, then one plain job
    # attempts=None leaves the retry strategy to the job definition
    assert all("retryStrategy" not in kw for _, kw in batch.kwargs)
    parents = [i.split(":")[0] for i in ids]
    assert parents[0] == parents[1] != parents[2] == parents[3] != parents[4]
    assert ":" not in ids[4]
    assert all(s.state is EngineState.SUCCEEDED for s in _wait(engine, ids).values())


def test_failure_switch_gives_failed_with_a_reason(aws_emulator, batch, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")  # read by the in-process server
    engine = BatchEngine(aws_emulator.settings, client=batch)
    ids = engine.submit(_specs(tmp_path, 2))
    states = _wait(engine, ids)
    for job_id in ids:
        assert states[job_id].state is EngineState.FAILED
        assert states[job_id].reason
        assert states[job_id].ended is not None


def test_poll_describes_at_most_100_ids_a_call(aws_emulator, batch, tmp_path):
    engine = BatchEngine(aws_emulator.settings, client=batch)
    folder = (tmp_path / "specs").as_uri()
    ids = engine.submit([Submission(f"j{i}", f"{folder}/jid{i}.json") for i in range(250)])
    assert len(ids) == 250 and batch.calls["submit_job"] == 1
    states = engine.poll(ids)
    assert batch.calls["describe_jobs"] == 3
    assert [len(kw["jobs"]) for name, kw in batch.kwargs if name == "describe_jobs"] == \
        [100, 100, 50]
    assert Counter(s.state for s in states.values()) == {EngineState.SUCCEEDED: 250}


def test_unknown_job_id_is_unknown(aws_emulator, batch):
    engine = BatchEngine(aws_emulator.settings, client=batch)
    missing = "00000000-0000-0000-0000-000000000000:7"
    assert engine.poll([missing])[missing].state is EngineState.UNKNOWN


def test_cancel_terminates_each_job_with_the_rapid_reason(aws_emulator, batch, tmp_path):
    engine = BatchEngine(aws_emulator.settings, client=batch)
    ids = engine.submit(_specs(tmp_path, 2))
    engine.cancel(ids + ["no-such-job"])
    calls = [kw for name, kw in batch.kwargs if name == "terminate_job"]
    assert [c["jobId"] for c in calls] == ids + ["no-such-job"]
    assert {c["reason"] for c in calls} == {"cancelled by rapid"}


def test_index_on_s3(aws_emulator, batch, tmp_path):
    base = f"s3://{aws_emulator.bucket}/pipeline/20281008"
    engine = BatchEngine(aws_emulator.settings, client=batch)
    subs = _specs(tmp_path, 2, base=base)
    ids = engine.submit(subs)
    [desc] = batch.describe_jobs(jobs=[ids[1]])["jobs"]
    env = _environment(desc)
    assert env[awsbatch.INDEX_ENV].startswith(f"{base}/batch-")
    assert spec_uri_from_environment({**env, awsbatch.ARRAY_INDEX_ENV: "1"}) == subs[1].spec_uri


def test_spec_uri_from_environment_checks_its_inputs(tmp_path):
    assert spec_uri_from_environment({}) is None
    index = write_spec_index([f"{tmp_path.as_uri()}/a.json", f"{tmp_path.as_uri()}/b.json"])
    assert spec_uri_from_environment({awsbatch.INDEX_ENV: index,
                                      awsbatch.ARRAY_INDEX_ENV: "1"}).endswith("/b.json")
    with pytest.raises(ValueError, match="AWS_BATCH_JOB_ARRAY_INDEX"):
        spec_uri_from_environment({awsbatch.INDEX_ENV: index})
    with pytest.raises(ValueError, match="outside the 2 entries"):
        spec_uri_from_environment({awsbatch.INDEX_ENV: index, awsbatch.ARRAY_INDEX_ENV: "2"})


class Throttled:
    """A fake client whose submit_job is throttled ``times`` times, then fails or succeeds."""

    def __init__(self, times: int, then_fail_at: int | None = None) -> None:
        self.times = times
        self.then_fail_at = then_fail_at
        self.submits = 0
        self.terminated: list[str] = []

    def submit_job(self, **kwargs: Any) -> dict:
        self.submits += 1
        if self.times:
            self.times -= 1
            raise ClientError({"Error": {"Code": "TooManyRequestsException"}}, "SubmitJob")
        if self.then_fail_at == self.submits:
            raise ClientError({"Error": {"Code": "ClientException"}}, "SubmitJob")
        return {"jobId": f"job{self.submits}"}

    def terminate_job(self, jobId: str, reason: str) -> dict:
        self.terminated.append(jobId)
        return {}


def test_throttled_submit_backs_off_and_retries(aws_emulator, tmp_path):
    fake = Throttled(times=2)
    engine = BatchEngine(aws_emulator.settings, client=fake, throttle_pause=0.0)
    assert engine.submit(_specs(tmp_path, 2)) == ["job3:0", "job3:1"]
    assert fake.submits == 3


def test_a_failed_later_chunk_terminates_the_earlier_ones(aws_emulator, tmp_path):
    fake = Throttled(times=0, then_fail_at=2)
    engine = BatchEngine(aws_emulator.settings, client=fake, max_array_size=2)
    with pytest.raises(ClientError):
        engine.submit(_specs(tmp_path, 4))
    assert fake.terminated == ["job1"]


def test_descriptions_map_onto_engine_states():
    t0, t1 = 1_800_000_000_000, 1_800_000_060_500
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING"):
        assert job_from_description("j", {"status": status}).state is EngineState.QUEUED
    running = job_from_description("j", {"status": "RUNNING", "startedAt": t0})
    assert running.state is EngineState.RUNNING
    assert running.started == datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)
    failed = job_from_description("j", {
        "status": "FAILED", "statusReason": "Essential container in task exited",
        "startedAt": t0, "stoppedAt": t1,
        "attempts": [{"container": {"exitCode": 137, "reason": "OutOfMemoryError"}}]})
    assert failed.state is EngineState.FAILED and failed.exit_status == 137
    assert failed.reason == "Essential container in task exited; OutOfMemoryError; exit code 137"
    assert (failed.ended - failed.started).total_seconds() == 60.5
    done = job_from_description("j", {"status": "SUCCEEDED", "container": {"exitCode": 0}})
    assert done.state is EngineState.SUCCEEDED and done.exit_status == 0


def test_make_engine_builds_a_batch_engine(aws_emulator):
    engine = make_engine(Settings(engine=aws_emulator.settings))
    assert isinstance(engine, BatchEngine)
    assert engine.client.meta.endpoint_url == aws_emulator.endpoint
    assert engine.client.meta.region_name == "us-east-1"


def test_options_are_validated(aws_emulator):
    with pytest.raises(ValueError, match="attempts"):
        BatchEngine(aws_emulator.settings, client=object(), attempts=0)
    with pytest.raises(ValueError, match="max_array_size"):
        BatchEngine(aws_emulator.settings, client=object(), max_array_size=10_001)
