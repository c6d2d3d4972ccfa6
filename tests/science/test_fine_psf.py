"""Finely sampled PSFs: reading them from files, the fine difference PSF, unbiased PSF fits."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy.special import erf

from rapid.io.fits_frame import read_fine_psf, read_psf, read_psfs
from rapid.science.fine_psf import effective_fine_psf, fine_difference_psf
from rapid.science.image import FinePsf
from rapid.science.psf import odd_stamp, stamp_centre
from rapid.science.photometry import measure_candidates

SIGMA = 0.45  # pixels: an undersampled Gaussian (FWHM ~1.06 px)
FACTOR = 4


def _pixel_profile(offsets: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """1-D Gaussian integrated over unit pixels centred at ``offsets``."""
    s = sigma * np.sqrt(2.0)
    return 0.5 * (erf((offsets + 0.5) / s) - erf((offsets - 0.5) / s))


def _effective(x: np.ndarray, y: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    return np.outer(_pixel_profile(y, sigma), _pixel_profile(x, sigma))


def _fine_grid(half: int, factor: int = FACTOR) -> np.ndarray:
    return np.arange(-half * factor, half * factor + 1) / factor


def _native(half: int = 7, sigma: float = SIGMA) -> np.ndarray:
    t = np.arange(-half, half + 1, dtype=float)
    p = _effective(t, t, sigma)
    return p / p.sum()


def _optical_fine(half: int = 7, sigma: float = SIGMA) -> np.ndarray:
    t = _fine_grid(half)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return np.outer(g, g)


def test_effective_fine_psf_accepts_the_pixel_convolved_reading():
    t = _fine_grid(7)
    fine = effective_fine_psf(_native(), _effective(t, t), FACTOR)
    assert fine is not None and fine.factor == FACTOR
    assert fine.data.sum() == pytest.approx(FACTOR**2)
    assert fine.data.shape == (57, 57)


def test_effective_fine_psf_integrates_an_optical_psf_over_pixels():
    # an optical PSF sampled finely enough for its pixel integral to be taken on the fine grid
    fine = effective_fine_psf(_native(sigma=0.8), _optical_fine(sigma=0.8), FACTOR)
    assert fine is not None
    # read at pixel steps through the centre it is the native stamp
    c = fine.data.shape[0] // 2
    samples = fine.data[c % FACTOR::FACTOR, c % FACTOR::FACTOR]
    native = _native(sigma=0.8)
    h = native.shape[0] // 2
    cs = samples.shape[0] // 2
    cut = samples[cs - h:cs + h + 1, cs - h:cs + h + 1]
    assert np.max(np.abs(cut / cut.sum() - native)) < 0.02 * native.max()


def test_effective_fine_psf_refuses_a_different_psf():
    assert effective_fine_psf(_native(), _optical_fine(sigma=1.2), FACTOR) is None
    assert effective_fine_psf(_native(), np.zeros((57, 57)), FACTOR) is None


def test_psf_file_with_an_oversampled_extension(tmp_path):
    t = _fine_grid(7)
    path = tmp_path / "psf.fits"
    hdr = fits.Header({"OVERSAMP": FACTOR})
    fits.HDUList([fits.PrimaryHDU(_optical_fine(), header=hdr),  # fine first, as some tools do
                  fits.ImageHDU(_native(), name="DET_SAMP"),
                  fits.ImageHDU(_effective(t, t), header=hdr, name="OVERSAMP")]).writeto(path)
    assert read_psf(path).shape == (15, 15)
    fine = read_fine_psf(path, read_psf(path))
    assert fine is not None and fine.factor == FACTOR


def test_psf_file_in_webbpsf_layout_keeps_its_even_sized_oversampled_psf(tmp_path):
    """webbpsf and stpsf write the optical PSF on 4N x 4N samples (centred between the middle
    two) in HDU OVERSAMP and its 4 x 4 block sums in DET_SAMP (OVERSAMP = 1)."""
    n, sigma = 15, 0.8
    t = (np.arange(n * FACTOR) - (n * FACTOR - 1) / 2) / FACTOR
    g = np.exp(-0.5 * (t / sigma) ** 2)
    optical = np.outer(g, g) / np.outer(g, g).sum()
    det = optical.reshape(n, FACTOR, n, FACTOR).sum(axis=(1, 3))
    path = tmp_path / "wfi_psf.fits"
    fits.HDUList([fits.PrimaryHDU(optical, header=fits.Header({"OVERSAMP": FACTOR,
                                                                "EXTNAME": "OVERSAMP"})),
                  fits.ImageHDU(det, header=fits.Header({"OVERSAMP": 1}), name="DET_SAMP"),
                  ]).writeto(path)
    native = read_psf(path)
    fine = read_fine_psf(path, native)
    assert fine is not None and fine.factor == FACTOR and fine.data.shape[0] % 2 == 1
    # read at pixel steps through its central sample, it is the detector-sampled PSF
    c = fine.data.shape[0] // 2
    samples = fine.data[c % FACTOR::FACTOR, c % FACTOR::FACTOR]
    h, cs = n // 2, samples.shape[0] // 2
    cut = samples[cs - h:cs + h + 1, cs - h:cs + h + 1]
    assert np.max(np.abs(cut / cut.sum() - native)) < 1e-6 * native.max()  # exact block sums


@pytest.mark.parametrize("between", [True, False])
def test_even_sided_stamp_is_centred_by_its_convention(tmp_path, between):
    # between the middle pixels (webbpsf, GalSim) or on pixel n/2 (numpy's FFT centre)
    n, sigma = 24, 1.3
    t = np.arange(n) - ((n - 1) / 2 if between else n / 2)
    assert stamp_centre(_effective(t, t, sigma)) == (((n - 1) / 2,) * 2 if between
                                                    else (n / 2,) * 2)
    path = tmp_path / "even.fits"
    fits.PrimaryHDU(_effective(t, t, sigma)).writeto(path)
    native = read_psf(path)
    expected = _native(half=n // 2, sigma=sigma)
    assert native.shape == (n + 1, n + 1)
    assert np.max(np.abs(native - expected)) < 1e-3 * expected.max()


def test_even_sided_undersampled_stamp_is_read_off_its_fine_psf(tmp_path):
    # webbpsf layout with an even N: DET_SAMP is 4 x 4 block sums of a 4N x 4N optical PSF,
    # both centred between their middle samples; shifting the undersampled DET_SAMP half a
    # pixel would be an interpolation, reading the fine PSF at pixel centres is not
    n, sigma = 16, SIGMA
    t = (np.arange(n * FACTOR) - (n * FACTOR - 1) / 2) / FACTOR
    g = np.exp(-0.5 * (t / sigma) ** 2)
    optical = np.outer(g, g) / np.outer(g, g).sum()
    det = optical.reshape(n, FACTOR, n, FACTOR).sum(axis=(1, 3))
    path = tmp_path / "wfi_psf.fits"
    fits.HDUList([fits.PrimaryHDU(det, header=fits.Header({"OVERSAMP": 1})),
                  fits.ImageHDU(optical, header=fits.Header({"OVERSAMP": FACTOR}),
                                name="OVERSAMP")]).writeto(path)
    native, fine = read_psfs(path)
    assert fine is not None and native.shape == (n + 1, n + 1)
    expected = _native(half=n // 2, sigma=sigma)
    err = np.max(np.abs(native - expected)) / expected.max()
    shifted = np.max(np.abs(odd_stamp(det) - expected)) / expected.max()
    assert err < 0.025 and shifted > 0.2  # 1.7% (the fine sampling) against 29%


def test_psf_file_without_fine_psf(tmp_path):
    path = tmp_path / "psf.fits"
    fits.PrimaryHDU(_native()).writeto(path)
    assert read_fine_psf(path, read_psf(path)) is None


def test_fine_difference_psf_read_at_pixel_steps_is_the_native_convolution():
    rng = np.random.default_rng(3)
    kernel = rng.normal(0, 0.05, (9, 9))
    kernel[4, 4] += 1.0
    t = _fine_grid(7)
    fine_n = FinePsf.normalised(_effective(t, t), FACTOR)
    pd = fine_difference_psf(kernel, fine_n, size=15)
    assert pd.data.sum() == pytest.approx(FACTOR**2)
    from scipy.signal import fftconvolve

    native = fftconvolve(_native(), kernel, mode="same")
    c = pd.data.shape[0] // 2
    samples = pd.data[c - 7 * FACTOR:c + 7 * FACTOR + 1:FACTOR,
                      c - 7 * FACTOR:c + 7 * FACTOR + 1:FACTOR]
    np.testing.assert_allclose(samples / samples.sum(), native / native.sum(),
                               atol=2e-3 * native.max())
    # a delta kernel gives back the PSF itself, on a stamp of the requested size
    delta = np.zeros((3, 3))
    delta[1, 1] = 1.0
    same = fine_difference_psf(delta, fine_n, size=13)
    assert same.data.shape == (53, 53)
    np.testing.assert_allclose(same.data / same.data.sum(),
                               fine_n.data[2:-2, 2:-2] / fine_n.data[2:-2, 2:-2].sum(), atol=1e-12)


def test_fine_psf_fit_is_unbiased_at_every_sub_pixel_phase():
    rng = np.random.default_rng(7)
    n, size = 40, 25
    img = np.zeros((size, n * size))
    xs = np.arange(n) * size + 12 + rng.uniform(-0.5, 0.5, n)
    ys = 12 + rng.uniform(-0.5, 0.5, n)
    pix = np.arange(size)
    for x, y in zip(xs, ys):
        cols = np.arange(n * size)
        img += 1000.0 * _effective(cols - x, pix - y)
    t = _fine_grid(7)
    fine = FinePsf.normalised(_effective(t, t), FACTOR)
    cands = Table({"x": np.round(xs), "y": np.round(ys), "sign": np.ones(n, int)})
    unc = np.ones_like(img)
    with_fine = measure_candidates(img, unc, _native(), cands, psf_fine=fine)
    native_only = measure_candidates(img, unc, _native(), cands)
    ratio_fine = np.asarray(with_fine["flux"]) / 1000.0
    ratio_native = np.asarray(native_only["flux"]) / 1000.0
    assert np.max(np.abs(ratio_fine - 1.0)) < 2e-3
    assert np.abs(np.mean(ratio_fine) - 1.0) < 5e-4
    # interpolating the native samples of this undersampled PSF misses by far more
    assert np.max(np.abs(ratio_native - 1.0)) > 5 * np.max(np.abs(ratio_fine - 1.0))
    np.testing.assert_allclose(with_fine["x"], xs, atol=0.01)
