"""The effective PSF of an undersampled image, estimated on a finer grid from its stars."""

import numpy as np
import pytest
from scipy import ndimage

from rapid.science.background import subtract_background
from rapid.science.difference import _psf_for, _variance
from rapid.science.config import DifferenceConfig
from rapid.science.effective_psf import fit_effective_psf
from rapid.science.image import Frame
from rapid.science.psf import estimate_psf, find_psf_stars, fit_psf_fwhm

FACTOR, SUB, HALF = 4, 5, 12
FWHM, BETA = 1.0, 3.0  # before the pixel: 1.4 pixels after it, as Roman H158


def _moffat(x, y):
    alpha = FWHM / (2 * np.sqrt(2 ** (1 / BETA) - 1))
    # slightly elongated and turned: not a profile any model here assumes
    u, v = 0.96 * x + 0.28 * y, -0.28 * x + 0.96 * y
    return (1 + (u * u + (v / 1.1) ** 2) / alpha**2) ** (-BETA)


def _effective(dx: float, dy: float, half: int = HALF) -> np.ndarray:
    """The Moffat integrated over the pixels of a (2 half + 1)^2 stamp, the source at (dx, dy)
    from the central pixel's centre; unit flux within the stamp for a centred source."""
    n = 2 * half + 1
    g = (np.arange(n * SUB) - (n * SUB - 1) / 2) / SUB
    yy, xx = np.meshgrid(g - dy, g - dx, indexing="ij")
    return _moffat(xx, yy).reshape(n, SUB, n, SUB).mean(axis=(1, 3))


NORM = _effective(0.0, 0.0).sum()


def _true_fine() -> np.ndarray:
    """The true effective PSF sampled FACTOR times finer, summing to FACTOR**2: sample I is
    at (I - c) / FACTOR pixels from the source, c the central sample."""
    n = (2 * HALF + 1) * FACTOR + 1  # as the fine PSF of a (2 HALF + 1)-pixel stamp
    c = n // 2
    out = np.empty((n, n))
    for p in range(FACTOR):
        for q in range(FACTOR):
            # samples p, p + FACTOR, ... lie at a - (c // FACTOR) + (p - c % FACTOR) / FACTOR
            # pixels; c // FACTOR is HALF
            dy, dx = -(p - c % FACTOR) / FACTOR, -(q - c % FACTOR) / FACTOR
            ny, nx = len(range(p, n, FACTOR)), len(range(q, n, FACTOR))
            # a stamp one pixel wider: its pixel a + 1 is at a - HALF - d
            out[p::FACTOR, q::FACTOR] = _effective(dx, dy, HALF + 1)[1:1 + ny, 1:1 + nx]
    return out * FACTOR**2 / out.sum()


def _field(seed: int, nstars: int = 160, size: int = 800):
    rng = np.random.default_rng(seed)
    sky, sigma = 100.0, 3.0
    img = np.full((size, size), sky)
    xs = rng.uniform(20, size - 20, nstars)
    ys = rng.uniform(20, size - 20, nstars)
    fluxes = 10 ** rng.uniform(4.0, 5.3, nstars)
    for x, y, f in zip(xs, ys, fluxes):
        ix, iy = int(round(x)), int(round(y))
        img[iy - HALF:iy + HALF + 1, ix - HALF:ix + HALF + 1] += (
            f / NORM * _effective(x - ix, y - iy))
    img = rng.normal(img, np.sqrt(sigma**2 + (img - sky)))
    unc = np.sqrt(sigma**2 + np.clip(img - sky, 0, None))
    frame = Frame(data=img.astype(np.float32), wcs=None, unc=unc.astype(np.float32),
                  meta={"units": "DN"})
    return frame, xs, ys, fluxes


def _fitted_fluxes(psf_at, frame, xs, ys):
    """Each star's flux by a least-squares fit of a 5x5 box with the position free (grid
    search of 0.05 pixel around the truth), the model taken from ``psf_at(dx, dy)``."""
    out = []
    for x, y in zip(xs, ys):
        ix, iy = int(round(x)), int(round(y))
        d = frame.data[iy - 2:iy + 3, ix - 2:ix + 3].astype(float)
        best = None
        for ddx in np.arange(-0.1, 0.101, 0.05):
            for ddy in np.arange(-0.1, 0.101, 0.05):
                m = psf_at(x - ix + ddx, y - iy + ddy)
                f = (m * d).sum() / (m * m).sum()
                chi = ((d - f * m) ** 2).sum()
                if best is None or chi < best[0]:
                    best = (chi, f)
        out.append(best[1])
    return np.array(out)


