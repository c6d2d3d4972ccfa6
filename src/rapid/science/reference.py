"""Reference images: prior frames of a sky tile coadded onto the tile's north-up TAN grid.

RAPID builds a reference for (field, filter) from 3..25 earlier frames: each frame is scaled to
the reference zero point (17.0), background-subtracted, resampled onto a 7000 x 7000 grid at
0.11"/px centred on the tile, and the stack is averaged with inverse-variance weights after
per-pixel outlier rejection, so that cosmic rays, transients and movers seen in one frame do not
survive. The output carries a coverage map and an uncertainty map.

The uncertainty map is 1/sqrt(sum of inverse-variance weights) of the frames' own noise: the
uncertainty of sums over a few pixels (apertures, PSF fits) divided per pixel. Resampling
correlates neighbouring pixels, so the rms measured pixel by pixel is lower, by a factor 0.75..1
(0.88 on average over sub-pixel phases, see
:func:`rapid.science.psf_transform.interpolation_variance_factor`).

Memory stays flat: the output is built in blocks of ``block_rows`` rows, and each frame is
resampled only over the tiles of the block it covers (see :mod:`rapid.science.coadd`), so at most
(frames x block_rows x width) float32 values and weights are held at once (25 x 512 x 7000 x 8 B
= 0.7 GB), plus the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from rapid.science.coadd import FramePlan, combine_stack, plan_frame, resample_tile, shifted_wcs
from rapid.science.image import Frame
from rapid.science.refqa import extract_sources, fwhm_stats, image_stats, source_table
from rapid.science.psf_transform import local_jacobian, transform_psf

__all__ = ["ReferenceImage", "tile_grid_wcs", "build_reference", "reference_catalog"]

# Output rows combined at once: bounds the rejection temporaries to a few (frames x rows x width).
_COMBINE_ROWS = 64


@dataclass
class ReferenceImage:
    """A reference coadd with its coverage and quality figures.

    Attributes
    ----------
    frame : Frame
        The coadd (DN/s at the reference zero point) with ``wcs`` (the tile grid, possibly
        cropped), ``psf`` (normalised to 1), ``unc`` (1/sqrt(sum of weights)) and ``mask``
        (True where coverage is 0).
    coverage : ndarray
        int16 number of frames contributing to each pixel after outlier rejection.
    nframes : int
        Number of input frames used.
    rejected : int
        Number of rejected pixel samples.
    meta : dict
        RAPID's refimmeta fields (see :func:`build_reference`).
    """

    frame: Frame
    coverage: np.ndarray
    nframes: int
    rejected: int
    meta: dict[str, Any] = field(default_factory=dict)


def tile_grid_wcs(ra0: float, dec0: float, *, size: int = 7000,
                  scale_arcsec: float = 0.11) -> WCS:
    """The north-up, east-left TAN grid of a sky tile.

    Parameters
    ----------
    ra0, dec0 : float
        Tile centre in degrees (CRVAL).
    size : int, optional
        Grid size in pixels on each side (default 7000).
    scale_arcsec : float, optional
        Pixel scale in arcseconds (default 0.11).

    Returns
    -------
    astropy.wcs.WCS
        CRPIX at the grid centre, (size + 1) / 2 in FITS 1-based pixels.
    """
    if not np.isfinite(ra0):
        raise ValueError(f"ra0 must be finite, got {ra0}")
    if not (np.isfinite(dec0) and -90 <= dec0 <= 90):
        raise ValueError(f"dec0 must be in [-90, 90], got {dec0}")
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer, got {size}")
    if not (np.isfinite(scale_arcsec) and scale_arcsec > 0):
        raise ValueError(f"scale_arcsec must be positive, got {scale_arcsec}")
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [float(ra0) % 360.0, float(dec0)]
    w.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    s = scale_arcsec / 3600.0
    w.wcs.cdelt = [-s, s]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    w.pixel_shape = (int(size), int(size))
    return w


def _check_frames(frames, min_frames: int, max_frames: int) -> list[Frame]:
    if min_frames < 1 or max_frames < min_frames:
        raise ValueError(f"need 1 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
    if not isinstance(frames, Sequence):
        frames = list(frames)
    if len(frames) < min_frames:
        raise ValueError(f"frames: need at least {min_frames} frames, got {len(frames)}")
    frames = list(frames[:max_frames])
    for i, f in enumerate(frames):
        if not isinstance(f, Frame):
            raise ValueError(f"frames[{i}] is not a Frame ({type(f).__name__})")
        if "zptmag" not in f.meta or not np.isfinite(float(f.meta["zptmag"])):
            raise ValueError(f"frames[{i}].meta has no finite 'zptmag'")
    return frames


def _reference_psf(plans: list[FramePlan], grid_wcs: WCS) -> np.ndarray | None:
    """Weighted mean of the input PSFs turned into the grid frame, normalised to 1."""
    stamps, weights = [], []
    for p in plans:
        if p.frame.psf is None:
            continue
        sy, sx = p.frame.shape
        jac = local_jacobian(p.frame.wcs, grid_wcs, ((sy - 1) / 2, (sx - 1) / 2))
        psf = transform_psf(p.frame.psf, jac).astype(np.float64)
        s = psf.sum()
        if not np.isfinite(s) or s <= 0:
            continue
        # Weight of the frame in the coadd: inverse variance of its background, scaled.
        if p.frame.unc is not None:
            sigma = np.nanmedian(p.frame.unc[~p.bad]) if (~p.bad).any() else np.nan
        else:
            sigma = float(np.median(p.background.rms(0, sy, 0, sx)))
        w = 1.0 / (sigma * p.scale) ** 2 if np.isfinite(sigma) and sigma > 0 else 1.0
        stamps.append(psf / s)
        weights.append(w)
    if not stamps:
        return None
    ny = max(s.shape[0] for s in stamps)
    nx = max(s.shape[1] for s in stamps)
    acc = np.zeros((ny, nx))
    for s, w in zip(stamps, weights):
        oy, ox = (ny - s.shape[0]) // 2, (nx - s.shape[1]) // 2
        acc[oy:oy + s.shape[0], ox:ox + s.shape[1]] += w * s
    return (acc / acc.sum()).astype(np.float32)


def build_reference(
    frames: Sequence[Frame],
    *,
    ra0: float,
    dec0: float,
    size: int = 7000,
    scale_arcsec: float = 0.11,
    zero_point: float = 17.0,
    clip_sigma: float = 3.0,
    block_rows: int = 512,
    crop: bool = True,
    min_frames: int = 3,
    max_frames: int = 25,
    step: int = 32,
) -> ReferenceImage:
    """Coadd prior frames of a tile into a reference image.

    Parameters
    ----------
    frames : sequence of Frame
        Inputs in DN/s with ``meta['zptmag']``; ``unc`` (else the background rms is used), ``psf``,
        ``mask``, and optionally ``meta['mjdobs']`` and ``meta['saturation']`` (DN/s). Only the
        first ``max_frames`` are used.
    ra0, dec0 : float
        Tile centre in degrees.
    size : int, optional
        Tile grid size in pixels (default 7000).
    scale_arcsec : float, optional
        Grid pixel scale (default 0.11).
    zero_point : float, optional
        Zero point of the output in magnitudes (default 17.0); frame i is multiplied by
        10**(0.4 (zero_point - zptmag_i)).
    clip_sigma : float, optional
        Outlier rejection threshold in sigma (default 3.0), see
        :func:`rapid.science.coadd.combine_stack`.
    block_rows : int, optional
        Output rows (and tile columns) processed at once (default 512).
    crop : bool, optional
        Cover only the bounding box of the inputs' footprints on the grid (default True); the
        WCS is then the tile grid's with CRPIX shifted, so pixels stay on the same grid.
    min_frames, max_frames : int, optional
        Allowed number of frames (defaults 3 and 25).
    step : int, optional
        Coarse pixel-map spacing (default 32).

    Returns
    -------
    ReferenceImage
        ``meta`` holds nframes, mjdobsmin, mjdobsmax, npixsat, npixnan, clmean, clstddev,
        clnoutliers, gmedian, gmin, gmax, cov5percent, medncov, medpixunc, fwhmmed, fwhmmin,
        fwhmmax, nsexcatsources, plus zero_point, x0 and y0 (the crop's origin on the grid)
        and rids (``meta['rid']`` of the frames used, where given).

    Raises
    ------
    ValueError
        With fewer than ``min_frames`` frames, or fewer than ``min_frames`` overlapping the tile.
    """
    frames = _check_frames(frames, min_frames, max_frames)
    if int(block_rows) < 16:
        raise ValueError(f"block_rows must be >= 16, got {block_rows}")
    if not (np.isfinite(clip_sigma) and clip_sigma > 0):
        raise ValueError(f"clip_sigma must be positive, got {clip_sigma}")
    block_rows = int(block_rows)
    grid = tile_grid_wcs(ra0, dec0, size=size, scale_arcsec=scale_arcsec)
    grid_shape = (int(size), int(size))

    plans = [plan_frame(f, i, grid, grid_shape, zero_point=zero_point, step=step)
             for i, f in enumerate(frames)]
    plans = [p for p in plans if p is not None]
    if len(plans) < min_frames:
        raise ValueError(f"frames: only {len(plans)} of {len(frames)} frames overlap the tile, "
                         f"need {min_frames}")
    if crop:
        y0 = min(p.bbox[0] for p in plans)
        y1 = max(p.bbox[1] for p in plans)
        x0 = min(p.bbox[2] for p in plans)
        x1 = max(p.bbox[3] for p in plans)
    else:
        y0, y1, x0, x1 = 0, grid_shape[0], 0, grid_shape[1]
    ny, nx = y1 - y0, x1 - x0

    data = np.full((ny, nx), np.nan, dtype=np.float32)
    unc = np.full((ny, nx), np.nan, dtype=np.float32)
    coverage = np.zeros((ny, nx), dtype=np.int16)
    saturated = np.zeros((ny, nx), dtype=bool)
    rejected = 0
    for gy0 in range(y0, y1, block_rows):
        gy1 = min(y1, gy0 + block_rows)
        stack_v, stack_w = [], []
        for p in plans:
            py0, py1, px0, px1 = p.bbox
            ty0, ty1 = max(gy0, py0), min(gy1, py1)
            if ty0 >= ty1:
                continue
            vals = np.full((gy1 - gy0, nx), np.nan, dtype=np.float32)
            wts = np.zeros((gy1 - gy0, nx), dtype=np.float32)
            touched = False
            for tx0 in range(px0, px1, block_rows):
                tx1 = min(px1, tx0 + block_rows)
                v, w, sat = resample_tile(p, ty0, ty1, tx0, tx1)
                if v is None:
                    continue
                touched = True
                rows = slice(ty0 - gy0, ty1 - gy0)
                cols = slice(tx0 - x0, tx1 - x0)
                vals[rows, cols] = v
                wts[rows, cols] = w
                if sat is not None:
                    saturated[ty0 - y0:ty1 - y0, cols] |= sat
            if touched:
                stack_v.append(vals)
                stack_w.append(wts)
        if not stack_v:
            continue
        stack_v = np.stack(stack_v)
        stack_w = np.stack(stack_w)
        for r0 in range(0, gy1 - gy0, _COMBINE_ROWS):
            r1 = min(gy1 - gy0, r0 + _COMBINE_ROWS)
            mean, sumw, count, nrej = combine_stack(stack_v[:, r0:r1], stack_w[:, r0:r1],
                                                    clip_sigma=clip_sigma)
            out_rows = slice(gy0 - y0 + r0, gy0 - y0 + r1)
            data[out_rows] = mean
            with np.errstate(divide="ignore"):
                unc[out_rows] = np.where(sumw > 0, 1.0 / np.sqrt(sumw), np.nan)
            coverage[out_rows] = count
            rejected += nrej
        del stack_v, stack_w

    out_wcs = shifted_wcs(grid, y0, x0)
    out_wcs.pixel_shape = (nx, ny)
    frame = Frame(data=data, wcs=out_wcs, psf=_reference_psf(plans, grid), unc=unc,
                  mask=coverage == 0,
                  meta={"zptmag": float(zero_point), "filter": frames[0].meta.get("filter")})
    ref = ReferenceImage(frame=frame, coverage=coverage, nframes=len(plans), rejected=rejected)
    ref.meta = _refimmeta(ref, plans, saturated, x0=x0, y0=y0, zero_point=zero_point)
    return ref


def _refimmeta(ref: ReferenceImage, plans: list[FramePlan], saturated: np.ndarray, *,
               x0: int, y0: int, zero_point: float) -> dict[str, Any]:
    mjds = [float(p.frame.meta["mjdobs"]) for p in plans if "mjdobs" in p.frame.meta]
    meta: dict[str, Any] = {
        "nframes": ref.nframes,
        "mjdobsmin": min(mjds) if mjds else None,
        "mjdobsmax": max(mjds) if mjds else None,
        "npixsat": int(saturated.sum()),
    }
    meta.update(image_stats(ref.frame.data, ref.frame.unc, ref.coverage))
    cat = reference_catalog(ref)
    meta["fwhmmed"], meta["fwhmmin"], meta["fwhmmax"] = fwhm_stats(cat)
    meta["nsexcatsources"] = len(cat)
    meta["zero_point"] = float(zero_point)
    meta["x0"], meta["y0"] = int(x0), int(y0)
    meta["rids"] = [p.frame.meta["rid"] for p in plans if "rid" in p.frame.meta]
    return meta


def reference_catalog(ref: ReferenceImage, *, thresh: float = 3.0, minarea: int = 5) -> Table:
    """Source extraction catalog of a reference image (RAPID cattype 1).

    Parameters
    ----------
    ref : ReferenceImage
        The reference.
    thresh : float, optional
        sep detection threshold in units of the uncertainty map (default 3).
    minarea : int, optional
        Minimum connected pixels (default 5).

    Returns
    -------
    astropy.table.Table
        Columns x, y (zero-based pixels of ``ref.frame``), ra, dec (degrees), flux, flux_err
        (aperture of radius :data:`rapid.science.refqa.APERTURE_RADIUS` pixels), fwhm (pixels)
        and flags; ``meta['cattype'] = 1``.
    """
    if not isinstance(ref, ReferenceImage):
        raise ValueError(f"ref must be a ReferenceImage, got {type(ref).__name__}")
    f = ref.frame
    objects, img, err, bad = extract_sources(f.data, f.unc, f.mask, thresh=thresh,
                                             minarea=minarea)
    return source_table(objects, img, err, bad, f.wcs)
