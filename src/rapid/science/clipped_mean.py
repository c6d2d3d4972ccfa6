"""Inverse-variance weighted mean of per-star measurements, clipped on each star's own error.

Flux ratios of matched stars (the gain match) and their fitted-over-true fluxes (the aperture
correction) are both such means: the bright stars carry the precision, and a bright star
blended with a variable, a transient or a galaxy is an outlier by many of its own sigmas
although its value lies within the scatter of the faint stars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClippedMean:
    """Outcome of :func:`clipped_weighted_mean`.

    Attributes
    ----------
    mean : float
        The weighted mean of the kept values; NaN when fewer than ``min_count`` were left.
    error : float
        Its 1-sigma error, grown by the reduced chi-square when the values scatter more than
        their errors say (NaN with ``mean``).
    used : ndarray
        Boolean mask over the inputs: the values kept (the last, too small, set on failure).
    """

    mean: float
    error: float
    used: np.ndarray

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.mean))


def clipped_weighted_mean(values, errors, *, clip_sigma: float = 3.0, min_count: int = 5,
                          max_iter: int = 10) -> ClippedMean:
    """Weighted mean of ``values`` (weights 1/errors²), iteratively clipped.

    Starting from the median, a value is kept while it lies within ``clip_sigma`` of its own
    error from the mean, the errors widened by the robust scatter of the normalised residuals
    when that exceeds 1; values with a non-finite or non-positive error never count.

    Parameters
    ----------
    values, errors : array_like
        One value and its 1-sigma error per star.
    clip_sigma : float, optional
        Clipping threshold (3).
    min_count : int, optional
        Fewest values a mean is made of (5).
    max_iter : int, optional
        Most clipping passes (10).

    Returns
    -------
    ClippedMean
    """
    v = np.asarray(values, dtype=np.float64)
    sig = np.asarray(errors, dtype=np.float64)
    good = np.isfinite(v) & np.isfinite(sig) & (sig > 0)
    if good.sum() < min_count:
        return ClippedMean(float("nan"), float("nan"), good)
    mean = float(np.median(v[good]))
    use = good.copy()
    for _ in range(max_iter):
        z = np.where(good, (v - mean) / np.where(good, sig, 1.0), np.inf)
        scale = max(1.0, 1.4826 * float(np.median(np.abs(z[use]))))
        new = good & (np.abs(z) < clip_sigma * scale)
        if new.sum() < min_count:
            return ClippedMean(float("nan"), float("nan"), new)
        w = 1.0 / sig[new] ** 2
        mean = float(np.sum(w * v[new]) / np.sum(w))
        if np.array_equal(new, use):
            break
        use = new
    # the last pass's mean is of ``use`` already (it stopped on use == new, or set use = new)
    r, w = v[use], 1.0 / sig[use] ** 2
    chi2 = float(np.sum(w * (r - mean) ** 2) / max(r.size - 1, 1))
    return ClippedMean(mean, float(np.sqrt(max(chi2, 1.0) / np.sum(w))), use)
