"""The true S/N of a transient in a difference image, from the difference image's own noise.

A PSF fit of flux ``f`` to pixels with variances ``var_i`` and a PSF ``P`` (sum 1, the profile
of a source at the transient's position) has the smallest possible uncertainty
``sigma_f = 1 / sqrt(sum_i P_i^2 / var_i)``. With ``var_i = D_unc_i^2`` (the ``diffimage_unc``
product) and ``P`` the difference-image PSF (the ``diffpsf`` product), ``|diff_flux| / sigma_f``
is the S/N the transient has in D: it counts the reference's noise, which the simulator's
``snr_expected`` (science exposure alone, noiseless reference) leaves out. D is in
science-image units (see :mod:`rapid.science.difference`), so the truth's ``diff_flux``
divides it as it is.

Where the PSF product carries a finer sampling, ``P`` is the PSF of a source at the
transient's sub-pixel position (:func:`rapid.science.phases.psf_at_phase`). That matters for
undersampled PSFs: a source between pixel centres spreads its light over more pixels, and
``sum P^2`` falls; for Roman's H158 PSF the S/N of a source at a pixel corner is 11% below that
of one on a pixel centre, 6% on average over positions. Without a fine PSF the stamp centred
on the nearest pixel is used, which overstates the S/N of off-centre sources by as much.

Masked pixels (NaN in D_unc), non-positive variances and pixels off the image carry no
information and are left out of the sum, as an optimal fit would leave them out; but when one
of them lies in the PSF's core (``P_i >= core_fraction * max P``) the transient sits on a
masked area, no detector can be asked to find it, and its S/N is reported as NaN.
"""

from __future__ import annotations

import numpy as np

from rapid.science.image import FinePsf
from rapid.science.phases import psf_at_phase

CORE_FRACTION = 0.01


def _normalised(psf: np.ndarray) -> np.ndarray:
    p = np.asarray(psf, dtype=float)
    if p.ndim != 2 or p.shape[0] % 2 == 0 or p.shape[1] % 2 == 0:
        raise ValueError(f"psf must be a 2-D stamp of odd sides, got shape {p.shape}")
    total = p.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError(f"psf must have a finite positive sum, got {total!r}")
    return p / total


def psf_flux_sigma(unc: np.ndarray, psf: np.ndarray, x, y, *,  # noqa: ANN001
                   fine: FinePsf | None = None,
                   core_fraction: float = CORE_FRACTION) -> np.ndarray:
    """Uncertainty of an optimal PSF-fit flux at given positions of an image.

    Parameters
    ----------
    unc : ndarray
        Per-pixel 1-sigma uncertainty of the image (NaN where masked).
    psf : ndarray
        PSF stamp, odd-sized and centred; normalised here to sum 1.
    x, y : float or array_like
        Zero-based pixel positions.
    fine : FinePsf, optional
        The same PSF sampled finer: the profile is then taken at each position's sub-pixel
        phase; without it the stamp is centred on the nearest pixel.
    core_fraction : float, optional
        A masked pixel where the PSF is at least this fraction of its peak makes the position
        masked (0.01).

    Returns
    -------
    ndarray
        ``1 / sqrt(sum_i P_i^2 / unc_i^2)`` over the usable pixels; NaN where the PSF core
        touches a masked pixel, falls off the image, or no usable pixel is left.
    """
    if not 0 < core_fraction <= 1:
        raise ValueError(f"core_fraction must be in (0, 1], got {core_fraction!r}")
    unc = np.asarray(unc, dtype=float)
    if unc.ndim != 2:
        raise ValueError(f"unc must be a 2-D image, got shape {unc.shape}")
    centred = _normalised(psf)
    xs, ys = np.broadcast_arrays(np.atleast_1d(np.asarray(x, float)),
                                 np.atleast_1d(np.asarray(y, float)))
    ny, nx = unc.shape
    hy, hx = centred.shape[0] // 2, centred.shape[1] // 2
    with np.errstate(invalid="ignore"):
        inv_var = np.where(np.isfinite(unc) & (unc > 0), 1.0 / np.square(unc), np.nan)
    sigma = np.full(xs.shape, np.nan)
    for k, (xk, yk) in enumerate(zip(xs.ravel(), ys.ravel())):
        if not (np.isfinite(xk) and np.isfinite(yk)):
            continue
        ix, iy = int(np.floor(xk + 0.5)), int(np.floor(yk + 0.5))
        p = centred if fine is None else psf_at_phase(centred, fine, xk - ix, yk - iy)
        core = p >= core_fraction * p.max()
        p2 = p**2
        # the PSF stamp laid on a padded window: pixels off the image read as unusable
        window = np.full(centred.shape, np.nan)
        y0, y1 = max(iy - hy, 0), min(iy + hy + 1, ny)
        x0, x1 = max(ix - hx, 0), min(ix + hx + 1, nx)
        if y0 >= y1 or x0 >= x1:
            continue
        window[y0 - (iy - hy):y1 - (iy - hy), x0 - (ix - hx):x1 - (ix - hx)] = \
            inv_var[y0:y1, x0:x1]
        usable = np.isfinite(window)
        if not usable[core].all():
            continue
        info = float(np.sum(p2[usable] * window[usable]))
        if info > 0:
            sigma.flat[k] = 1.0 / np.sqrt(info)
    return sigma


def difference_snr(diff_flux, unc: np.ndarray, psf: np.ndarray, x, y, *,  # noqa: ANN001
                   fine: FinePsf | None = None,
                   core_fraction: float = CORE_FRACTION) -> np.ndarray:
    """``|diff_flux| / sigma_f`` at each position (see :func:`psf_flux_sigma`); NaN where masked.

    Parameters
    ----------
    diff_flux : float or array_like
        True flux change, in the units of ``unc``.
    unc, psf, x, y, fine, core_fraction
        As for :func:`psf_flux_sigma`.

    Returns
    -------
    ndarray
    """
    sigma = psf_flux_sigma(unc, psf, x, y, fine=fine, core_fraction=core_fraction)
    return np.abs(np.asarray(diff_flux, dtype=float)) / sigma
