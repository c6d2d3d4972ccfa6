"""PSFs that vary across the field: a grid of cells, each with its own PSF models.

A wide-field camera's PSF changes across the detector (focus, field curvature, optics), by
ten per cent in FWHM and more. One model for the whole image then leaves, at the edges, a
residual of every static source in proportion to its flux: bright stars and galaxy cores leave
candidates, or the PSF-mismatch allowance that keeps them quiet grows (3% for a +-10% FWHM
change over 2048^2 pixels, against 1% with the right PSF) and buries transients on galaxies.

Where a PSF is estimated from the image's stars, the stars' Gaussian-weighted second moments
are fitted as a polynomial over the image (:func:`fit_moment_field`); where they say the PSF
differs from the whole image's by more than their error and by a useful amount, the image is cut
into cells, each cell's PSF is the whole image's stretched to the moments at its centre
(:func:`stretched_psf`: three parameters, where a stack of a cell's few stars would carry the
noise of hundreds of pixels), and the difference runs cell by cell with the local PSFs
(:func:`rapid.science.zogy_cells.zogy_cells`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rapid.science.psf import (FWHM_PER_SIGMA, PsfStars, cut_stamps, fit_psf_fwhm,
                               isolated_stars, normalise_psf)
from rapid.science.psf_transform import transform_psf


@dataclass(frozen=True)
class CellGrid:
    """A partition of an image into rectangular cells, row-major.

    Attributes
    ----------
    y_edges, x_edges : tuple of int
        Cell boundaries in pixels, from 0 to the image's size along each axis.
    """

    y_edges: tuple[int, ...]
    x_edges: tuple[int, ...]

    @classmethod
    def regular(cls, shape: tuple[int, int], ny: int, nx: int) -> CellGrid:
        """``ny`` x ``nx`` cells of (nearly) equal size covering an image of ``shape``."""
        if ny < 1 or nx < 1:
            raise ValueError(f"need at least one cell each way, got {ny} x {nx}")
        return cls(tuple(int(v) for v in np.linspace(0, shape[0], ny + 1).round()),
                   tuple(int(v) for v in np.linspace(0, shape[1], nx + 1).round()))

    @classmethod
    def whole(cls, shape: tuple[int, int]) -> CellGrid:
        """One cell: the whole image."""
        return cls.regular(shape, 1, 1)

    @property
    def shape(self) -> tuple[int, int]:
        """Cells along y and x."""
        return len(self.y_edges) - 1, len(self.x_edges) - 1

    @property
    def ncells(self) -> int:
        return self.shape[0] * self.shape[1]

    def bounds(self, cell: int) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of a cell: rows y0..y1-1, columns x0..x1-1."""
        i, j = divmod(int(cell), self.shape[1])
        return self.y_edges[i], self.y_edges[i + 1], self.x_edges[j], self.x_edges[j + 1]

    def index(self, x, y) -> np.ndarray:
        """The cell of each position (zero-based pixels; outside ones go to the nearest)."""
        def along(v, edges):
            k = np.searchsorted(np.asarray(edges[1:-1], float), np.asarray(v, float) + 0.5,
                                side="right")
            return np.asarray(k, dtype=int)
        return along(y, self.y_edges) * self.shape[1] + along(x, self.x_edges)

    def central(self) -> int:
        """The cell holding the image's centre."""
        cy, cx = (self.y_edges[-1] - 1) / 2.0, (self.x_edges[-1] - 1) / 2.0
        return int(self.index(cx, cy))


@dataclass(frozen=True)
class PsfCells:
    """The grid the difference runs on and both images' PSF in each of its cells.

    Attributes
    ----------
    grid : CellGrid
        The cells (one: the images' PSFs do not vary).
    psfs_n, psfs_r : tuple of ndarray
        The science and reference PSF of each cell, in the grid's order.
    variation_n, variation_r : float
        Largest relative L2 difference between a cell's PSF and the whole image's, over the
        cells of ``cell_size`` (0 for a PSF that came with its image or could not be fitted).
    """

    grid: CellGrid
    psfs_n: tuple[np.ndarray, ...]
    psfs_r: tuple[np.ndarray, ...]
    variation_n: float = 0.0
    variation_r: float = 0.0


def _misfit(a: np.ndarray, b: np.ndarray) -> float:
    """Relative L2 difference of two stamps of equal sum: the S/N a star's residual keeps,
    as a fraction of the star's S/N, when one is subtracted for the other."""
    return float(np.sqrt(np.sum((a - b) ** 2) / np.sum(b * b)))


