"""Candidates that are one bright pixel of one image (cosmic rays, hot pixels), not sources.

ZOGY's difference image is ``D = k_n * N - k_r * R``. A point source, in the sky and so
blurred by the PSF, appears in D with the difference PSF Pd; a single bright pixel of the
science image (a cosmic ray, a hot pixel: never blurred by the optics) appears as the kernel
``k_n`` itself, and one of the reference as ``-k_r``. When the science PSF is well sampled and
the reference deep, ``k_n`` is nearly a delta function and Pd several pixels wide, and the two
are told apart at any useful S/N; for an undersampled PSF (Roman's) they look alike and the
test below stays silent rather than guess.

For each candidate the two matched filters, normalised to unit noise, are evaluated near its
brightest pixel: ``z_psf`` (Pd, also at half-pixel phases, so that a source between pixel
centres keeps its S/N) and ``z_pix`` (the kernel). For a source of S/N ``s``
``E[z_pix - z_psf] = -(1 - rho) s``, for a bright pixel ``+(1 - rho) s``, where ``rho`` is the
two unit filters' overlap, and the difference has variance ``2 (1 - rho)``: the score
``(z_pix - z_psf) / sqrt(2 (1 - rho))`` is about N(-s sqrt((1 - rho) / 2), 1) for real
sources.
"""

from __future__ import annotations

import numpy as np

from rapid.science.phases import HALF_PIXEL_PHASES, psf_at_phase

# Sub-pixel phases of the point-source filter (dx, dy); the pixel filter needs none: a bright
# pixel sits on a pixel centre.
_PHASES = ((0.0, 0.0),) + HALF_PIXEL_PHASES


def _centred(stamp: np.ndarray, size: int) -> np.ndarray:
    """``stamp`` cropped or zero-padded about its centre to ``size`` x ``size``."""
    out = np.zeros((size, size))
    h = size // 2
    sy, sx = stamp.shape[0] // 2, stamp.shape[1] // 2
    r = min(h, sy, sx)
    out[h - r:h + r + 1, h - r:h + r + 1] = stamp[sy - r:sy + r + 1, sx - r:sx + r + 1]
    return out


def _best_response(Dz, var, kernels, x, y, reach: int) -> np.ndarray:
    """Largest unit-noise filter response over ``kernels`` and pixels within ``reach`` of each
    (x, y).

    ``Dz`` and ``var`` are padded by ``size // 2 + reach`` on every side; ``x``, ``y`` are
    positions in the unpadded frame.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    size = kernels[0].shape[0]
    side = size + 2 * reach
    k = np.stack(kernels)
    k2 = k * k
    best = np.full(len(x), -np.inf)
    rows = np.arange(side)
    for start in range(0, len(x), 256):  # bounds the cutout stack to a few tens of MB
        cx, cy = x[start:start + 256], y[start:start + 256]
        iy = cy[:, None, None] + rows[None, :, None]
        ix = cx[:, None, None] + rows[None, None, :]
        d = sliding_window_view(Dz[iy, ix], (size, size), axis=(1, 2))
        v = sliding_window_view(var[iy, ix], (size, size), axis=(1, 2))
        signal = np.einsum("nabij,kij->nabk", d, k)
        noise = np.sqrt(np.einsum("nabij,kij->nabk", v, k2))
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(noise > 0, signal / noise, -np.inf)
        best[start:start + 256] = z.reshape(len(cx), -1).max(axis=1)
    return best


def pixel_scores(D: np.ndarray, D_unc: np.ndarray, Pd: np.ndarray, kernel_n: np.ndarray,
                 kernel_r: np.ndarray, xpeak, ypeak, sign) -> np.ndarray:
    """How much better each candidate is described by a single bright pixel than by a source.

    Parameters
    ----------
    D, D_unc : ndarray
        Difference image and its 1-sigma uncertainty (NaN where masked).
    Pd : ndarray
        Difference PSF stamp (odd sides).
    kernel_n, kernel_r : ndarray
        ZOGY's D kernels of N and R (odd sides): the profiles in D of one pixel of each.
    xpeak, ypeak : array_like of int
        Each candidate's brightest pixel of ``sign * D``.
    sign : array_like of int
        +1 brightening (tested against a pixel of the science image), -1 fading (of the
        reference).

    Returns
    -------
    ndarray
        The score of each candidate (see the module notes): ~N(<= 0, 1) for a real source,
        large and positive for a bright pixel; NaN where it cannot be measured (or where the
        two profiles are the same, rho = 1, and the test has no power).
    """
    xpeak = np.asarray(xpeak, dtype=int)
    ypeak = np.asarray(ypeak, dtype=int)
    sign = np.asarray(sign, dtype=int)
    size = max(Pd.shape[0], kernel_n.shape[0], kernel_r.shape[0]) | 1
    psfs = [_centred(psf_at_phase(Pd, None, dx, dy), size) for dx, dy in _PHASES]
    psfs = [p / np.sqrt(np.sum(p * p)) for p in psfs]
    reach = 1
    pad = size // 2 + reach
    bad = ~np.isfinite(D) | ~np.isfinite(D_unc)
    var = np.pad(np.where(bad, 0.0, np.square(D_unc, dtype=np.float32)).astype(np.float32), pad)
    scores = np.full(len(xpeak), np.nan)
    for s, kern in ((1, kernel_n), (-1, kernel_r)):
        pix = _centred(np.asarray(kern, dtype=np.float64), size)
        norm = np.sqrt(np.sum(pix * pix))
        rho = float(np.sum(psfs[0] * pix) / norm) if norm > 0 else 1.0
        sel = np.flatnonzero(sign == s)
        if sel.size == 0 or norm == 0 or rho >= 1.0:
            continue
        Dz = np.pad(np.where(bad, 0.0, s * np.asarray(D, dtype=np.float32)).astype(np.float32),
                    pad)
        z_psf = _best_response(Dz, var, psfs, xpeak[sel], ypeak[sel], reach)
        z_pix = _best_response(Dz, var, [pix / norm], xpeak[sel], ypeak[sel], reach)
        with np.errstate(invalid="ignore"):
            scores[sel] = (z_pix - z_psf) / np.sqrt(2.0 * (1.0 - rho))
    return scores
