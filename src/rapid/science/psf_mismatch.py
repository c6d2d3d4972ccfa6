"""How well the two PSF models describe the stars: the fraction of a static star's flux that
its difference leaves.

ZOGY subtracts a static source exactly only when Pn and Pr are the images' true PSFs; what the
models miss is left in D in proportion to the source's flux, and Scorr weighs it with the
flux-noise term ``f**2 min(S_n**2, S_r**2)`` (:func:`rapid.science.zogy.zogy`). ``f`` is a
property of the data: a few per cent for PSFs estimated from the stars of a well-sampled image,
more than ten for some stars of an undersampled one, whose pixel phase the model cannot follow.
A fixed value is either too small for the second (every bright star leaves candidates) or too
large for the first (a supernova on a bright galaxy core is weighed as if it were that core's
PSF error). So it is measured on the matched stars, on the cross-convolved difference
``E = Pr (x) N - ratio Pn (x) R``, whose point-source profile is ``K = Pn (x) Pr``: ZOGY's D is E
whitened, and a PSF error leaves the same fraction of the star in both. For each star the
largest PSF-fit amplitude of E near it, less its noise, over the star's own amplitude; ``f`` is
a high quantile of those fractions, so that nearly every star's residual stays within a few
times its allowance. Each star counts by its S/N squared, the inverse variance of its
fraction: most matched stars are faint, and what noise is left of their residuals after the
allowance would otherwise set ``f`` (0.09 where the bright stars say 0.01).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from rapid.science.psf import fit_psf_fwhm

# Nearby positions (pixels each way) where a residual is looked for: a PSF error leaves rings
# and lobes as much as a core excess
_REACH = 2
# A star whose light within VARIABLE_FWHMS of it changed by more than this many sigmas, and
# this share of its flux, is variable (see _varies): the gain match's ratio is known to a
# fraction of a per cent, but a broad PSF's wings beyond the disk can hold a per cent or two
# more than a sharp one's, and a variable of a few per cent sets an allowance of a few per
# cent at most
VARIABLE_NSIGMA = 4.0
VARIABLE_SHARE = 0.05
# Radius, in FWHM of the broader PSF, of the disk over which that change is summed
VARIABLE_FWHMS = 3.0
# Share of the point-source profile's squared sum that its fit window holds: the profile of two
# widened stamps spans 80 pixels and more, most of it wings that weigh nothing in a fit
_KERNEL_SHARE = 0.99


def _fit_window(kernel: np.ndarray) -> np.ndarray:
    """The smallest centred square of ``kernel`` holding ``_KERNEL_SHARE`` of its squared sum.
    A PSF fit with it, ``sum(k E) / sum(k k)``, still gives the amplitude ``a`` of
    ``E = a kernel``."""
    h = kernel.shape[0] // 2
    k2 = kernel * kernel
    total = k2.sum()
    for r in range(1, h):
        if k2[h - r:h + r + 1, h - r:h + r + 1].sum() >= _KERNEL_SHARE * total:
            return kernel[h - r:h + r + 1, h - r:h + r + 1]
    return kernel


def _box(image: np.ndarray, cy: int, cx: int, half: int) -> np.ndarray:
    """The (2 half + 1)^2 box of ``image`` about (cy, cx), zero beyond its edges (as its bad
    pixels are): both images lose the same light there, so a static star still cancels."""
    ny, nx = image.shape
    out = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float64)
    y0, y1 = max(cy - half, 0), min(cy + half + 1, ny)
    x0, x1 = max(cx - half, 0), min(cx + half + 1, nx)
    out[y0 - cy + half:y1 - cy + half, x0 - cx + half:x1 - cx + half] = image[y0:y1, x0:x1]
    return out


def psf_mismatch(N: np.ndarray, R: np.ndarray, var_n: np.ndarray, var_r: np.ndarray,
                 Pn, Pr, x, y, flux_ratio: float, *, cells=None,
                 quantile: float = 0.9, min_snr: float = 30.0, min_stars: int = 5,
                 noise_allowance: float = 3.0) -> float | None:
    """The fraction ``f`` of a static star's flux its difference leaves (see module notes).

    Parameters
    ----------
    N, R : ndarray
        Background-subtracted science image and reference on its grid (0 where bad).
    var_n, var_r : ndarray
        Their per-pixel variances (0 where bad).
    Pn, Pr : ndarray or sequence of ndarray
        Their PSF stamps (odd sides); with ``cells``, one per cell.
    x, y : array_like
        Positions of matched, isolated, unsaturated stars on the science grid.
    flux_ratio : float
        Science flux over reference flux of a star.
    cells : rapid.science.psf_cells.CellGrid, optional
        Cells with PSFs of their own: each star is differenced with its cell's, and ``f``
        is taken over the stars of all cells.
    quantile : float, optional
        Quantile of the stars' fractions returned, weighed by their S/N squared (0.9).
    min_snr : float, optional
        Stars whose amplitude in E is measured to less than this S/N are not used (30).
    min_stars : int, optional
        Fewest usable stars for the quantile (5); with fewer, the largest of their fractions,
        and None with none.
    noise_allowance : float, optional
        Residual amplitudes are reduced by this many of their noise sigmas, in quadrature (3,
        about the largest of the 2 x 25 noise values searched).

    Returns
    -------
    float or None
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if cells is None:
        where, Pn, Pr = np.zeros(len(x), dtype=int), [Pn], [Pr]
    else:
        where = cells.index(x, y)
    fractions, snrs = [], []
    for c in np.unique(where):
        sel = where == c
        f, s = _star_residuals(N, R, var_n, var_r, Pn[c], Pr[c], x[sel], y[sel], flux_ratio,
                               min_snr=min_snr, noise_allowance=noise_allowance)
        fractions += f
        snrs += s
    if not fractions:
        return None
    if len(fractions) < min_stars:
        # too few for a quantile: the largest is the cautious reading (on 20 cutouts of
        # 128-384 pixels of ground-based pairs, 1-4 stars gave 0.03-0.06 where the whole
        # images' hundreds give 0.01)
        return float(np.max(fractions))
    return weighted_quantile(np.asarray(fractions), np.square(snrs), quantile)


