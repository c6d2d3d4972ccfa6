"""Candidates in the residual pattern of a bright static star, told by Scorr's noise around it.

ZOGY subtracts a static star exactly only with the two images' true PSFs. What the models miss
is left in D, and Scorr weighs it with the flux-noise term (:func:`rapid.science.zogy.zogy`),
whose reach is the star's own matched filter: its core. The whitening of D carries a model's
error further out, as spots and spikes of both signs several PSF widths from the star. The
detection threshold is relative to Scorr's noise over the whole image, which these few areas do
not move. With PSFs estimated by stacking Roman's undersampled stars, most false positives of a
1024x1024 survey were such spots around bright stars, 7-15 pixels out: 6.6 per image, against
0.6 with the PSF files.

Each bright static point source near a candidate (``BRIGHTER`` times its flux or more, the
candidate between ``INNER`` and ``OUTER`` FWHM of D's PSF from it) gets its own noise level:
the 95th percentile of ``|Scorr|`` over the ring about it at the candidate's distance (``RING``
FWHM each way, within ``INNER`` of the star left out), over the 1.96 it is for unit Gaussian
noise (the candidate's own surroundings left out). A candidate must pass the threshold times the
largest such level that stands out of the scatter of plain noise (``MIN_LEVEL``). Spots cover a
few per cent of a ring, enough to move its 95th percentile and too few for a median or a median
absolute deviation. Where the models describe the star, the ring holds plain noise, its level is
about 1, and nothing changes.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

from rapid.science.psf import fit_psf_fwhm

# The annulus about a star, in FWHM of D's PSF: beyond the core, which the flux-noise term
# weighs, out to where the whitened residuals of a PSF stamp end
INNER = 1.5
OUTER = 8.0
# Half-width of the ring about the star, at the candidate's distance, whose noise it is held
# to, in FWHM of D's PSF
RING = 2.0
# A static source this many times brighter than the candidate can leave spots as bright: the
# spots of Roman's stacked PSFs held 1/180-1/900 of their star's flux, while transients on a
# simulated ground-based pair lay 5-8 FWHM from stars 40-90 times brighter (and a threshold
# raised by those stars' spots lost 4 of them with 20)
BRIGHTER = 150.0
# Pixels within this many FWHM of the candidate are its own, not the star's noise
OWN = 2.0
# Fewest annulus pixels with data for a level
MIN_PIXELS = 50
# Lower levels count as 1: a 95th percentile over a few hundred pixels of plain noise scatters
# by 7%, and an annulus in a crowded field holds the small residuals of fainter sources too
# (levels of 1.03-1.13 about most candidates of a simulated ground-based pair); the spots of a
# misfit PSF give 1.7-2.5
MIN_LEVEL = 1.25
# A source whose light within one FWHM of its centre is less than this share of what the PSF
# holds there (both over the light within three FWHM) is extended: a galaxy's residual is left
# to the flux-noise term, or a transient on its outskirts would be held to it (two of 40 on a
# simulated ground-based pair, at S/N 8 and 14)
POINT_CONCENTRATION = 0.8
# |x| of unit Gaussian noise exceeds this 5% of the time
_Q95 = 1.959964


def concentration(image: np.ndarray, x: float, y: float, fwhm: float) -> float:
    """Light within ``fwhm`` of (x, y) over light within ``3 fwhm`` (NaN pixels left out;
    NaN off the image or without light)."""
    ny, nx = image.shape
    r = int(np.ceil(3 * fwhm))
    ix, iy = int(round(x)), int(round(y))
    if ix - r < 0 or iy - r < 0 or ix + r >= nx or iy + r >= ny:
        return float("nan")
    cut = np.nan_to_num(image[iy - r:iy + r + 1, ix - r:ix + r + 1].astype(np.float64))
    yy, xx = np.mgrid[iy - r:iy + r + 1, ix - r:ix + r + 1]
    d = np.hypot(xx - x, yy - y)
    total = cut[d <= 3 * fwhm].sum()
    return float(cut[d <= fwhm].sum() / total) if total > 0 else float("nan")


def annulus_level(scorr: np.ndarray, mask: np.ndarray, cx: float, cy: float, *,
                  inner: float, outer: float, skip_x: float, skip_y: float,
                  skip_r: float) -> float:
    """The 95th percentile of ``|scorr|`` over ``1.96``, on the unmasked pixels between
    ``inner`` and ``outer`` pixels from (cx, cy), less those within ``skip_r`` of
    (skip_x, skip_y); 1 with fewer than ``MIN_PIXELS`` such pixels."""
    ny, nx = scorr.shape
    r = int(np.ceil(outer))
    x0, x1 = max(int(np.floor(cx)) - r, 0), min(int(np.ceil(cx)) + r + 1, nx)
    y0, y1 = max(int(np.floor(cy)) - r, 0), min(int(np.ceil(cy)) + r + 1, ny)
    if x1 <= x0 or y1 <= y0:
        return 1.0
    yy, xx = np.mgrid[y0:y1, x0:x1]
    d = np.hypot(xx - cx, yy - cy)
    use = ((d >= inner) & (d <= outer) & ~mask[y0:y1, x0:x1]
           & (np.hypot(xx - skip_x, yy - skip_y) > skip_r))
    if use.sum() < MIN_PIXELS:
        return 1.0
    return float(np.quantile(np.abs(scorr[y0:y1, x0:x1][use]), 0.95)) / _Q95


def residual_levels(table: Table, scorr: np.ndarray, mask: np.ndarray,
                    sources: tuple[np.ndarray, np.ndarray, np.ndarray], *, fwhm: float,
                    image: np.ndarray, psf: np.ndarray,
                    psf_fwhm: float | None = None) -> np.ndarray:
    """Per candidate, the largest Scorr noise level (see the module's text) of the bright static
    sources whose annulus holds it; 1 where there is none, or none reaches ``MIN_LEVEL``.

    Parameters
    ----------
    table : astropy.table.Table
        Measured candidates with x, y and flux (>= 0, science units).
    scorr : ndarray
        Scorr (0 where masked).
    mask : ndarray
        Masked pixels.
    sources : (ndarray, ndarray, ndarray)
        Positions and fluxes (science units) of the sources of both images (the gain
        match's).
    fwhm : float
        FWHM of D's PSF, pixels.
    image, psf : ndarray
        The science image (background-subtracted) and its PSF, which tell point sources
        (``POINT_CONCENTRATION``) from extended ones.
    psf_fwhm : float, optional
        The FWHM of ``psf`` when the caller has it (else fitted here).
    """
    levels = np.ones(len(table))
    sx, sy, sf = (np.asarray(v, dtype=float) for v in sources)
    ok = np.isfinite(sx) & np.isfinite(sy) & np.isfinite(sf)
    if not len(table) or not ok.any():
        return levels
    sx, sy, sf = sx[ok], sy[ok], sf[ok]
    inner, outer = INNER * fwhm, OUTER * fwhm
    x = np.asarray(table["x"], dtype=float)
    y = np.asarray(table["y"], dtype=float)
    flux = np.nan_to_num(np.abs(np.asarray(table["flux"], dtype=float)))
    psf_fwhm = fit_psf_fwhm(psf) if psf_fwhm is None else psf_fwhm
    c = psf.shape[0] // 2
    least = POINT_CONCENTRATION * concentration(psf, c, c, psf_fwhm)
    point: dict[int, bool] = {}  # a source near several candidates is looked at once

    def is_point(j: int) -> bool:
        if j not in point:
            point[j] = bool(concentration(image, sx[j], sy[j], psf_fwhm) >= least)
        return point[j]

    tree = cKDTree(np.column_stack([sx, sy]))
    for i, near in enumerate(tree.query_ball_point(np.column_stack([x, y]), outer)):
        for j in near:
            if sf[j] < BRIGHTER * flux[i] or np.hypot(sx[j] - x[i], sy[j] - y[i]) < inner:
                continue
            if not is_point(j):
                continue
            # the ring about the star at the candidate's distance: spots fade with distance,
            # and a candidate beyond them is not held to their level
            d = float(np.hypot(sx[j] - x[i], sy[j] - y[i]))
            level = annulus_level(scorr, mask, sx[j], sy[j], inner=max(inner, d - RING * fwhm),
                                  outer=d + RING * fwhm, skip_x=x[i], skip_y=y[i],
                                  skip_r=OWN * fwhm)
            if level >= MIN_LEVEL:
                levels[i] = max(levels[i], level)
    return levels
