"""Sub-pixel phases of the matched filter and the false-alarm threshold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import label, maximum_filter
from scipy.special import erf

from rapid.science.image import FinePsf
from rapid.science.phases import (false_alarm_density, false_alarm_threshold, gradient_variance,
                                  psf_at_phase)
from rapid.science.zogy import zogy


def pixel_gaussian(sigma: float, offsets: np.ndarray) -> np.ndarray:
    """A Gaussian integrated over unit pixels, at pixel-centre offsets (1-D factor)."""
    s = sigma * np.sqrt(2.0)
    return 0.5 * (erf((offsets + 0.5) / s) - erf((offsets - 0.5) / s))


def undersampled(sigma: float, half: int = 7, factor: int = 4, dx=0.0, dy=0.0):
    """Native stamp of a source at (dx, dy) and the fine effective PSF of the centred one."""
    n = np.arange(-half, half + 1, dtype=float)
    native = np.outer(pixel_gaussian(sigma, n - dy), pixel_gaussian(sigma, n - dx))
    f = np.arange(-half * factor, half * factor + 1) / factor
    fine = np.outer(pixel_gaussian(sigma, f), pixel_gaussian(sigma, f))
    return native / native.sum(), FinePsf.normalised(fine, factor)


def test_psf_at_phase_from_fine_psf_is_the_shifted_profile():
    native, fine = undersampled(0.5)
    for dx, dy in ((0.5, 0.0), (0.0, 0.5), (0.5, 0.5), (0.25, -0.25)):
        expected, _ = undersampled(0.5, dx=dx, dy=dy)
        got = psf_at_phase(native, fine, dx, dy)
        assert got.sum() == pytest.approx(1.0)
        assert np.max(np.abs(got - expected)) < 1e-6 * expected.max() * 10
    # the centre phase gives the native stamp back
    assert np.allclose(psf_at_phase(native, fine, 0.0, 0.0), native, atol=1e-12)


def test_psf_at_phase_without_fine_psf_is_exact_only_when_well_sampled():
    wide, _ = undersampled(2.0, half=12)
    expected, _ = undersampled(2.0, half=12, dx=0.5, dy=0.5)
    assert np.max(np.abs(psf_at_phase(wide, None, 0.5, 0.5) - expected)) < 2e-3 * expected.max()
    sharp, _ = undersampled(0.4)
    expected, _ = undersampled(0.4, dx=0.5, dy=0.5)
    # aliasing: the band-limited reading of an undersampled stamp is off by far more
    assert np.max(np.abs(psf_at_phase(sharp, None, 0.5, 0.5) - expected)) > 0.05 * expected.max()
    with pytest.raises(ValueError, match="odd"):
        psf_at_phase(np.ones((4, 4)), None, 0.5, 0.0)


def test_gradient_variance_of_a_gaussian_filter():
    # white noise through a Gaussian of sigma s has gradient variance 1 / (2 s^2) per axis
    s = 2.0
    y, x = np.mgrid[-20:21, -20:21]
    g = np.exp(-(x**2 + y**2) / (2 * s * s))
    lam = gradient_variance(g)
    assert lam[0, 0] == pytest.approx(1 / (2 * s * s), rel=1e-3)
    assert lam[1, 1] == pytest.approx(1 / (2 * s * s), rel=1e-3)
    assert abs(lam[0, 1]) < 1e-6
    # the same filter sampled 4x finer gives the same answer in pixel units
    yf, xf = np.mgrid[-80:81, -80:81] / 4.0
    gf = np.exp(-(xf**2 + yf**2) / (2 * s * s))
    assert gradient_variance(gf, 4)[0, 0] == pytest.approx(1 / (2 * s * s), rel=1e-3)


def test_false_alarm_threshold_solves_the_density_and_is_higher_for_sharp_filters():
    lam_sharp = np.diag([1.4, 1.4])
    lam_broad = np.diag([0.3, 0.3])
    u_sharp = false_alarm_threshold(lam_sharp, 0.25)
    u_broad = false_alarm_threshold(lam_broad, 0.25)
    assert false_alarm_density(u_sharp, lam_sharp) * 1e6 == pytest.approx(0.25, rel=1e-6)
    assert 5.2 < u_sharp < 5.5
    assert 4.8 < u_broad < u_sharp
    assert false_alarm_threshold(lam_sharp, 1e9) == 1.0
    with pytest.raises(ValueError, match="rate"):
        false_alarm_threshold(lam_sharp, 0.0)


def _zogy_on(N, psf, fine, *, phases=True, sigma=1.0, rng=None):
    shape = N.shape
    R = np.zeros(shape, np.float32) if rng is None else rng.normal(0, 0.05, shape).astype(np.float32)
    extra = [psf_at_phase(psf, fine, dx, dy) for dx, dy in ((0.5, 0), (0, 0.5), (0.5, 0.5))]
    return zogy(N.astype(np.float32), R, psf, psf, sigma_n=sigma, sigma_r=0.05,
                var_n=np.full(shape, sigma**2, np.float32),
                var_r=np.full(shape, 0.05**2, np.float32), phase_psfs=extra if phases else ())


def test_phases_recover_the_signal_the_pixel_grid_loses():
    native, fine = undersampled(0.45)
    source, _ = undersampled(0.45, dx=0.5, dy=0.5)
    flux = 40.0
    N = np.zeros((96, 96))
    N[48 - 7:48 + 8, 48 - 7:48 + 8] = flux * source
    r = _zogy_on(N, native, fine)
    optimal = flux * np.sqrt(np.sum(source**2)) / np.sqrt(1.0 + 0.05**2 * 0)  # white, sigma 1
    grid_peak, phase_peak = float(r.Scorr.max()), float(r.Scorr_hi.max())
    assert grid_peak < 0.85 * optimal          # the centred filter loses > 15% here
    assert phase_peak == pytest.approx(optimal, rel=0.03)
    assert np.all(r.Scorr_hi >= r.Scorr - 1e-5) and np.all(r.Scorr_lo <= r.Scorr + 1e-5)
    # a fading source shows the same gain on the low side
    r = _zogy_on(-N, native, fine)
    assert float(-r.Scorr_lo.min()) == pytest.approx(optimal, rel=0.03)
    # without phases the extremes are Scorr itself
    r = _zogy_on(N, native, fine, phases=False)
    assert r.Scorr_hi is r.Scorr and r.Scorr_lo is r.Scorr


def test_centre_phase_filter_reproduces_scorr():
    native, fine = undersampled(0.6)
    rng = np.random.default_rng(3)
    N = rng.normal(0, 1.0, (64, 64))
    r = zogy(N.astype(np.float32), np.zeros((64, 64), np.float32), native, native, sigma_n=1.0,
             sigma_r=0.05, phase_psfs=[native])
    assert np.max(np.abs(r.Scorr_hi - r.Scorr)) < 1e-4
    assert np.max(np.abs(r.Scorr_lo - r.Scorr)) < 1e-4


def test_noise_peaks_over_phases_follow_the_euler_density():
    native, fine = undersampled(0.45)
    rng = np.random.default_rng(11)
    shape = (768, 768)
    r = _zogy_on(rng.normal(0, 1.0, shape), native, fine, rng=rng)
    lam = gradient_variance(fine.data, fine.factor)
    u = 3.5
    inner = r.Scorr_hi[16:-16, 16:-16]
    regions = label(inner > u)[1]
    expected = false_alarm_density(u, lam) * inner.size
    # the half-pixel search is nearly the continuous field the density describes (0.65-1.0 of it)
    assert 0.55 * expected < regions < 1.1 * expected
    peaks_grid = int(np.sum((r.Scorr[16:-16, 16:-16] > u)
                            & (r.Scorr[16:-16, 16:-16] == maximum_filter(r.Scorr[16:-16, 16:-16], 3))))
    assert peaks_grid < regions
