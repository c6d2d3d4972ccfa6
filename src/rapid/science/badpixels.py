"""Bad pixels under interpolation: filling them, and growing them to an interpolation's footprint.

Used by :mod:`rapid.science.resample` and :mod:`rapid.science.coadd` so that a NaN, masked or
saturated source pixel neither rings into its neighbours nor goes unflagged in the output (the
per-pixel footprint test itself is in :mod:`rapid.science.sampling`).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage

from rapid.science.box_filters import cross_dilation

__all__ = ["fill_bad_pixels", "bad_footprint_map", "plateau_mask", "true_pixels", "BAD_THRESHOLD",
           "ORDERS"]

#: Bilinear weight of a bad pixel above which a destination pixel is flagged.
BAD_THRESHOLD = 1e-3
#: Interpolation orders supported by the resampling: nearest, bilinear, cubic B-spline.
ORDERS = (0, 1, 3)


def true_pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the True pixels of a 2-D map, as ``np.nonzero``.

    From the flat indices: ``np.nonzero`` of a 2-D array takes about ten times longer on a
    full frame (0.13 s against 0.01 s for 4088^2), whatever few pixels are set.
    """
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def fill_bad_pixels(data: np.ndarray, bad: np.ndarray, *, size: int = 5,
                    overwrite: bool = False) -> np.ndarray:
    """A copy of ``data`` with bad pixels replaced by the mean of their good neighbours.

    Used before spline interpolation so that a NaN or masked pixel cannot ring into its
    surroundings; pixels with no good neighbour within ``size`` take the median of all good pixels.

    Parameters
    ----------
    data : ndarray
        2-D image.
    bad : ndarray
        Boolean map, True where ``data`` must not be used.
    size : int, optional
        Box size of the neighbourhood mean (default 5).
    overwrite : bool, optional
        ``data`` may be filled in place when it has the output's type (default False).

    Returns
    -------
    ndarray
        Image with no bad pixel left, float32 for float32 (or narrower) input, else float64.
    """
    dtype = np.promote_types(np.asarray(data).dtype, np.float32)
    out = (data if overwrite and isinstance(data, np.ndarray) and data.dtype == dtype
           and data.flags.writeable else np.array(data, dtype=dtype))
    bad = np.asarray(bad, dtype=bool)
    if bad.shape != out.shape:
        raise ValueError(f"bad has shape {bad.shape}, data has {out.shape}")
    if not bad.any():
        return out
    good = ~bad
    if not good.any():
        out[...] = 0.0
        return out
    if np.count_nonzero(bad) > 0.01 * bad.size:
        # Many bad pixels (e.g. the empty corners of a reference tile): two box filters over
        # the whole image cost less than gathering each bad pixel's neighbourhood.
        num = ndimage.uniform_filter(np.where(good, out, out.dtype.type(0)), size,
                                     mode="nearest")
        den = ndimage.uniform_filter(good.astype(out.dtype), size, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            local = num[bad] / den[bad]
        empty = ~(den[bad] > 0.5 / size**2)
        if empty.any():
            local[empty] = _typical(out, good)
        out[bad] = local
        return out
    # Gather the size x size neighbourhood of each bad pixel only: bad pixels are usually sparse,
    # and this costs O(n_bad * size**2) instead of filtering the whole image.
    by, bx = true_pixels(bad)
    num = np.zeros(len(by))
    den = np.zeros(len(by), dtype=np.int32)
    _neighbour_sums(out, good, by, bx, size // 2, num, den)
    with np.errstate(invalid="ignore", divide="ignore"):
        local = num / den
    if (den == 0).any():
        local[den == 0] = _typical(out, good)
    out[by, bx] = local
    return out


def _typical(data: np.ndarray, good: np.ndarray) -> float:
    """The median of the good pixels, from every 4th row and column when they hold a million
    or more (as good as all of them, at a sixteenth of the sort)."""
    sub = data[::4, ::4][good[::4, ::4]]
    return float(np.median(sub if sub.size >= 1_000_000 else data[good]))


@numba.njit(cache=True, nogil=True)
def _neighbour_sums(data, good, by, bx, half, num, den) -> None:
    """Sum and number of the good pixels in the (2 half + 1)^2 box about each (by, bx), the
    box's indices clipped to the image (an edge pixel counts once per clipped position)."""
    ny, nx = data.shape
    for k in range(len(by)):
        total = 0.0
        count = 0
        for dy in range(-half, half + 1):
            y = min(max(by[k] + dy, 0), ny - 1)
            for dx in range(-half, half + 1):
                x = min(max(bx[k] + dx, 0), nx - 1)
                if good[y, x]:
                    total += data[y, x]
                    count += 1
        num[k] = total
        den[k] = count


def plateau_mask(data: np.ndarray, *, size: int = 5, run: int = 25) -> np.ndarray:
    """Pixels inside a ``size`` x ``size`` square, or a row or column run of ``run`` pixels,
    of one identical value.

    Exposures carry noise, so no real sky holds 25 equal values in a square or a line; files
    do: a coadd or a drizzled image fills the part of its grid outside its footprint with
    zeros, mosaics fill chip gaps, dead columns are set to zero, and saturated cores sit at one
    converter value. Such a fill next to a sky-subtracted image looks like blank sky, and every
    star of the other image on it would become a transient. NaN never counts (it is bad
    already).

    Parameters
    ----------
    data : ndarray
        2-D image.
    size : int, optional
        Side of the square of equal values (5).
    run : int, optional
        Length of a row or column of equal values (25).

    Returns
    -------
    ndarray
        Boolean map: True on every pixel of such a square or run.
    """
    a = np.asarray(data)
    if a.ndim != 2:
        raise ValueError(f"data must be 2-D, got shape {a.shape}")
    if size < 2 or run < 2:
        raise ValueError(f"size and run must be >= 2, got {size} and {run}")
    out = np.zeros(a.shape, dtype=bool)
    eq_x = a[:, 1:] == a[:, :-1]
    eq_y = a[1:, :] == a[:-1, :]
    # cheap exit for the usual noisy image, which has hardly any equal neighbours
    if np.count_nonzero(eq_x) + np.count_nonzero(eq_y) < min(size * (size - 1), run - 1):
        return out
    # A plateau's equal neighbours chain into one connected piece: each piece is searched
    # within its own bounding box, not the whole image (a few saturated cores scattered over a
    # 4088-pixel image otherwise cost 0.6 s per read). The pieces are found on blocks of
    # _BLOCK^2 pixels, which a connected piece crosses as connected blocks: labelling the full
    # map cost more than the search. Integer data, where equal neighbours are everywhere, is
    # searched as one box.
    touched = np.zeros(a.shape, dtype=bool)
    touched[:, 1:] |= eq_x
    touched[:, :-1] |= eq_x
    touched[1:, :] |= eq_y
    touched[:-1, :] |= eq_y
    ny, nx = a.shape
    by, bx = -(-ny // _BLOCK), -(-nx // _BLOCK)
    blocks = np.zeros((by * _BLOCK, bx * _BLOCK), dtype=bool)
    blocks[:ny, :nx] = touched
    blocks = blocks.reshape(by, _BLOCK, bx, _BLOCK).any(axis=(1, 3))
    labels, n = ndimage.label(blocks)
    if n > _MAX_PIECES:
        boxes = [np.s_[:, :]]
    else:
        boxes = [np.s_[r.start * _BLOCK:min(r.stop * _BLOCK, ny),
                       c.start * _BLOCK:min(c.stop * _BLOCK, nx)]
                 for r, c in ndimage.find_objects(labels)]
    for box in boxes:
        _mark_plateaus(a[box], out[box], size, run)
    return out


# Side of the blocks on which the pieces of equal neighbours are found
_BLOCK = 16
# Connected pieces of equal neighbours searched one by one; more are searched as one box
_MAX_PIECES = 2000


def _mark_plateaus(a: np.ndarray, out: np.ndarray, size: int, run: int) -> None:
    """Set ``out`` on the squares and runs of equal values of ``a`` (see :func:`plateau_mask`)."""
    ny, nx = a.shape
    if nx < run and ny < run and (ny < size or nx < size):
        return
    eq_x = a[:, 1:] == a[:, :-1]
    eq_y = a[1:, :] == a[:-1, :]
    if nx >= run:
        out |= _spread(_window_sum(eq_x, run - 1, 1) == run - 1, run, 1)
    if ny >= run:
        out |= _spread(_window_sum(eq_y, run - 1, 0) == run - 1, run, 0)
    if ny >= size and nx >= size:
        rows = _window_sum(eq_x, size - 1, 1) == size - 1  # a run of size equal values
        col = (_window_sum(eq_y, size - 1, 0) == size - 1)[:, : nx - size + 1]  # and down
        corner = (_window_sum(rows, size, 0) == size) & col  # a square's top-left corner
        if corner.any():
            out |= _spread(_spread(corner, size, 0), size, 1)


def _spread(starts: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Every element of the ``n``-long windows along ``axis`` that begin where ``starts`` is
    True: ``starts`` is shorter than the result by ``n - 1`` along that axis."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (n - 1, n - 1)
    return _window_sum(np.pad(starts, pad), n, axis) > 0


def _window_sum(b: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Sums of ``n`` consecutive elements along ``axis`` (0 or 1) of a 2-D array, one per
    start index."""
    c = np.cumsum(b, axis=axis, dtype=np.int32)
    if axis == 0:
        out = c[n - 1:].copy()
        out[1:] -= c[:-n]
    else:
        out = c[:, n - 1:].copy()
        out[:, 1:] -= c[:, :-n]
    return out


def _check_order(order: int) -> int:
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order}")
    return int(order)


def bad_footprint_map(bad: np.ndarray, order: int) -> np.ndarray:
    """Bad map grown so that its bilinear footprint equals the footprint of ``order``."""
    if order >= 3:
        # A cubic footprint reaches one pixel further than the bilinear one on each side.
        bad = cross_dilation(bad, (order + 1) // 2 - 1)
    return bad
