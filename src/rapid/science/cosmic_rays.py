"""Cosmic rays in an image whose PSF is well sampled, found with L.A.Cosmic.

A cosmic ray that the data-quality mask does not flag is a new source in the difference image
(a fading one when it is in a reference taken in one exposure). One or two bright pixels are
told from a point source in D itself (:mod:`rapid.science.artifacts`), but a track (a particle
crossing the detector at a grazing angle, tens of pixels long) is many pixels: on a simulated
ground-based pair (1024x1024 pixels, Moffat PSF of 4.2 pixels FWHM) 40 unflagged tracks of 6-30
pixels left 26 false positives, and 60 in its reference 30 fading ones. L.A.Cosmic (van Dokkum
2001, PASP 113, 1420; the astroscrappy implementation) finds them by their sharpness: the
Laplacian of the image, against the noise and against a fine-structure image that holds a
star's own curvature. That test needs a PSF broader than a pixel or two: the core of an
undersampled star is as sharp as a cosmic ray (Roman H158: 1.4 pixels FWHM), so the step runs
only for a PSF at least ``CosmicRayConfig.min_fwhm`` wide. What it takes of stars in a deep
image, the other image of the pair gives back.
"""

from __future__ import annotations

import astroscrappy
import numpy as np
from scipy import ndimage

from rapid.science.badpixels import fill_bad_pixels
from rapid.science.phases import psf_at_phase

# A group of flagged pixels whose light the other image holds over this share of is a star
# (a ray's pixels hold the sky there in the other image; a star's flank, much the same light
# however the two PSFs differ)
OTHER_SHARE = 0.5
# A group of flagged pixels is a cosmic ray only when the light it holds beyond what a point
# source fitted to the pixels about it puts there is this many sigma ...
EXCESS_SIGMA = 5.0
# ... and this many times that source's own light there: a PSF model a few per cent off leaves
# a bright star's core many sigma above the fit, never twice its light
EXCESS_SHARE = 1.0
# ... unless no point source fits the pixels about the group (their chi-square per degree of
# freedom above this): a star's flank, a galaxy, a neighbour; L.A.Cosmic's call stands there
FIT_CHI2 = 2.0
# Above any value the data can hold: saturated pixels are masked before this step
_NO_SATURATION = float(np.finfo(np.float32).max)


def cosmic_ray_mask(data: np.ndarray, var: np.ndarray, bad: np.ndarray, *, fwhm: float,
                    other: np.ndarray | None = None, psf: np.ndarray | None = None,
                    sigclip: float = 4.5, sigfrac: float = 0.3, objlim: float = 5.0,
                    niter: int = 1) -> np.ndarray:
    """Pixels of ``data`` hit by cosmic rays (L.A.Cosmic), bad pixels left out.

    In a deep image (a reference of high S/N) L.A.Cosmic also takes the flanks of bright,
    blended stars: on a simulated coadd 12 times deeper than its science image, 363 pixels on
    about 20 stars. A cosmic ray is in one image only, a star in both: with ``other``, each
    connected group of flagged pixels that the other image explains (the other image holds
    over ``OTHER_SHARE`` of the group's light there) is let be.

    Parameters
    ----------
    data : ndarray
        Background-subtracted image (any units).
    var : ndarray
        Its per-pixel variance (units squared), source noise included where known: the
        noise the Laplacian is weighed against.
    bad : ndarray
        Pixels not to use (never flagged).
    fwhm : float
        The PSF's FWHM in pixels (for L.A.Cosmic's PSF-sized filters).
    other : ndarray, optional
        The other image of the pair on the same grid, background-subtracted and scaled to
        ``data``'s units (NaN where unknown).
    psf : ndarray, optional
        The image's PSF stamp (odd sides, centred): with it, each group must also hold light a
        point source cannot explain (:func:`sharper_than_psf`).
    sigclip, sigfrac, objlim, niter
        L.A.Cosmic's detection limit in sigma, the fraction of it that grows a detection into
        its neighbours, the contrast a cosmic ray has over a star's fine structure, and
        passes (see :class:`rapid.science.config.CosmicRayConfig`).

    Returns
    -------
    ndarray
        Boolean map of the cosmic-ray pixels.
    """
    if data.shape != var.shape or data.shape != bad.shape:
        raise ValueError(f"data {data.shape}, var {var.shape} and bad {bad.shape} differ")
    skip = bad | ~np.isfinite(data) | ~(var > 0)
    # the Laplacian reads masked pixels too: filled from their neighbours, a saturated core
    # does not make its rim an edge
    indat = fill_bad_pixels(data, skip).astype(np.float32) if skip.any() else \
        np.asarray(data, dtype=np.float32)
    # a bad pixel's variance is never weighed, but the median filters read it
    invar = np.where(skip, float(np.median(var[~skip])) if (~skip).any() else 1.0,
                     var).astype(np.float32)
    psfsize = max(7, 2 * int(np.ceil(1.5 * fwhm)) + 1)
    crmask, _ = astroscrappy.detect_cosmics(
        indat, inmask=skip, invar=invar, sigclip=sigclip, sigfrac=sigfrac, objlim=objlim,
        gain=1.0, readnoise=0.0, satlevel=_NO_SATURATION, niter=int(niter), sepmed=True,
        psffwhm=float(fwhm), psfsize=psfsize)
    crmask = np.asarray(crmask, dtype=bool) & ~skip
    if (other is None and psf is None) or not crmask.any():
        return crmask
    labels, n = ndimage.label(crmask, structure=np.ones((3, 3)))
    keep = np.ones(n + 1, dtype=bool)
    keep[0] = False
    if other is not None:
        index = np.arange(1, n + 1)
        own = ndimage.sum(indat, labels, index)
        theirs = ndimage.sum(np.nan_to_num(other), labels, index)
        keep[1:] &= ~(theirs > OTHER_SHARE * own)
    if psf is not None:
        keep[1:] &= sharper_than_psf(indat, var, skip, labels, psf, fwhm)
    return crmask & keep[labels]


