"""Images whose WCS is not in ICRS, or lists latitude first, are read in ICRS (RA, Dec)."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import fit_wcs_from_points

from rapid.io.celestial import celestial_frame, in_icrs
from rapid.io.fits_frame import read_fits_frame, write_fits_image
from rapid.jobs.products import read_table
from rapid.science.standalone import run_diff
from tests.science.diff_fakes import make_frame, star_field


def _wcs(ctype, crval, radesys=None, equinox=None, sip=False):
    w = WCS(naxis=2)
    w.wcs.ctype = [c + ("-SIP" if sip else "") for c in ctype]
    w.wcs.crval, w.wcs.crpix = crval, [1024.5, 1024.5]
    w.wcs.cd = np.array([[-0.9, 0.2], [0.25, 0.95]]) * 0.3 / 3600
    if radesys:
        w.wcs.radesys = radesys
    if equinox:
        w.wcs.equinox = equinox
    if sip:
        a, b = np.zeros((4, 4)), np.zeros((4, 4))
        a[2, 0], a[0, 2], b[1, 1], b[0, 3] = 3e-6, -2e-6, 2.5e-6, 1e-9
        from astropy.wcs import Sip
        w.sip = Sip(a, b, None, None, w.wcs.crpix)
    return w


def _sky(w, frame, x, y):
    """The sky positions of pixels, in ICRS, through astropy's own frame transformations."""
    lon_lat = w.all_pix2world(x, y, 0)
    lng = w.wcs.lng
    return SkyCoord(lon_lat[lng] * u.deg, lon_lat[1 - lng] * u.deg, frame=frame).icrs


CASES = [
    # CTYPE pair, CRVAL, RADESYS, EQUINOX, SIP, tolerance (milliarcsec)
    (("GLON-TAN", "GLAT-TAN"), (236.9, 41.9), None, None, True, 1e-3),
    (("ELON-AIT", "ELAT-AIT"), (100.0, -30.0), None, None, False, 1e-3),
    (("RA---ZEA", "DEC--ZEA"), (200.0, 85.0), "FK5", 1975.0, False, 1e-3),
    (("SLON-CAR", "SLAT-CAR"), (10.0, 0.0), None, None, False, 1e-3),
    (("GLAT-SIN", "GLON-SIN"), (89.5, 359.9), None, None, False, 1e-3),
    (("DEC--TAN", "RA---TAN"), (-30.0, 120.0), "ICRS", None, False, 1e-3),
    # FK4's E-terms of aberration are not a rotation; they vary by well under a milliarcsecond
    # across an image
    (("RA---TAN", "DEC--TAN"), (150.0, 2.0), "FK4", 1950.0, False, 1.0),
]


@pytest.mark.parametrize("ctype, crval, radesys, equinox, sip, tol_mas", CASES)
def test_wcs_in_any_sky_frame_gives_the_same_icrs_positions(ctype, crval, radesys, equinox,
                                                             sip, tol_mas):
    w = _wcs(ctype, crval, radesys, equinox, sip)
    frame = celestial_frame(w)
    icrs = in_icrs(w)
    old = w.wcs.ctype
    assert list(icrs.wcs.ctype) == [f"RA--{old[w.wcs.lng][4:]}", f"DEC-{old[w.wcs.lat][4:]}"]
    assert icrs.wcs.radesys == "ICRS"
    assert (icrs.sip is not None) == sip
    y, x = (v.ravel() for v in np.mgrid[0:2048:128, 0:2048:128])
    ra, dec = icrs.all_pix2world(x, y, 0)
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(_sky(w, frame, x, y)).to(u.mas).value
    assert sep.max() < tol_mas
    # a change of frame moves the coordinates far more than the tolerance
    if not (radesys in (None, "ICRS") and ctype[0].startswith(("RA", "DEC"))):
        lon_lat = w.all_pix2world(x, y, 0)
        naive = SkyCoord(lon_lat[w.wcs.lng] * u.deg, lon_lat[w.wcs.lat] * u.deg)
        assert naive.separation(SkyCoord(ra * u.deg, dec * u.deg)).to(u.arcsec).value.max() > 1.0


@pytest.mark.parametrize("radesys, equinox", [("ICRS", None), (None, None), ("FK5", 2000.0)])
def test_icrs_wcs_is_kept_as_it_is(radesys, equinox):
    """FK5 J2000 is taken as ICRS (a frame tie of under 0.03", most often not there at all)."""
    w = _wcs(("RA---TAN", "DEC--TAN"), (10.0, -20.0), radesys, equinox, True)
    assert in_icrs(w) is w


def test_a_frame_not_on_the_sky_is_refused_by_name(tmp_path):
    w = _wcs(("HPLN-TAN", "HPLT-TAN"), (0.0, 0.0))
    with pytest.raises(ValueError, match="HPLN-TAN"):
        in_icrs(w)
    write_fits_image(tmp_path / "sun.fits", np.zeros((32, 32), np.float32), w)
    with pytest.raises(ValueError, match=r"sun\.fits.*not in a frame on the sky"):
        read_fits_frame(tmp_path / "sun.fits")


def test_difference_of_a_galactic_reference_and_a_latitude_first_science_image(tmp_path):
    rng = np.random.default_rng(72)
    shape = (160, 160)
    stars = list(zip(*star_field(rng, shape, 30, flux_range=(5e3, 5e4))))
    sci = make_frame(rng, shape=shape, fwhm=2.5, sigma=8.0, stars=stars + [(80.4, 60.2, 4000.0)])
    ref = make_frame(rng, shape=shape, fwhm=3.0, sigma=4.0, stars=stars)
    # the reference's WCS re-fitted in galactic coordinates by astropy
    yy, xx = (v.ravel() for v in np.mgrid[0:160:8, 0:160:8])
    galactic = fit_wcs_from_points((xx, yy), ref.wcs.pixel_to_world(xx, yy).galactic,
                                   projection="TAN")
    assert galactic.wcs.ctype[0].startswith("GLON")
    write_fits_image(tmp_path / "ref.fits", ref.data, galactic, header_extra={"GAIN": 1.0})
    # the science WCS written with its world axes in the order (Dec, RA)
    header = sci.wcs.to_header()
    cd = sci.wcs.pixel_scale_matrix
    for key in [k for k in header if k.startswith(("CDELT", "PC"))]:
        del header[key]
    header.update(CTYPE1="DEC--TAN", CTYPE2="RA---TAN", CRVAL1=sci.wcs.wcs.crval[1],
                  CRVAL2=sci.wcs.wcs.crval[0], CD1_1=cd[1, 0], CD1_2=cd[1, 1], CD2_1=cd[0, 0],
                  CD2_2=cd[0, 1], GAIN=1.0)
    fits.writeto(tmp_path / "sci.fits", sci.data.astype(np.float32), header)

    run_diff(tmp_path / "sci.fits", tmp_path / "ref.fits", tmp_path / "out")
    t = read_table(str(tmp_path / "out" / "candidates.parquet")).to_pydict()
    assert t["sign"] == [1]
    assert abs(t["x"][0] - 80.4) < 0.3 and abs(t["y"][0] - 60.2) < 0.3
    assert abs(t["flux"][0] - 4000.0) < 3 * t["flux_err"][0]
    # the catalog's coordinates are ICRS right ascension and declination
    true = sci.wcs.pixel_to_world(t["x"][0], t["y"][0])
    found = SkyCoord(t["ra"][0] * u.deg, t["dec"][0] * u.deg)
    assert found.separation(true).to(u.arcsec).value < 1e-3
    assert fits.getheader(tmp_path / "out" / "diff.fits")["CTYPE1"].startswith("RA")
