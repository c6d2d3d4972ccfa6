"""Candidates that are one or two bright pixels of one image (cosmic rays, hot pixels), not
sources.

ZOGY's difference image is ``D = k_n * N - k_r * R``. A point source, in the sky and so
blurred by the PSF, appears in D with the difference PSF Pd; a single bright pixel of the
science image (a cosmic ray, a hot pixel: never blurred by the optics) appears as the kernel
``k_n`` itself, and one of the reference as ``-k_r``. When the science PSF is well sampled and
the reference deep, ``k_n`` is nearly a delta function and Pd several pixels wide, and the two
are told apart at any useful S/N; for an undersampled PSF (Roman's) they look alike and the
test below stays silent rather than guess.

For each candidate the two matched filters, normalised to unit noise, are evaluated near its
brightest pixel: ``z_psf`` (Pd, also at half-pixel phases, so that a source between pixel
centres keeps its S/N) and ``z_pix`` (the kernel; also the kernel of two adjacent pixels in
each of four directions, as a cosmic ray's short track has no one pixel that holds most of it:
a three-pixel L of a few hundred ADU on a 3-pixel PSF scores 1.4 with one pixel, 13 with two;
the largest score counts). For a source of S/N ``s``
``E[z_pix - z_psf] = -(1 - rho) s``, for a bright pixel ``+(1 - rho) s``, where ``rho`` is the
two unit filters' overlap, and the difference has variance ``2 (1 - rho)``: the score
``(z_pix - z_psf) / sqrt(2 (1 - rho))`` is about N(-s sqrt((1 - rho) / 2), 1) for real
sources.

Both filters weigh the cutout with its background variance (the median of D's variance over the
cutout), not with each pixel's own: an uncertainty image made from the data (a ramp fit's ERR,
or counts over gain when there is none) holds a bright pixel's own Poisson noise, which would
weigh the pixel down exactly where it differs from a source. With such an uncertainty, 98-116
of 119 cosmic rays of a few hundred to a few thousand counts on a sky noise of 8 scored under
the cut and passed at a PSF FWHM of 1.5-2.2 pixels; on the background variance 0-6 do, as with
an uncertainty of the sky alone.
"""

from __future__ import annotations

import numpy as np

from rapid.science.phases import HALF_PIXEL_PHASES, psf_at_phase

# Sub-pixel phases of the point-source filter (dx, dy); the pixel filter needs none: a bright
# pixel sits on a pixel centre.
_PHASES = ((0.0, 0.0),) + HALF_PIXEL_PHASES
# The second pixel of a two-pixel track, (dy, dx) from the first
_PAIR_STEPS = ((0, 1), (1, 0), (1, 1), (1, -1))
_PAIR_RHO_MAX = 0.8


def _centred(stamp: np.ndarray, size: int) -> np.ndarray:
    """``stamp`` cropped or zero-padded about its centre to ``size`` x ``size``."""
    out = np.zeros((size, size))
    h = size // 2
    sy, sx = stamp.shape[0] // 2, stamp.shape[1] // 2
    r = min(h, sy, sx)
    out[h - r:h + r + 1, h - r:h + r + 1] = stamp[sy - r:sy + r + 1, sx - r:sx + r + 1]
    return out


def _cutouts(D, D_unc, x, y, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Cutouts (n, 2 half + 1, 2 half + 1) of D and of its variance about each (x, y): 0
    outside the image and where either is not finite. Only the cutouts are read, never a
    full-size copy."""
    ny, nx = D.shape
    rows = np.arange(-half, half + 1)
    iy = y[:, None, None] + rows[None, :, None]
    ix = x[:, None, None] + rows[None, None, :]
    inside = (iy >= 0) & (iy < ny) & (ix >= 0) & (ix < nx)
    iy, ix = np.clip(iy, 0, ny - 1), np.clip(ix, 0, nx - 1)
    d = np.asarray(D[iy, ix], dtype=np.float32)
    u = np.asarray(D_unc[iy, ix], dtype=np.float32)
    ok = inside & np.isfinite(d) & np.isfinite(u)
    return np.where(ok, d, np.float32(0)), np.where(ok, u * u, np.float32(0))


def _background_variance(v: np.ndarray) -> np.ndarray:
    """Each cutout's variance replaced by its median over the cutout's measured pixels (0 stays
    0 where nothing was measured)."""
    med = np.nanmedian(np.where(v > 0, v, np.nan), axis=(1, 2))
    med = np.where(np.isfinite(med), med, 0.0).astype(v.dtype)
    return np.where(v > 0, med[:, None, None], v.dtype.type(0))


def _best_response(d, v, kernels) -> np.ndarray:
    """Largest unit-noise response of ``kernels`` over every position of the cutouts ``d``
    (variance ``v``) where a kernel fits."""
    from numpy.lib.stride_tricks import sliding_window_view

    size = kernels[0].shape[0]
    k = np.stack(kernels)
    dw = sliding_window_view(d, (size, size), axis=(1, 2))
    vw = sliding_window_view(v, (size, size), axis=(1, 2))
    signal = np.einsum("nabij,kij->nabk", dw, k)
    noise = np.sqrt(np.einsum("nabij,kij->nabk", vw, k * k))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(noise > 0, signal / noise, -np.inf)
    return z.reshape(len(d), -1).max(axis=1)


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
    # the brightest pixel and its 8 neighbours: a source's best pixel may be next to it
    half = size // 2 + 1
    scores = np.full(len(xpeak), np.nan)
    for s, kern in ((1, kernel_n), (-1, kernel_r)):
        sel = np.flatnonzero(sign == s)
        if sel.size == 0:
            continue
        profiles = _bright_pixel_profiles(_centred(np.asarray(kern, dtype=np.float64), size),
                                          psfs[0])
        for chunk in np.array_split(sel, -(-sel.size // 256)):  # cutouts of a few tens of MB
            d, v = _cutouts(D, D_unc, xpeak[chunk], ypeak[chunk], half)
            d *= np.float32(s)
            v = _background_variance(v)
            z_psf = _best_response(d, v, psfs)
            for pix, rho in profiles:
                z_pix = _best_response(d, v, [pix])
                with np.errstate(invalid="ignore"):
                    score = (z_pix - z_psf) / np.sqrt(2.0 * (1.0 - rho))
                scores[chunk] = np.fmax(scores[chunk], score)
    return scores


def _bright_pixel_profiles(pix: np.ndarray, psf: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Unit-norm profiles in D of one bright pixel and of two adjacent ones (a cosmic ray's
    short track: across, down and both diagonals), each with its overlap ``rho`` with the unit
    point-source filter ``psf``. A pair is used only while it stays unlike a source (rho <
    ``_PAIR_RHO_MAX``): the score divides by sqrt(1 - rho), and for profiles nearly alike any
    error of the PSF model would be magnified into a score."""
    out = []
    for step in ((0, 0),) + _PAIR_STEPS:
        prof = pix if step == (0, 0) else pix + np.roll(pix, step, axis=(0, 1))
        norm = np.sqrt(np.sum(prof * prof))
        if norm == 0:
            continue
        prof = prof / norm
        rho = float(np.sum(psf * prof))
        if rho < (1.0 if step == (0, 0) else _PAIR_RHO_MAX):
            out.append((prof, rho))
    return out
