"""The whole bulk run on a small simulated survey: the database afterwards, and idempotence."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from astropy.io import fits

from rapid import exitcodes, store
from rapid.db import schema
from rapid.ingest.register import ingest_paths
from rapid.io.fits_frame import read_psfs
from rapid.jobs.products import read_table
from rapid.ops.context import OpsContext
from rapid.ops.postproc import register_postproc
from rapid.ops.register_science import register_science
from rapid.ops.run import run_range

from .conftest import ops_settings

PROCDATE = "20281008"
START = datetime(2028, 9, 1, tzinfo=timezone.utc)
END = datetime(2028, 12, 31, tzinfo=timezone.utc)


def _count(conn, table, *where) -> int:  # noqa: ANN001
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()


@pytest.mark.slow
def test_run_processes_every_image_and_registers_once(small_survey, db_url, tmp_path):
    ctx = OpsContext(ops_settings(tmp_path / "work", db_url))
    report = ingest_paths(ctx.db, [small_survey / "images"])
    assert len(report.added) == 12 and not report.errors

    run = run_range(ctx, START, END, PROCDATE)
    assert run.problems == {}

    j, d, r = schema.jobs, schema.diffimages, schema.refimages
    with ctx.db.connect() as conn:
        science = conn.execute(sa.select(j).where(j.c.ppid == 15)).all()
        # one science job per image, every one closed with an exit code
        assert len(science) == 12
        assert all(job.state == "done" and job.exitcode is not None for job in science)
        assert all(job.procdate.strftime("%Y%m%d") == PROCDATE for job in science)
        codes = sorted(job.exitcode for job in science)
        # per field: the first 3 epochs have fewer than 3 prior images, the other 3 are differenced
        assert codes == [0] * 6 + [exitcodes.NO_REFERENCE] * 6
        normal = [job for job in science if job.exitcode == 0]
        assert all(job.elapsed > 0 and job.started <= job.ended for job in normal)

        # one reference per field, built from the 3 prior images, with its input rows
        refs = conn.execute(sa.select(r)).all()
        assert len(refs) == 2 and all(ref.vbest == 1 and ref.status == 1 for ref in refs)
        for ref in refs:
            assert _count(conn, schema.refimimages, schema.refimimages.c.rfid == ref.rfid) == 3
            assert _count(conn, schema.refimmeta, schema.refimmeta.c.rfid == ref.rfid) == 1
            assert _count(conn, schema.refimcatalogs, schema.refimcatalogs.c.rfid == ref.rfid) == 1

        # one difference image per processed image, against its field's reference
        diffs = conn.execute(sa.select(d)).all()
        assert sorted(x.rid for x in diffs) == sorted(job.rid for job in normal)
        assert all(x.rfid in {ref.rfid for ref in refs} for x in diffs)

        # post-processing: one job per normal science job, all closed normally, headers stamped
        post = conn.execute(sa.select(j).where(j.c.ppid == 17)).all()
        assert sorted(p.parent_jid for p in post) == sorted(job.jid for job in normal)
        assert all(p.state == "done" and p.exitcode == 0 for p in post)
        for x in diffs:
            data = store.read_bytes(x.filename)
            assert store.md5_bytes(data) == x.checksum  # the registered checksum is the stamped one
            with fits.open(store.local_copy(x.filename).__enter__()) as hdul:
                hdr = hdul[0].header
                assert (hdr["PID"], hdr["RID"], hdr["RFID"]) == (x.pid, x.rid, x.rfid)
            # the difference PSF keeps the science PSF's fine sampling, matching its stamp
            psf, fine = read_psfs(io.BytesIO(store.read_bytes(
                x.filename.rsplit("/", 1)[0] + "/diffpsf.fits")))
            assert fine is not None and fine.factor == 4 and psf.shape[0] % 2 == 1
        for ref in refs:
            with store.local_copy(ref.filename) as path, fits.open(path) as hdul:
                assert hdul[0].header["RFID"] == ref.rfid
        # candidate catalogs exist and are registered with their counts
        meta = conn.execute(sa.select(schema.diffimmeta)).all()
        for m in meta:
            table = read_table(str(store.local_copy(m.catfilename).__enter__()))
            assert table.num_rows == m.ncandidates
            assert {"x", "y", "ra", "dec", "flux", "flux_err", "snr", "sign"} <= set(
                table.column_names)
        totals = {name: _count(conn, t) for name, t in schema.metadata.tables.items()}

    # registering again adds nothing
    again = register_science(ctx, PROCDATE)
    again_post = register_postproc(ctx, PROCDATE)
    assert again.closed == {} and again_post.closed == {}
    rerun = run_range(ctx, START, END, PROCDATE)
    assert rerun.science_launched == 0 and rerun.postproc_launched == 0
    with ctx.db.connect() as conn:
        assert {name: _count(conn, t) for name, t in schema.metadata.tables.items()} == totals
    ctx.close()
