"""Registering science results: products and job close in one step, idempotent, all or nothing."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rapid.db import lookups
from rapid.db import operations as ops
from rapid.db import schema
from rapid.db.records import DiffImageMeta, RefImageCatalog, RefImageMeta
from tests.db.dbfactory import FIELD, add_l2, diffrecord, later, md5, refrecord

DAY = date(2028, 9, 7)


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _science_job(conn: sa.Connection, sca: int = 1) -> tuple[int, int, list[int]]:
    priors = [add_l2(conn, dateobs=later(-60 * (i + 1)), sca=sca) for i in range(3)]
    rid = add_l2(conn, sca=sca)
    jid = ops.open_job(conn, ppid=15, procdate=DAY, rid=rid)
    ops.mark_submitted(conn, jid, engine="local", engine_job_id=f"e{jid}", spec_uri="s3://spec")
    return rid, jid, priors


def test_register_adds_reference_and_difference_and_closes_the_job(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid, jid, priors = _science_job(conn)
        ref = dataclasses.replace(
            refrecord(input_rids=tuple(priors)),
            meta=RefImageMeta(nframes=3, fwhmmed=1.4),
            catalogs=(RefImageCatalog(cattype=1, filename="s3://b/ref.cat", checksum=md5("c1")),
                      RefImageCatalog(cattype=2, filename="s3://b/ref.psfcat",
                                      checksum=md5("c2"))))
        diff = dataclasses.replace(diffrecord(conn, rid),
                                   meta=DiffImageMeta(ncandidates=812, npositive=500,
                                                      nnegative=312, nmatched=140))
        rfid, pid = ops.register_science_result(
            conn, jid, exitcode=0, started=later(1), ended=later(9), message=None,
            manifest_uri="s3://m.json", refimage=ref, diffimage=diff)
    with engine.connect() as conn:
        job = ops.get_job(conn, jid)
        assert (job.state, job.exitcode, job.status, job.elapsed) == ("done", 0, 1, 480.0)
        d = ops.diffimage_of_job(conn, jid)
        assert (d.pid, d.rfid, d.jid, d.version, d.vbest, d.ncandidates) == (pid, rfid, jid, 1, 1,
                                                                            812)
        r = ops.refimage_by_rfid(conn, rfid)
        assert (r.jid, r.field, r.fid, r.vbest) == (jid, FIELD, 2, 1)
        used = conn.execute(sa.select(schema.refimimages.c.rid)
                            .where(schema.refimimages.c.rfid == rfid)
                            .order_by(schema.refimimages.c.rid)).scalars().all()
        assert used == sorted(priors)
        cats = conn.execute(sa.select(schema.refimcatalogs.c.cattype)
                            .where(schema.refimcatalogs.c.rfid == rfid)
                            .order_by(schema.refimcatalogs.c.cattype)).scalars().all()
        assert cats == [1, 2]
        meta = conn.execute(sa.select(schema.refimmeta)
                            .where(schema.refimmeta.c.rfid == rfid)).one()
        assert (meta.nframes, meta.fwhmmed) == (3, 1.4)
        assert ops.best_refimage(conn, FIELD, 2).rfid == rfid
        summary = ops.counts(conn, DAY)
        assert summary == {"jobs": [{"ppid": 15, "state": "done", "exitcode": 0, "count": 1}],
                           "refimages": 1, "diffimages": 1, "ncandidates": 812}
        assert ops.counts(conn, DAY.replace(day=8))["diffimages"] == 0
        assert ops.counts(conn)["ncandidates"] == 812
        assert lookups.job_summary(conn, DAY)["candidates"] == 812
        listed = lookups.diffimages_with_catalogs(conn, DAY)
        assert [(row.pid, row.ncandidates) for row in listed] == [(pid, 812)]
        assert listed[0].l2filename.startswith("file:///data/L2/")


def test_register_twice_adds_nothing_and_returns_the_first_products(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid, jid, _ = _science_job(conn)
        first = ops.register_science_result(conn, jid, exitcode=0, started=later(1),
                                            ended=later(2), refimage=refrecord(),
                                            diffimage=diffrecord(conn, rid))
        again = ops.register_science_result(conn, jid, exitcode=0, started=later(1),
                                            ended=later(2), refimage=refrecord(tag="b"),
                                            diffimage=diffrecord(conn, rid, tag="b"))
        assert again == first
        assert (_count(conn, schema.refimages), _count(conn, schema.diffimages)) == (1, 1)
        with pytest.raises(ValueError, match="already done"):
            ops.register_science_result(conn, jid, exitcode=64)


def test_a_failure_midway_adds_nothing_and_leaves_the_job_open(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid, jid, priors = _science_job(conn)
        # The reference is fine, the difference image points at an L2 image that does not exist.
        broken = dataclasses.replace(diffrecord(conn, rid), rid=rid + 1000)
    with engine.begin() as conn:
        with pytest.raises(IntegrityError):
            ops.register_science_result(conn, jid, exitcode=0, started=later(1), ended=later(2),
                                        refimage=refrecord(input_rids=tuple(priors)),
                                        diffimage=broken)
        # The caller's transaction is still usable after the savepoint rolled back.
        assert _count(conn, schema.refimages) == 0
        assert ops.get_job(conn, jid).state == "submitted"
    with engine.connect() as conn:
        for table in (schema.refimages, schema.refimmeta, schema.refimimages, schema.diffimages,
                      schema.diffimmeta):
            assert _count(conn, table) == 0, table.name
        job = ops.get_job(conn, jid)
        assert (job.state, job.exitcode, job.ended) == ("submitted", None, None)


def test_no_reference_result_closes_the_job_without_products(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _, jid, _ = _science_job(conn)
        assert ops.register_science_result(conn, jid, exitcode=33,
                                           message="no reference possible") == (None, None)
        job = ops.get_job(conn, jid)
        assert (job.state, job.status, job.message) == ("done", 0, "no reference possible")


def test_existing_reference_is_kept_on_the_difference_image(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid, jid, _ = _science_job(conn)
        rfid = ops.add_refimage(conn, refrecord())
        _, pid = ops.register_science_result(conn, jid, exitcode=0,
                                             diffimage=diffrecord(conn, rid, rfid=rfid))
        assert ops.diffimage_of_job(conn, jid).rfid == rfid
        assert ops.products_of_job(conn, jid) == (None, pid)


def test_set_product_checksum(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid, jid, _ = _science_job(conn)
        rfid, pid = ops.register_science_result(conn, jid, exitcode=0, refimage=refrecord(),
                                                diffimage=dataclasses.replace(
                                                    diffrecord(conn, rid), status=0))
        assert ops.product_key_by_filename(conn, "diffimages", "s3://b/diff_a.fits") == pid
        assert ops.product_key_by_filename(conn, "refimages", "s3://b/nowhere.fits") is None
        ops.set_product_checksum(conn, "diffimages", pid, checksum=md5("stamped"),
                                 filename="s3://b/diff_a.fits.fz")
        ops.set_product_checksum(conn, "refimages", rfid, checksum=md5("ref-stamped"), status=1)
        d = ops.diffimage_of_job(conn, jid)
        assert (d.checksum, d.status, d.filename) == (md5("stamped"), 1, "s3://b/diff_a.fits.fz")
        assert ops.refimage_by_rfid(conn, rfid).checksum == md5("ref-stamped")
        with pytest.raises(ValueError, match="table must be one of"):
            ops.set_product_checksum(conn, "jobs", jid, checksum=md5("x"))
        with pytest.raises(ValueError, match="key: no diffimages row"):
            ops.set_product_checksum(conn, "diffimages", 9999, checksum=md5("x"))
        with pytest.raises(ValueError, match="checksum must be an md5"):
            ops.set_product_checksum(conn, "diffimages", pid, checksum="abc")
