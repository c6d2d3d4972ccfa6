"""Ingest registers L2 FITS images idempotently and reports bad files one line each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io import fits
from astropy.wcs import WCS

from rapid.db import schema
from rapid.db.connect import open_database
from rapid.ingest.l2fits import L2Error, read_l2_header
from rapid.ingest.register import ingest_paths
from rapid.sky import field_of


def write_l2(path: Path, *, ra=11.1, dec=-43.8, dateobs="2028-09-07T01:00:00.000",
             filt="F158", sca=3, size=64, value=1.0, drop=()) -> Path:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    wcs.wcs.cd = [[-0.11 / 3600, 0], [0, 0.11 / 3600]]
    header = wcs.to_header()
    for key, val in {"DATE-OBS": dateobs, "EXPTIME": 139.8, "FILTER": filt, "SCA": sca,
                     "ZPTMAG": 26.3}.items():
        if key not in drop:
            header[key] = val
    if "WCS" in drop:
        for key in list(header):
            if key.startswith(("CTYPE", "CRVAL", "CRPIX", "CD", "PC", "CDELT", "CUNIT")):
                del header[key]
    data = np.full((size, size), value, dtype=np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header, name="SCI")]).writeto(path)
    return path


def test_header_facts(tmp_path):
    hdr = read_l2_header(write_l2(tmp_path / "a.fits"))
    assert hdr.filter == "H158" and hdr.sca == 3 and hdr.exptime == pytest.approx(139.8)
    assert hdr.dateobs.tzinfo is not None and hdr.dateobs.hour == 1
    assert hdr.ra0 == pytest.approx(11.1, abs=1e-6) and hdr.dec0 == pytest.approx(-43.8, abs=1e-6)
    assert hdr.mjdobs == pytest.approx(62021.041666, abs=1e-5)
    # corners are half the image (32 px * 0.11") from the centre along each axis
    assert max(abs(d + 43.8) for d in hdr.dec_corners) == pytest.approx(31.5 * 0.11 / 3600, rel=1e-3)


@pytest.mark.parametrize("drop, message", [
    (("DATE-OBS",), "missing DATE-OBS"),  # and no MJD-OBS
    (("FILTER",), "missing FILTER"),
    (("WCS",), "WCS"),
    (("EXPTIME",), "missing EXPTIME"),
])
def test_missing_keywords_are_named(tmp_path, drop, message):
    with pytest.raises(L2Error, match=message):
        read_l2_header(write_l2(tmp_path / "bad.fits", drop=drop))


def test_time_from_mjd_obs_or_from_date_and_time_obs(tmp_path):
    path = write_l2(tmp_path / "mjd.fits", drop=("DATE-OBS",))
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].header["MJD-OBS"] = 62021.5
    hdr = read_l2_header(path)
    assert hdr.mjdobs == 62021.5
    assert (hdr.dateobs.isoformat(), hdr.dateobs.utcoffset().total_seconds()) == \
        ("2028-09-07T12:00:00+00:00", 0)
    path = write_l2(tmp_path / "split.fits", dateobs="2028-09-07")
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].header["TIME-OBS"] = "06:30:00"
    hdr = read_l2_header(path)
    assert hdr.dateobs.hour == 6 and hdr.dateobs.minute == 30
    assert hdr.mjdobs == pytest.approx(62021.270833, abs=1e-6)


def test_image_in_the_primary_hdu_beside_other_extensions(tmp_path):
    """The science image is the HDU the science job reads: here the primary, with its WCS,
    rather than the 2-D mask extension after it; a tile-compressed one is found too."""
    with fits.open(write_l2(tmp_path / "ext.fits", size=48)) as hdul:
        data, header = hdul["SCI"].data.copy(), hdul["SCI"].header.copy()
    primary = fits.PrimaryHDU(data, header)
    mask = fits.ImageHDU(np.zeros((16, 16), dtype=np.int16), name="MASK")
    fits.HDUList([primary, mask]).writeto(tmp_path / "primary.fits")
    hdr = read_l2_header(tmp_path / "primary.fits")
    assert (hdr.naxis1, hdr.naxis2) == (48, 48)
    assert hdr.ra0 == pytest.approx(11.1, abs=1e-6)
    packed = fits.CompImageHDU(data, header, name="IMAGE")
    fits.HDUList([fits.PrimaryHDU(), mask, packed]).writeto(tmp_path / "packed.fits")
    assert read_l2_header(tmp_path / "packed.fits").naxis1 == 48


def test_footprint_of_an_image_in_another_equinox_is_in_icrs(tmp_path):
    """Sky tiles are ICRS: a header in FK5 at equinox 1950 has its footprint precessed."""
    from astropy import units as u
    from astropy.coordinates import FK5, SkyCoord

    path = write_l2(tmp_path / "b1950.fits")
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].header.update(RADESYS="FK5", EQUINOX=1950.0)
    hdr = read_l2_header(path)
    centre = SkyCoord(11.1 * u.deg, -43.8 * u.deg, frame=FK5(equinox="J1950")).icrs
    assert hdr.ra0 == pytest.approx(centre.ra.deg, abs=1e-6)
    assert hdr.dec0 == pytest.approx(centre.dec.deg, abs=1e-6)
    assert abs(hdr.ra0 - 11.1) > 0.5  # half a century of precession
    assert hdr.wcs["crval1"] == pytest.approx(11.1)  # the image's own WCS is recorded as it is


def test_corrupt_file_is_not_readable(tmp_path):
    path = tmp_path / "corrupt.fits"
    path.write_bytes(b"SIMPLE  =                    T" + b"\x00garbage" * 50)
    with pytest.raises(L2Error, match="not a readable FITS"):
        read_l2_header(path)


def test_ingest_is_idempotent_and_versions_changed_files(db_url, tmp_path):
    engine = open_database(db_url)
    (tmp_path / "img").mkdir()
    img = write_l2(tmp_path / "img" / "a.fits")
    write_l2(tmp_path / "img" / "b.fits", dateobs="2028-09-12T01:00:00", ra=11.2)
    first = ingest_paths(engine, [tmp_path / "img"])
    assert len(first.added) == 2 and not first.errors
    again = ingest_paths(engine, [tmp_path / "img"])
    assert len(again.added) == 0 and len(again.unchanged) == 2
    img.unlink()
    write_l2(img, value=2.0)  # same exposure and SCA, new bytes: a new version
    third = ingest_paths(engine, [img])
    assert third.added == [str(img)]
    with engine.connect() as conn:
        l2 = schema.l2files
        rows = conn.execute(sa.select(l2.c.version, l2.c.vbest).where(l2.c.sca == 3)
                            .order_by(l2.c.rid)).all()
        assert [tuple(r) for r in rows] == [(1, 0), (1, 1), (2, 1)]
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.exposures)).scalar() == 2
        meta = conn.execute(sa.select(schema.l2filemeta)).first()
        assert meta.field == int(field_of(meta.ra0, meta.dec0))
        assert meta.hp9 // 64 == meta.hp6
    engine.dispose()


def test_bad_file_does_not_stop_the_others(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    good = write_l2(tmp_path / "good.fits")
    bad = write_l2(tmp_path / "nodate.fits", drop=("DATE-OBS",), dateobs="x")
    notfits = tmp_path / "notes.fits"
    notfits.write_text("hello")
    seen = []
    report = ingest_paths(engine, [bad, notfits, good], on_file=lambda p, o: seen.append(o))
    assert report.added == [str(good)]
    assert [e[0] for e in report.errors] == [str(bad), str(notfits)]
    assert "missing DATE-OBS" in report.errors[0][1]
    assert len(seen) == 3
