"""Record factories of the operations-database tests (small, valid, deterministic)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from rapid.db import operations as ops
from rapid.db.records import DiffImageRecord, Footprint, L2FileRecord, RefImageRecord

T0 = datetime(2028, 9, 7, 3, 0, tzinfo=timezone.utc)
FIELD = 5321355
FIELD_CENTRE = (11.067073, -43.80449)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _box(ra0: float, dec0: float, half: float = 0.06) -> tuple[tuple, tuple]:
    return ((ra0 - half, ra0 + half, ra0 + half, ra0 - half),
            (dec0 - half, dec0 - half, dec0 + half, dec0 + half))


def l2record(*, expid: int, dateobs: datetime, sca: int = 1, fid: int = 2, field: int = FIELD,
             ra0: float = FIELD_CENTRE[0], dec0: float = FIELD_CENTRE[1],
             checksum: str | None = None) -> L2FileRecord:
    ras, decs = _box(ra0, dec0)
    meta = Footprint.from_corners(ra0=ra0, dec0=dec0, ra_corners=ras, dec_corners=decs,
                                  hp6=1234, hp9=78999)
    return L2FileRecord(
        expid=expid, sca=sca, fid=fid, field=field,
        filename=f"file:///data/L2/{expid}_{sca}.fits",
        checksum=checksum or md5(f"{expid}-{sca}"), dateobs=dateobs, mjdobs=62000.0,
        exptime=139.8, naxis1=4088, naxis2=4088, crval1=ra0, crval2=dec0, crpix1=2044.5,
        crpix2=2044.5, cd1_1=-3.05e-5, cd1_2=0.0, cd2_1=0.0, cd2_2=3.05e-5,
        ctype1="RA---TAN-SIP", ctype2="DEC--TAN-SIP", meta=meta, a_order=2, b_order=2,
        sip={"A_ORDER": 2, "A_2_0": 1.5e-7, "B_0_2": -2.0e-7}, zptmag=26.3)


def add_l2(conn: sa.Connection, *, dateobs: datetime = T0, sca: int = 1, fid: int = 2,
           field: int = FIELD, ra0: float = FIELD_CENTRE[0], dec0: float = FIELD_CENTRE[1],
           checksum: str | None = None) -> int:
    """Register one L2 image, with its field and exposure; returns the rid."""
    ras, decs = _box(ra0, dec0, 0.044)
    ops.ensure_field(conn, field=field, ra0=ra0, dec0=dec0, ra_corners=ras, dec_corners=decs,
                     hp6=1234, hp9=78999)
    expid = ops.add_exposure(conn, dateobs=dateobs, mjdobs=62000.0, exptime=139.8, fid=fid,
                             field=field, hp6=1234, hp9=78999)
    rid, _ = ops.add_l2file(conn, l2record(expid=expid, dateobs=dateobs, sca=sca, fid=fid,
                                           field=field, ra0=ra0, dec0=dec0, checksum=checksum))
    return rid


def refrecord(*, field: int = FIELD, fid: int = 2, input_rids: tuple[int, ...] = (),
              tag: str = "a") -> RefImageRecord:
    return RefImageRecord(field=field, fid=fid, filename=f"s3://b/ref_{tag}.fits",
                          checksum=md5(f"ref-{tag}"), covfile=f"s3://b/ref_{tag}_cov.fits",
                          uncfile=f"s3://b/ref_{tag}_unc.fits", input_rids=input_rids)


def diffrecord(conn: sa.Connection, rid: int, *, rfid: int | None = None,
               tag: str = "a") -> DiffImageRecord:
    row = conn.execute(sa.text("SELECT expid, sca, fid, field, mjdobs FROM l2files WHERE rid = :r"),
                       {"r": rid}).one()
    ras, decs = _box(FIELD_CENTRE[0], FIELD_CENTRE[1])
    return DiffImageRecord(rid=rid, expid=row.expid, sca=row.sca, fid=row.fid, field=row.field,
                           mjdobs=row.mjdobs, ra0=FIELD_CENTRE[0], dec0=FIELD_CENTRE[1],
                           ra_corners=ras, dec_corners=decs, filename=f"s3://b/diff_{tag}.fits",
                           checksum=md5(f"diff-{tag}"), rfid=rfid)


def later(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)
