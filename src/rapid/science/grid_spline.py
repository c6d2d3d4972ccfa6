"""Interpolating splines through values on a coarse grid, evaluated fast on fine grids.

Smooth maps sampled coarsely (a pixel mapping every 32 pixels, a background mesh every 64) are
evaluated at every pixel of a full frame. A spline's own ``__call__`` evaluates the 4 x 4 basis
product point by point; here the same numbers come as By @ C @ Bx.T, with By and Bx the
B-spline design matrices of the rows and columns asked for: a sparse product (k + 1 non-zeros
per row) and a dense one (BLAS), several times faster.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline, RectBivariateSpline

__all__ = ["GridSpline"]


class GridSpline:
    """The interpolating spline (cubic, or of the highest order the grid allows) through a grid.

    Parameters
    ----------
    yc, xc : ndarray
        Increasing row and column positions of the grid, at least 2 each.
    values : ndarray
        (len(yc), len(xc)) values at the grid points.

    Notes
    -----
    Evaluate as ``spline.rows(yv, spline.column_factor(xv))``: the column factor depends on the
    columns only and can be kept for blocks of rows over the same columns. Positions must lie
    within [yc[0], yc[-1]] x [xc[0], xc[-1]].
    """

    def __init__(self, yc: np.ndarray, xc: np.ndarray, values: np.ndarray) -> None:
        yc = np.asarray(yc, dtype=np.float64)
        xc = np.asarray(xc, dtype=np.float64)
        if len(yc) < 2 or len(xc) < 2:
            raise ValueError(f"need at least 2 grid rows and columns, got {len(yc)} x {len(xc)}")
        self.k = (min(3, len(yc) - 1), min(3, len(xc) - 1))
        spl = RectBivariateSpline(yc, xc, np.asarray(values, dtype=np.float64),
                                  kx=self.k[0], ky=self.k[1], s=0)
        self.knots = spl.get_knots()
        ncy = len(self.knots[0]) - self.k[0] - 1
        ncx = len(self.knots[1]) - self.k[1] - 1
        coeffs = spl.get_coeffs().reshape(ncy, ncx)
        # B-spline bases sum to 1, so a constant can be taken out of the coefficients and added
        # back: float32 evaluations then keep the precision of the variations, not of the level.
        self.offset = float(np.mean(coeffs))
        self.coeffs = coeffs - self.offset

    def column_factor(self, xv: np.ndarray, dtype=np.float64) -> np.ndarray:
        """C @ Bx.T for columns ``xv``: (coefficient rows, len(xv)) in ``dtype``."""
        bx = BSpline.design_matrix(np.asarray(xv, dtype=np.float64), self.knots[1],
                                   self.k[1]).toarray()
        return np.ascontiguousarray((self.coeffs @ bx.T).astype(dtype, copy=False))

    def row_basis(self, yv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The B-spline basis of rows ``yv``: (len(yv), 4) coefficient-row indices and weights.

        Row ``i`` of the spline over the columns of a factor F is ``offset + sum(weights[i, k] *
        F[indices[i, k]])``: what :meth:`rows` computes, in a form a compiled loop can evaluate
        for some columns of a row only. A basis of lower order is padded with zero weights.
        """
        return _dense_basis(BSpline.design_matrix(np.asarray(yv, dtype=np.float64),
                                                  self.knots[0], self.k[0]).tocsr())

    def rows(self, yv: np.ndarray, factor: np.ndarray) -> np.ndarray:
        """The spline at rows ``yv`` and the columns of ``factor``, in ``factor``'s dtype."""
        by = BSpline.design_matrix(np.asarray(yv, dtype=np.float64), self.knots[0],
                                   self.k[0]).tocsr().astype(factor.dtype)
        out = np.asarray(by @ factor)
        out += out.dtype.type(self.offset)
        return out


def _dense_basis(rows) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights) of a CSR matrix with at most 4 entries a row, as (n, 4) arrays padded
    with zero weights on index 0."""
    n = rows.shape[0]
    counts = np.diff(rows.indptr)
    if counts.size and counts.max() > 4:
        raise ValueError(f"a basis row has {counts.max()} terms, at most 4 are taken")
    indices = np.zeros((n, 4), dtype=np.int64)
    weights = np.zeros((n, 4), dtype=np.float64)
    slot = np.arange(len(rows.indices)) - np.repeat(rows.indptr[:-1], counts)
    row = np.repeat(np.arange(n), counts)
    indices[row, slot] = rows.indices
    weights[row, slot] = rows.data
    return indices, weights