def weighted_moments(stamps: np.ndarray, sigma: float) -> np.ndarray:
    """Second moments (yy, xx, xy) of centred stamps under a Gaussian weight of ``sigma``."""
    n = stamps.shape[-1]
    v = np.arange(n) - n // 2
    yy, xx = np.meshgrid(v, v, indexing="ij")
    w = np.exp(-(yy * yy + xx * xx) / (2.0 * sigma * sigma))
    wi = stamps * w
    total = wi.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([(wi * yy * yy).sum(axis=(-2, -1)) / total,
                         (wi * xx * xx).sum(axis=(-2, -1)) / total,
                         (wi * yy * xx).sum(axis=(-2, -1)) / total], axis=-1)


def _stretch(m: np.ndarray) -> np.ndarray:
    """The symmetric 2x2 matrix (y, x order) of the parameters (a, b, c): [[a, c], [c, b]]."""
    return np.array([[m[0], m[2]], [m[2], m[1]]])


def stretched_psf(psf: np.ndarray, target: np.ndarray, sigma: float) -> np.ndarray:
    """``psf`` under the linear stretch that gives it the weighted moments ``target``.

    A change of focus or seeing across a field widens and elongates the PSF more than it
    changes its form, and a stretch has three parameters where a stamp has hundreds of pixels:
    a cell's PSF from the image's PSF and a smooth fit of its stars' moments is far less noisy
    than a stack of the cell's few stars.
    """
    from scipy import optimize

    def residual(p):
        out = transform_psf(psf, _stretch(p))
        return (weighted_moments(out, sigma) - target) / target[:2].mean()

    # steps of 1e-3: transform_psf copies the stamp exactly for maps within 1e-4 of the
    # identity, where a smaller finite-difference step would see no change
    fit = optimize.least_squares(residual, [1.0, 1.0, 0.0], diff_step=1e-3,
                                 bounds=([0.5, 0.5, -0.5], [2.0, 2.0, 0.5]))
    return normalise_psf(transform_psf(psf, _stretch(fit.x)))


def _design(x, y, shape, degree: int) -> np.ndarray:
    u = 2.0 * np.asarray(x, float) / shape[1] - 1.0
    v = 2.0 * np.asarray(y, float) / shape[0] - 1.0
    cols = [u**i * v**j for i in range(degree + 1) for j in range(degree + 1 - i)]
    return np.column_stack(cols)


