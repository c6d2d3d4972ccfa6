"""A distorted GWCS is approximated by TAN-SIP to better than 0.01 pixel, and the fit error
reported is the real one."""

from __future__ import annotations

import numpy as np
import pytest

gwcs = pytest.importorskip("gwcs")

from astropy import coordinates, units as u  # noqa: E402
from astropy.modeling import models  # noqa: E402
from gwcs import coordinate_frames as cf  # noqa: E402

from rapid.io.gwcs_sip import fit_sip, sip_error_pix  # noqa: E402

SCALE = 0.11 / 3600


def distorted_gwcs(n: int, quad: float):
    """A Roman-like 0.11"/pixel TAN GWCS with a quadratic distortion of ``quad`` pixels at the
    image edge."""
    centre = (n - 1) / 2
    k = quad / centre ** 2
    px = models.Polynomial2D(2, c1_0=SCALE, c2_0=k * SCALE, c1_1=k * SCALE)
    py = models.Polynomial2D(2, c0_1=SCALE, c0_2=k * SCALE, c1_1=-k * SCALE)
    forward = (models.Shift(-centre) & models.Shift(-centre)
               | models.Mapping((0, 1, 0, 1)) | px & py
               | models.Pix2Sky_TAN() | models.RotateNative2Celestial(11.1, -43.8, 180.0))
    detector = cf.Frame2D(name="detector", axes_names=("x", "y"), unit=(u.pix, u.pix))
    sky = cf.CelestialFrame(reference_frame=coordinates.ICRS(), name="icrs", unit=(u.deg, u.deg))
    return gwcs.WCS([(detector, forward), (sky, None)])


def test_distortion_needs_and_gets_sip():
    g = distorted_gwcs(1024, quad=5.0)
    fit = fit_sip(g, (1024, 1024))
    assert fit.header["CTYPE1"] == "RA---TAN-SIP"
    assert 2 <= fit.header["A_ORDER"] <= 5
    assert fit.max_error_pix < 0.01
    x, y = 1000.0, 17.0
    ra, dec = g(x, y)
    px, py = fit.wcs.all_world2pix(ra, dec, 0)
    assert np.hypot(px - x, py - y) < 0.01


def test_reported_error_is_measured():
    g = distorted_gwcs(1024, quad=5.0)
    fit = fit_sip(g, (1024, 1024), max_order=1)
    # Without SIP terms the quadratic distortion stays: several pixels at the corners.
    assert fit.max_error_pix == pytest.approx(sip_error_pix(g, fit.wcs, (1024, 1024)))
    assert 2.0 < fit.max_error_pix < 20.0


@pytest.mark.parametrize("kwargs, message", [
    ({"shape": (1,)}, "shape"), ({"max_pix_error": 0.0}, "max_pix_error"),
    ({"max_order": 0}, "max_order"),
])
def test_bad_arguments_are_named(kwargs, message):
    args = {"shape": (64, 64), **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_sip(distorted_gwcs(64, 1.0), **args)
