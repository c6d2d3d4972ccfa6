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

Memory stays flat: frames may be given as zero-argument loaders and are read one at a time;
each is resampled once onto its footprint (see :func:`rapid.science.coadd.resample_footprint`)
and its float32 values and weights are written to a temporary folder, after which the frame is
dropped. The stack is then combined ``block_rows`` output rows at a time from those files, so at
most (frames x block_rows x width) float32 values and weights are held at once (25 x 128 x 7000 x
8 B = 0.18 GB), plus one input frame and the output.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from rapid.science.coadd import (
    FramePlan,
    plan_frame,
    resample_footprint,
    shifted_wcs,
)
from rapid.science.image import Frame
from rapid.science.pixel_integration import noise_factor
from rapid.science.refqa import extract_sources, fwhm_stats, image_stats, source_table
from rapid.science.resample import resampled_psf
from rapid.science.stack import combine_stack

__all__ = ["ReferenceImage", "FrameSource", "tile_grid_wcs", "build_reference", "reference_catalog"]

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
    catalog : astropy.table.Table or None
        The source catalog made for the refimmeta figures with :func:`reference_catalog`'s
        defaults, kept so that it is not extracted twice.
    """

    frame: Frame
    coverage: np.ndarray
    nframes: int
    rejected: int
    meta: dict[str, Any] = field(default_factory=dict)
    catalog: Table | None = None


#: An input of :func:`build_reference`: a Frame, or a zero-argument callable returning one.
FrameSource = Union[Frame, Callable[[], Frame]]


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


def _load(item: FrameSource, i: int) -> Frame:
    frame = item() if callable(item) and not isinstance(item, Frame) else item
    if not isinstance(frame, Frame):
        raise ValueError(f"frames[{i}] is not a Frame nor a loader of one ({type(frame).__name__})")
    if "zptmag" not in frame.meta or not np.isfinite(float(frame.meta["zptmag"])):
        raise ValueError(f"frames[{i}].meta has no finite 'zptmag'")
    return frame


def _frame_psf(plan: FramePlan, grid_wcs: WCS, order: int):
    """The frame's PSF turned into the grid frame and normalised, with its coadd weight."""
    if plan.frame.psf is None:
        return None
    sy, sx = plan.frame.shape
    psf = resampled_psf(plan.frame.psf, plan.frame.wcs, plan.frame.shape, grid_wcs, plan.cmap,
                        order=order).astype(np.float64)
    s = psf.sum()
    if not np.isfinite(s) or s <= 0:
        return None
    # Weight of the frame in the coadd: inverse variance of its background, scaled; the median
    # of every 4th row and column (a million values for a full SCA) is as good as all of them.
    if plan.frame.unc is not None:
        unc = plan.frame.unc[::4, ::4][~plan.bad[::4, ::4]]
        sigma = float(np.nanmedian(unc)) if unc.size else np.nan
    else:
        sigma = float(np.median(plan.background.rms(0, sy, 0, sx)[::4, ::4]))
    cov = plan.cmap.integration_cov
    if cov is not None:  # integration averaged the noise, as it did the coadd's weights
        sigma *= noise_factor(cov)
    w = 1.0 / (sigma * plan.scale) ** 2 if np.isfinite(sigma) and sigma > 0 else 1.0
    return psf / s, w


