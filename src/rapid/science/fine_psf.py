"""Finely sampled PSFs: taking them from PSF files, and the difference image's PSF from them.

A PSF file may carry, beside the PSF at pixel centres, a version sampled ``factor`` times
finer. Files differ in what that fine image is: the pixel-convolved ("effective") PSF, whose
samples at pixel steps are the native PSF, or the optical PSF, whose ``factor`` x ``factor``
block sums are. :func:`effective_fine_psf` tells the two apart by comparing each reading with
the native stamp and returns the effective PSF, or None when neither reading agrees (a fine
image of another field position or wavelength is then not trusted).

:func:`fine_difference_psf` gives the PSF of a ZOGY difference image on the fine grid. For a
transient present only in the new image N, D = kernel_n (x) N, so its profile at any sub-pixel
position is kernel_n applied, on the pixel grid, to the effective PSF of N at that position:
the fine Pd is kernel_n spread onto the fine grid (one tap every ``factor`` samples)
convolved with N's fine effective PSF. No undersampled PSF is interpolated anywhere.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve

from rapid.science.image import FinePsf

# Largest difference, relative to the native peak, between the native stamp and the fine PSF
# read at pixel steps that still counts as the same PSF. Interpolation and truncation leave
# ~1e-3; a PSF of another field point or wavelength differs by far more.
MATCH_TOLERANCE = 0.03


def centre_samples(fine: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray | None:
    """The fine image read at pixel steps through its centre, on a stamp of ``shape``.

    Samples beyond the fine image's edge are 0; None when the fine image has an even side
    (its centre falls between samples).
    """
    ny, nx = fine.shape
    if ny % 2 == 0 or nx % 2 == 0:
        return None  # the centre falls between samples
    cy, cx = ny // 2, nx // 2
    hy, hx = min(shape[0] // 2, cy // factor), min(shape[1] // 2, cx // factor)
    out = np.zeros(shape)
    sy, sx = shape[0] // 2, shape[1] // 2
    out[sy - hy:sy + hy + 1, sx - hx:sx + hx + 1] = fine[
        cy - hy * factor:cy + hy * factor + 1:factor, cx - hx * factor:cx + hx * factor + 1:factor]
    return out


def _half_sample_shift(fine: np.ndarray, axes: list[bool]) -> np.ndarray:
    """``fine`` padded by one sample and shifted by half a sample along the chosen axes, by
    a cubic spline, which a finely sampled PSF takes to ~1e-3 of its peak: a centre between
    two samples moves onto one, and a centre on a sample moves between two."""
    if not any(axes):
        return fine
    padded = np.pad(fine, [(0, int(a)) for a in axes])
    return ndimage.shift(padded, [0.5 * a for a in axes], order=3, mode="constant", cval=0.0)


def on_a_sample(fine: np.ndarray) -> np.ndarray:
    """A fine PSF centred on a sample: an even side (webbpsf's and stpsf's oversampled PSFs are
    4N samples wide, centred between the two middle ones) is shifted half a sample."""
    return _half_sample_shift(fine, [n % 2 == 0 for n in fine.shape])


def pixel_integrated(optical: np.ndarray, factor: int) -> np.ndarray:
    """The effective (pixel-convolved) fine PSF of an optical PSF sampled ``factor`` times
    finer than the pixels, centred on a sample.

    Each pixel is the sum of ``factor`` samples per axis, which is exact for samples that are
    themselves integrals over their sub-pixels (stpsf's). With an even factor the pixel's
    edges fall on sample edges only when the PSF's centre lies between samples, so an axis
    centred on a sample is first shifted half a sample; summing it with half weights at the
    ends instead errs by twice as much for a point-sampled PSF (the trapezoid rule against
    the midpoint rule: -2.3% against +1.2% of the peak for a Gaussian of sigma 0.6 pixel).
    """
    factor = int(factor)
    centred = _half_sample_shift(optical, [factor % 2 == 0 and n % 2 == 1
                                           for n in optical.shape])
    return on_a_sample(fftconvolve(centred, np.ones((factor, factor)), mode="full"))


def _at_pixel_centres(fine: np.ndarray, factor: int, shape: tuple[int, int],
                      centre: tuple[float, float] | None) -> np.ndarray | None:
    """A fine PSF centred on its middle sample, read at the pixel centres of a stamp of
    ``shape`` whose PSF centre is at ``centre`` (zero-based; the middle pixel when None). Whole
    sample steps are read as they are (the cubic spline passes through its samples); a centre
    between pixels with an odd factor falls between samples and is interpolated."""
    if centre is None:
        return centre_samples(fine, factor, shape)
    if fine.shape[0] % 2 == 0 or fine.shape[1] % 2 == 0:
        return None
    axes = [(n - 1) / 2.0 + (np.arange(m) - c) * factor
            for n, m, c in zip(fine.shape, shape, centre)]
    yy, xx = np.meshgrid(*axes, indexing="ij")
    return ndimage.map_coordinates(fine, [yy, xx], order=3, mode="constant", cval=0.0)


def native_from_fine(fine: FinePsf, shape: tuple[int, int]) -> np.ndarray:
    """The PSF at pixel centres on an odd stamp of ``shape``, read from an effective fine PSF
    (exact: its samples at pixel steps), summing to 1."""
    if shape[0] % 2 == 0 or shape[1] % 2 == 0:
        raise ValueError(f"shape must have odd sides, got {shape}")
    samples = centre_samples(fine.data, fine.factor, shape)
    if samples is None or not samples.sum() > 0:
        raise ValueError("fine PSF has no light at pixel centres")
    return samples / samples.sum()


def effective_fine_psf(native: np.ndarray, fine: np.ndarray, factor: int,
                       centre: tuple[float, float] | None = None) -> FinePsf | None:
    """The pixel-convolved fine PSF that agrees with ``native``, or None.

    Parameters
    ----------
    native : ndarray
        PSF at pixel centres.
    fine : ndarray
        The file's fine PSF, ``factor`` samples per pixel; effective or optical.
    factor : int
        Samples per pixel, >= 2.
    centre : tuple of float, optional
        Where the PSF's centre lies on ``native`` (zero-based y, x; see
        :func:`rapid.science.psf.stamp_centre`): needed for an even-sided stamp. Default: the
        middle pixel of an odd-sided one.

    Returns
    -------
    FinePsf or None
        The effective fine PSF when one reading of ``fine`` matches ``native`` within
        :data:`MATCH_TOLERANCE` of its peak; None otherwise.
    """
    native = np.asarray(native, dtype=np.float64)
    fine = np.where(np.isfinite(fine), np.asarray(fine, dtype=np.float64), 0.0)
    factor = int(factor)
    if factor < 2 or fine.ndim != 2 or not fine.sum() > 0 or not native.sum() > 0:
        return None
    native = native / native.sum()
    readings = (on_a_sample(fine), pixel_integrated(fine, factor))
    best, best_err = None, np.inf
    for candidate in readings:
        samples = _at_pixel_centres(candidate, factor, native.shape, centre)
        if samples is None or not samples.sum() > 0:
            continue
        err = float(np.max(np.abs(samples / samples.sum() - native))) / float(native.max())
        if err < best_err:
            best, best_err = candidate, err
    if best is None or best_err > MATCH_TOLERANCE:
        return None
    return FinePsf.normalised(best, factor)


def fine_difference_psf(kernel_n: np.ndarray, psf_n: FinePsf, size: int) -> FinePsf:
    """Fine PSF of D = kernel_n (x) N - kernel_r (x) R for a source in N only.

    Parameters
    ----------
    kernel_n : ndarray
        Odd-sized real-space kernel applying to N on the pixel grid, centred on offset 0.
    psf_n : FinePsf
        Effective fine PSF of N.
    size : int
        Odd side of the result in pixels; the fine stamp has ``size * factor`` samples
        (plus one when that is even) around the centre.

    Returns
    -------
    FinePsf
        Centred on its central sample, normalised to the ImagePSF convention.
    """
    k = psf_n.factor
    ky, kx = kernel_n.shape
    if ky % 2 == 0 or kx % 2 == 0:
        raise ValueError(f"kernel_n must be odd-sized, got {kernel_n.shape}")
    spread = np.zeros(((ky - 1) * k + 1, (kx - 1) * k + 1))
    spread[::k, ::k] = kernel_n
    full = fftconvolve(psf_n.data, spread, mode="full")
    # 'full' keeps the centre at (n - 1) / 2, so a symmetric crop keeps it centred
    n = size * k + (1 - (size * k) % 2)
    ny, nx = full.shape
    h = n // 2
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    if cy != int(cy) or cx != int(cx):
        raise ValueError("fine PSF of N must be odd-sized")
    cy, cx = int(cy), int(cx)
    hy, hx = min(h, cy), min(h, cx)
    out = full[cy - hy:cy + hy + 1, cx - hx:cx + hx + 1]
    return FinePsf.normalised(out, k)
