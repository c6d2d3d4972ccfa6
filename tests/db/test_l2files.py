"""L2 images: idempotent registration, new versions, time-range selection, the cone query."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from rapid.db import operations as ops
from rapid.db import schema
from rapid.db.records import unit_vector
from tests.db.dbfactory import FIELD, FIELD_CENTRE, T0, add_l2, l2record, later, md5


def test_add_l2file_is_idempotent_and_a_changed_file_is_a_new_version(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid = add_l2(conn, sca=7)
        expid = conn.execute(sa.select(schema.l2files.c.expid)
                             .where(schema.l2files.c.rid == rid)).scalar_one()
        again = ops.add_l2file(conn, l2record(expid=expid, dateobs=T0, sca=7))
        assert again == (rid, False)
        new_rid, added = ops.add_l2file(conn, l2record(expid=expid, dateobs=T0, sca=7,
                                                       checksum=md5("reprocessed")))
        assert added and new_rid != rid
        t = schema.l2files
        rows = conn.execute(sa.select(t.c.rid, t.c.version, t.c.vbest)
                            .where(t.c.expid == expid, t.c.sca == 7).order_by(t.c.version)).all()
        assert [tuple(r) for r in rows] == [(rid, 1, 0), (new_rid, 2, 1)]
        meta = conn.execute(sa.select(schema.l2filemeta)
                            .where(schema.l2filemeta.c.rid == new_rid)).one()
        assert meta.field == FIELD
        assert math.isclose(meta.x ** 2 + meta.y ** 2 + meta.z ** 2, 1.0)
        # Same checksum as the first version: still known, nothing added.
        assert ops.add_l2file(conn, l2record(expid=expid, dateobs=T0, sca=7)) == (rid, False)
        assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() == 2


def test_l2file_columns_round_trip(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid = add_l2(conn)
        row = conn.execute(sa.select(schema.l2files).where(schema.l2files.c.rid == rid)).one()
    assert row.sip == {"A_ORDER": 2.0, "A_2_0": 1.5e-7, "B_0_2": -2.0e-7}
    assert row.dateobs == T0 and row.dateobs.utcoffset() == timedelta(0)
    assert (row.naxis1, row.ctype1, row.a_order, row.status, row.infobits) == (
        4088, "RA---TAN-SIP", 2, 1, 0)


def test_numpy_scalars_are_accepted(engine: sa.Engine) -> None:
    # Values straight from FITS headers and numpy arrays must not trip the database driver.
    with engine.begin() as conn:
        add_l2(conn)
        rec = l2record(expid=1, dateobs=T0, sca=np.int16(11))
        rec = dataclasses.replace(rec, naxis1=np.int64(4088), crpix1=np.float32(2044.5),
                                  sip={"A_2_0": np.float64(1e-7)})
        rid, added = ops.add_l2file(conn, rec)
        row = conn.execute(sa.select(schema.l2files).where(schema.l2files.c.rid == rid)).one()
    assert added and (row.sca, row.naxis1, row.crpix1, row.sip) == (11, 4088, 2044.5,
                                                                    {"A_2_0": 1e-7})


def test_add_exposure_gets_or_creates_by_dateobs(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_l2(conn)
        kw = dict(mjdobs=62000.1, exptime=60.0, fid=2, field=FIELD, hp6=1, hp9=2)
        first = ops.add_exposure(conn, dateobs=later(5), **kw)
        assert ops.add_exposure(conn, dateobs=later(5), **kw) == first
        assert ops.add_exposure(conn, dateobs=later(6), **kw) != first
        with pytest.raises(ValueError, match="dateobs must be timezone-aware"):
            ops.add_exposure(conn, dateobs=later(7).replace(tzinfo=None), **kw)


def test_filter_lookups(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert ops.fid_of(conn, "W146") == 8
        assert ops.filter_name(conn, 2) == "H158"
        with pytest.raises(ValueError, match="unknown filter 'X999'"):
            ops.fid_of(conn, "X999")
        with pytest.raises(ValueError, match="fid: unknown filter id 9"):
            ops.filter_name(conn, 9)


def test_best_l2files_between_includes_bounds_orders_by_time_then_sca(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        r_late = add_l2(conn, dateobs=later(20), sca=2)
        r_b = add_l2(conn, dateobs=later(10), sca=9)
        r_a = add_l2(conn, dateobs=later(10), sca=4)
        add_l2(conn, dateobs=later(30), sca=1)  # outside
        bad = add_l2(conn, dateobs=later(15), sca=5)
        conn.execute(schema.l2files.update().where(schema.l2files.c.rid == bad).values(status=0))
        rows = ops.best_l2files_between(conn, later(10), later(20))
    assert [r.rid for r in rows] == [r_a, r_b, r_late]
    assert rows[0].dateobs == later(10)
    assert rows[0].hp9 == 78999 and rows[0].x is not None


def test_prior_l2files_for_tile_is_a_cone_ordered_nearest_first(engine: sa.Engine) -> None:
    ra0, dec0 = FIELD_CENTRE
    x0, y0, z0 = unit_vector(ra0, dec0)
    with engine.begin() as conn:
        # Offsets in declination (degrees) give a known ordering by distance; two images at
        # the same place are ordered by time.
        far = add_l2(conn, dateobs=later(1), sca=1, dec0=dec0 + 0.10)
        near_late = add_l2(conn, dateobs=later(3), sca=2, dec0=dec0 + 0.01)
        near_early = add_l2(conn, dateobs=later(2), sca=3, dec0=dec0 + 0.01)
        middle = add_l2(conn, dateobs=later(4), sca=4, dec0=dec0 + 0.05)
        add_l2(conn, dateobs=later(5), sca=5, dec0=dec0 + 0.50)  # outside the cone
        add_l2(conn, dateobs=later(6), sca=6, dec0=dec0)  # not before `before`
        add_l2(conn, dateobs=later(0.5), sca=7, fid=3)  # other filter
        min_dot = math.cos(math.radians(0.2))
        rows = ops.prior_l2files_for_tile(conn, fid=2, before=later(6), x0=x0, y0=y0, z0=z0,
                                          min_dot=min_dot)
        assert [r.rid for r in rows] == [near_early, near_late, middle, far]
        assert all(r.dot >= min_dot for r in rows)
        assert rows[0].dot == pytest.approx(math.cos(math.radians(0.01)), abs=1e-12)
        two = ops.prior_l2files_for_tile(conn, fid=2, before=later(6), x0=x0, y0=y0, z0=z0,
                                         min_dot=min_dot, limit=2)
        assert [r.rid for r in two] == [near_early, near_late]
        with pytest.raises(ValueError, match="unit vector"):
            ops.prior_l2files_for_tile(conn, fid=2, before=later(6), x0=1, y0=1, z0=0,
                                       min_dot=0.5)
