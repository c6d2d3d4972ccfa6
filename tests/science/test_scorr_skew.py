"""Skewed Scorr noise from a Poisson-limited sky, and thresholds that keep Gaussian false-alarm rates."""

from __future__ import annotations

import numpy as np
from scipy import stats

from rapid.science.difference import difference_images
from rapid.science.image import Frame
from rapid.science.psf import gaussian_psf
from rapid.science.zogy import zogy
from tests.science.diff_fakes import tan_wcs

SKY_E, READ_E, EXPTIME = 99.0, 8.5, 140.0  # a Roman-like faint sky: ~100 e- under 8.5 e- read noise


def _poisson_sky(rng, shape):
    """Background-subtracted science noise in e-/s: Poisson sky plus Gaussian read noise."""
    counts = rng.poisson(SKY_E, shape) + rng.normal(0.0, READ_E, shape)
    return ((counts - SKY_E) / EXPTIME).astype(np.float32)


def test_zogy_skew_matches_the_measured_skewness_and_fixes_the_tails():
    rng = np.random.default_rng(11)
    shape = (2048, 2048)
    psf = gaussian_psf(1.2, size=15)  # undersampled: the matched filter is nearly one pixel
    sigma_n = np.sqrt(SKY_E + READ_E**2) / EXPTIME
    N = _poisson_sky(rng, shape)
    R = rng.normal(0.0, sigma_n / 5, shape).astype(np.float32)
    kappa3 = (SKY_E / EXPTIME) / EXPTIME**2
    zr = zogy(N, R, psf, psf, sigma_n=sigma_n, sigma_r=sigma_n / 5, kappa3_n=kappa3)
    s = zr.Scorr[16:-16, 16:-16].ravel()
    measured = stats.skew(s)
    assert 0.02 < zr.skew < 0.06
    assert abs(zr.skew - measured) < 0.2 * measured
    # at 3 sigma: the raw positive tail is far above the Gaussian rate, the corrected ones match
    t = 3.0
    expected = s.size * stats.norm.sf(t)
    sd = np.sqrt(expected)
    shift = zr.skew * (t * t - 1) / 6
    assert (s > t).sum() - expected > 6 * sd
    assert abs((s > t + shift).sum() - expected) < 4 * sd
    assert abs((s < -(t - shift)).sum() - expected) < 4 * sd
    # Gaussian noise: no third cumulant given, no skew
    assert zogy(N, R, psf, psf, sigma_n=sigma_n, sigma_r=sigma_n / 5).skew == 0.0


def _frame(data, *, gain):
    meta = {"units": "DN/s", "exptime": EXPTIME}
    if gain:
        meta["gain"] = gain
    psf = gaussian_psf(1.2, size=15)
    return Frame(data=data, wcs=tan_wcs(data.shape), psf=psf,
                 unc=np.full(data.shape, np.sqrt(SKY_E + READ_E**2) / EXPTIME, np.float32),
                 meta=meta)


def test_difference_thresholds_move_apart_with_the_science_skew():
    rng = np.random.default_rng(4)
    shape = (256, 256)
    sci_data = _poisson_sky(rng, shape) + np.float32(SKY_E / EXPTIME)  # sky still in
    ref_data = rng.normal(0.0, 0.01, shape).astype(np.float32)
    ref = Frame(data=ref_data, wcs=tan_wcs(shape), psf=gaussian_psf(1.2, size=15),
                unc=np.full(shape, 0.01, np.float32))
    with_gain = difference_images(_frame(sci_data, gain=1.0), ref).meta
    without = difference_images(_frame(sci_data, gain=None), ref).meta
    assert 0.02 < with_gain["scorr_skew"] < 0.06
    assert with_gain["detect_threshold"] > with_gain["detect_threshold_fading"]
    ratio = with_gain["detect_threshold"] / with_gain["detect_threshold_fading"]
    t = max(5.0, with_gain["false_alarm_threshold"])  # the level before the skew term
    shift = with_gain["scorr_skew"] * (t * t - 1) / 6
    assert np.isclose(ratio, (t + shift) / (t - shift), rtol=1e-6)
    assert without["scorr_skew"] == 0.0
    assert without["detect_threshold"] == without["detect_threshold_fading"]


def test_a_reference_covering_a_third_of_the_image_keeps_the_skew_and_thresholds():
    rng = np.random.default_rng(4)
    shape = (256, 256)
    sci_data = _poisson_sky(rng, shape) + np.float32(SKY_E / EXPTIME)
    ref_data = rng.normal(0.0, 0.01, shape).astype(np.float32)
    unc = np.full(shape, 0.01, np.float32)
    full = difference_images(_frame(sci_data, gain=1.0), Frame(
        data=ref_data, wcs=tan_wcs(shape), psf=gaussian_psf(1.2, size=15), unc=unc)).meta
    part_data, part_unc = ref_data.copy(), unc.copy()
    part_data[:, 85:] = np.nan  # no reference beyond the first third
    part_unc[:, 85:] = np.nan
    part = difference_images(_frame(sci_data, gain=1.0), Frame(
        data=part_data, wcs=tan_wcs(shape), psf=gaussian_psf(1.2, size=15), unc=part_unc)).meta
    assert part["nmasked"] > 0.6 * sci_data.size
    # the skew of the noise where there is data, not of the spill into the masked part
    assert abs(part["scorr_skew"] - full["scorr_skew"]) < 0.2 * full["scorr_skew"]
    assert abs(part["detect_threshold_fading"] - full["detect_threshold_fading"]) < 0.1
