import numpy as np
import pytest
from tests.science.diff_fakes import add_star

from rapid.science.psf import fit_psf_fwhm, gaussian_psf
from rapid.science.zogy import cupy_available, zogy

SHAPE = (200, 200)  # not a fast FFT length: exercises the padding


def test_pure_noise_scorr_has_unit_std_and_d_is_white():
    rng = np.random.default_rng(20)
    N = rng.normal(0, 10.0, SHAPE).astype(np.float32)
    R = rng.normal(0, 4.0, SHAPE).astype(np.float32)
    z = zogy(N, R, gaussian_psf(2.5), gaussian_psf(3.5), sigma_n=10.0, sigma_r=4.0)
    assert z.Scorr.dtype == np.float32 and z.D.shape == SHAPE
    assert z.Scorr.std() == pytest.approx(1.0, abs=0.1)
    assert z.D.std() == pytest.approx(1.0, abs=0.05)
    assert np.median(z.D_var) == pytest.approx(1.0, abs=0.05)
    assert np.abs(z.Scorr).max() < 5.0


def test_identical_inputs_give_null_difference():
    rng = np.random.default_rng(21)
    img = rng.normal(0, 5.0, SHAPE)
    add_star(img, 100.3, 90.2, 5e4, 2.5)
    p = gaussian_psf(2.5)
    z = zogy(img, img, p, p, sigma_n=5.0, sigma_r=5.0)
    assert np.abs(z.D).max() < 1e-3
    assert np.abs(z.Scorr).max() < 1e-3


def test_difference_psf_and_transient_significance():
    rng = np.random.default_rng(22)
    N = rng.normal(0, 10.0, SHAPE)
    R = rng.normal(0, 10.0, SHAPE)
    add_star(N, 120.0, 80.0, 4000.0, 2.5)
    pn, pr = gaussian_psf(2.5), gaussian_psf(3.5)
    z = zogy(N, R, pn, pr, sigma_n=10.0, sigma_r=10.0, pd_size=21)
    assert z.Pd.shape == (21, 21) and z.Pd.sum() == pytest.approx(1.0)
    assert np.unravel_index(z.Pd.argmax(), z.Pd.shape) == (10, 10)
    # Pd of ZOGY lies between the two input PSFs in width
    assert 2.5 < fit_psf_fwhm(z.Pd) < 3.5
    iy, ix = np.unravel_index(z.Scorr.argmax(), SHAPE)
    assert (iy, ix) == (80, 120)
    # flux in D: transient flux f appears with zero point Fd (science units: D Fn/Fd)
    Dsci = z.D * z.flux_scale()
    h = 10
    fit = (Dsci[80 - h:80 + h + 1, 120 - h:120 + h + 1] * z.Pd).sum() / (z.Pd**2).sum()
    assert fit == pytest.approx(4000.0, rel=0.1)
    # matched-filter significance: D has unit white noise, the source flux 4000 Fd and PSF Pd
    expected = 4000.0 * z.Fd * np.sqrt((z.Pd**2).sum())
    assert z.Scorr.max() == pytest.approx(expected, rel=0.15)


def test_astrometric_noise_lowers_scorr_on_bright_stars():
    rng = np.random.default_rng(23)
    N = rng.normal(0, 5.0, SHAPE)
    R = N.copy() + rng.normal(0, 1.0, SHAPE)
    add_star(N, 100.0, 100.0, 1e5, 2.5)
    add_star(R, 100.2, 100.0, 1e5, 2.5)  # misregistered by 0.2 px
    p = gaussian_psf(2.5)
    plain = zogy(N, R, p, p, sigma_n=5.0, sigma_r=5.0)
    ast = zogy(N, R, p, p, sigma_n=5.0, sigma_r=5.0, sigma_x=0.2, sigma_y=0.2)
    assert np.abs(plain.Scorr).max() > 10
    assert np.abs(ast.Scorr).max() < 0.5 * np.abs(plain.Scorr).max()


def test_bad_arguments():
    a = np.zeros((32, 32))
    p = gaussian_psf(2.0, size=9)
    with pytest.raises(ValueError, match="device"):
        zogy(a, a, p, p, sigma_n=1, sigma_r=1, device="tpu")
    with pytest.raises(ValueError, match="sigma_n"):
        zogy(a, a, p, p, sigma_n=0, sigma_r=1)
    with pytest.raises(ValueError, match="shape"):
        zogy(a, a[:10], p, p, sigma_n=1, sigma_r=1)


