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

# A group of flagged pixels whose light the other image holds over this share of is a star
# (a ray's pixels hold the sky there in the other image; a star's flank, much the same light
# however the two PSFs differ)
OTHER_SHARE = 0.5
# Above any value the data can hold: saturated pixels are masked before this step
_NO_SATURATION = float(np.finfo(np.float32).max)


def cosmic_ray_mask(data: np.ndarray, var: np.ndarray, bad: np.ndarray, *, fwhm: float,
                    other: np.ndarray | None = None, sigclip: float = 4.5, sigfrac: float = 0.3,
                    objlim: float = 5.0, niter: int = 1) -> np.ndarray:
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
    if other is None or not crmask.any():
        return crmask
    labels, n = ndimage.label(crmask, structure=np.ones((3, 3)))
    index = np.arange(1, n + 1)
    own = ndimage.sum(indat, labels, index)
    theirs = ndimage.sum(np.nan_to_num(other), labels, index)
    explained = np.concatenate([[False], theirs > OTHER_SHARE * own])
    return crmask & ~explained[labels]
