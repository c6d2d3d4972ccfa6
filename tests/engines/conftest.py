"""Shared fixtures of the engine tests: an AWS emulator (moto) on 127.0.0.1 with a Batch queue.

moto runs Batch jobs without Docker once its ``batch.use_docker`` option is off (set through the
server's ``/moto-api/config`` endpoint); every job then succeeds at once, or fails when
``MOTO_SIMPLE_BATCH_FAIL_AFTER`` is set in the process that runs the server (this one).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from rapid.config import EngineSettings


@dataclass(frozen=True)
class AwsEmulator:
    endpoint: str
    region: str
    settings: EngineSettings  # engine settings naming the emulator's Batch queue and definition
    bucket: str  # an S3 bucket on the emulator


def _moto_config(endpoint: str, config: dict | None = None) -> dict:
    """moto's user configuration; with ``config``, set it first."""
    request = urllib.request.Request(f"{endpoint}/moto-api/config")
    if config is not None:
        request = urllib.request.Request(
            f"{endpoint}/moto-api/config", data=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
    # No proxy: the emulator is on loopback whatever the environment says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


def _moto_reset(endpoint: str) -> None:
    """Forget every resource of the emulator (all its services)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        response.read()


@pytest.fixture(scope="module")
def aws_emulator() -> Iterator[AwsEmulator]:
    """A moto server on 127.0.0.1 with a Batch compute environment, job queue and job definition."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    region = "us-east-1"
    mp = pytest.MonkeyPatch()
    # All AWS traffic of the module goes to the emulator with dummy credentials.
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": region,
                       "AWS_ENDPOINT_URL": endpoint}.items():
        mp.setenv(key, value)
    mp.delenv("AWS_PROFILE", raising=False)
    # moto keeps its accounts' resources per process, whichever server made them: start clean,
    # so that a second module using this fixture can create the same queue and role again.
    _moto_reset(endpoint)
    previous = _moto_config(endpoint)
    now = _moto_config(endpoint, {"batch": {"use_docker": False}})
    assert now["batch"] == {"use_docker": False}
    try:
        iam = boto3.client("iam", region_name=region, endpoint_url=endpoint)
        role = iam.create_role(
            RoleName="rapid-batch-service",
            AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"Service": "batch.amazonaws.com"}}]}),
        )["Role"]["Arn"]
        batch = boto3.client("batch", region_name=region, endpoint_url=endpoint)
        env_arn = batch.create_compute_environment(
            computeEnvironmentName="rapid-ce", type="UNMANAGED", state="ENABLED",
            serviceRole=role)["computeEnvironmentArn"]
        batch.create_job_queue(jobQueueName="rapid-jobs", state="ENABLED", priority=1,
                               computeEnvironmentOrder=[{"order": 1,
                                                         "computeEnvironment": env_arn}])
        batch.register_job_definition(
            jobDefinitionName="rapid-job", type="container",
            containerProperties={"image": "rapid:test", "command": ["job", "run"],
                                 "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                          {"type": "MEMORY", "value": "512"}]})
        boto3.client("s3", region_name=region, endpoint_url=endpoint).create_bucket(
            Bucket="rapid-engine-test")
        settings = EngineSettings(kind="awsbatch", batch_job_queue="rapid-jobs",
                                  batch_job_definition="rapid-job", batch_region=region,
                                  batch_endpoint_url=endpoint)
        yield AwsEmulator(endpoint, region, settings, "rapid-engine-test")
    finally:
        _moto_config(endpoint, {"batch": previous.get("batch", {"use_docker": True})})
        mp.undo()
        server.stop()
