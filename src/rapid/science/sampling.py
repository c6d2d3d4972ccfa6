"""Compiled sampling of a prefiltered image at mapped positions, one pass per output pixel.

Resampling a frame needs, for every output pixel with source position (y, x): whether (y, x)
lies inside the source image, the interpolated value, whether the interpolation footprint
touches a bad source pixel, the source uncertainty there and whether a saturated pixel is
near. Done with whole-array numpy passes that is a dozen temporaries the size of the image
and a general-purpose ``ndimage.map_coordinates``; :func:`sample_block` does it all in one
compiled loop (numba), several times faster on one core, with the same numbers:

- values are B-spline interpolations of the spline coefficients (``order`` 3, the
  coefficients being :func:`interpolation_coefficients` of the clean image, the numbers of
  ``ndimage.spline_filter`` with ``mode="mirror"``), bilinear (``order`` 1) or
  nearest (``order`` 0), with ``mode="mirror"`` boundaries, as ``ndimage.map_coordinates``
  with ``prefilter=False`` gives;
- a bad pixel counts when its weight in the bilinear footprint of (y, x) exceeds
  :data:`rapid.science.badpixels.BAD_THRESHOLD` (the bad map is grown beforehand so that this
  covers the cubic footprint, see :func:`rapid.science.badpixels.bad_footprint_map`);
- the uncertainty is that of the nearest source pixel (it only sets weights and per-pixel
  variances; interpolating it would cost a second interpolation for no gain).

:func:`sample_mapped` does the same at positions given as splines (a coarse pixel map's, see
:meth:`rapid.science.resample.CoarsePixelMap.mapped_rows`), evaluated in the loop itself and
only over the columns of each row that can fall on the source: no coordinate arrays, and none of
a rotated footprint's empty corners.

The kernels compile on first use (about a second) and are cached beside this module.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from rapid.science.badpixels import BAD_THRESHOLD, _check_order, bad_footprint_map

__all__ = ["sample_block", "sample_mapped", "MappedRows", "footprint_touches",
           "interpolation_coefficients"]

_NO_MAP = np.zeros((1, 1), dtype=np.bool_)
_NO_UNC = np.zeros((1, 1), dtype=np.float32)
_NO_POSITIONS = np.zeros((1, 1), dtype=np.float64)
_NO_INDEX = np.zeros(1, dtype=np.int64)
_NO_BASIS_INDEX = np.zeros((1, 4), dtype=np.int64)
_NO_FACTOR = np.zeros((1, 1), dtype=np.float64)
# the mapping arguments of _sample when positions are given as arrays
_NO_MAPPING = (_NO_BASIS_INDEX, np.zeros((1, 4)), _NO_FACTOR, _NO_FACTOR, _NO_FACTOR, np.zeros(3),
               _NO_MAP, False, _NO_INDEX, _NO_INDEX)


def _maps(shape, badmap, unc, satmap) -> tuple:
    """The optional maps as _sample takes them: each array (a placeholder when None) and
    whether it was given; each given one must have the coefficients' ``shape``."""
    for name, arr in (("badmap", badmap), ("unc", unc), ("satmap", satmap)):
        if arr is not None and np.shape(arr) != shape:
            raise ValueError(f"{name} has shape {np.shape(arr)}, coeffs has {shape}")
    return (_NO_MAP if badmap is None else np.ascontiguousarray(badmap, dtype=np.bool_),
            badmap is not None,
            _NO_UNC if unc is None else np.ascontiguousarray(unc, dtype=np.float32),
            unc is not None,
            _NO_MAP if satmap is None else np.ascontiguousarray(satmap, dtype=np.bool_),
            satmap is not None)