def _reference_psf(parts) -> np.ndarray | None:
    """Weighted mean of the input PSFs (already in the grid frame), normalised to 1."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    ny = max(s.shape[0] for s, _ in parts)
    nx = max(s.shape[1] for s, _ in parts)
    acc = np.zeros((ny, nx))
    for s, w in parts:
        oy, ox = (ny - s.shape[0]) // 2, (nx - s.shape[1]) // 2
        acc[oy:oy + s.shape[0], ox:ox + s.shape[1]] += w * s
    return (acc / acc.sum()).astype(np.float32)


def _span_mask(first: np.ndarray, last: np.ndarray, width: int) -> np.ndarray:
    """Boolean (rows, width) map, True in each row from column ``first`` to ``last`` (excluded)."""
    cols = np.arange(width)
    return (cols >= first[:, None]) & (cols < last[:, None])


@dataclass
class _Stored:
    """One frame resampled onto its footprint, kept as two raw float32 files.

    Only each row's span of valid pixels is written (from the first to the last pixel with a
    weight), row after row: a frame rotated against the grid fills about half of its bounding
    box, and the other half would be written and read back as NaN.
    """

    bbox: tuple[int, int, int, int]
    values: str
    weights: str
    first: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    def spans(self, r0: int, r1: int) -> np.ndarray:
        """Boolean map of the stored pixels of footprint rows ``r0:r1`` (bbox columns)."""
        return _span_mask(self.first[r0:r1], self.last[r0:r1], self.bbox[3] - self.bbox[2])

    def read(self, path: str, r0: int, r1: int) -> np.ndarray:
        """The stored pixels of footprint rows ``r0:r1``, row after row (see :meth:`spans`)."""
        start = int(self.offset[r0])
        return np.fromfile(path, dtype=np.float32, count=int(self.offset[r1]) - start,
                           offset=start * 4)


def _store_frame(plan: FramePlan, folder: str, *, order: int,
                 saturated_grid: np.ndarray) -> _Stored:
    """Resample one frame and write its values and weights to ``folder``."""
    by0, by1, bx0, bx1 = plan.bbox
    stored = _Stored(plan.bbox, os.path.join(folder, f"v{plan.index}.f32"),
                     os.path.join(folder, f"w{plan.index}.f32"))
    first = np.zeros(by1 - by0, dtype=np.int64)
    last = np.zeros(by1 - by0, dtype=np.int64)
    # Plain file writes rather than memory maps: mapped pages would count as the job's memory.
    with open(stored.values, "wb") as fv, open(stored.weights, "wb") as fw:
        for block in resample_footprint(plan, order=order):
            r0, r1 = block.r0, block.r0 + len(block.first)
            first[r0:r1], last[r0:r1] = block.first, block.last
            block.values.tofile(fv)
            block.weights.tofile(fw)
            if block.saturated is not None:
                saturated_grid[by0 + r0:by0 + r1, bx0:bx1] |= block.saturated
    stored.first, stored.last = first, last
    stored.offset = np.concatenate([[0], np.cumsum(last - first)])
    return stored


def build_reference(
    frames: Iterable[FrameSource],
    *,
    ra0: float,
    dec0: float,
    size: int = 7000,
    scale_arcsec: float = 0.11,
    zero_point: float = 17.0,
    clip_sigma: float = 3.0,
    block_rows: int = 128,
    crop: bool = True,
    min_frames: int = 3,
    max_frames: int = 25,
    step: int = 32,
    order: int = 3,
    workdir: str | None = None,
) -> ReferenceImage:
    """Coadd prior frames of a tile into a reference image.

    Parameters
    ----------
    frames : iterable of Frame or of zero-argument callables returning a Frame
        Inputs in DN/s with ``meta['zptmag']``; ``unc`` (else the background rms is used), ``psf``,
        ``mask``, and optionally ``meta['mjdobs']`` and ``meta['saturation']`` (DN/s). Only the
        first ``max_frames`` are used. Loaders are called one at a time and their frames dropped
        once resampled, so only one input frame is in memory at once.
    ra0, dec0 : float
        Tile centre in degrees.
    size : int, optional
        Tile grid size in pixels (default 7000).
    scale_arcsec : float, optional
        Grid pixel scale (default 0.11).
    zero_point : float, optional
        Zero point of the output in magnitudes (default 17.0); frame i is multiplied by
        10**(0.4 (zero_point - zptmag_i)), and by the area of a grid pixel in its own pixels
        (:meth:`rapid.science.resample.CoarsePixelMap.area`), so that the coadd's sources
        keep their fluxes on the grid.
    clip_sigma : float, optional
        Outlier rejection threshold in sigma (default 3.0), see
        :func:`rapid.science.stack.combine_stack`.
    block_rows : int, optional
        Output rows combined at once (default 128).
    crop : bool, optional
        Cover only the bounding box of the inputs' footprints on the grid (default True); the
        WCS is then the tile grid's with CRPIX shifted, so pixels stay on the same grid.
    min_frames, max_frames : int, optional
        Allowed number of frames (defaults 3 and 25).
    step : int, optional
        Coarse pixel-map spacing (default 32).
    order : int, optional
        Spline order of the resampling (default 3, cubic); 1 (bilinear) saves about a fifth
        of the per-frame cost and smooths more (per-pixel noise lower by ~0.67 instead of
        ~0.88, PSF slightly broader), see :func:`rapid.science.coadd.resample_footprint`.
    workdir : str, optional
        Folder for the temporary resampled frames (default: the system temp folder); about
        8 bytes per footprint pixel per frame.

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
    if min_frames < 1 or max_frames < min_frames:
        raise ValueError(f"need 1 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
    if isinstance(frames, Frame) or not isinstance(frames, Iterable):
        raise ValueError(f"frames must be an iterable of frames, got {type(frames).__name__}")
    if int(block_rows) < 16:
        raise ValueError(f"block_rows must be >= 16, got {block_rows}")
    if not (np.isfinite(clip_sigma) and clip_sigma > 0):
        raise ValueError(f"clip_sigma must be positive, got {clip_sigma}")
    if order not in (1, 3):
        raise ValueError(f"order must be 1 or 3, got {order}")
    if hasattr(frames, "__len__") and len(frames) < min_frames:
        raise ValueError(f"frames: need at least {min_frames} frames, got {len(frames)}")
    block_rows = int(block_rows)
    grid = tile_grid_wcs(ra0, dec0, size=size, scale_arcsec=scale_arcsec)
    grid_shape = (int(size), int(size))

    with tempfile.TemporaryDirectory(prefix="rapid-reference-", dir=workdir) as folder:
        stored, psf_parts, metas = [], [], []
        saturated_grid = np.zeros(grid_shape, dtype=bool)
        nseen = 0
        for i, item in enumerate(itertools.islice(frames, max_frames)):
            nseen += 1
            frame = _load(item, i)
            plan = plan_frame(frame, i, grid, grid_shape, zero_point=zero_point, step=step)
            if plan is not None:
                stored.append(_store_frame(plan, folder, order=order,
                                           saturated_grid=saturated_grid))
                psf_parts.append(_frame_psf(plan, grid, order))
                metas.append(dict(frame.meta))
            del frame, plan
        if nseen < min_frames:
            raise ValueError(f"frames: need at least {min_frames} frames, got {nseen}")
        if len(stored) < min_frames:
            raise ValueError(f"frames: only {len(stored)} of {nseen} frames overlap the tile, "
                             f"need {min_frames}")
        if crop:
            y0 = min(s.bbox[0] for s in stored)
            y1 = max(s.bbox[1] for s in stored)
            x0 = min(s.bbox[2] for s in stored)
            x1 = max(s.bbox[3] for s in stored)
        else:
            y0, y1, x0, x1 = 0, grid_shape[0], 0, grid_shape[1]
        data, unc, coverage, rejected = _combine(stored, (y0, y1, x0, x1), block_rows,
                                                 clip_sigma=clip_sigma)

    out_wcs = shifted_wcs(grid, y0, x0)
    out_wcs.pixel_shape = (x1 - x0, y1 - y0)
    frame = Frame(data=data, wcs=out_wcs, psf=_reference_psf(psf_parts), unc=unc,
                  mask=coverage == 0,
                  meta={"zptmag": float(zero_point), "filter": metas[0].get("filter")})
    ref = ReferenceImage(frame=frame, coverage=coverage, nframes=len(stored), rejected=rejected)
    ref.meta = _refimmeta(ref, metas, saturated_grid[y0:y1, x0:x1], x0=x0, y0=y0,
                          zero_point=zero_point)
    return ref


def _combine(stored: list[_Stored], box, block_rows: int, *, clip_sigma: float):
    """Outlier-rejected weighted mean of the stored frames over ``box``, block by block."""
    y0, y1, x0, x1 = box
    ny, nx = y1 - y0, x1 - x0
    data = np.full((ny, nx), np.nan, dtype=np.float32)
    unc = np.full((ny, nx), np.nan, dtype=np.float32)
    coverage = np.zeros((ny, nx), dtype=np.int16)
    rejected = 0
    # One stack for all blocks: a block's weights are zeroed and its samples written in; values
    # where the weight is 0 (left from earlier blocks) are never read.
    all_v = np.full((len(stored), block_rows + 2, nx), np.nan, dtype=np.float32)
    all_w = np.empty((len(stored), block_rows + 2, nx), dtype=np.float32)
    for gy0 in range(y0, y1, block_rows):
        gy1 = min(y1, gy0 + block_rows)
        # one row of context above and below (NaN past the box): the rejection looks at each
        # pixel's neighbours, and blocks must not see an edge where the image has none
        hy0, hy1 = max(y0, gy0 - 1), min(y1, gy1 + 1)
        here = [s for s in stored if s.bbox[0] < hy1 and s.bbox[1] > hy0]
        if not here:
            continue
        stack_v = all_v[:len(here), :gy1 - gy0 + 2]
        stack_w = all_w[:len(here), :gy1 - gy0 + 2]
        stack_w[...] = 0.0
        for k, s in enumerate(here):
            py0, py1, px0, px1 = s.bbox
            ty0, ty1 = max(hy0, py0), min(hy1, py1)
            rows = slice(ty0 - gy0 + 1, ty1 - gy0 + 1)
            cols = slice(px0 - x0, px1 - x0)
            keep = s.spans(ty0 - py0, ty1 - py0)
            stack_v[k, rows, cols][keep] = s.read(s.values, ty0 - py0, ty1 - py0)
            stack_w[k, rows, cols][keep] = s.read(s.weights, ty0 - py0, ty1 - py0)
        mean, sumw, count, nrej = combine_stack(stack_v, stack_w, clip_sigma=clip_sigma, halo=1)
        out_rows = slice(gy0 - y0, gy1 - y0)
        data[out_rows] = mean
        with np.errstate(divide="ignore"):
            unc[out_rows] = np.where(sumw > 0, 1.0 / np.sqrt(sumw), np.nan)
        coverage[out_rows] = count
        rejected += nrej
    return data, unc, coverage, rejected


def _refimmeta(ref: ReferenceImage, metas: list[dict], saturated: np.ndarray, *,
               x0: int, y0: int, zero_point: float) -> dict[str, Any]:
    mjds = [float(m["mjdobs"]) for m in metas if "mjdobs" in m]
    meta: dict[str, Any] = {
        "nframes": ref.nframes,
        "mjdobsmin": min(mjds) if mjds else None,
        "mjdobsmax": max(mjds) if mjds else None,
        "npixsat": int(saturated.sum()),
    }
    meta.update(image_stats(ref.frame.data, ref.frame.unc, ref.coverage))
    cat = reference_catalog(ref)
    ref.catalog = cat
    meta["fwhmmed"], meta["fwhmmin"], meta["fwhmmax"] = fwhm_stats(cat)
    meta["nsexcatsources"] = len(cat)
    meta["zero_point"] = float(zero_point)
    meta["x0"], meta["y0"] = int(x0), int(y0)
    meta["rids"] = [m["rid"] for m in metas if "rid" in m]
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
        and flags; ``meta['cattype'] = 1``. With the default ``thresh`` and ``minarea`` the
        catalog made by :func:`build_reference` is returned (a copy), not extracted again.
    """
    if not isinstance(ref, ReferenceImage):
        raise ValueError(f"ref must be a ReferenceImage, got {type(ref).__name__}")
    if ref.catalog is not None and thresh == 3.0 and minarea == 5:
        return ref.catalog.copy()
    f = ref.frame
    objects, img, err, bad = extract_sources(f.data, f.unc, f.mask, thresh=thresh,
                                             minarea=minarea)
    return source_table(objects, img, err, bad, f.wcs)