@dataclass(frozen=True)
class MomentField:
    """A polynomial fit of the stars' weighted moments over the image.

    Attributes
    ----------
    coef : ndarray
        (ncoef, 3) coefficients of yy, xx, xy.
    cov : ndarray
        (3, ncoef, ncoef) their covariances.
    degree : int
        Polynomial degree in x and y.
    shape : tuple of int
        Image shape the coordinates are scaled by.
    nstars : int
        Stars kept after clipping.
    """

    coef: np.ndarray
    cov: np.ndarray
    degree: int
    shape: tuple[int, int]
    nstars: int

    def at(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Moments at positions, and their 1-sigma errors."""
        a = _design(np.atleast_1d(x), np.atleast_1d(y), self.shape, self.degree)
        err = np.sqrt(np.stack([np.einsum("ij,jk,ik->i", a, c, a) for c in self.cov], axis=-1))
        return a @ self.coef, err


def fit_moment_field(x, y, moments: np.ndarray, shape: tuple[int, int], *, degree: int = 2,
                     clip: float = 3.0, iterations: int = 5) -> MomentField:
    """Least-squares polynomial of each moment over the image, with iterative clipping of the
    stars that a neighbour, a galaxy or a cosmic ray widened (``clip`` sigma from the median
    absolute residual, in any of the three moments)."""
    a = _design(x, y, shape, degree)
    finite = np.all(np.isfinite(moments), axis=1)
    keep = finite

    def fit(rows):
        if rows.sum() <= a.shape[1] + 2:
            raise ValueError(f"{int(rows.sum())} stars cannot fit a degree-{degree} field")
        coef, *_ = np.linalg.lstsq(a[rows], moments[rows], rcond=None)
        return coef, moments - a @ coef

    coef, res = fit(keep)
    for _ in range(iterations):
        scale = 1.4826 * np.median(np.abs(res[keep]), axis=0)
        new = finite & np.all(np.abs(res) <= clip * np.maximum(scale, 1e-12), axis=1)
        if np.array_equal(new, keep):
            break
        keep = new
        coef, res = fit(keep)
    inv = np.linalg.pinv(a[keep].T @ a[keep])
    var = np.var(res[keep], axis=0, ddof=a.shape[1])
    return MomentField(coef=coef, cov=np.stack([inv * v for v in var]), degree=degree,
                       shape=tuple(shape), nstars=int(keep.sum()))


@dataclass(frozen=True)
class PsfField:
    """An image's PSF anywhere on it: its whole-image PSF stretched to the moments that a
    polynomial fit of its stars' moments gives there.

    The whole-image PSF is a median of the brightest stars, and its moments sit where the
    fitted field's do on average over the stars; so the field is taken relative to that level
    (``offset``), which also cancels what the stamps' cutting and the median do to moments.
    """

    psf: np.ndarray
    sigma: float
    field: MomentField
    offset: np.ndarray

    def moments(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Weighted moments (yy, xx, xy) of the PSF at positions, and their errors."""
        m, err = self.field.at(x, y)
        return m + self.offset, err

    def psf_at(self, x: float, y: float) -> np.ndarray:
        return stretched_psf(self.psf, self.moments(x, y)[0][0], self.sigma)


def fit_psf_field(stars, idx: np.ndarray, psf: np.ndarray, shape: tuple[int, int], *,
                  degree: int) -> PsfField:
    """The :class:`PsfField` of an image from its isolated PSF stars ``idx``."""
    sigma = fit_psf_fwhm(psf) / FWHM_PER_SIGMA
    moments = weighted_moments(cut_stamps(stars, idx, psf.shape[0]), sigma)
    x, y = stars.objects["x"][idx], stars.objects["y"][idx]
    field = fit_moment_field(x, y, moments, shape, degree=degree)
    offset = weighted_moments(psf, sigma) - np.median(field.at(x, y)[0], axis=0)
    return PsfField(psf=psf, sigma=sigma, field=field, offset=offset)


def _centres(grid: CellGrid) -> tuple[np.ndarray, np.ndarray]:
    bounds = np.array([grid.bounds(c) for c in range(grid.ncells)], dtype=float)
    return (bounds[:, 2] + bounds[:, 3] - 1) / 2.0, (bounds[:, 0] + bounds[:, 1] - 1) / 2.0


def _varies(field: PsfField, grid: CellGrid, *, nsigma: float,
            min_variation: float) -> tuple[bool, float]:
    """Whether some cell's PSF differs from the whole image's by more than ``nsigma`` errors
    of its moments and by a relative L2 misfit over ``min_variation``; and the largest misfit."""
    cx, cy = _centres(grid)
    local, err = field.moments(cx, cy)
    reference = weighted_moments(field.psf, field.sigma)
    largest, varies = 0.0, False
    for c in range(grid.ncells):
        misfit = _misfit(stretched_psf(field.psf, local[c], field.sigma), field.psf)
        largest = max(largest, misfit)
        varies |= bool(np.any(np.abs(local[c] - reference) > nsigma * err[c])
                       and misfit > min_variation)
    return varies, largest


def _misfit_per_moment(field: PsfField) -> float:
    """Relative L2 misfit per unit relative change of the moments (about 1.4 for most PSFs),
    from a 2% widening of the image's PSF."""
    reference = weighted_moments(field.psf, field.sigma)
    return _misfit(stretched_psf(field.psf, reference * 1.02, field.sigma), field.psf) / 0.02


def _corner_misfit(fields, per_moment, grid: CellGrid) -> float:
    """The largest estimated misfit between the PSF at a cell's corner and at its centre
    (``per_moment``: each field's :func:`_misfit_per_moment`)."""
    worst = 0.0
    cx, cy = _centres(grid)
    hy = np.diff(grid.y_edges).max() / 2.0
    hx = np.diff(grid.x_edges).max() / 2.0
    for field, per in zip(fields, per_moment):
        centre = field.moments(cx, cy)[0]
        scale = centre[:, :2].mean(axis=1)
        for sy, sx in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
            corner = field.moments(cx + sx * hx, cy + sy * hy)[0]
            change = np.abs(corner - centre).max(axis=1) / scale
            worst = max(worst, per * float(change.max()))
    return worst


def choose_grid(fields, shape: tuple[int, int], *, cell_size: int, min_cell_size: int,
                tolerance: float) -> CellGrid:
    """The coarsest grid, cells from ``cell_size`` down to ``min_cell_size`` pixels wide, in
    which the PSF at every cell's corners differs from the one at its centre by an estimated
    misfit of at most ``tolerance`` (the finest grid when none does)."""
    finest = (max(1, shape[0] // min_cell_size), max(1, shape[1] // min_cell_size))
    ny = max(1, int(round(shape[0] / cell_size)))
    nx = max(1, int(round(shape[1] / cell_size)))
    per_moment = [_misfit_per_moment(field) for field in fields]
    while True:
        grid = CellGrid.regular(shape, ny, nx)
        if (ny, nx) == finest or _corner_misfit(fields, per_moment, grid) <= tolerance:
            return grid
        ny, nx = min(ny + max(1, ny // 2), finest[0]), min(nx + max(1, nx // 2), finest[1])


def psf_cells(stars_n: PsfStars | None, stars_r: PsfStars | None, psf_n: np.ndarray,
              psf_r: np.ndarray, shape: tuple[int, int], *, cell_size: int = 512,
              min_cell_size: int = 256, stars_per_term: int = 10, max_stars: int = 2000,
              min_fwhm: float = 2.0, nsigma: float = 5.0,
              min_variation: float = 0.015) -> PsfCells:
    """The cells the difference runs on and the PSFs in each.

    Parameters
    ----------
    stars_n, stars_r : PsfStars or None
        The stars the science and reference PSFs were estimated from
        (:func:`rapid.science.psf.find_psf_stars`); None for an image whose PSF came with it
        (it is taken as the same everywhere).
    psf_n, psf_r : ndarray
        The whole images' PSFs.
    shape : tuple of int
        The images' shape (both on the science grid).
    cell_size : int, optional
        Side of the largest cells in pixels (512); they are made smaller, down to
        ``min_cell_size`` (256, or ``cell_size`` when smaller), until the PSF at a cell's
        corners differs from the one at its centre by an estimated misfit of at most twice
        ``min_variation``.
    stars_per_term : int, optional
        Isolated PSF stars needed per term of the moments' polynomial (10): a quadratic in x
        and y (6 terms) with 60 or more, a plane with 30 or more, else no variation is fitted.
    max_stars : int, optional
        The brightest this many isolated stars are used (2000).
    min_fwhm : float, optional
        PSFs narrower than this (pixels) are not varied (2.0): an undersampled star's moments
        follow its pixel phase more than the optics.
    nsigma : float, optional
        A cell's PSF differs when its fitted moments differ from the image's by more than
        this many of their errors (5) ...
    min_variation : float, optional
        ... and the stretched PSF from the image's by more than this relative L2 misfit (0.015,
        the residual S/N a star keeps as a fraction of its own when one PSF is subtracted for
        the other: about what the mismatch floor of :class:`rapid.science.config.ZogyConfig`
        allows).

    Returns
    -------
    PsfCells
        One cell, with the whole images' PSFs, unless some estimated image's PSF varies.
    """
    whole = PsfCells(CellGrid.whole(shape), (psf_n,), (psf_r,))
    probe = CellGrid.regular(shape, max(1, int(round(shape[0] / cell_size))),
                             max(1, int(round(shape[1] / cell_size))))
    if probe.ncells == 1:
        return whole
    fields, variation = [], []
    for stars, psf in ((stars_n, psf_n), (stars_r, psf_r)):
        field, largest = None, 0.0
        if stars is not None and fit_psf_fwhm(psf) >= min_fwhm:
            idx = isolated_stars(stars, psf.shape[0])[:max_stars]
            if len(idx) >= 3 * stars_per_term:
                degree = 2 if len(idx) >= 6 * stars_per_term else 1
                try:
                    field = fit_psf_field(stars, idx, psf, shape, degree=degree)
                except ValueError:  # too few stars left after clipping
                    field = None
            if field is not None:
                varies, largest = _varies(field, probe, nsigma=nsigma,
                                          min_variation=min_variation)
                # a PSF that does not vary keeps its whole-image estimate, the least noisy
                field = field if varies else None
        fields.append(field)
        variation.append(largest)
    if all(f is None for f in fields):
        return replace(whole, variation_n=variation[0], variation_r=variation[1])
    # cells asked for smaller than the smallest made are made that small
    grid = choose_grid([f for f in fields if f is not None], shape, cell_size=cell_size,
                       min_cell_size=min(min_cell_size, cell_size),
                       tolerance=2.0 * min_variation)
    cx, cy = _centres(grid)
    psfs = [tuple(f.psf_at(x, y) for x, y in zip(cx, cy)) if f is not None
            else (psf,) * grid.ncells for f, psf in zip(fields, (psf_n, psf_r))]
    return PsfCells(grid, psfs[0], psfs[1], *variation)
