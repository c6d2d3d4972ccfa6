"""`rapid ingest` registers Roman L2 ASDF files beside FITS ones, with the same rows, and names
what is wrong with a bad ASDF file on one line."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone

import asdf
import numpy as np
import pytest
import sqlalchemy as sa

from rapid.db import schema
from rapid.db.connect import open_database
from rapid.ingest.filters import fid_of
from rapid.ingest.l2asdf import SIP_ERROR_KEY, read_l2_asdf_header
from rapid.ingest.l2fits import L2Error
from rapid.ingest.register import find_l2_files, ingest_paths
from rapid.sky import field_of
from tests.ingest.test_ingest import write_l2


def test_header_facts(roman_survey):
    hdr = read_l2_asdf_header(roman_survey.paths[3])
    assert hdr.filter == "H158" and hdr.sca == 1
    assert hdr.dateobs == datetime(2026, 1, 16, 3, 0, tzinfo=timezone.utc)
    assert hdr.mjdobs == pytest.approx(61056.125)
    assert hdr.exptime == pytest.approx(139.1487)
    assert (hdr.naxis1, hdr.naxis2) == (200, 200)
    assert hdr.wcs["ctype1"].startswith("RA---TAN") and hdr.wcs["ctype2"].startswith("DEC--TAN")
    assert 0 <= hdr.sip[SIP_ERROR_KEY] < 0.01
    assert hdr.zptmag == pytest.approx(25.57, abs=0.01)
    # The centre is the GWCS position of pixel (99.5, 99.5).
    ra, dec = roman_survey.cutout(99.5, 99.5)
    assert hdr.ra0 == pytest.approx(ra, abs=1e-9) and hdr.dec0 == pytest.approx(dec, abs=1e-9)
    # 200 pixels of 0.11": corners lie 141 pixels apart on the diagonal.
    diag = np.hypot((hdr.ra_corners[0] - hdr.ra_corners[2]) * np.cos(np.radians(dec)),
                    hdr.dec_corners[0] - hdr.dec_corners[2]) * 3600 / 0.11
    assert diag == pytest.approx(199 * np.sqrt(2), rel=0.02)


def test_ingest_registers_asdf_and_fits_alike(roman_survey, tmp_path):
    folder = tmp_path / "l2"
    folder.mkdir()
    for path in roman_survey.paths:
        shutil.copy(path, folder / path.name)
    write_l2(folder / "other.fits", dateobs="2026-02-01T00:00:00")
    assert sorted(p.suffix for p in find_l2_files([folder])) == [".asdf"] * 4 + [".fits"]
    engine = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    report = ingest_paths(engine, [folder])
    assert len(report.added) == 5 and not report.errors
    assert len(ingest_paths(engine, [folder]).unchanged) == 5  # idempotent
    with engine.connect() as conn:
        l2 = schema.l2files
        rows = conn.execute(sa.select(l2).where(l2.c.filename.like("%.asdf"))
                            .order_by(l2.c.dateobs)).all()
        assert len(rows) == 4
        assert {r.fid for r in rows} == {fid_of("H158")} and {r.sca for r in rows} == {1}
        assert [r.dateobs.day for r in rows] == [1, 6, 11, 16]
        fields = {r.field for r in rows}
        assert fields == {int(field_of(rows[0].crval1, rows[0].crval2))}
        assert all(0 <= r.sip[SIP_ERROR_KEY] < 0.01 for r in rows)
        assert all(r.zptmag == pytest.approx(25.57, abs=0.01) for r in rows)
        assert all(abs(np.hypot(r.cd1_1, r.cd2_1) * 3600 - 0.11) < 0.01 for r in rows)
        n_exp = conn.execute(sa.select(sa.func.count()).select_from(schema.exposures)).scalar()
        assert n_exp == 5
    engine.dispose()


def _truncated(src, dst):
    raw = src.read_bytes()
    dst.write_bytes(raw[: len(raw) * 2 // 3])  # the tree is whole, the array blocks are not
    return dst


def _tree_cut(src, dst):
    dst.write_bytes(src.read_bytes()[:1500])
    return dst


def _plain(src, dst):
    asdf.AsdfFile({"data": np.zeros((4, 4))}).write_to(dst)
    return dst


def _flat(src, dst):
    import roman_datamodels.datamodels as rdd

    rdd.FlatRefModel.create_fake_data(shape=(8, 8)).save(str(dst))
    return dst


def _no_wcs(src, dst):
    import roman_datamodels.datamodels as rdd

    with rdd.open(str(src)) as model:
        model.meta.wcs = None
        model.save(str(dst))
    return dst


@pytest.mark.parametrize("make, message", [
    (_truncated, "truncated or damaged (data|err|dq) array"),
    (_tree_cut, "not a readable ASDF file"),
    (_plain, "not a Roman file"),
    (_flat, "holds a FlatRefModel, expected an ImageModel"),
    (_no_wcs, "missing WCS"),
])
def test_bad_asdf_files_are_named(roman_survey, tmp_path, make, message):
    bad = make(roman_survey.paths[0], tmp_path / "bad.asdf")
    with pytest.raises(L2Error, match=message) as info:
        read_l2_asdf_header(bad)
    assert "\n" not in str(info.value)


def test_bad_asdf_does_not_stop_the_others(roman_survey, tmp_path):
    bad = _no_wcs(roman_survey.paths[0], tmp_path / "nowcs.asdf")
    engine = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    report = ingest_paths(engine, [bad, roman_survey.paths[1]])
    assert report.added == [str(roman_survey.paths[1])]
    assert report.errors == [(str(bad), "missing WCS (meta.wcs is empty)")]
    engine.dispose()
