"""RAPID versioning: version max+1, exactly one best, a locked best is never demoted."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rapid.db import operations as ops
from rapid.db import schema
from rapid.db.versioning import VERSIONED, insert_version, set_best
from tests.db.dbfactory import FIELD, add_l2, md5, refrecord


def _versions(conn: sa.Connection, fid: int = 2, sca: int = 3) -> list[tuple[int, int]]:
    p = schema.psfs
    return [tuple(r) for r in conn.execute(
        sa.select(p.c.version, p.c.vbest).where(p.c.fid == fid, p.c.sca == sca)
        .order_by(p.c.version))]


def _add(conn: sa.Connection, n: int, fid: int = 2, sca: int = 3) -> list[int]:
    return [ops.add_psf(conn, fid=fid, sca=sca, filename=f"s3://b/psf{fid}_{sca}_{i}.fits",
                        checksum=md5(f"psf{fid}{sca}{i}")) for i in range(n)]


def test_new_versions_count_up_and_the_newest_is_the_only_best(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _add(conn, 3)
        _add(conn, 1, sca=4)  # another natural key keeps its own count
        assert _versions(conn) == [(1, 0), (2, 0), (3, 1)]
        assert _versions(conn, sca=4) == [(1, 1)]


def test_locked_best_is_never_demoted(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        first, second = _add(conn, 2)
        set_best(conn, "psfs", first, lock=True)
        assert _versions(conn) == [(1, 2), (2, 0)]
        _add(conn, 2)
        assert _versions(conn) == [(1, 2), (2, 0), (3, 0), (4, 0)]
        # The operator can still move the best explicitly, which unlocks the old one.
        set_best(conn, "psfs", second)
        assert _versions(conn) == [(1, 0), (2, 1), (3, 0), (4, 0)]
        _add(conn, 1)
        assert _versions(conn) == [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1)]


def test_insert_version_is_shared_and_validates(engine: sa.Engine) -> None:
    assert set(VERSIONED) == {"l2files", "refimages", "diffimages", "psfs"}
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="kind must be one of"):
            insert_version(conn, "jobs", {})
        with pytest.raises(ValueError, match="missing \\['sca'\\]"):
            insert_version(conn, "psfs", {"fid": 1, "filename": "x", "checksum": md5("x")})
        with pytest.raises(ValueError, match="must not set version"):
            insert_version(conn, "psfs", {"fid": 1, "sca": 1, "version": 7})
        with pytest.raises(ValueError, match="pk: no psfs row"):
            set_best(conn, "psfs", 999)
        new = insert_version(conn, "psfs", {"fid": 1, "sca": 1, "filename": "s3://b/p.fits",
                                            "checksum": md5("p")})
        assert (new.version, new.vbest) == (1, 1)


def test_refimage_versions_follow_the_same_rules(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_l2(conn)  # creates the field
        r1 = ops.add_refimage(conn, refrecord(tag="1"))
        r2 = ops.add_refimage(conn, refrecord(tag="2"))
        assert ops.best_refimage(conn, FIELD, 2).rfid == r2
        set_best(conn, "refimages", r1, lock=True)
        r3 = ops.add_refimage(conn, refrecord(tag="3"))
        best = ops.best_refimage(conn, FIELD, 2)
        assert (best.rfid, best.version, best.vbest) == (r1, 1, 2)
        r = schema.refimages
        assert conn.execute(sa.select(r.c.version, r.c.vbest).where(r.c.rfid == r3)).one() == (3, 0)
        assert ops.best_refimage(conn, FIELD, 3) is None
