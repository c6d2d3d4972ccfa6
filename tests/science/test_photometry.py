import numpy as np
import pytest
from astropy.table import Table
from tests.science.diff_fakes import add_star, tan_wcs

from rapid.science.photometry import (FLAG_MASKED, _psf_model, measure_candidates,
                                      position_bias_corrected)
from rapid.science.psf import gaussian_psf

SHAPE = (128, 128)


def _image(seed, sources, sigma=5.0):
    rng = np.random.default_rng(seed)
    img = rng.normal(0, sigma, SHAPE)
    for x, y, f in sources:
        add_star(img, x, y, f, 2.5)
    return img, np.full(SHAPE, sigma)


def test_psf_flux_both_signs_and_columns():
    img, unc = _image(40, [(40.2, 60.7, 2000.0), (90.6, 30.3, -1500.0)])
    t = Table({"x": [40.0, 91.0], "y": [61.0, 30.0], "sign": [1, -1], "scorr_peak": [20., -15.]})
    out = measure_candidates(img, unc, gaussian_psf(2.5), t, tan_wcs(SHAPE))
    for col in ("x", "y", "ra", "dec", "flux", "flux_err", "snr", "sign", "scorr_peak",
                "aper_flux_r2", "aper_flux_r4", "fwhm", "elongation", "sharpness",
                "roundness", "flags"):
        assert col in out.colnames
    # expected flux error for a PSF fit on white noise: sigma / sqrt(sum P^2)
    ferr = 5.0 / np.sqrt((gaussian_psf(2.5) ** 2).sum())
    assert out["flux_err"][0] == pytest.approx(ferr, rel=0.2)
    assert abs(out["flux"][0] - 2000.0) < 3 * out["flux_err"][0]
    assert abs(out["flux"][1] - 1500.0) < 3 * out["flux_err"][1]
    assert (out["flux"] >= 0).all()
    assert np.hypot(out["x"][0] - 40.2, out["y"][0] - 60.7) < 0.2
    assert out["fwhm"][0] == pytest.approx(2.5, rel=0.3)
    assert out["elongation"][0] < 1.3
    assert out["aper_flux_r4"][1] > 0
    assert out["snr"][0] == pytest.approx(out["flux"][0] / out["flux_err"][0])
    assert np.isfinite(out["ra"]).all()


def test_masked_pixels_flagged_and_positions_fixed():
    img, unc = _image(41, [(64.0, 64.0, 3000.0)])
    mask = np.zeros(SHAPE, bool)
    mask[64, 66] = True
    t = Table({"x": [64.3], "y": [63.8], "sign": [1]})
    out = measure_candidates(img, unc, gaussian_psf(2.5), t, None, mask=mask, max_shift=0)
    assert out["flags"][0] & FLAG_MASKED
    assert out["x"][0] == pytest.approx(64.3) and out["y"][0] == pytest.approx(63.8)
    assert np.isnan(out["ra"][0])


def test_empty_table_and_bad_arguments():
    img, unc = _image(42, [])
    out = measure_candidates(img, unc, gaussian_psf(2.5),
                             Table({"x": [], "y": [], "sign": []}), tan_wcs(SHAPE))
    assert len(out) == 0 and "flux" in out.colnames
    with pytest.raises(ValueError, match="fit_shape"):
        measure_candidates(img, unc, gaussian_psf(2.5), Table({"x": [1.], "y": [1.],
                           "sign": [1]}), None, fit_shape=(10, 10))
    with pytest.raises(ValueError, match="sign"):
        measure_candidates(img, unc, gaussian_psf(2.5), Table({"x": [1.], "y": [1.]}), None)


def test_position_bias_corrected_values():
    flux = np.array([10.0, 4.0, 1.0, 0.5, np.nan, 3.0])
    err = np.array([1.0, 2.0, 1.0, 1.0, 1.0, np.nan])
    out = position_bias_corrected(flux, err)
    assert out[0] == pytest.approx(9.9)
    assert out[1] == pytest.approx(3.0)
    assert out[2] == 0.0 and out[3] == 0.0  # within one error of 0
    assert np.isnan(out[4])
    assert out[5] == 3.0  # no error: left as fitted