@pytest.mark.skipif(not cupy_available(), reason="cupy with a GPU is not available")
def test_gpu_matches_cpu():
    rng = np.random.default_rng(24)
    N = rng.normal(0, 3.0, SHAPE)
    R = rng.normal(0, 3.0, SHAPE)
    add_star(N, 50.0, 60.0, 3000.0, 2.5)
    args = (N, R, gaussian_psf(2.5), gaussian_psf(3.0))
    c = zogy(*args, sigma_n=3.0, sigma_r=3.0)
    g = zogy(*args, sigma_n=3.0, sigma_r=3.0, device="gpu")
    assert np.allclose(c.Scorr, g.Scorr, atol=1e-3)
    assert np.allclose(c.D, g.D, atol=1e-3)


def test_astrometric_noise_spares_a_transient_on_empty_sky():
    # V_ast weighs residuals of sources in both images; a transient is in N only
    rng = np.random.default_rng(29)
    N = rng.normal(0, 5.0, SHAPE)
    R = rng.normal(0, 5.0, SHAPE)
    # a transient at (x, y) = (60.5, 90.5), S/N ~ 30, between pixels: there the gradient of S
    # is not 0 at any pixel, and the paper's V_ast would halve its Scorr
    add_star(N, 60.5, 90.5, 900.0, 2.5)
    add_star(N, 140.0, 100.0, 1e5, 2.5)    # a static star, misregistered by 0.2 px
    add_star(R, 140.2, 100.0, 1e5, 2.5)
    p = gaussian_psf(2.5)
    plain = zogy(N, R, p, p, sigma_n=5.0, sigma_r=5.0)
    ast = zogy(N, R, p, p, sigma_n=5.0, sigma_r=5.0, sigma_x=0.2, sigma_y=0.2)
    at_transient = np.s_[85:96, 55:66]
    at_star = np.s_[95:106, 135:146]
    assert plain.Scorr[at_transient].max() > 20
    assert ast.Scorr[at_transient].max() == pytest.approx(plain.Scorr[at_transient].max(),
                                                          rel=0.03)
    assert np.abs(ast.Scorr[at_star]).max() < 0.5 * np.abs(plain.Scorr[at_star]).max()


def _robust_std(a):
    return 1.4826 * np.median(np.abs(a - np.median(a)))


def test_noise_only_pixels_keep_the_noise_scatter_in_a_crowded_field():
    # 300 static stars in 256^2 pixels, slightly misregistered: the registration and
    # flux-noise terms shrink Scorr about each one, as they should, so a scatter measured
    # over all pixels says less than the noise's; over the pixels of noise alone it is 1
    rng = np.random.default_rng(30)
    shape = (256, 256)
    N = rng.normal(0, 5.0, shape)
    R = rng.normal(0, 3.0, shape)
    x, y = rng.uniform(5, 251, (2, 300))
    flux = np.exp(rng.uniform(np.log(300.0), np.log(3e4), 300))
    for xi, yi, fi in zip(x, y, flux):
        add_star(N, xi, yi, fi, 2.5)
        add_star(R, xi + 0.05, yi, fi, 3.0)
    z = zogy(N, R, gaussian_psf(2.5), gaussian_psf(3.0), sigma_n=5.0, sigma_r=3.0,
             sigma_x=0.1, sigma_y=0.1, flux_noise=0.05)
    assert z.noise_only is not None and z.noise_only.dtype == bool
    assert 0.1 < z.noise_only.mean() < 0.8
    bright = flux > 1e4
    centres = z.noise_only[np.round(y[bright]).astype(int), np.round(x[bright]).astype(int)]
    assert not centres.any()
    assert _robust_std(z.Scorr) < 0.93
    assert _robust_std(z.Scorr[z.noise_only]) == pytest.approx(1.0, abs=0.05)
    # without either term every pixel is noise alone
    plain = zogy(N, R, gaussian_psf(2.5), gaussian_psf(3.0), sigma_n=5.0, sigma_r=3.0)
    assert plain.noise_only is None
