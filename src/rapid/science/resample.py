"""Resampling images from one WCS grid onto another.

The pixel mapping dst pixel -> sky -> src pixel is evaluated exactly (astropy ``all_pix2world`` /
``all_world2pix``, SIP included) only on a coarse grid every ``step`` pixels and interpolated
bicubically to every destination pixel. Roman's distortion is smooth on scales of hundreds of
pixels, so at ``step`` = 32..64 the interpolated mapping agrees with the exact one to better than
1e-5 px, while costing ~(4088/32)² = 16k exact WCS evaluations instead of 16.7M. On one core a
4088² ``pixel_map`` takes ~1 s and a full cubic ``resample`` (mapping, spline prefilter,
interpolation, bad-pixel footprint) ~4-6 s, about ten times less than ``reproject_interp``.

Destination pixels larger than the source's are integrated over rather than sampled: the
source is first blurred by the part of a destination pixel that a source pixel does not already
cover (:mod:`rapid.science.pixel_integration`); for grids of one pixel size nothing changes.

Interpolation carries surface brightness: a source's pixel sum on the new grid is its flux
times the ratio of the pixel areas. Images resampled as frames (:func:`resample_frame`, and the
reference coadd's inputs) are multiplied by that ratio, the area of each destination pixel in
source pixels (:meth:`CoarsePixelMap.area`), so that they keep their sources' fluxes, and the
zero point stays theirs, however the two grids' pixel sizes differ or the distortion changes
them across the image.

Work is done in row blocks so that memory stays close to the size of the float32 output.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from astropy.wcs import WCS
from scipy import ndimage

from rapid.science.badpixels import _check_order, bad_footprint_map, fill_bad_pixels
from rapid.science.grid_spline import GridSpline
from rapid.science.image import Frame
from rapid.science.pixel_integration import (
    bad_weight,
    integrate,
    integrate_uncertainty,
    integration_covariance,
)
from rapid.science.psf_transform import (
    _check_wcs,
    interpolation_blur,
    interpolation_variance_factor,
    local_jacobian,
    transform_psf,
)
from rapid.science.sampling import (
    MappedRows,
    footprint_touches,
    interpolation_coefficients,
    sample_mapped,
)

__all__ = [
    "CoarsePixelMap",
    "pixel_map",
    "resample",
    "resample_frame",
    "local_jacobian",
    "transform_psf",
    "interpolation_blur",
    "resampled_psf",
    "fill_bad_pixels",
    "interpolation_variance_factor",
    "footprint_touches",
]

# Rows of destination pixels interpolated at once: bounds the float64 coordinate temporaries
# to ~16 MB for a 4088-pixel-wide image.
_BLOCK_ROWS = 256
# A source position may lie this far outside [0, n-1] and still count as inside (spline noise).
_EDGE_TOL = 1e-3
# Largest share of an integrated destination pixel's weight that may come from bad pixels
_MAX_BAD_WEIGHT = 0.1

#: A registration correction: destination (x, y) arrays -> offsets (dx, dy) in pixels
Offsets = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _check_shape(shape, name: str) -> tuple[int, int]:
    try:
        ny, nx = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (ny, nx) pair, got {shape!r}") from None
    if ny < 1 or nx < 1:
        raise ValueError(f"{name} must be positive, got {shape!r}")
    return ny, nx


def _coarse_axis(n: int, step: int) -> np.ndarray:
    """Coarse sample positions 0, step, 2*step, ... always including n-1."""
    axis = np.arange(0, n, step, dtype=np.float64)
    if axis[-1] != n - 1:
        axis = np.append(axis, n - 1)
    return axis


class CoarsePixelMap:
    """The dst -> src pixel mapping, exact on a coarse grid and bicubic in between.

    Parameters
    ----------
    src_wcs, dst_wcs : astropy.wcs.WCS
        Celestial WCS of the source and destination grids (SIP allowed).
    dst_shape : (int, int)
        Shape of the destination grid.
    step : int, optional
        Spacing of the coarse grid in destination pixels (default 32).
    dst_offsets : callable, optional
        ``(x, y) -> (dx, dy)``: a registration correction in destination pixels (see
        :class:`rapid.science.registration.Registration`); destination pixel (x, y) then maps
        through the WCS from (x - dx, y - dy). It must be smooth on the scale of ``step``.
    """

    def __init__(self, src_wcs: WCS, dst_wcs: WCS, dst_shape, *, step: int = 32,
                 dst_offsets: Offsets | None = None) -> None:
        _check_wcs(src_wcs, "src_wcs")
        _check_wcs(dst_wcs, "dst_wcs")
        self.shape = _check_shape(dst_shape, "dst_shape")
        if int(step) < 2:
            raise ValueError(f"step must be >= 2, got {step}")
        ny, nx = self.shape
        self._yc = _coarse_axis(ny, int(step))
        self._xc = _coarse_axis(nx, int(step))
        xx, yy = np.meshgrid(self._xc, self._yc)
        if dst_offsets is not None:
            dx, dy = dst_offsets(xx, yy)
            xx, yy = xx - dx, yy - dy
        ra, dec = dst_wcs.all_pix2world(xx, yy, 0)
        with np.errstate(all="ignore"):
            xs, ys = src_wcs.all_world2pix(ra, dec, 0, tolerance=1e-7, maxiter=50, quiet=True)
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        # Points the projection cannot reach (e.g. the far side of the sky for TAN) are NaN; fill
        # them so the spline stays finite and remember the coarse cells they spoil.
        bad = ~(np.isfinite(xs) & np.isfinite(ys))
        if bad.all():
            raise ValueError("src_wcs and dst_wcs have no pixel in common (mapping undefined)")
        if bad.any():
            # Far outside any image, so positions there read as "outside the source".
            xs[bad] = -1e6
            ys[bad] = -1e6
        # the exact source positions at the coarse nodes
        self._nodes = (ys, xs)
        self._cols = None
        self._area_cols = None
        self._mapped_cols = None
        self._bad_coarse = ndimage.binary_dilation(bad, iterations=2) if bad.any() else None
        #: d(source pixel)/d(destination pixel), (y, x) order: the median over the coarse
        #: cells (None for a single coarse row or column)
        self.src_per_dst = _median_jacobian(self._yc, self._xc, ys, xs, bad)
        #: the blur that integrates the source over destination pixels larger than its own
        #: (:func:`rapid.science.pixel_integration.integration_covariance`); None when none is
        #: needed or the Jacobian is unknown
        self.integration_cov = (integration_covariance(self.src_per_dst)
                                if self.src_per_dst is not None else None)
        #: (ymin, ymax, xmin, xmax) of the source positions at the exact coarse points
        self.src_range = (float(ys[~bad].min()), float(ys[~bad].max()),
                          float(xs[~bad].min()), float(xs[~bad].max()))
        if len(self._yc) < 2 or len(self._xc) < 2:
            # A single coarse row/column: interpolate the exact values linearly along it.
            self._splines = None
            # no coarse cell to difference: d(dst)/d(src) at the first source position
            jac = local_jacobian(src_wcs, dst_wcs, (float(ys.flat[0]), float(xs.flat[0])))
            self._area = 1.0 / abs(float(np.linalg.det(jac)))
        else:
            self._splines = (GridSpline(self._yc, self._xc, ys), GridSpline(self._yc, self._xc, xs))
            self._area = GridSpline(self._yc, self._xc, _area_at_nodes(self._yc, self._xc,
                                                                       ys, xs, bad))

    def sample_positions(self, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Source positions of a sample of destination pixels, (ysrc, xsrc): the coarse nodes
        (phases across the whole grid) and a block of ``size`` pixels a side at its centre
        (every phase a slow rotation or scale visits locally); NaN where undefined."""
        ny, nx = self.shape
        y0, x0 = max((ny - size) // 2, 0), max((nx - size) // 2, 0)
        ys, xs = self.block(y0, min(y0 + size, ny), x0, min(x0 + size, nx))
        nodes_y, nodes_x = self._nodes
        good = nodes_y > -1e5  # nodes the projection reached
        return (np.concatenate([ys.ravel(), nodes_y[good]]),
                np.concatenate([xs.ravel(), nodes_x[good]]))

    def block(self, y0: int, y1: int, x0: int = 0, x1: int | None = None):
        """Source coordinates for destination rows ``y0:y1`` and columns ``x0:x1``.

        Returns
        -------
        ysrc, xsrc : ndarray
            float64 arrays of shape (y1 - y0, x1 - x0); NaN where the mapping is undefined.
        """
        ny, nx = self.shape
        x1 = nx if x1 is None else x1
        if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
            raise ValueError(f"block ({y0}:{y1}, {x0}:{x1}) outside the grid {self.shape}")
        yv = np.arange(y0, y1, dtype=np.float64)
        xv = np.arange(x0, x1, dtype=np.float64)
        if self._splines is None:
            ys_c, xs_c = self._nodes
            ysrc = np.array(_linear_grid(self._yc, self._xc, ys_c, yv, xv))
            xsrc = np.array(_linear_grid(self._yc, self._xc, xs_c, yv, xv))
        else:
            # The column factor is the same for every block of rows over the same columns:
            # computed once.
            if self._cols is None or self._cols[0] != (x0, x1):
                self._cols = ((x0, x1),) + tuple(s.column_factor(xv) for s in self._splines)
            ysrc = self._splines[0].rows(yv, self._cols[1])
            xsrc = self._splines[1].rows(yv, self._cols[2])
        if self._bad_coarse is not None:
            iy = np.clip(np.searchsorted(self._yc, yv), 0, len(self._yc) - 1)
            ix = np.clip(np.searchsorted(self._xc, xv), 0, len(self._xc) - 1)
            spoiled = self._bad_coarse[np.ix_(iy, ix)]
            ysrc[spoiled] = np.nan
            xsrc[spoiled] = np.nan
        return ysrc, xsrc

    def mapped_rows(self, y0: int, y1: int, x0: int = 0, x1: int | None = None, *,
                    areas: bool = True) -> MappedRows:
        """The source positions and pixel areas of rows ``y0:y1``, columns ``x0:x1``, as
        splines that :func:`rapid.science.sampling.sample_mapped` evaluates while it samples:
        :meth:`block` and :meth:`area` without their arrays. With ``areas`` False every area
        is 1 (samples kept as surface brightness)."""
        ny, nx = self.shape
        x1 = nx if x1 is None else x1
        if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
            raise ValueError(f"block ({y0}:{y1}, {x0}:{x1}) outside the grid {self.shape}")
        yv = np.arange(y0, y1, dtype=np.float64)
        if self._mapped_cols is None or self._mapped_cols[0] != (x0, x1):
            self._mapped_cols = ((x0, x1), self._column_factors(x0, x1))
        factors, offsets = self._mapped_cols[1]
        if not areas:
            factors = (*factors[:2], np.zeros_like(factors[2]))
            offsets = np.array([offsets[0], offsets[1], 1.0])
        if self._splines is None:
            indices, basis = _linear_basis(self._yc, yv)
        else:
            # the three splines share their knots, so one basis serves them all
            indices, basis = self._splines[0].row_basis(yv)
        undefined = None
        if self._bad_coarse is not None:
            iy = np.clip(np.searchsorted(self._yc, yv), 0, len(self._yc) - 1)
            ix = np.clip(np.searchsorted(self._xc, np.arange(x0, x1)), 0, len(self._xc) - 1)
            undefined = np.ascontiguousarray(self._bad_coarse[np.ix_(iy, ix)])
        return MappedRows(indices, basis, *factors, offsets, undefined)

    def _column_factors(self, x0: int, x1: int):
        """The column factors of the source rows, columns and areas over columns ``x0:x1``, and
        the offsets added back (see :class:`rapid.science.sampling.MappedRows`)."""
        xv = np.arange(x0, x1, dtype=np.float64)
        if self._splines is None:
            # linear along the one coarse row or column (as :meth:`block`), the area constant
            ys_c, xs_c = self._nodes
            factors = tuple(np.ascontiguousarray(
                _linear_grid(self._yc, self._xc, v, self._yc, xv), dtype=np.float64)
                for v in (ys_c, xs_c, np.full_like(ys_c, self._area)))
            return factors, np.zeros(3)
        splines = (*self._splines, self._area)
        return (tuple(s.column_factor(xv) for s in splines),
                np.array([s.offset for s in splines]))

    def column_spans(self, src_shape, y0: int, y1: int, *, margin: float = 2.0):
        """Per row of ``y0:y1``, the columns ``lo:hi`` outside which no pixel maps within
        ``margin`` source pixels of the source image ``src_shape``.

        Decided cell by cell of the coarse grid: the mapping is affine across a cell to far
        better than a pixel, so a cell's source footprint lies inside the box of its corners'
        positions, and a cell whose box misses the source holds no pixel that maps onto it.
        """
        ny, nx = self.shape
        if not 0 <= y0 < y1 <= ny:
            raise ValueError(f"rows {y0}:{y1} outside the grid {self.shape}")
        ys, xs = self._nodes
        sy, sx = (int(n) for n in src_shape)
        if len(self._yc) < 2 or len(self._xc) < 2:
            return np.zeros(y1 - y0, dtype=np.int64), np.full(y1 - y0, nx, dtype=np.int64)
        corners = [(a[:-1, :-1], a[:-1, 1:], a[1:, :-1], a[1:, 1:]) for a in (ys, xs)]
        lo_y, hi_y = np.minimum.reduce(corners[0]), np.maximum.reduce(corners[0])
        lo_x, hi_x = np.minimum.reduce(corners[1]), np.maximum.reduce(corners[1])
        live = ((hi_y >= -margin) & (lo_y <= sy - 1 + margin)
                & (hi_x >= -margin) & (lo_x <= sx - 1 + margin))
        # cell row of each destination row (the last node row closes the last cell)
        cell = np.clip(np.searchsorted(self._yc, np.arange(y0, y1), side="right") - 1, 0,
                       len(self._yc) - 2)
        any_live = live.any(axis=1)
        first_cell = np.argmax(live, axis=1)
        end_cell = live.shape[1] - np.argmax(live[:, ::-1], axis=1)
        lo = np.where(any_live, self._xc[first_cell].astype(np.int64), 0)
        hi = np.where(any_live, self._xc[end_cell].astype(np.int64) + 1, 0)
        return lo[cell], hi[cell]

    def area(self, y0: int, y1: int, x0: int = 0, x1: int | None = None) -> np.ndarray:
        """Area of each destination pixel of rows ``y0:y1``, columns ``x0:x1``, in source
        pixels (``|det d(src)/d(dst)|``): what a resampled frame's pixels are multiplied by to
        keep their sources' fluxes. float32, shape (y1 - y0, x1 - x0)."""
        ny, nx = self.shape
        x1 = nx if x1 is None else x1
        if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
            raise ValueError(f"block ({y0}:{y1}, {x0}:{x1}) outside the grid {self.shape}")
        if not isinstance(self._area, GridSpline):
            return np.full((y1 - y0, x1 - x0), self._area, dtype=np.float32)
        # float32 is ample for a quantity that changes by a few per cent across an image
        if self._area_cols is None or self._area_cols[0] != (x0, x1):
            xv = np.arange(x0, x1, dtype=np.float64)
            self._area_cols = ((x0, x1), self._area.column_factor(xv, dtype=np.float32))
        return self._area.rows(np.arange(y0, y1, dtype=np.float64), self._area_cols[1])


def _area_at_nodes(yc, xc, ys, xs, bad) -> np.ndarray:
    """``|det d(src)/d(dst)|`` at the coarse nodes, from the exact source positions there
    (second-order differences where the grid has three nodes a side; nodes the projection
    cannot reach take the median, their pixels being outside the source anyway)."""
    edge = 2 if min(len(yc), len(xc)) >= 3 else 1
    dys_dy, dys_dx = np.gradient(ys, yc, xc, edge_order=edge)
    dxs_dy, dxs_dx = np.gradient(xs, yc, xc, edge_order=edge)
    det = np.abs(dys_dy * dxs_dx - dys_dx * dxs_dy)
    spoiled = ndimage.binary_dilation(bad, iterations=1) | ~np.isfinite(det)
    if spoiled.all():
        return np.ones_like(det)
    det[spoiled] = np.median(det[~spoiled])
    return det


def _median_jacobian(yc, xc, ys, xs, bad) -> np.ndarray | None:
    if len(yc) < 2 or len(xc) < 2:
        return None
    cells = ~(bad[1:, :-1] | bad[:-1, :-1] | bad[:-1, 1:])
    if not cells.any():
        return None
    dy, dx = np.diff(yc)[:, None], np.diff(xc)[None, :]
    jac = np.empty((2, 2))
    for i, src in enumerate((ys, xs)):
        jac[i, 0] = np.median(((src[1:, :-1] - src[:-1, :-1]) / dy)[cells])
        jac[i, 1] = np.median(((src[:-1, 1:] - src[:-1, :-1]) / dx)[cells])
    return jac


def _linear_basis(yc, yv):
    """(len(yv), 4) node indices and weights of linear interpolation in ``yc`` at rows ``yv``
    (a single node: weight 1 on it), padded with zero weights as GridSpline.row_basis."""
    n = len(yv)
    indices = np.zeros((n, 4), dtype=np.int64)
    weights = np.zeros((n, 4))
    if len(yc) == 1:
        weights[:, 0] = 1.0
        return indices, weights
    j = np.clip(np.searchsorted(yc, yv, side="right") - 1, 0, len(yc) - 2)
    t = np.clip((yv - yc[j]) / (yc[j + 1] - yc[j]), 0.0, 1.0)
    indices[:, 0], indices[:, 1] = j, j + 1
    weights[:, 0], weights[:, 1] = 1.0 - t, t
    return indices, weights


def _linear_grid(yc, xc, values, yv, xv):
    """Linear interpolation on a grid that may be a single row or column."""
    if len(yc) == 1 and len(xc) == 1:
        return np.full((len(yv), len(xv)), values[0, 0])
    if len(yc) == 1:
        return np.broadcast_to(np.interp(xv, xc, values[0]), (len(yv), len(xv)))
    return np.broadcast_to(np.interp(yv, yc, values[:, 0])[:, None], (len(yv), len(xv)))


def pixel_map(src_wcs: WCS, dst_wcs: WCS, dst_shape, *, step: int = 32):
    """Source pixel coordinates of every destination pixel.

    The exact mapping dst pixel -> world -> src pixel (SIP included) is evaluated only every
    ``step`` pixels (last row and column included) and interpolated bicubically; for Roman-like
    SIP distortion the result agrees with the exact per-pixel mapping to < 0.01 px at step 32-64.

    Parameters
    ----------
    src_wcs, dst_wcs : astropy.wcs.WCS
        Celestial WCS of the source and destination grids.
    dst_shape : (int, int)
        Shape (ny, nx) of the destination grid.
    step : int, optional
        Coarse grid spacing in destination pixels (default 32).

    Returns
    -------
    ysrc, xsrc : ndarray
        float64 arrays of shape ``dst_shape``: zero-based source row and column of each
        destination pixel; NaN where the sky position has no source pixel.
    """
    cmap = CoarsePixelMap(src_wcs, dst_wcs, dst_shape, step=step)
    return cmap.block(0, cmap.shape[0])


def resample(
    data: np.ndarray,
    src_wcs: WCS,
    dst_wcs: WCS,
    dst_shape,
    *,
    order: int = 3,
    step: int = 32,
    fill: float = np.nan,
    mask: np.ndarray | None = None,
    dst_offsets: Offsets | None = None,
) -> np.ndarray:
    """Interpolate an image onto another WCS grid (integrated over destination pixels larger
    than the source's, see the module's text).

    Bad source pixels (NaN or ``mask``) do not smear: the image is interpolated after bad pixels
    are replaced by the mean of their good neighbours, and every destination pixel whose
    interpolation footprint touches a bad source pixel (2x2 for bilinear, 4x4 for cubic) or lies
    outside the source image is set to ``fill``.

    Parameters
    ----------
    data : ndarray
        2-D source image.
    src_wcs, dst_wcs : astropy.wcs.WCS
        WCS of ``data`` and of the destination grid.
    dst_shape : (int, int)
        Destination shape (ny, nx).
    order : int, optional
        Spline order: 3 cubic spline with prefilter (default), 1 bilinear, 0 nearest.
    step : int, optional
        Coarse mapping grid spacing, see :func:`pixel_map` (default 32).
    fill : float, optional
        Value of destination pixels without valid data (default NaN).
    mask : ndarray, optional
        Boolean map of source pixels not to use, in addition to non-finite ones.
    dst_offsets : callable, optional
        Registration correction of the mapping, see :class:`CoarsePixelMap`.

    Returns
    -------
    ndarray
        float32 image of shape ``dst_shape``.
    """
    out, _ = _resample_with_bad(data, src_wcs, dst_wcs, dst_shape, order=order, step=step,
                                fill=fill, mask=mask, unc=None, dst_offsets=dst_offsets)
    return out


def _source_window(src_range, shape, margin: int = 20) -> tuple[int, int, int, int]:
    """Source rows and columns (y0, y1, x0, x1) holding every position of a mapping.

    ``margin`` covers the cubic prefilter's reach (its influence decays by 0.27 per pixel, so
    16 pixels leave < 1e-9) plus the interpolated map's excursion between coarse points.
    """
    sy, sx = shape
    ymin, ymax, xmin, xmax = src_range
    y0 = int(np.clip(np.floor(ymin) - margin, 0, sy))
    y1 = int(np.clip(np.ceil(ymax) + margin + 1, 0, sy))
    x0 = int(np.clip(np.floor(xmin) - margin, 0, sx))
    x1 = int(np.clip(np.ceil(xmax) + margin + 1, 0, sx))
    if y1 - y0 < 2 or x1 - x0 < 2:  # the mapping misses the source: keep a valid array
        return 0, sy, 0, sx
    return y0, y1, x0, x1


def integrate_source(clean: np.ndarray, bad: np.ndarray, unc: np.ndarray | None,
                     cov: np.ndarray | None):
    """Prepare a source image for resampling onto larger pixels, ``cov`` being the blur that
    integrates over them (:attr:`CoarsePixelMap.integration_cov`; None: nothing to do).

    Where the destination's pixels are larger, the filled image (``clean``, no NaNs) and its
    uncertainty are integrated over them (:mod:`rapid.science.pixel_integration`; holes in
    the uncertainty filled first, since the blur spreads them) and a pixel that would draw
    over a tenth of its light from bad source pixels becomes bad. Both resamplers, the
    difference's and the reference coadd's, prepare their sources here.

    Returns
    -------
    clean, bad, unc
        The prepared arrays (the inputs themselves when nothing is to be done); the source's
        PSF must be given the same blur.
    """
    if cov is None:
        return clean, bad, unc
    clean = integrate(clean, cov)
    if bad.any():
        bad = bad | (bad_weight(bad, cov) > _MAX_BAD_WEIGHT)
    if unc is not None:
        holes = ~np.isfinite(unc)
        if holes.any():
            unc = fill_bad_pixels(unc, holes)
        unc = integrate_uncertainty(unc, cov)
    return clean, bad, unc


def _resample_with_bad(data, src_wcs, dst_wcs, dst_shape, *, order, step, fill, mask, unc,
                       dst_offsets=None, conserve_flux=False):
    order = _check_order(order)
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D, got shape {data.shape}")
    if mask is not None and np.shape(mask) != data.shape:
        raise ValueError(f"mask has shape {np.shape(mask)}, data has {data.shape}")
    cmap = CoarsePixelMap(src_wcs, dst_wcs, dst_shape, step=step, dst_offsets=dst_offsets)
    ny, nx = cmap.shape
    sy, sx = data.shape
    # Only the source window the destination needs is cleaned, prefiltered and interpolated
    # (a reference tile is often several times larger than the science image).
    wy0, wy1, wx0, wx1 = _source_window(cmap.src_range, (sy, sx))
    data = data[wy0:wy1, wx0:wx1]
    bad = ~np.isfinite(data)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)[wy0:wy1, wx0:wx1]
    unc_window = None if unc is None else np.asarray(unc, dtype=np.float32)[wy0:wy1, wx0:wx1]
    cov = cmap.integration_cov
    clean, bad, unc_window = integrate_source(fill_bad_pixels(data, bad), bad, unc_window, cov)
    coeffs = interpolation_coefficients(clean, order, overwrite=True)
    del clean
    badmap = bad_footprint_map(bad, order) if bad.any() else None
    if unc_window is not None and cov is None:
        # Read only where no bad pixel is near (see rapid.science.sampling): only holes in
        # the uncertainty under good data need filling.
        holes = ~np.isfinite(unc_window)
        if (holes & ~bad).any():
            unc_window = fill_bad_pixels(unc_window, holes)

    out = np.empty((ny, nx), dtype=np.float32)
    out_unc = np.empty((ny, nx), dtype=np.float32) if unc is not None else None
    for y0 in range(0, ny, _BLOCK_ROWS):
        y1 = min(ny, y0 + _BLOCK_ROWS)
        values, sigma, _, _, _ = sample_mapped(
            coeffs, cmap.mapped_rows(y0, y1, areas=conserve_flux), order=order,
            src_shape=(sy, sx), origin=(wy0, wx0), edge_tol=_EDGE_TOL, badmap=badmap,
            unc=unc_window)
        out[y0:y1] = values
        if out_unc is not None:
            out_unc[y0:y1] = sigma
        del values, sigma
    out_bad = np.isnan(out)
    out[out_bad] = fill
    if out_unc is not None:
        out_unc[out_bad] = np.nan
    return out, (out_bad, out_unc, cov, cmap)