def test_free_position_fluxes_unbiased_at_low_snr():
    """Fits that also choose the position read S/N 7 sources 1/7 sigma high before the
    correction; after it they agree with fits at the true positions."""
    rng = np.random.default_rng(43)
    step, n = 20, 30
    shape = (step * n, step * n)
    fwhm = 2.5
    psf = gaussian_psf(fwhm)
    sigma_f = 1.0 / np.sqrt((psf**2).sum())
    grid = (np.arange(n) + 0.5) * step
    xs, ys = (a.ravel() + rng.uniform(-0.5, 0.5, n * n) for a in np.meshgrid(grid, grid))
    flux = 7.0 * sigma_f
    img = rng.normal(0, 1.0, shape)
    for x, y in zip(xs, ys):
        add_star(img, x, y, flux, fwhm)
    unc = np.ones(shape)
    free = measure_candidates(img, unc, psf, Table({"x": np.round(xs), "y": np.round(ys),
                                                    "sign": np.ones(n * n, int)}))
    fixed = measure_candidates(img, unc, psf, Table({"x": xs, "y": ys,
                                                     "sign": np.ones(n * n, int)}), max_shift=0)
    pull_free = (free["flux"] - flux) / free["flux_err"]
    pull_fixed = (fixed["flux"] - flux) / fixed["flux_err"]
    assert abs(np.mean(pull_free)) < 0.07  # 900 sources: 0.033 per unit of pull std
    assert abs(np.mean(pull_free) - np.mean(pull_fixed)) < 0.04
    assert np.std(pull_free) == pytest.approx(1.0, abs=0.1)


def test_bright_source_flux_does_not_depend_on_its_own_noise_in_the_weights():
    # A PSF estimated from stars is never exact. Weights from an uncertainty that holds the
    # source's own Poisson noise leave a bright source's core to its wings, where the model
    # error then sets the flux; the fit weighs the box's pixels equally, and the source's
    # noise enters the flux error only.
    img, sky = _image(44, [(64.3, 63.8, 2e5)])
    model = gaussian_psf(2.8)  # the source is 2.5 pixels wide
    t = Table({"x": [64.0], "y": [64.0], "sign": [1]})
    source = np.zeros(SHAPE)
    add_star(source, 64.3, 63.8, 2e5, 2.5)
    with_source = np.sqrt(sky**2 + source)  # gain 1
    a = measure_candidates(img, sky, model, t)
    b = measure_candidates(img, with_source, model, t)
    assert b["flux"][0] == pytest.approx(a["flux"][0], rel=1e-3)
    # the equal-weight fit of a Gaussian model to a narrower Gaussian: 2 sm^2 / (sm^2 + sp^2)
    assert a["flux"][0] / 2e5 == pytest.approx(2 * 2.8**2 / (2.8**2 + 2.5**2), rel=0.01)
    # the error of that fit, from the pixels' own variances
    assert b["flux_err"][0] > 3 * a["flux_err"][0]
    yy, xx = np.mgrid[59:70, 59:70]
    p = _psf_model(model, None).evaluate(xx, yy, 1.0, a["x"][0], a["y"][0])
    w = p / np.sum(p * p)
    assert b["flux_err"][0] == pytest.approx(np.sqrt(np.sum(w**2 * with_source[59:70, 59:70]**2)),
                                            rel=1e-6)


def test_a_fit_box_all_but_masked_gives_no_flux_and_no_crash():
    """photutils returns NaN positions for a box with two unmasked pixels of 49; the candidate
    keeps its detected position, flagged, without a flux."""
    from rapid.science.photometry import FLAG_FIT

    img, unc = _image(43, [(64.0, 64.0, 3000.0), (30.2, 90.6, 2000.0)])
    mask = np.zeros(SHAPE, bool)
    mask[61:68, 61:68] = True
    mask[64, 64] = mask[63, 65] = False
    t = Table({"x": [64.0, 30.0], "y": [64.0, 91.0], "sign": [1, 1]})
    out = measure_candidates(img, unc, gaussian_psf(2.5), t, tan_wcs(SHAPE), mask=mask,
                             fit_shape=(7, 7))
    assert (out["x"][0], out["y"][0]) == (64.0, 64.0) and np.isfinite(out["ra"][0])
    assert np.isnan(out["flux"][0]) and out["flags"][0] & FLAG_FIT
    assert abs(out["flux"][1] - 2000.0) < 3 * out["flux_err"][1]