def _star_residuals(N, R, var_n, var_r, Pn, Pr, x, y, flux_ratio: float, *, min_snr: float,
                    noise_allowance: float) -> tuple[list[float], list[float]]:
    """Each usable star's residual fraction and S/N (see :func:`psf_mismatch`)."""
    pn = np.asarray(Pn, dtype=np.float64) / np.sum(Pn)
    pr = np.asarray(Pr, dtype=np.float64) / np.sum(Pr)
    full = fftconvolve(pn, pr)
    kernel = _fit_window(full / full.sum())
    kk = float(np.sum(kernel * kernel))
    hk = kernel.shape[0] // 2
    half = max(pn.shape[0], pr.shape[0]) // 2 + hk + _REACH + 1
    ny, nx = N.shape
    edge = hk + _REACH  # the fit windows must lie on the image
    # where a star's change of brightness is summed: wide enough to hold nearly all of the
    # broader PSF's light, no wider, for the sum's noise
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    disk = np.hypot(yy, xx) <= VARIABLE_FWHMS * max(fit_psf_fwhm(pn), fit_psf_fwhm(pr))
    fractions, snrs = [], []
    for cx, cy in zip(np.rint(x).astype(int), np.rint(y).astype(int)):
        if cy - edge < 0 or cx - edge < 0 or cy + edge >= ny or cx + edge >= nx:
            continue
        box_n, box_r = _box(N, cy, cx, half), _box(R, cy, cx, half)
        box_vn, box_vr = _box(var_n, cy, cx, half), _box(var_r, cy, cx, half)
        if _varies(box_n[disk], box_r[disk], box_vn[disk], box_vr[disk], flux_ratio):
            continue
        n_pr = fftconvolve(box_n, pr, mode="same")
        E = n_pr - flux_ratio * fftconvolve(box_r, pn, mode="same")
        var_E = (fftconvolve(box_vn, pr * pr, mode="same")
                 + flux_ratio**2 * fftconvolve(box_vr, pn * pn, mode="same"))
        c = half
        best, noise, flux = 0.0, np.inf, 0.0
        for dy in range(-_REACH, _REACH + 1):
            for dx in range(-_REACH, _REACH + 1):
                win = np.s_[c + dy - hk:c + dy + hk + 1, c + dx - hk:c + dx + hk + 1]
                amp = float(np.sum(kernel * E[win])) / kk
                if dx == 0 and dy == 0:
                    flux = float(np.sum(kernel * n_pr[win])) / kk
                    noise = float(np.sqrt(max(np.sum(kernel * kernel * var_E[win]), 0.0))) / kk
                best = max(best, abs(amp))
        if not (flux > 0 and noise > 0 and flux >= min_snr * noise):
            continue
        fractions.append(np.sqrt(max(best**2 - (noise_allowance * noise) ** 2, 0.0)) / flux)
        snrs.append(flux / noise)
    return fractions, snrs


def _varies(box_n: np.ndarray, box_r: np.ndarray, var_n: np.ndarray, var_r: np.ndarray,
            flux_ratio: float) -> bool:
    """Whether the star changed brightness between the images, from the light of the pixels
    about it.

    A PSF model's error moves a static star's light about and leaves the total as it was; a
    variable star changes the total. The star's own change is the signal Scorr is
    there to find, and one bright variable among the matched stars (each weighed by its S/N
    squared) would set the allowance of every static source in the image to its own change:
    a star that lost half its light made it 0.3, hiding every transient on a star.
    """
    total = float(box_n.sum())
    change = total - flux_ratio * float(box_r.sum())
    noise = float(np.sqrt(max(var_n.sum() + flux_ratio**2 * var_r.sum(), 0.0)))
    return abs(change) > max(VARIABLE_NSIGMA * noise, VARIABLE_SHARE * abs(total))


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The value below which a fraction ``q`` of the total weight lies (no interpolation)."""
    order = np.argsort(values)
    cum = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    k = int(np.searchsorted(cum, q * cum[-1]))
    return float(np.asarray(values)[order][min(k, len(order) - 1)])
