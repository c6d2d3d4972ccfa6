"""The building blocks of a reference coadd: per-frame background, per-tile resampling, stacking.

:class:`FramePlan` holds what is needed to resample a frame onto the output grid (the coarse pixel
map over the frame's footprint, its background mesh, its photometric scale), and
:func:`resample_footprint` resamples it once, block of rows by block of rows, so that the frame
can be dropped before the next one is read.
:func:`rapid.science.stack.combine_stack` then rejects outliers and averages the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from astropy.wcs import WCS
from scipy import ndimage

from rapid.science.image import Frame
from rapid.science.badpixels import _check_order, bad_footprint_map
from rapid.science.grid_spline import GridSpline
from rapid.science.resample import CoarsePixelMap, fill_bad_pixels, integrate_source
from rapid.science.sampling import interpolation_coefficients, sample_mapped

__all__ = [
    "MeshBackground",
    "FramePlan",
    "plan_frame",
    "resample_footprint",
    "ResampledRows",
    "footprint_bbox",
    "shifted_wcs",
]

_EDGE_TOL = 1e-3


class MeshBackground:
    """Background and its rms on a coarse mesh of boxes, interpolated bicubically.

    Each box's level is the SExtractor mode estimate (2.5 median - 1.5 mean) of its
    3-sigma-clipped pixels (the median when the two disagree by more than 0.3 sigma); the mesh is
    median-filtered 3x3 so that single boxes on bright stars do not bias it.

    Parameters
    ----------
    data : ndarray
        2-D image.
    bad : ndarray
        Boolean map of pixels to ignore.
    box : int, optional
        Box size in pixels (default 64).
    """

    def __init__(self, data: np.ndarray, bad: np.ndarray, *, box: int = 64) -> None:
        if data.ndim != 2 or bad.shape != data.shape:
            raise ValueError(
                f"data and bad must be 2-D of one shape, got {data.shape}, {bad.shape}")
        if int(box) < 4:
            raise ValueError(f"box must be >= 4, got {box}")
        self.shape = data.shape
        ny, nx = data.shape
        box = int(min(box, ny, nx))
        nby, nbx = -(-ny // box), -(-nx // box)
        # Every other row and column of large boxes is plenty for a level and an rms, at a
        # quarter of the cost.
        sub = 2 if box >= 32 else 1
        med, mean, std, ngood = (np.empty((nby, nbx)) for _ in range(4))
        _clipped_box_stats(np.ascontiguousarray(data, dtype=np.float32),
                           np.ascontiguousarray(bad, dtype=np.bool_), box, sub, med, mean, std,
                           ngood)
        cells_per_box = (-(-box // sub)) ** 2
        mode = np.where(np.abs(mean - med) < 0.3 * std, 2.5 * med - 1.5 * mean, med)
        sparse = ngood < 0.3 * cells_per_box
        self._back = _fill_mesh(np.where(sparse, np.nan, mode))
        self._rms = _fill_mesh(np.where(sparse, np.nan, std))
        # Box centres; the last box may be partial.
        self._yc = np.minimum((np.arange(nby) + 0.5) * box - 0.5, ny - 1)
        self._xc = np.minimum((np.arange(nbx) + 0.5) * box - 0.5, nx - 1)
        self._splines = ((GridSpline(self._yc, self._xc, self._back),
                          GridSpline(self._yc, self._xc, self._rms))
                         if nby > 1 and nbx > 1 else None)

    def _eval(self, which: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        mesh = (self._back, self._rms)[which]
        if self._splines is None:
            return np.full((y1 - y0, x1 - x0), float(np.mean(mesh)), dtype=np.float32)
        spl = self._splines[which]
        # Constant beyond the outermost box centres: a cubic extrapolation would run away.
        yv = np.clip(np.arange(y0, y1, dtype=np.float64), self._yc[0], self._yc[-1])
        xv = np.clip(np.arange(x0, x1, dtype=np.float64), self._xc[0], self._xc[-1])
        return spl.rows(yv, spl.column_factor(xv, np.float32))

    def back(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Background level of rows ``y0:y1`` and columns ``x0:x1``."""
        return self._eval(0, y0, y1, x0, x1)

    def rms(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Background rms of rows ``y0:y1`` and columns ``x0:x1``."""
        return self._eval(1, y0, y1, x0, x1)


@numba.njit(cache=True, nogil=True, inline="always")
def _median_inplace(a, n: int) -> float:
    """Median of ``a[:n]`` (n >= 1) by quickselect, reordering ``a[:n]``; O(n), no copy."""
    k = n // 2
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        # median-of-three pivot, left at a[mid]
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    upper = a[k]
    if n % 2:
        return upper
    # even n: the lower middle value is the largest of the k values left of a[k]
    lower = a[0]
    for t in range(1, k):
        lower = max(lower, a[t])
    return 0.5 * (lower + upper)


@numba.njit(cache=True, nogil=True)
def _clipped_box_stats(data, bad, box, sub, med_out, mean_out, std_out, n_out) -> None:
    """Per box: median, mean, std and number of the good pixels left after three 3-sigma clips.

    Each clip keeps the pixels within 3 x 1.4826 MAD of the median; pixels are taken every
    ``sub`` rows and columns. NaN statistics where a box has no good pixel.
    """
    ny, nx = data.shape
    nby, nbx = med_out.shape
    size = (box + sub - 1) // sub
    buf = np.empty(size * size)
    dev = np.empty(size * size)
    for by in range(nby):
        for bx in range(nbx):
            n = 0
            for y in range(by * box, min((by + 1) * box, ny), sub):
                for x in range(bx * box, min((bx + 1) * box, nx), sub):
                    v = data[y, x]
                    if not bad[y, x] and np.isfinite(v):
                        buf[n] = v
                        n += 1
            for _ in range(3):
                if n == 0:
                    break
                med = _median_inplace(buf, n)
                for i in range(n):
                    dev[i] = abs(buf[i] - med)
                limit = 3.0 * 1.4826 * _median_inplace(dev, n)
                kept = 0
                for i in range(n):
                    if abs(buf[i] - med) <= limit:
                        buf[kept] = buf[i]
                        kept += 1
                if kept == n:  # nothing clipped: the next passes would clip nothing either
                    break
                n = kept
            n_out[by, bx] = n
            if n == 0:
                med_out[by, bx] = mean_out[by, bx] = std_out[by, bx] = np.nan
                continue
            med_out[by, bx] = _median_inplace(buf, n)
            total = 0.0
            for i in range(n):
                total += buf[i]
            mean = total / n
            total = 0.0
            for i in range(n):
                total += (buf[i] - mean) ** 2
            mean_out[by, bx] = mean
            std_out[by, bx] = np.sqrt(total / n)


def _fill_mesh(mesh: np.ndarray) -> np.ndarray:
    mesh = np.array(mesh, dtype=np.float64)
    finite = np.isfinite(mesh)
    if not finite.any():
        return np.zeros_like(mesh)
    mesh[~finite] = np.median(mesh[finite])
    if mesh.shape[0] >= 3 and mesh.shape[1] >= 3:
        mesh = ndimage.median_filter(mesh, size=3, mode="nearest")
    return mesh


@dataclass
class FramePlan:
    """What is needed to resample any tile of one frame onto the output grid.

    Attributes
    ----------
    frame : Frame
        The input frame (not copied).
    index : int
        Position of the frame in the input list.
    scale : float
        Photometric factor to the reference zero point, 10**(0.4 (zero_point - zptmag)).
    bbox : (int, int, int, int)
        Footprint on the output grid as (y0, y1, x0, x1), half-open, output-grid pixels.
    cmap : CoarsePixelMap
        Pixel map from the bbox (its own origin) to the frame.
    bad : ndarray
        Boolean map of frame pixels not to use (mask, NaN, saturation).
    saturated : ndarray or None
        Boolean map of saturated frame pixels, when known.
    background : MeshBackground
        The frame's background.
    """

    frame: Frame
    index: int
    scale: float
    bbox: tuple[int, int, int, int]
    cmap: CoarsePixelMap
    bad: np.ndarray
    saturated: np.ndarray | None
    background: MeshBackground


def footprint_bbox(frame_wcs: WCS, frame_shape, grid_wcs: WCS, grid_shape, *, margin: int = 2):
    """Bounding box (y0, y1, x0, x1) of a frame's footprint on a grid, clipped to the grid.

    Returns None when the footprint misses the grid.
    """
    ny, nx = frame_shape
    edge = [np.linspace(0, n - 1, max(2, n // 32 + 1)) for n in (ny, nx)]
    ys = np.concatenate([edge[0], edge[0], np.zeros_like(edge[1]), np.full_like(edge[1], ny - 1)])
    xs = np.concatenate([np.zeros_like(edge[0]), np.full_like(edge[0], nx - 1), edge[1], edge[1]])
    ra, dec = frame_wcs.all_pix2world(xs, ys, 0)
    with np.errstate(invalid="ignore"):
        gx, gy = grid_wcs.all_world2pix(ra, dec, 0, quiet=True)
    if not (np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))):
        return None
    gny, gnx = grid_shape
    y0 = max(0, int(np.floor(gy.min())) - margin)
    y1 = min(gny, int(np.ceil(gy.max())) + margin + 1)
    x0 = max(0, int(np.floor(gx.min())) - margin)
    x1 = min(gnx, int(np.ceil(gx.max())) + margin + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    return y0, y1, x0, x1


def shifted_wcs(wcs: WCS, y0: int, x0: int) -> WCS:
    """The same grid with pixel (y0, x0) as the new origin."""
    out = wcs.deepcopy()
    out.wcs.crpix = out.wcs.crpix - np.array([x0, y0], dtype=np.float64)
    if out.pixel_shape is not None:
        out.pixel_shape = None
    return out


def plan_frame(frame: Frame, index: int, grid_wcs: WCS, grid_shape, *, zero_point: float,
               step: int = 32, box: int = 64) -> FramePlan | None:
    """Prepare one frame for tiled resampling onto ``grid_wcs``; None if it misses the grid.

    Parameters
    ----------
    frame : Frame
        Input frame in DN/s with ``meta['zptmag']``.
    index : int
        Position of the frame in the input list (kept for reporting).
    grid_wcs : astropy.wcs.WCS
        Output grid (the full tile grid).
    grid_shape : (int, int)
        Shape of the full tile grid.
    zero_point : float
        Zero point of the output in magnitudes.
    step : int, optional
        Coarse pixel-map spacing (default 32).
    box : int, optional
        Background mesh box size in pixels (default 64; smaller for small frames).

    Returns
    -------
    FramePlan or None
    """
    bbox = footprint_bbox(frame.wcs, frame.shape, grid_wcs, grid_shape)
    if bbox is None:
        return None
    y0, y1, x0, x1 = bbox
    cmap = CoarsePixelMap(frame.wcs, shifted_wcs(grid_wcs, y0, x0), (y1 - y0, x1 - x0), step=step)
    bad = frame.bad()
    saturated = None
    sat_level = frame.meta.get("saturation")
    if sat_level is not None:
        with np.errstate(invalid="ignore"):
            saturated = np.asarray(frame.data >= float(sat_level))
        bad |= saturated
    if frame.unc is not None:
        with np.errstate(invalid="ignore"):
            bad |= ~(np.isfinite(frame.unc) & (frame.unc > 0))
    box = int(min(box, max(8, min(frame.shape) // 4)))
    background = MeshBackground(frame.data, bad, box=box)
    scale = 10 ** (0.4 * (zero_point - float(frame.meta["zptmag"])))
    return FramePlan(frame, index, scale, bbox, cmap, bad, saturated, background)


@dataclass
class ResampledRows:
    """A block of rows of a frame resampled onto its footprint, packed span by span.

    Row ``i`` (footprint row ``r0 + i``) keeps bbox columns ``first[i]:last[i]``, from its first
    to its last pixel with a weight (none when the two are equal); ``values`` and ``weights``
    hold those spans one after the other. A frame rotated against the grid fills about half of
    its bounding box, and the rest is never stored.
    """

    r0: int
    first: np.ndarray
    last: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    saturated: np.ndarray | None


def resample_footprint(plan: FramePlan, *, order: int = 3, rows: int = 256):
    """Resample a whole frame onto its footprint on the output grid, in blocks of rows.

    Everything that depends on the frame only (background subtraction, scaling to the reference
    zero point, bad-pixel filling, the spline prefilter, the grown bad-pixel map) is done once
    for the frame; the blocks then only map and interpolate the columns of each row that can
    fall on the frame (:meth:`rapid.science.resample.CoarsePixelMap.column_spans`). The
    variance is the square of the nearest source pixel's uncertainty.

    Parameters
    ----------
    plan : FramePlan
        The frame's plan (see :func:`plan_frame`).
    order : int, optional
        Spline order of the data interpolation: 3 cubic (default), 1 bilinear (no prefilter and
        a 2x2 bad-pixel footprint, a fifth cheaper; it lowers the per-pixel noise more).
    rows : int, optional
        Output rows interpolated at once (default 256).

    Yields
    ------
    ResampledRows
        float32 values (NaN where invalid inside a span) and inverse-variance weights (0 where
        invalid), and a boolean (rows, bbox width) map of pixels touched by saturated source
        pixels (None when unknown).
    """
    order = _check_order(order)
    if int(rows) < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    frame = plan.frame
    sy, sx = frame.shape
    bad = plan.bad
    sub = (np.asarray(frame.data, dtype=np.float32) - plan.background.back(0, sy, 0, sx))
    sub *= np.float32(plan.scale)
    unc = frame.unc if frame.unc is not None else plan.background.rms(0, sy, 0, sx)
    # Not filled (unless integrated): a bad pixel's uncertainty is never read for a kept
    # output pixel, since the nearest source pixel of an output pixel lies in its
    # interpolation footprint.
    unc = np.asarray(unc, dtype=np.float32) * np.float32(plan.scale)
    sub, bad, unc = integrate_source(fill_bad_pixels(sub, bad, overwrite=True), bad, unc,
                                     plan.cmap.integration_cov)
    coeffs = interpolation_coefficients(sub, order, overwrite=True)
    del sub
    badmap = bad_footprint_map(bad, order) if bad.any() else None
    satmap = plan.saturated
    if satmap is not None and not satmap.any():
        satmap = None
    by0, by1, bx0, bx1 = plan.bbox
    ny = by1 - by0
    lo, hi = plan.cmap.column_spans((sy, sx), 0, ny)
    for r0 in range(0, ny, int(rows)):
        r1 = min(ny, r0 + int(rows))
        # fluxes kept on the grid's pixels, whatever their size against the frame's
        # (sample_mapped multiplies by the pixel area)
        values, sigma, saturated, first, last = sample_mapped(
            coeffs, plan.cmap.mapped_rows(r0, r1), order=order, src_shape=(sy, sx),
            lo=lo[r0:r1], hi=hi[r0:r1], edge_tol=_EDGE_TOL, badmap=badmap, unc=unc,
            satmap=satmap)
        values = np.concatenate([values[i, f:e] for i, (f, e) in enumerate(zip(first, last))])
        sigma = np.concatenate([sigma[i, f:e] for i, (f, e) in enumerate(zip(first, last))])
        # The weight is the inverse of the frame's own (uninterpolated) variance: resampling
        # lowers the per-pixel variance by a phase-dependent factor (see
        # interpolation_variance_factor) but keeps the variance of sums over a few pixels, which
        # is what photometry on the coadd sees; weighting by the lowered variance would favour
        # frames by their sub-pixel phase and make the coadd's PSF vary from pixel to pixel.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            weights = np.where(sigma > 0, 1.0 / (sigma * sigma), np.float32(0))
        values[weights == 0] = np.nan
        if plan.saturated is not None and saturated is None:
            saturated = np.zeros((r1 - r0, bx1 - bx0), dtype=bool)
        yield ResampledRows(r0, first, last, values, weights.astype(np.float32, copy=False),
                            saturated)