def resampled_psf(psf: np.ndarray, src_wcs: WCS, src_shape, dst_wcs: WCS,
                  cmap: CoarsePixelMap, *, order: int) -> np.ndarray:
    """The PSF of an image resampled through ``cmap`` with splines of ``order``: blurred as
    its pixels were (integrated over larger destination pixels,
    :func:`rapid.science.pixel_integration.integrate`, and interpolated at the phases the
    mapping visits, :func:`interpolation_blur`), then turned by the mapping's local Jacobian at
    the source image's centre (:func:`transform_psf`). float32, the stamp's shape and sum."""
    sy, sx = src_shape
    jac = local_jacobian(src_wcs, dst_wcs, ((sy - 1) / 2, (sx - 1) / 2))
    cov = cmap.integration_cov
    blurred = psf if cov is None else integrate(psf, cov)
    return transform_psf(interpolation_blur(blurred, *cmap.sample_positions(), order=order), jac)


def resample_frame(frame: Frame, dst_wcs: WCS, dst_shape, *, order: int = 3,
                   step: int = 32, dst_offsets: Offsets | None = None) -> Frame:
    """Resample a :class:`Frame` onto another grid.

    The data are interpolated as in :func:`resample`; ``mask`` is the resampled bad-pixel map
    (footprints of bad source pixels and everything outside the source); ``unc`` is the uncertainty
    of the nearest source pixel (integrated alike where the data are, see the module's text).
    That uncertainty is an approximation: interpolation
    lowers the per-pixel noise and correlates it between neighbouring pixels, and both effects
    are neglected, which is right for sums over a few pixels and conservative per pixel. The PSF
    is transformed by the local Jacobian of the mapping at the source image centre (a rotation
    and/or flip for grids of equal scale), keeping its sum, after the blur the data were given
    (the integration over larger pixels, and the interpolation's at the phases the mapping
    visits: :func:`interpolation_blur`).
    Data and uncertainty are multiplied by the area of each destination pixel in source pixels
    (:meth:`CoarsePixelMap.area`), so that sources keep their fluxes and ``meta["zptmag"]``
    holds; ``meta`` is copied, with its per-pixel level ``saturation`` scaled alike, by the
    area at the grid's centre (the gain, electrons per unit, is the same on both grids).

    Parameters
    ----------
    frame : Frame
        Source image.
    dst_wcs : astropy.wcs.WCS
        Destination grid WCS.
    dst_shape : (int, int)
        Destination shape (ny, nx).
    order : int, optional
        Spline order of the data interpolation (default 3).
    step : int, optional
        Coarse mapping grid spacing (default 32).
    dst_offsets : callable, optional
        Registration correction of the mapping, see :class:`CoarsePixelMap`.

    Returns
    -------
    Frame
        The resampled frame on ``dst_wcs``.
    """
    if not isinstance(frame, Frame):
        raise ValueError(f"frame must be a Frame, got {type(frame).__name__}")
    data, (bad, unc, cov, cmap) = _resample_with_bad(
        frame.data, frame.wcs, dst_wcs, dst_shape, order=order, step=step, fill=np.nan,
        mask=frame.mask, unc=frame.unc, dst_offsets=dst_offsets, conserve_flux=True)
    psf = None
    if frame.psf is not None:
        psf = resampled_psf(frame.psf, frame.wcs, frame.shape, dst_wcs, cmap, order=order)
    meta = dict(frame.meta)
    # per-pixel levels follow the pixels' scaling (see the module's text)
    cy, cx = (s // 2 for s in cmap.shape)
    area = float(cmap.area(cy, cy + 1, cx, cx + 1)[0, 0])
    if meta.get("saturation") is not None:
        meta["saturation"] = float(meta["saturation"]) * area
    # the gain (electrons per unit) stays: a pixel holding the light of four holds their
    # electrons too, and a sum over a PSF holds the same electrons on either grid (per unit
    # of area the gain would make a reference on pixels twice as fine count 4 times the
    # variance for its sources' noise, and one on pixels twice as coarse a quarter)
    return Frame(data=data, wcs=dst_wcs.deepcopy(), psf=psf, unc=unc, mask=bad, meta=meta)