def sharper_than_psf(data: np.ndarray, var: np.ndarray, skip: np.ndarray, labels: np.ndarray,
                     psf: np.ndarray, fwhm: float) -> np.ndarray:
    """For each labelled group of flagged pixels, whether it holds light no point source does.

    L.A.Cosmic's Laplacian also fires where noise lifts the brightest pixel of a faint source
    (S/N 10-15): on simulated pairs without any cosmic ray, 20-60 pixels a megapixel were
    flagged, two of them on new sources at S/N 13-14, which their masks then hid. A source's
    light goes on past its flagged pixels as the PSF says; a ray's stops at them. So a point
    source is fitted to the unflagged pixels within 1.5 FWHM of the group's brightest pixel
    (at the centroid of the 3 x 3 pixels about it), and the group is a ray only when the light
    its pixels hold over that fit is ``EXCESS_SIGMA`` sigma (the pixels' noise and the fit's)
    and ``EXCESS_SHARE`` times what the fit puts there. Where the fit fails (chi-square per
    degree of freedom over ``FIT_CHI2``: a track across a star's flank), the group stays a ray.

    Parameters
    ----------
    data, var : ndarray
        Background-subtracted image with its bad pixels filled, and its variance.
    skip : ndarray
        Pixels not to fit.
    labels : ndarray
        Groups of flagged pixels, numbered from 1 (0 elsewhere).
    psf : ndarray
        PSF stamp, odd sides, centred.
    fwhm : float
        Its FWHM, pixels.

    Returns
    -------
    ndarray
        One boolean per group (label 1 first).
    """
    psf = np.asarray(psf, dtype=np.float64)
    half = min(max(3, int(np.ceil(1.5 * fwhm))), psf.shape[0] // 2, psf.shape[1] // 2)
    cy, cx = psf.shape[0] // 2, psf.shape[1] // 2
    ny, nx = data.shape
    flagged = labels > 0
    out = np.ones(int(labels.max()), dtype=bool)
    for k, box in enumerate(ndimage.find_objects(labels)):
        if box is None:
            continue
        member = labels[box] == k + 1
        iy, ix = np.unravel_index(np.argmax(np.where(member, data[box], -np.inf)), member.shape)
        py, px = iy + box[0].start, ix + box[1].start
        y0, y1, x0, x1 = max(py - 1, 0), min(py + 2, ny), max(px - 1, 0), min(px + 2, nx)
        core = np.clip(data[y0:y1, x0:x1], 0.0, None)
        total = core.sum()
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dy = float((core * yy).sum() / total) - py if total > 0 else 0.0
        dx = float((core * xx).sum() / total) - px if total > 0 else 0.0
        model = psf_at_phase(psf, None, dx, dy)
        wy0, wy1, wx0, wx1 = max(py - half, 0), min(py + half + 1, ny), \
            max(px - half, 0), min(px + half + 1, nx)
        win = np.s_[wy0:wy1, wx0:wx1]
        p = model[cy - (py - wy0):cy + (wy1 - py), cx - (px - wx0):cx + (wx1 - px)]
        d, v = data[win].astype(np.float64), var[win].astype(np.float64)
        inside = (labels[win] == k + 1) & ~skip[win]
        outside = ~flagged[win] & ~skip[win] & (v > 0)
        if not inside.any():
            continue
        w = np.where(outside, 1.0 / np.where(v > 0, v, 1.0), 0.0)
        norm = float((w * p * p).sum())
        if norm <= 0:  # nothing about the group to fit: L.A.Cosmic's call stands
            continue
        amp = float((w * p * d).sum()) / norm
        dof = int(outside.sum()) - 1
        if dof < 1 or float((w * (d - amp * p) ** 2).sum()) > FIT_CHI2 * dof:
            continue
        expected = amp * p[inside].sum()
        excess = float(d[inside].sum()) - expected
        noise = np.sqrt(float(v[inside].sum()) + p[inside].sum() ** 2 / norm)
        out[k] = excess > EXCESS_SIGMA * noise and excess > EXCESS_SHARE * max(expected, 0.0)
    return out
