"""Integration over destination pixels larger than the source's, when resampling.

Interpolating an image at the centres of another grid's pixels samples it; when those pixels
are larger than the source's (a reference with 0.1" pixels for a 0.26" science image), the
samples throw away most of the source pixels, their noise and their light's averaging: a
reference three times finer gave nine times the variance it holds, and point sources sampled
rather than integrated. What a detector with the destination's pixels would have recorded is
the sky integrated over each of them. The source pixels already integrate over their own area;
what is missing is a blur whose second moments are those of the destination pixel seen from
the source, less those of a source pixel:

    C = (A A^T - I) / 12

with A = d(source pixel) / d(destination pixel), the unit square's variance being 1/12 per
axis. A Gaussian of covariance C (its negative part clipped, for axes along which the source
pixels are the larger) is convolved with the image before interpolation, and with the squared
kernel with the variance. For grids of equal pixel size (any rotation or mirroring) C is zero
and nothing is done.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

# Below this variance (pixel^2) per axis the blur is negligible against interpolation's own
# smoothing (0.1 pixel rms: source pixels less than ~6% smaller than the destination's)
_MIN_VARIANCE = 0.01


def integration_covariance(src_per_dst: np.ndarray) -> np.ndarray | None:
    """The blur C (source pixels^2, (y, x) order) that turns sampling into integration over
    destination pixels; None when it is negligible.

    Parameters
    ----------
    src_per_dst : ndarray
        2x2 matrix d(source pixel)/d(destination pixel) in (y, x) order.
    """
    a = np.asarray(src_per_dst, dtype=np.float64)
    if a.shape != (2, 2) or not np.all(np.isfinite(a)):
        raise ValueError(f"src_per_dst must be a finite 2x2 matrix, got {src_per_dst!r}")
    evals, evecs = np.linalg.eigh((a @ a.T - np.eye(2)) / 12.0)
    evals = np.clip(evals, 0.0, None)
    if evals.max() < _MIN_VARIANCE:
        return None
    return (evecs * evals) @ evecs.T


def integration_kernel(cov: np.ndarray) -> np.ndarray:
    """An odd-sided Gaussian kernel of covariance ``cov`` (y, x order), summing to 1, sampled
    at pixel centres out to four standard deviations along each axis."""
    cov = np.asarray(cov, dtype=np.float64)
    # a floor keeps a kernel along an axis that needs no blur a delta function, not 0/0
    reg = cov + np.eye(2) * 1e-3
    hy, hx = (max(1, int(np.ceil(4.0 * np.sqrt(reg[i, i])))) for i in (0, 1))
    yy, xx = np.mgrid[-hy:hy + 1, -hx:hx + 1].astype(np.float64)
    inv = np.linalg.inv(reg)
    q = inv[0, 0] * yy**2 + 2 * inv[0, 1] * yy * xx + inv[1, 1] * xx**2
    kernel = np.exp(-0.5 * q)
    return kernel / kernel.sum()


def convolve_edge(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``image`` (no NaNs) convolved with ``kernel``, the edges extended by their own values
    so the border is not darkened; float32, same shape."""
    hy, hx = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(np.asarray(image, dtype=np.float32), ((hy, hy), (hx, hx)), mode="edge")
    return signal.oaconvolve(padded, kernel.astype(np.float32), mode="valid").astype(np.float32)


def integrate(image: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """The image blurred to integrate over destination pixels (see the module's text)."""
    return convolve_edge(image, integration_kernel(cov))


def integrate_uncertainty(unc: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """The 1-sigma uncertainty of :func:`integrate`'s output for independent source pixels:
    the variance convolved with the squared kernel."""
    kernel = integration_kernel(cov)
    var = convolve_edge(np.square(unc, dtype=np.float32), kernel**2)
    return np.sqrt(np.clip(var, 0.0, None), dtype=np.float32)


def noise_factor(cov: np.ndarray) -> float:
    """What :func:`integrate_uncertainty` multiplies a uniform uncertainty by."""
    return float(np.sqrt(np.sum(integration_kernel(cov) ** 2)))


def bad_weight(bad: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """The share of each integrated pixel's weight that comes from ``bad`` source pixels."""
    return convolve_edge(bad.astype(np.float32), integration_kernel(cov))
