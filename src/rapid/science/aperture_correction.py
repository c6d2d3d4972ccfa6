"""Aperture correction of difference-image PSF fluxes, measured on the image's own stars.

A transient of flux f in the science image N appears in ZOGY's D as ``f kernel_n (x) Pn_true``
and is fitted with the model ``Pd``, built from the *model* Pn. Wherever the model differs from
the true PSF (a PSF estimated from stars of an undersampled image comes out too wide, and a
PSF file may be a few per cent off), the fitted flux is ``c f`` with ``c != 1``, for every
transient alike; the reference's PSF model enters the kernel and Pd alike and cancels.

``c`` is measured the way the survey's photometry would see it: each bright, unblended star of N
(its stamp, the size of the PSF model, which is normalised over that stamp, less the stamp's
background level) is taken as a transient of its own shape, put through the kernel, fitted
with the very estimator the candidates are measured with, and its fitted flux compared with
the star's light over the stamp (:func:`stamp_total`, which passes over fainter neighbours). The
inverse-variance weighted mean of those ratios, clipped, is ``c``. Galaxies among the stars
pull it low (their fits hold less of their light): those well below the point sources' group at
the top are left out first (:func:`point_source_locus`), clipping removes the rest, and on
simulated Roman fields with their true PSFs ``c`` comes out 0.99 +- 0.01. Fading candidates
(sources that faded from the reference) get the reference's ``c``, measured the same way on its
stars and the kernel applied to it. The difference step applies it where the PSF was estimated
from the image (``PhotometryConfig.aperture_correction``): a PSF file sets the flux scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from scipy import ndimage
from scipy.signal import fftconvolve
from scipy.spatial import cKDTree

from rapid.science.clipped_mean import clipped_weighted_mean
from rapid.science.image import FinePsf
from rapid.science.psf import fit_psf_fwhm

# Stars whose stamp sum is known to worse than this are no use for a per-cent correction
MAX_STAR_ERROR = 0.1
# Scatter allowed around the mean beyond each star's noise: the PSF varies a little over a field
STAR_SCATTER = 0.01
# A star with another source within its stamp, or this many FWHM beyond it, is not used: the
# neighbour's light is in the stamp's sum but not in the star's fit (in a crowded field most
# stars have one, and their ratios, 0.2-0.8, set the mean); a neighbour twenty times brighter
# one FWHM beyond the stamp still put a quarter of the star's flux into it
NEIGHBOUR_FWHMS = 3.0
# Detections closer than this (pixels) to a star are the star itself (in the other image)
SAME_SOURCE = 1.5
# Width, pixels, of a stamp's outer frame on which its background level is measured
EDGE_WIDTH = 4
# Radius, in FWHM of the difference PSF, within which a star's stamp is summed as it is; its
# light beyond is counted ring by ring (see stamp_total)
CORE_FWHMS = 1.5
# Fainter neighbours than this share of the star's flux are let be: what they put into its
# stamp is within the stars' scatter (STAR_SCATTER), and in a dense field every star has some
NEIGHBOUR_FLUX = 0.01
# Ratios further than this (or three of their own errors) below the top group's level are not
# point sources (see point_source_locus)
EXTENDED_DEFICIT = 0.1
# The top group's level: this quantile of the ratios, counted star by star (weighing them by
# their errors would let the brightest galaxies, the most precise values of all, set it)
TOP_QUANTILE = 0.75


@dataclass(frozen=True)
class ApertureCorrection:
    """Fitted over true flux of point sources through one difference kernel.

    Attributes
    ----------
    factor : float
        ``c``: divide PSF-fit fluxes (and their errors) by it.
    error : float
        1-sigma uncertainty of ``factor``.
    nstars : int
        Stars it was measured on (after clipping).
    """

    factor: float
    error: float
    nstars: int


def _star_cutout(image, var, bad, ix, iy, half):
    """Stamp of ``image`` centred on pixel (ix, iy) and its variance, or None when the stamp
    leaves the image or holds a bad pixel."""
    ny, nx = image.shape
    y0, y1, x0, x1 = iy - half, iy + half + 1, ix - half, ix + half + 1
    if y0 < 0 or x0 < 0 or y1 > ny or x1 > nx or bad[y0:y1, x0:x1].any():
        return None
    return (np.asarray(image[y0:y1, x0:x1], dtype=np.float64),
            np.asarray(var[y0:y1, x0:x1], dtype=np.float64))


def stamp_total(data: np.ndarray, var: np.ndarray, dx: float, dy: float, core: float,
                model: np.ndarray | None = None) -> tuple[float, float, float]:
    """A star's light over its stamp, its 1-sigma error, and the background level under it:
    free of most of its neighbours' light, and of what the image's background estimate left.

    Within ``core`` pixels of the star (at ``dx``, ``dy`` from the stamp's middle pixel) the
    pixels are summed; beyond, each ring one pixel wide counts the star's light in it as the
    PSF ``model`` puts it there, scaled to the total, plus the median of what the model leaves
    in the ring's pixels (the ring's pixels times their median without a model). A plain sum
    takes in the light of every faint source in the stamp, detected or not: in a field of
    2,000 stars on 1024^2 pixels the stamps of 25^2 pixels held 1-60% more than their star,
    and the correction came out 1.3% low. A neighbour fills a small arc of each ring it
    crosses, which the median passes over; so would a diffraction spike, which the model
    holds. The median of n noisy pixels has about pi/2 times the variance of their mean.

    The level is the median of what the model leaves on the stamp's outer ``EDGE_WIDTH``
    pixels, taken off every pixel. An image's background under its stars is what its
    estimate (a mesh of medians about masked sources) makes of the faint sources it did not
    mask: in a reference four times deeper than its science image, more of them were masked
    and their light stayed in the image, 2.5% of its stars' over 25^2 pixels.
    """
    h = data.shape[0] // 2
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    r = np.hypot(xx - dx, yy - dy)
    inner = r <= core
    centre = float(data[inner].sum())
    variance = float(var[inner].sum())
    ring = np.floor(r[~inner] - core).astype(int)
    values = data[~inner]
    shape = np.zeros_like(values)
    if model is not None and model.sum() > 0:
        moved = ndimage.shift(np.asarray(model, dtype=np.float64), (dy, dx), order=3,
                              mode="constant", cval=0.0)
        shape = moved[~inner] / moved.sum()
    rings = [ring == k for k in np.unique(ring)]
    frame = np.ones(data.shape, dtype=bool)
    frame[EDGE_WIDTH:-EDGE_WIDTH, EDGE_WIDTH:-EDGE_WIDTH] = False
    frame = frame[~inner]
    total, level = centre, 0.0
    for _ in range(3):  # the rings' share of the total, from the total before
        rest = values - total * shape
        level = float(np.median(rest[frame])) if frame.any() else 0.0
        total = centre - level * int(inner.sum()) + sum(
            total * float(shape[sel].sum())
            + int(sel.sum()) * (float(np.median(rest[sel])) - level) for sel in rings)
    variance += np.pi / 2 * float(var[~inner].sum())
    if frame.any():
        variance += np.pi / 2 * data.size**2 * float(var[~inner][frame].sum()) / frame.sum()**2
    return total, float(np.sqrt(variance)), level


def _crowded(x: np.ndarray, y: np.ndarray, sources: tuple[np.ndarray, ...],
             reach: float) -> np.ndarray:
    """Whether a source (x, y, flux) other than the star itself lies within ``reach`` pixels
    of it along both axes with over ``NEIGHBOUR_FLUX`` of its flux. The star's own flux is
    that of the brightest source within ``SAME_SOURCE`` pixels of it (the star as detected)."""
    out = np.zeros(len(x), dtype=bool)
    sx, sy, sf = (np.asarray(v, dtype=float) for v in sources)
    ok = np.isfinite(sx) & np.isfinite(sy) & np.isfinite(sf)
    if not ok.any():
        return out
    sx, sy, sf = sx[ok], sy[ok], sf[ok]
    near = cKDTree(np.column_stack([sx, sy])).query_ball_point(
        np.column_stack([x, y]), reach, p=np.inf)
    for k, idx in enumerate(near):
        if len(idx) < 2:
            continue
        idx = np.asarray(idx)
        same = np.hypot(sx[idx] - x[k], sy[idx] - y[k]) <= SAME_SOURCE
        own = sf[idx][same].max() if same.any() else 0.0
        out[k] = bool(np.any(sf[idx][~same] > NEIGHBOUR_FLUX * own))
    return out


def star_flux_ratios(
    image: np.ndarray, var: np.ndarray, bad: np.ndarray, x, y, *, stamp: int,
    kernel: np.ndarray, pd: np.ndarray, pd_fine: FinePsf | None, measure, units: float = 1.0,
    max_stars: int = 60, neighbours: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    psf: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fitted over true flux of each usable star, and its 1-sigma error (see module notes).

    Parameters
    ----------
    image, var, bad : ndarray
        Background-subtracted image on D's grid, its per-pixel variance, bad-pixel mask.
    x, y : array_like
        Positions of unsaturated stars (pixels, zero-based): the gain match's.
    stamp : int
        Odd side of the image's PSF model, over which it is normalised.
    kernel : ndarray
        Odd-sized kernel taking the image into D's units (D = kernel (x) image - ...).
    pd, pd_fine : ndarray, FinePsf or None
        D's PSF, and its fine sampling when there is one.
    measure : callable
        ``measure(D, D_unc, pd, table, psf_fine)`` -> table with a ``flux`` column: the
        candidates' photometry, so that the correction calibrates the estimator in use.
    units : float, optional
        Science units per unit of ``image`` (the flux ratio for the reference).
    max_stars : int, optional
        Only the stars with the most precise stamp sums are fitted (60): beyond a few dozen
        the 1% scatter between stars sets the precision, and each fit costs milliseconds.
    neighbours : (ndarray, ndarray, ndarray), optional
        Positions and fluxes of every detected source: a star with one of them inside its
        stamp (or ``NEIGHBOUR_FWHMS`` FWHM of ``pd`` beyond) and over ``NEIGHBOUR_FLUX`` of
        its flux is left out.
    psf : ndarray, optional
        The image's PSF model (``stamp`` square): where it puts a star's light beyond the
        core, in each ring (a diffraction spike), is counted as the star's (see
        :func:`stamp_total`); without it the rings are taken as round.

    Returns
    -------
    ratio, error : ndarray
        One value per star whose stamp lies on good pixels and whose sum is known to
        ``MAX_STAR_ERROR``; the error holds ``STAR_SCATTER`` besides the stamp's noise.
    """
    if stamp % 2 == 0 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"stamp {stamp} and kernel {kernel.shape} must be odd-sized")
    half = stamp // 2
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    tile_y, tile_x = stamp + 2 * ky, stamp + 2 * kx
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    crowded = np.zeros(len(x), dtype=bool)
    if psf is not None and psf.shape != (stamp, stamp):
        raise ValueError(f"psf has shape {psf.shape}, the stamp is {stamp}")
    fwhm = fit_psf_fwhm(pd)
    core = CORE_FWHMS * fwhm
    if neighbours is not None:
        crowded = _crowded(x, y, neighbours, half + NEIGHBOUR_FWHMS * fwhm)
    tiles, sums, errs, pos = [], [], [], []
    for xs, ys, other in zip(x, y, crowded):
        if other or not (np.isfinite(xs) and np.isfinite(ys)):
            continue
        ix, iy = int(np.floor(xs + 0.5)), int(np.floor(ys + 0.5))
        cut = _star_cutout(image, var, bad, ix, iy, half)
        if cut is None:
            continue
        data, v = cut
        total, error, level = stamp_total(data, v, xs - ix, ys - iy, core, psf)
        if not (total > 0 and error < MAX_STAR_ERROR * total):
            continue
        tiles.append(data - level)
        sums.append(total)
        errs.append(error / total)
        pos.append((xs - ix, ys - iy))
    if not tiles:
        return np.empty(0), np.empty(0)
    best = np.argsort(errs, kind="stable")[:max_stars]
    sums, errs, pos = ([seq[k] for k in best] for seq in (sums, errs, pos))
    # each star as a transient of its own shape, cut to the model's stamp, through the
    # kernel: 'full' keeps all of it
    tiles = [fftconvolve(tiles[k], kernel, mode="full") for k in best]
    # one row of tiles, apart by a margin wider than the fit box
    gap = max(tile_y, tile_x)
    mosaic = np.zeros((tile_y + 2 * gap, len(tiles) * (tile_x + gap) + gap))
    cx, cy = [], []
    for k, (t, (dx, dy)) in enumerate(zip(tiles, pos)):
        x0 = gap + k * (tile_x + gap)
        mosaic[gap:gap + tile_y, x0:x0 + tile_x] = t
        cx.append(x0 + tile_x // 2 + dx)
        cy.append(gap + tile_y // 2 + dy)
    # noiseless tiles: a tiny uniform error leaves the fit unweighted and its position bias nil
    unc = np.full(mosaic.shape, 1e-9 * float(np.max(np.abs(mosaic))))
    table = Table({"x": np.array(cx), "y": np.array(cy), "sign": np.ones(len(cx), np.int16)})
    fitted = np.asarray(measure(mosaic, unc, pd, table, pd_fine)["flux"], dtype=float)
    ratio = fitted / (np.array(sums) * units)
    return ratio, np.hypot(np.array(errs), STAR_SCATTER) * np.abs(ratio)


def point_source_locus(ratio, error) -> np.ndarray:
    """Which ratios belong to point sources: those not far below the top group.

    Whatever a star's fit misses (the light of an extended source, a neighbour's inside its
    stamp) lowers its ratio, and nothing but noise raises it, so the point sources are the
    group at the top wherever the model puts it. The gain match's stars are every source
    found in both images, and where galaxies outnumber the unblended stars (a field at high
    latitude, a crowded one whose stars all have neighbours) a mean, clipped or not, sits on
    the galaxies: on a simulated ground-based pair, five galaxies at 0.27-0.58 among nine
    sources made the correction 0.40 and every flux 2.5 times too high. The top group's level
    is the ``TOP_QUANTILE`` of the ratios; a ratio more than ``EXTENDED_DEFICIT`` (or three
    of its errors) below it is left out.
    """
    ratio = np.asarray(ratio, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    good = np.isfinite(ratio) & np.isfinite(error)
    if not good.any():
        return good
    top = float(np.quantile(ratio[good], TOP_QUANTILE))
    return good & (ratio >= top - np.maximum(EXTENDED_DEFICIT, 3.0 * error))


def combine_ratios(ratio, error, *, min_stars: int = 5,
                   clip_sigma: float = 3.0) -> ApertureCorrection | None:
    """The clipped inverse-variance weighted mean of the point sources' ratios
    (:func:`point_source_locus`, :func:`rapid.science.clipped_mean.clipped_weighted_mean`),
    or None with fewer than ``min_stars`` left."""
    ratio = np.asarray(ratio, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    point = point_source_locus(ratio, error)
    fit = clipped_weighted_mean(ratio[point], error[point], clip_sigma=clip_sigma,
                                min_count=min_stars)
    if not fit.ok:
        return None
    return ApertureCorrection(factor=fit.mean, error=fit.error, nstars=int(fit.used.sum()))