@numba.njit(cache=True, nogil=True, inline="always")
def _mirror(i: int, n: int) -> int:
    if i < 0:
        i = -i
    if i > n - 1:
        i = 2 * (n - 1) - i
    return min(max(i, 0), n - 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _touches_at(badmap, iy: int, ix: int, ty: float, tx: float, threshold: float) -> bool:
    """Whether a flagged pixel has a bilinear weight above ``threshold`` at (iy + ty, ix + tx)."""
    ny, nx = badmap.shape
    iy0 = min(max(iy, 0), ny - 1)
    ix0 = min(max(ix, 0), nx - 1)
    iy1 = min(iy0 + 1, ny - 1)
    ix1 = min(ix0 + 1, nx - 1)
    y0 = ty < 1.0 - threshold
    y1 = ty > threshold
    x0 = tx < 1.0 - threshold
    x1 = tx > threshold
    return ((badmap[iy0, ix0] and y0 and x0) or (badmap[iy0, ix1] and y0 and x1)
            or (badmap[iy1, ix0] and y1 and x0) or (badmap[iy1, ix1] and y1 and x1))


@numba.njit(cache=True, nogil=True, inline="always")
def _touches(badmap, y: float, x: float, threshold: float) -> bool:
    fy = np.floor(y)
    fx = np.floor(x)
    return _touches_at(badmap, int(fy), int(fx), y - fy, x - fx, threshold)


@numba.njit(cache=True, nogil=True, inline="always")
def _nearest(i: int, t: float, n: int) -> int:
    """Index of the pixel nearest to i + t (0 <= t < 1), clipped to 0..n-1."""
    return min(max(i + (1 if t >= 0.5 else 0), 0), n - 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _bspline3(t: float):
    t2 = t * t
    t3 = t2 * t
    return ((1.0 - t) ** 3 / 6.0, (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
            (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0, t3 / 6.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _value_at(coeffs, iy: int, ix: int, ty: float, tx: float, order: int) -> float:
    """The interpolation at (iy + ty, ix + tx), 0 <= ty, tx < 1, mirror boundaries."""
    ny, nx = coeffs.shape
    if order == 0:
        return coeffs[_mirror(iy + (1 if ty >= 0.5 else 0), ny),
                      _mirror(ix + (1 if tx >= 0.5 else 0), nx)]
    if order == 1:
        y0, y1 = _mirror(iy, ny), _mirror(iy + 1, ny)
        x0, x1 = _mirror(ix, nx), _mirror(ix + 1, nx)
        return ((1.0 - ty) * ((1.0 - tx) * coeffs[y0, x0] + tx * coeffs[y0, x1])
                + ty * ((1.0 - tx) * coeffs[y1, x0] + tx * coeffs[y1, x1]))
    wy = _bspline3(ty)
    w0, w1, w2, w3 = _bspline3(tx)
    acc = 0.0
    if 1 <= iy < ny - 2 and 1 <= ix < nx - 2:
        # The 4x4 footprint lies inside: rows read directly, no mirroring (the common case).
        for a in range(4):
            row = coeffs[iy - 1 + a]
            acc += wy[a] * (w0 * row[ix - 1] + w1 * row[ix] + w2 * row[ix + 1] + w3 * row[ix + 2])
        return acc
    c0, c1, c2, c3 = (_mirror(ix - 1, nx), _mirror(ix, nx), _mirror(ix + 1, nx),
                      _mirror(ix + 2, nx))
    for a in range(4):
        row = coeffs[_mirror(iy - 1 + a, ny)]
        acc += wy[a] * (w0 * row[c0] + w1 * row[c1] + w2 * row[c2] + w3 * row[c3])
    return acc


@numba.njit(cache=True, nogil=True)
def _sample(mapped, ys, xs, indices, basis, fy, fx, fa, offsets, undefined,
            use_undefined, lo, hi, coeffs, order, src_ny, src_nx, off_y, off_x, edge_tol,
            threshold, badmap, use_bad, unc, use_unc, satmap, use_sat, values, sigma, saturated,
            first, last):
    """The sampling loop of :func:`sample_block` (positions ``ys``, ``xs``) and, when
    ``mapped``, of :func:`sample_mapped` (positions and areas from the splines, columns
    ``lo[i]:hi[i]`` only): one loop, so that both get the same compiled code."""
    rows, cols = values.shape
    for i in range(rows):
        found = -1
        end = 0
        if mapped:
            # the row's four basis terms (zero weights pad a shorter basis) over the column
            # factors: row views and weights held once per row (GridSpline.row_basis)
            w0, w1, w2, w3 = basis[i, 0], basis[i, 1], basis[i, 2], basis[i, 3]
            i0, i1, i2, i3 = indices[i, 0], indices[i, 1], indices[i, 2], indices[i, 3]
            fy0, fy1, fy2, fy3 = fy[i0], fy[i1], fy[i2], fy[i3]
            fx0, fx1, fx2, fx3 = fx[i0], fx[i1], fx[i2], fx[i3]
            fa0, fa1, fa2, fa3 = fa[i0], fa[i1], fa[i2], fa[i3]
            j0, j1 = lo[i], hi[i]
        for j in range(cols):
            if mapped:
                if j < j0 or j >= j1 or (use_undefined and undefined[i, j]):
                    values[i, j] = np.nan
                    sigma[i, j] = np.nan
                    saturated[i, j] = False
                    continue
                y = offsets[0] + w0 * fy0[j] + w1 * fy1[j] + w2 * fy2[j] + w3 * fy3[j]
                x = offsets[1] + w0 * fx0[j] + w1 * fx1[j] + w2 * fx2[j] + w3 * fx3[j]
                area = offsets[2] + w0 * fa0[j] + w1 * fa1[j] + w2 * fa2[j] + w3 * fa3[j]
            else:
                y = ys[i, j]
                x = xs[i, j]
                area = 1.0
            inside = (y >= -edge_tol) and (y <= src_ny - 1 + edge_tol) and \
                (x >= -edge_tol) and (x <= src_nx - 1 + edge_tol)  # False for NaN
            if not inside:
                values[i, j] = np.nan
                sigma[i, j] = np.nan
                saturated[i, j] = False
                continue
            # the integer and fractional parts, once for every test and lookup below
            ly = y - off_y
            lx = x - off_x
            fly = np.floor(ly)
            flx = np.floor(lx)
            iy = int(fly)
            ix = int(flx)
            ty = ly - fly
            tx = lx - flx
            saturated[i, j] = use_sat and _touches_at(satmap, iy, ix, ty, tx, threshold)
            if use_bad and _touches_at(badmap, iy, ix, ty, tx, threshold):
                values[i, j] = np.nan
                sigma[i, j] = np.nan
                continue
            values[i, j] = area * _value_at(coeffs, iy, ix, ty, tx, order)
            if use_unc:
                s = area * unc[_nearest(iy, ty, unc.shape[0]), _nearest(ix, tx, unc.shape[1])]
                sigma[i, j] = s
                if s > 0 and s < np.inf:
                    if found < 0:
                        found = j
                    end = j + 1
            else:
                sigma[i, j] = np.nan
        first[i] = max(found, 0)
        last[i] = end


class MappedRows(NamedTuple):
    """Source positions and pixel areas of a block of destination rows, as splines.

    Row ``i``'s source row at column ``j`` is ``offsets[0] + sum(basis[i, k] *
    ys_factor[indices[i, k], j])`` over the four ``k``; the source column and the area (of a
    destination pixel in source pixels) likewise with ``xs_factor``, ``area_factor`` and
    ``offsets[1]``, ``offsets[2]``. ``undefined`` is None or a boolean (rows, columns) map of
    destination pixels the mapping cannot reach. Made by
    :meth:`rapid.science.resample.CoarsePixelMap.mapped_rows`.
    """

    indices: np.ndarray
    basis: np.ndarray
    ys_factor: np.ndarray
    xs_factor: np.ndarray
    area_factor: np.ndarray
    offsets: np.ndarray
    undefined: np.ndarray | None


#: Pole of the cubic B-spline prefilter, and the gain that goes with it.
_POLE = np.sqrt(3.0) - 2.0
_GAIN = (1.0 - _POLE) * (1.0 - 1.0 / _POLE)
#: Terms of the causal initial sum kept: |pole|**40 < 1e-22.
_HORIZON = 40


@numba.njit(cache=True, nogil=True)
def _prefilter_axis0(a) -> None:
    """Cubic B-spline prefilter along axis 0, in place, mirror boundaries.

    All columns are filtered at once, row after row, so every loop runs along a row
    (vectorised); the recursions carry float64 rows.
    """
    ny, nx = a.shape
    if ny < 2:
        return
    z = _POLE
    zn1 = z ** (ny - 1)
    prev = np.empty(nx)
    last = np.empty(nx)
    # causal initial value of the mirror-extended columns
    for j in range(nx):
        prev[j] = _GAIN * (a[0, j] + zn1 * a[ny - 1, j])
    zk = z
    for k in range(1, min(ny - 1, _HORIZON)):
        for j in range(nx):
            prev[j] += zk * _GAIN * (a[k, j] + zn1 * a[ny - 1 - k, j])
        zk *= z
    for j in range(nx):
        prev[j] /= 1.0 - zn1 * zn1
        a[0, j] = prev[j]
    # causal pass, then the anticausal initial value and pass
    for i in range(1, ny):
        for j in range(nx):
            before = prev[j]
            prev[j] = _GAIN * a[i, j] + z * before
            a[i, j] = prev[j]
            if i == ny - 1:
                last[j] = (z * before + prev[j]) * z / (z * z - 1.0)
    for j in range(nx):
        a[ny - 1, j] = last[j]
    for i in range(ny - 2, -1, -1):
        for j in range(nx):
            last[j] = z * (last[j] - a[i, j])
            a[i, j] = last[j]


@numba.njit(cache=True, nogil=True)
def _prefilter_axis1(a) -> None:
    """The same along axis 1: rows taken 16 at a time, transposed and filtered as columns
    (one recursion along a row cannot be vectorised; 16 side by side can)."""
    ny, nx = a.shape
    group = 16
    buf = np.empty((nx, group))
    for i0 in range(0, ny, group):
        m = min(group, ny - i0)
        if m < group:
            buf = np.empty((nx, m))
        for j in range(nx):
            for r in range(m):
                buf[j, r] = a[i0 + r, j]
        _prefilter_axis0(buf)
        for r in range(m):
            for j in range(nx):
                a[i0 + r, j] = buf[j, r]


def interpolation_coefficients(clean: np.ndarray, order: int, *,
                               overwrite: bool = False) -> np.ndarray:
    """The float32 array :func:`sample_block` interpolates for ``order``.

    For ``order`` 3 the cubic B-spline coefficients with mirror boundaries, the numbers of
    ``ndimage.spline_filter(clean, order=3, mode="mirror")`` to float32 rounding, by a compiled
    recursive filter about three times faster; for orders 0 and 1 the image itself.

    Parameters
    ----------
    clean : ndarray
        2-D image without NaN (see :func:`rapid.science.badpixels.fill_bad_pixels`).
    order : {0, 1, 3}
        Interpolation order.
    overwrite : bool, optional
        ``clean`` (when float32 and C-contiguous) may be filtered in place, saving a copy.

    Returns
    -------
    ndarray
        C-contiguous float32 coefficients.
    """
    order = _check_order(order)
    clean = np.asarray(clean)
    if clean.ndim != 2:
        raise ValueError(f"clean must be 2-D, got shape {clean.shape}")
    fresh = not (overwrite and clean.dtype == np.float32 and clean.flags.c_contiguous
                 and clean.flags.writeable)
    coeffs = np.array(clean, dtype=np.float32, order="C") if fresh else clean
    if order == 3:
        _prefilter_axis0(coeffs)
        _prefilter_axis1(coeffs)
    return coeffs


@numba.njit(cache=True, nogil=True)
def _touches_each(badmap, ys, xs, threshold, out):
    for k in range(ys.shape[0]):
        out[k] = _touches(badmap, ys[k], xs[k], threshold)


def footprint_touches(bad: np.ndarray, ysrc: np.ndarray, xsrc: np.ndarray, *,
                      order: int = 3) -> np.ndarray:
    """True where the interpolation footprint at (ysrc, xsrc) touches a bad source pixel.

    The footprint is 2x2 for ``order`` <= 1 and 4x4 for cubic splines; a pixel whose weight in
    the bilinear footprint is below :data:`rapid.science.badpixels.BAD_THRESHOLD` (a position
    almost exactly on a pixel) does not count. The same test :func:`sample_block` applies.

    Parameters
    ----------
    bad : ndarray
        Boolean map of bad source pixels.
    ysrc, xsrc : ndarray
        Source coordinates of the destination pixels, inside the source image.
    order : int, optional
        Spline order of the interpolation (default 3).

    Returns
    -------
    ndarray
        Boolean map of the shape of ``ysrc``.
    """
    order = _check_order(order)
    badmap = np.ascontiguousarray(bad_footprint_map(np.asarray(bad, dtype=bool), order))
    ys = np.asarray(ysrc, dtype=np.float64)
    xs = np.asarray(xsrc, dtype=np.float64)
    if ys.shape != xs.shape:
        raise ValueError(f"ysrc and xsrc must have one shape, got {ys.shape}, {xs.shape}")
    out = np.empty(ys.size, dtype=np.bool_)
    _touches_each(badmap, np.ascontiguousarray(ys).ravel(), np.ascontiguousarray(xs).ravel(),
                  BAD_THRESHOLD, out)
    return out.reshape(ys.shape)


def sample_block(coeffs: np.ndarray, ys: np.ndarray, xs: np.ndarray, *, order: int,
                 src_shape: tuple[int, int], origin: tuple[int, int] = (0, 0),
                 edge_tol: float = 1e-3, badmap: np.ndarray | None = None,
                 unc: np.ndarray | None = None, satmap: np.ndarray | None = None):
    """Sample spline coefficients at source positions, with validity, uncertainty, saturation.

    Parameters
    ----------
    coeffs : ndarray
        2-D float32 interpolation coefficients of (a window of) the source image: spline
        coefficients for ``order`` 3, the clean image itself for orders 0 and 1.
    ys, xs : ndarray
        Source rows and columns (float64, any 2-D shape, NaN where undefined) of the output
        pixels, in the coordinates of the whole source image.
    order : {0, 1, 3}
        Interpolation order.
    src_shape : (int, int)
        Shape of the whole source image: positions outside it by more than ``edge_tol`` are
        invalid.
    origin : (int, int), optional
        Source pixel (row, column) of ``coeffs[0, 0]`` (and of ``badmap``, ``unc``,
        ``satmap``) when they hold a window of the source.
    edge_tol : float, optional
        Tolerance of the inside test in pixels (1e-3).
    badmap : ndarray, optional
        Boolean map of bad source pixels, grown to the footprint of ``order``.
    unc : ndarray, optional
        Source 1-sigma uncertainty (float32).
    satmap : ndarray, optional
        Boolean map of saturated source pixels.

    Returns
    -------
    values : ndarray
        float32, NaN where the position is outside the source or touches a bad pixel.
    sigma : ndarray
        float32 uncertainty of the nearest source pixel, NaN where ``values`` is NaN or no
        ``unc`` is given.
    saturated : ndarray or None
        Boolean map of positions whose bilinear footprint touches a saturated pixel (None
        without ``satmap``).
    """
    order = _check_order(order)
    ys = np.asarray(ys, dtype=np.float64)
    xs = np.asarray(xs, dtype=np.float64)
    if ys.ndim != 2 or ys.shape != xs.shape:
        raise ValueError(f"ys and xs must be 2-D of one shape, got {ys.shape}, {xs.shape}")
    coeffs = np.ascontiguousarray(coeffs, dtype=np.float32)
    maps = _maps(coeffs.shape, badmap, unc, satmap)
    values = np.empty(ys.shape, dtype=np.float32)
    sigma = np.empty(ys.shape, dtype=np.float32)
    saturated = np.empty(ys.shape, dtype=np.bool_)
    _sample(False, ys, xs, *_NO_MAPPING, coeffs, int(order), int(src_shape[0]),
            int(src_shape[1]), float(origin[0]), float(origin[1]), float(edge_tol),
            BAD_THRESHOLD, *maps, values, sigma, saturated,
            np.empty(ys.shape[0], dtype=np.int64), np.empty(ys.shape[0], dtype=np.int64))
    return values, sigma, (saturated if satmap is not None else None)


def sample_mapped(coeffs: np.ndarray, mapped: MappedRows, *, order: int,
                  src_shape: tuple[int, int], lo: np.ndarray | None = None,
                  hi: np.ndarray | None = None, origin: tuple[int, int] = (0, 0),
                  edge_tol: float = 1e-3, badmap: np.ndarray | None = None,
                  unc: np.ndarray | None = None, satmap: np.ndarray | None = None):
    """:func:`sample_block` at positions given as splines, each multiplied by its pixel area.

    The positions are evaluated inside the same compiled loop that samples them, and only in
    each row's columns ``lo[i]:hi[i]`` (all columns by default): no coordinate arrays are made,
    and the parts of a footprint's bounding box that cannot map onto the source cost nothing.

    Parameters
    ----------
    coeffs, order, src_shape, origin, edge_tol, badmap, unc, satmap
        As for :func:`sample_block`.
    mapped : MappedRows
        The rows' source positions and pixel areas.
    lo, hi : ndarray, optional
        Per row, the first and the end column that may map onto the source; columns outside
        are NaN.

    Returns
    -------
    values, sigma : ndarray
        float32 (rows, columns): :func:`sample_block`'s, both multiplied by the pixel area.
    saturated : ndarray or None
        As for :func:`sample_block`.
    first, last : ndarray
        Per row, the first column and the end of the columns with a value and a finite,
        positive sigma (both 0 for a row without one).
    """
    order = _check_order(order)
    coeffs = np.ascontiguousarray(coeffs, dtype=np.float32)
    maps = _maps(coeffs.shape, badmap, unc, satmap)
    rows = len(mapped.indices)
    cols = mapped.ys_factor.shape[1]
    lo = np.zeros(rows, dtype=np.int64) if lo is None else np.asarray(lo, dtype=np.int64)
    hi = np.full(rows, cols, dtype=np.int64) if hi is None else np.asarray(hi, dtype=np.int64)
    if lo.shape != (rows,) or hi.shape != (rows,):
        raise ValueError(f"lo and hi must hold one column per row ({rows}), got {lo.shape}, "
                         f"{hi.shape}")
    values = np.empty((rows, cols), dtype=np.float32)
    sigma = np.empty((rows, cols), dtype=np.float32)
    saturated = np.empty((rows, cols), dtype=np.bool_)
    first = np.empty(rows, dtype=np.int64)
    last = np.empty(rows, dtype=np.int64)
    _sample(True, _NO_POSITIONS, _NO_POSITIONS, mapped.indices, mapped.basis,
            mapped.ys_factor, mapped.xs_factor, mapped.area_factor,
            np.asarray(mapped.offsets, dtype=np.float64),
            _NO_MAP if mapped.undefined is None else mapped.undefined,
            mapped.undefined is not None, lo, hi, coeffs, int(order), int(src_shape[0]),
            int(src_shape[1]), float(origin[0]), float(origin[1]), float(edge_tol),
            BAD_THRESHOLD, *maps, values, sigma, saturated, first, last)
    return values, sigma, (saturated if satmap is not None else None), first, last
