"""The bulk run on real infrastructure: S3 (a moto server on loopback), Dask, and AWS Batch (moto).

moto's Batch cannot run containers: with Docker off it marks every job SUCCEEDED at once without
running it. Two AWS Batch tests follow from that. Without compute, the operator's path alone:
launch (array job), poll until the engine says finished, and registration closing every job with
exit 71 "manifest missing". With compute (``batch_compute``, which runs each submitted container as
moto recorded it, ``rapid`` with the job's command and environment, right after the engine's submit
returns): the whole bulk run, as the Dask test runs it, with the store on the emulator's S3.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from rapid import exitcodes, store
from rapid.db import schema
from rapid.ingest.register import ingest_paths
from rapid.ops.context import OpsContext
from rapid.ops.launch_science import launch_science
from rapid.ops.register_science import register_science
from rapid.ops.run import run_range
from rapid.ops.synthetic import START, add_synthetic_images
from rapid.ops.wait import wait_for_jobs

from ..engines.batch_compute import batch_compute  # noqa: F401 - the fixture, shared
from ..engines.conftest import aws_emulator  # noqa: F401 - the fixture, shared
from .conftest import ops_settings


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[str]:
    """A bucket on a moto S3 server on 127.0.0.1; AWS variables point at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    mp = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
        mp.setenv(key, value)
    mp.delenv("AWS_PROFILE", raising=False)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="rapid-ops")
    yield "s3://rapid-ops"
    mp.undo()
    server.stop()


@pytest.mark.slow
def test_run_with_store_on_s3_and_dask_engine(small_survey, s3_bucket, tmp_path):
    base = ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'rapid.db'}")
    settings = replace(base, store=replace(base.store, url=f"{s3_bucket}/{tmp_path.name}"),
                       engine=replace(base.engine, kind="dask", max_workers=2))
    ctx = OpsContext(settings)
    assert len(ingest_paths(ctx.db, [small_survey / "images"]).added) == 12
    try:
        run = run_range(ctx, datetime(2028, 9, 1, tzinfo=timezone.utc),
                        datetime(2028, 12, 31, tzinfo=timezone.utc), "20281008")
        assert run.problems == {}
    finally:
        ctx.engine.close()
    j, d = schema.jobs, schema.diffimages
    with ctx.db.connect() as conn:
        science = conn.execute(sa.select(j).where(j.c.ppid == 15)).all()
        post = conn.execute(sa.select(j).where(j.c.ppid == 17)).all()
        diffs = conn.execute(sa.select(d)).all()
    assert sorted(x.exitcode for x in science) == [0] * 6 + [exitcodes.NO_REFERENCE] * 6
    assert all(x.engine == "dask" for x in science if x.exitcode == 0)
    assert sorted(x.exitcode for x in post) == [0] * 6
    assert len(diffs) == 6 and all(x.filename.startswith(f"{s3_bucket}/") for x in diffs)
    for x in diffs:  # the registered checksum is that of the stamped product on S3
        assert store.md5_bytes(store.read_bytes(x.filename)) == x.checksum
    for job in science:
        if job.exitcode == 0:
            assert job.manifest_uri.startswith("s3://") and store.exists(job.manifest_uri)
    ctx.close()


@pytest.mark.slow
def test_run_with_store_on_s3_and_awsbatch_engine(small_survey, aws_emulator,  # noqa: F811
                                                  batch_compute, tmp_path):  # noqa: F811
    base = ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'rapid.db'}")
    bucket = f"s3://{aws_emulator.bucket}"
    settings = replace(base, engine=aws_emulator.settings,
                       store=replace(base.store, url=f"{bucket}/{tmp_path.name}"))
    ctx = OpsContext(settings)
    assert len(ingest_paths(ctx.db, [small_survey / "images"]).added) == 12
    run = run_range(ctx, datetime(2028, 9, 1, tzinfo=timezone.utc),
                    datetime(2028, 12, 31, tzinfo=timezone.utc), "20281008")
    assert run.problems == {}
    # Every container ran what moto recorded and exited 0 (the job's own code is in its manifest).
    failed = [(r.job_id, r.exit_code, r.output) for r in batch_compute.runs if r.exit_code != 0]
    assert failed == []
    j, d = schema.jobs, schema.diffimages
    with ctx.db.connect() as conn:
        science = conn.execute(sa.select(j).where(j.c.ppid == 15)).all()
        post = conn.execute(sa.select(j).where(j.c.ppid == 17)).all()
        diffs = conn.execute(sa.select(d)).all()
    # One container per submitted job: the 6 science jobs without a reference close at launch.
    submitted = sorted(x.engine_job_id for x in science + post if x.engine_job_id)
    assert len(submitted) == 12
    assert sorted(r.job_id for r in batch_compute.runs) == submitted
    assert sorted(x.exitcode for x in science) == [0] * 6 + [exitcodes.NO_REFERENCE] * 6
    assert all(x.engine == "awsbatch" and x.engine_job_id for x in science if x.exitcode == 0)
    assert sorted(x.exitcode for x in post) == [0] * 6
    assert all(x.engine == "awsbatch" and x.engine_job_id for x in post)
    assert len(diffs) == 6 and all(x.filename.startswith(f"{bucket}/") for x in diffs)
    for x in diffs:  # the registered checksum is that of the stamped product on S3
        assert store.md5_bytes(store.read_bytes(x.filename)) == x.checksum
    for job in science:
        if job.exitcode == 0:
            assert job.manifest_uri.startswith("s3://") and store.exists(job.manifest_uri)
    ctx.close()


def test_awsbatch_launch_poll_register_closes_jobs_without_manifest(aws_emulator,  # noqa: F811
                                                                    tmp_path):
    base = ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'rapid.db'}")
    settings = replace(base, engine=aws_emulator.settings,
                       store=replace(base.store,
                                     url=f"s3://{aws_emulator.bucket}/{tmp_path.name}"))
    ctx = OpsContext(settings)
    add_synthetic_images(ctx.db, 5, nfields=1)
    procdate = "20280907"
    launched = launch_science(ctx, START, START + timedelta(days=1), procdate)
    assert len(launched.launched) == 5
    wait_for_jobs(ctx, procdate, 15)
    report = register_science(ctx, procdate)
    assert sorted(report.closed.values()) == [exitcodes.BAD_MANIFEST] * 5
    with ctx.db.connect() as conn:
        jobs = conn.execute(sa.select(schema.jobs)).all()
    assert all(job.engine == "awsbatch" and job.engine_job_id for job in jobs)
    assert all(job.message.startswith("manifest missing: s3://") for job in jobs)
    ctx.close()
