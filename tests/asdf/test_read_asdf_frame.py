"""A Roman L2 ASDF file reads as a Frame in DN/s: DQ masks, err is the uncertainty, the GWCS
becomes TAN-SIP, the zero point comes from the photometric calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rapid.io import read_asdf_frame, read_frame
from tests.asdf.conftest import BAD_PIXELS


def test_frame_units_mask_and_uncertainty(roman_survey):
    path = roman_survey.paths[0]
    frame = read_asdf_frame(path)
    assert frame.shape == (200, 200)
    assert frame.meta["units"] == "DN/s" and frame.meta["filter"] == "H158"
    assert frame.meta["sca"] == 1
    assert frame.meta["exptime"] == pytest.approx(139.1487)
    assert frame.meta["mjdobs"] == pytest.approx(61041.0)
    # DQ != 0 is masked and set to NaN; nothing else is.
    assert int(frame.mask.sum()) == len(BAD_PIXELS)
    for x, y in BAD_PIXELS:
        assert frame.mask[y, x] and np.isnan(frame.data[y, x])
    # The file holds a count rate already: sky of 1 e-/s at gain 2 e-/DN is 0.5 DN/s, not
    # 0.5 / exptime.
    assert np.nanmedian(frame.data) == pytest.approx(0.5, rel=0.1)
    good = ~frame.mask
    assert np.allclose(frame.unc[good], np.asarray(_err(path))[good])


def _err(path):
    import roman_datamodels.datamodels as rdd

    with rdd.open(str(path)) as model:
        return np.array(model.err)


def test_zero_point_from_photometry(roman_survey):
    from romanisim.models import bandpass, parameters

    frame = read_asdf_frame(roman_survey.paths[0])
    # C * area is gain * 3631 / abflux / 1e6, so ZP = 2.5 log10(abflux / gain).
    expected = 2.5 * math.log10(bandpass.get_abflux("F158", 1) / parameters.reference_data["gain"])
    assert frame.meta["zptmag"] == pytest.approx(expected, abs=1e-6)


def test_star_fluxes_match_the_zero_point(roman_survey):
    from photutils.aperture import CircularAperture, aperture_photometry

    frame = read_asdf_frame(roman_survey.paths[0])
    stars = roman_survey.stars
    bright = stars[stars["mag"] < 19.5]
    data = np.nan_to_num(frame.data - np.nanmedian(frame.data))
    x, y = frame.wcs.all_world2pix(bright["ra"], bright["dec"], 0)
    flux = aperture_photometry(data, CircularAperture(np.c_[x, y], r=6.0))["aperture_sum"]
    mags = frame.meta["zptmag"] - 2.5 * np.log10(np.asarray(flux))
    # A 6-pixel aperture holds about 90% of the Roman PSF's light: 0.05-0.2 mag too faint.
    assert np.median(mags - bright["mag"]) == pytest.approx(0.12, abs=0.1)


def test_wcs_is_a_close_sip_fit(roman_survey):
    frame = read_asdf_frame(roman_survey.paths[0])
    assert frame.meta["sip_error_pix"] < 0.01
    # The star positions through the SIP WCS land where romanisim put them.
    stars = roman_survey.stars
    x, y = frame.wcs.all_world2pix(stars["ra"], stars["dec"], 0)
    assert np.max(np.hypot(x - stars["x"], y - stars["y"])) < 0.01


def test_dn_reading_does_not_divide_twice(roman_survey):
    path = roman_survey.paths[0]
    rate = read_asdf_frame(path)
    counts = read_asdf_frame(path, per_second=False)
    t = rate.meta["exptime"]
    assert counts.meta["units"] == "DN"
    assert np.nanmedian(counts.data) == pytest.approx(t * np.nanmedian(rate.data), rel=1e-5)
    assert counts.meta["zptmag"] == pytest.approx(rate.meta["zptmag"] + 2.5 * math.log10(t))


def test_read_frame_dispatches_on_suffix(roman_survey, tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    frame = read_frame(roman_survey.paths[0])
    assert frame.meta["units"] == "DN/s" and frame.meta["sca"] == 1
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [11.0, -43.8]
    wcs.wcs.crpix = [8, 8]
    wcs.wcs.cd = [[-0.11 / 3600, 0], [0, 0.11 / 3600]]
    header = wcs.to_header()
    header["EXPTIME"] = 10.0
    data = np.random.default_rng(1).normal(20.0, 0.1, (16, 16)).astype(np.float32)
    fits.PrimaryHDU(data, header).writeto(tmp_path / "a.fits")
    fits_frame = read_frame(tmp_path / "a.fits", per_second=True)
    assert np.nanmedian(fits_frame.data) == pytest.approx(2.0, abs=0.01)


def test_dq_bits_can_be_ignored(roman_survey):
    frame = read_asdf_frame(roman_survey.paths[0], dq_ignore=1)
    assert int(frame.mask.sum()) == 0
    with pytest.raises(ValueError, match="dq_ignore"):
        read_asdf_frame(roman_survey.paths[0], dq_ignore=-1)
