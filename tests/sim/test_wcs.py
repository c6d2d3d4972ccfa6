"""The written TAN-SIP WCS reproduces GalSim's Roman WCS and the truth positions."""

import datetime as dt

import galsim
import numpy as np
import galsim.roman as roman
from astropy.io import fits
from astropy.wcs import WCS

from rapid.sim.pointing import observable_date
from rapid.sim.wcs_header import sip_cutout_header


def test_truth_radec_round_trips_through_the_header(survey, truth):
    assert truth
    by_file = {}
    for row in truth:
        by_file.setdefault(row["filename"], []).append(row)
    paths = {p.name: p for p in survey.images}
    worst = 0.0
    for name, rows in by_file.items():
        wcs = WCS(fits.getheader(paths[name], 1))
        x, y = wcs.all_world2pix([r["ra"] for r in rows], [r["dec"] for r in rows], 0)
        worst = max(worst, np.max(np.hypot(x - [r["x"] for r in rows], y - [r["y"] for r in rows])))
    assert worst < 0.05


def test_cutout_header_matches_galsim_full_sca():
    pos = galsim.CelestialCoord(9.6 * galsim.degrees, -44.0 * galsim.degrees)
    date = dt.datetime(2028, 10, 20)
    wcs = roman.getWCS(pos, PA=30 * galsim.degrees, date=date, SCAs=[7], PA_is_FPA=True)[7]
    offset, size = 1000, 300
    header = sip_cutout_header(wcs, offset=(offset, offset), shape=(size, size))
    aw = WCS(header)
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-0.5, size - 0.5, 300)
    y0 = rng.uniform(-0.5, size - 0.5, 300)
    ra, dec = aw.all_pix2world(x0, y0, 0)
    # GalSim positions are one-based in the full frame.
    gx, gy = wcs.radecToxy(ra, dec, units="deg")
    assert np.max(np.hypot(gx - (x0 + 1 + offset), gy - (y0 + 1 + offset))) < 0.01
    # The fitted inverse polynomial (AP/BP) undoes the forward SIP to < 0.01 pixel.
    foc = aw.sip_pix2foc(np.c_[x0, y0], 0)
    back = aw.sip_foc2pix(foc, 0)
    assert np.max(np.hypot(*(back - np.c_[x0, y0]).T)) < 0.01


def test_full_sca_inverse_sip_accuracy():
    pos = galsim.CelestialCoord(150.0 * galsim.degrees, 2.0 * galsim.degrees)
    date = observable_date(150.0, 2.0, dt.datetime(2028, 1, 5))
    wcs = roman.getWCS(pos, PA=0 * galsim.degrees, date=date, SCAs=[18], PA_is_FPA=True)[18]
    aw = WCS(sip_cutout_header(wcs, offset=(0, 0), shape=(4088, 4088)))
    g = np.linspace(0, 4087, 30)
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    back = aw.sip_foc2pix(aw.sip_pix2foc(np.c_[x, y], 0), 0)
    assert np.max(np.hypot(*(back - np.c_[x, y]).T)) < 0.01
