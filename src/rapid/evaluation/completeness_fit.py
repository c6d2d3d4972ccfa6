"""The completeness curve against S/N as one fitted law: where it reaches 50%, and how sharply.

A detector that thresholds a statistic which, for a source of true S/N ``s``, is Gaussian with
mean ``s`` and unit variance finds it with probability ``Phi(s - t)``: 50% at the threshold ``t``,
rising over one unit of S/N. Measured completeness is fitted with that law widened,
``Phi((s - s50) / w)``, by maximum likelihood over the individual objects (found or not), so no
binning is chosen and a few objects near the threshold constrain it as far as they can. ``s50``
is the S/N at which half of the transients are found; ``w`` near 1 says the detection
statistic scatters like unit Gaussian noise around the true S/N (larger: losses such as
sub-pixel phase or masked neighbours spread the transition). The fitted completeness at S/N 5,
``Phi((5 - s50) / w)``, is the figure a target "50% at S/N 5" asks for, with its error from the
fit's covariance.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_ndtr, ndtr

# objects needed on each side (found, missed) for the fit to mean anything
MIN_EACH = 5


def _nll(params: np.ndarray, s: np.ndarray, hit: np.ndarray) -> float:
    # probit parameters: z = a s + b, so a = 1 / w and b = -s50 / w; the likelihood is
    # log-concave in (a, b), so the minimum found is the global one
    a, b = params
    z = a * s + b
    return -float(np.sum(np.where(hit, log_ndtr(z), log_ndtr(-z))))


def _hessian(f, x: np.ndarray, step: float = 1e-4) -> np.ndarray:  # noqa: ANN001
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[i] * step, np.eye(n)[j] * step
            h[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) \
                / (4 * step * step)
    return h


def fit_completeness(snr: np.ndarray, found: np.ndarray, *, at: float = 5.0) -> dict | None:
    """Fit ``Phi((s - s50) / w)`` to found/missed objects at true S/N ``s``.

    Parameters
    ----------
    snr : ndarray
        True S/N of each object (non-finite or non-positive values are left out).
    found : ndarray of bool
        Whether each object was found.
    at : float, optional
        S/N at which the fitted completeness is reported (5).

    Returns
    -------
    dict or None
        snr50 and snr50_err, width and width_err, objects (used), and ``completeness_at``
        with ``completeness_at_err`` (the fitted completeness at S/N ``at``, and its
        1-sigma error); None when fewer than :data:`MIN_EACH` objects are found or missed,
        or when completeness does not rise with S/N.
    """
    snr = np.asarray(snr, dtype=float)
    found = np.asarray(found, dtype=bool)
    if snr.shape != found.shape:
        raise ValueError(f"snr and found differ in shape: {snr.shape} and {found.shape}")
    use = np.isfinite(snr) & (snr > 0)
    s, hit = snr[use], found[use]
    if hit.sum() < MIN_EACH or (~hit).sum() < MIN_EACH:
        return None
    # start at unit width through the S/N that splits the sample like the found fraction does
    s0 = float(np.quantile(s, 1.0 - hit.mean()))
    res = minimize(_nll, np.array([1.0, -s0]), args=(s, hit), method="BFGS")
    a, b = res.x
    if not (np.isfinite(a) and a > 0):
        return None
    cov = np.full((2, 2), np.nan)
    hess = _hessian(lambda p: _nll(p, s, hit), res.x)
    if np.all(np.isfinite(hess)) and np.linalg.det(hess) > 0:
        cov = np.linalg.inv(hess)

    def err(grad: np.ndarray) -> float:  # delta method
        return float(np.sqrt(grad @ cov @ grad))

    z = a * at + b
    dens = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    return {"snr50": float(-b / a), "snr50_err": err(np.array([b / a**2, -1.0 / a])),
            "width": float(1.0 / a), "width_err": err(np.array([-1.0 / a**2, 0.0])),
            "objects": int(use.sum()), "completeness_at": float(ndtr(z)),
            "completeness_at_err": err(dens * np.array([at, 1.0])), "at": float(at)}
