"""The PSF-model mismatch measured on matched stars."""

import numpy as np
from tests.science.diff_fakes import make_frame, star_field

from rapid.science.psf import gaussian_psf
from rapid.science.psf_mismatch import psf_mismatch, weighted_quantile

SHAPE = (256, 256)


def _pair(seed=31, nstars=30):
    rng = np.random.default_rng(seed)
    x, y, f = star_field(rng, SHAPE, nstars, flux_range=(2e4, 2e5), edge=30)
    sci = make_frame(rng, shape=SHAPE, fwhm=3.5, sigma=5.0, stars=list(zip(x, y, f)))
    ref = make_frame(rng, shape=SHAPE, fwhm=3.0, sigma=2.0, stars=list(zip(x, y, f / 1.3)))
    return sci, ref, x, y


def _mismatch(sci, ref, x, y, sci_psf):
    return psf_mismatch(sci.data, ref.data, sci.unc**2, ref.unc**2, sci_psf, ref.psf, x, y, 1.3)


def test_true_psfs_leave_nothing_and_a_wrong_one_its_error():
    sci, ref, x, y = _pair()
    assert _mismatch(sci, ref, x, y, sci.psf) < 0.02
    # a model 10% narrower than the science PSF leaves several per cent of every star
    wrong = _mismatch(sci, ref, x, y, gaussian_psf(3.15, size=25))
    assert 0.03 < wrong < 0.3
    assert _mismatch(sci, ref, x, y, gaussian_psf(2.8, size=25)) > wrong


def test_few_stars_give_their_largest_fraction_and_none_give_none():
    sci, ref, x, y = _pair(nstars=4)
    # too few for the quantile: the largest fraction, still small with the true PSFs and the
    # wrong model's error with a wrong one
    assert _mismatch(sci, ref, x, y, sci.psf) < 0.02
    assert 0.03 < _mismatch(sci, ref, x, y, gaussian_psf(3.15, size=25)) < 0.3
    # stars at the edge cannot be cut out
    sci, ref, x, y = _pair()
    assert _mismatch(sci, ref, np.full_like(x, 2.0), y, sci.psf) is None


def test_faint_stars_noise_does_not_pass_for_a_mismatch():
    # most matched stars are faint, and their residuals are mostly noise: the fraction is
    # weighed by each star's S/N squared, so the true PSFs still measure as a close match
    # (an unweighted 90th percentile of the fractions gives 0.09 here)
    rng = np.random.default_rng(32)
    x, y, f = star_field(rng, SHAPE, 60, flux_range=(800, 3000), edge=30)
    xb, yb, fb = star_field(rng, SHAPE, 8, flux_range=(5e4, 2e5), edge=30)
    x, y, f = np.r_[x, xb], np.r_[y, yb], np.r_[f, fb]
    sci = make_frame(rng, shape=SHAPE, fwhm=3.5, sigma=5.0, stars=list(zip(x, y, f)))
    ref = make_frame(rng, shape=SHAPE, fwhm=3.0, sigma=2.0, stars=list(zip(x, y, f / 1.3)))
    assert _mismatch(sci, ref, x, y, sci.psf) < 0.02
    # and a real mismatch of the bright stars is still seen
    assert _mismatch(sci, ref, x, y, gaussian_psf(3.15, size=25)) > 0.03


def test_a_variable_star_does_not_pass_for_a_psf_error():
    """The brightest star, weighed most, lost 40% of its light: that is a change to find, not
    an error of the PSF models, and the true PSFs still measure as a close match."""
    rng = np.random.default_rng(34)
    for nstars in (30, 4):
        x, y, f = star_field(rng, SHAPE, nstars, flux_range=(2e4, 2e5), edge=30)
        f_sci = f.copy()
        f_sci[np.argmax(f)] *= 0.6
        sci = make_frame(rng, shape=SHAPE, fwhm=3.5, sigma=5.0, stars=list(zip(x, y, f_sci)))
        ref = make_frame(rng, shape=SHAPE, fwhm=3.0, sigma=2.0,
                         stars=list(zip(x, y, f / 1.3)))
        assert _mismatch(sci, ref, x, y, sci.psf) < 0.02
        # the variable alone says nothing of the PSFs
        one = np.argmax(f)
        assert _mismatch(sci, ref, x[[one]], y[[one]], sci.psf) is None


def test_weighted_quantile():
    v = np.array([0.5, 0.1, 0.3, 0.2])
    assert weighted_quantile(v, np.ones(4), 0.5) == 0.2
    assert weighted_quantile(v, np.array([1.0, 1.0, 1.0, 100.0]), 0.9) == 0.2
    assert weighted_quantile(v, np.array([100.0, 1.0, 1.0, 1.0]), 0.1) == 0.5


def test_stars_near_the_edge_are_measured_with_wide_psf_stamps():
    # PSF stamps widened to 41 pixels make an 81-pixel point-source profile; the fit takes
    # the part of it that matters (a few pixels) and the images are zero beyond their edges,
    # so stars 15-40 pixels from an edge of a 256-pixel image still count
    rng = np.random.default_rng(33)
    x, y, f = star_field(rng, SHAPE, 12, flux_range=(2e4, 2e5), edge=15)
    x = np.where(np.arange(12) % 2 == 0, rng.uniform(15, 40, 12), x)
    sci = make_frame(rng, shape=SHAPE, fwhm=3.5, sigma=5.0, stars=list(zip(x, y, f)))
    ref = make_frame(rng, shape=SHAPE, fwhm=3.0, sigma=2.0, stars=list(zip(x, y, f / 1.3)))
    wide_n, wide_r = np.pad(sci.psf, 8), np.pad(ref.psf, 8)
    near = x < 40
    args = (sci.data, ref.data, sci.unc**2, ref.unc**2)
    assert psf_mismatch(*args, wide_n, wide_r, x[near], y[near], 1.3) < 0.02
    wrong = np.pad(gaussian_psf(3.15, size=25), 8)
    assert psf_mismatch(*args, wrong, wide_r, x[near], y[near], 1.3) > 0.03