def test_undersampled_psf_is_recovered_on_the_fine_grid():
    frame, xs, ys, fluxes = _field(7)
    fb, rms = subtract_background(frame)
    stars = find_psf_stars(fb)
    stack = estimate_psf(fb, size=25, stars=stars)
    fwhm = fit_psf_fwhm(stack)
    native_true = _effective(0.0, 0.0)
    native_true /= native_true.sum()
    # the problem: interpolated and stacked, the core comes out too wide
    assert fwhm > 1.08 * fit_psf_fwhm(native_true)
    native, fine = fit_effective_psf(stars, _variance(fb, rms), stack, fwhm=fwhm)
    assert native.shape == stack.shape and native.sum() == pytest.approx(1.0)
    assert fine.factor == FACTOR and fine.data.shape == (25 * FACTOR + 1,) * 2
    assert fit_psf_fwhm(native) == pytest.approx(fit_psf_fwhm(native_true), rel=0.04)
    # the core on the fine grid, every phase, against the truth (up to a centring shift of
    # the whole PSF, which a free position absorbs): within 3% of the peak
    truth = _true_fine()
    c, r = 50, 12
    est = fine.data / fine.data.sum() * FACTOR**2
    a, b = est[c - r:c + r + 1, c - r:c + r + 1], truth[c - r:c + r + 1, c - r:c + r + 1]
    best = min(np.abs(np.roll(a, (sy, sx), axis=(0, 1)) - b).max()
               for sy in (-1, 0, 1) for sx in (-1, 0, 1))
    assert best < 0.08 * b.max()
    # what it is for: fluxes. Stars of another field, fitted with the stack, come out 2-3%
    # percent high; with the effective PSF as with the true one (within 1%)
    other, xo, yo, fo = _field(8, nstars=60)
    keep = fo > 3e4  # bright: the comparison is of models, not of noise

    def reader(image, per_pixel):
        """psf_at(dx, dy) reading ``image`` (``per_pixel`` samples a pixel, centred) at the
        5x5 pixel centres around a source (dx, dy) from the central one (cubic spline)."""
        cc = (image.shape[0] - 1) / 2
        g = np.arange(-2, 3)

        def at(dx, dy):
            yy, xx = np.meshgrid(cc + (g - dy) * per_pixel, cc + (g - dx) * per_pixel,
                                 indexing="ij")
            return ndimage.map_coordinates(image, [yy, xx], order=3)
        return at

    true_f = _fitted_fluxes(reader(truth, FACTOR), other, xo[keep], yo[keep])
    est_f = _fitted_fluxes(reader(est, FACTOR), other, xo[keep], yo[keep])
    stack_f = _fitted_fluxes(reader(stack, 1), other, xo[keep], yo[keep])
    assert np.median(est_f / true_f) == pytest.approx(1.0, abs=0.01)
    assert np.median(stack_f / true_f) > 1.015


def test_difference_estimates_a_fine_psf_only_for_undersampled_images():
    from dataclasses import replace

    assert DifferenceConfig().psf.fine_below_fwhm == 0.0  # off unless asked for
    cfg = replace(DifferenceConfig().psf, fine_below_fwhm=2.5)
    frame, *_ = _field(9, nstars=80, size=600)
    fb, rms = subtract_background(frame)
    assert _psf_for(fb, DifferenceConfig().psf, _variance(fb, rms))[1] is None
    psf, fine, source, stars = _psf_for(fb, cfg, _variance(fb, rms))
    assert source == "estimated" and fine is not None and fine.factor == cfg.fine_factor
    assert stars is not None and psf.shape[0] % 2 == 1
    # too few stars for every phase: the stack stands, without a fine PSF
    few, *_ = _field(10, nstars=6, size=400)
    fb, rms = subtract_background(few)
    psf, fine, source, _ = _psf_for(fb, cfg, _variance(fb, rms))
    assert source == "estimated" and fine is None
