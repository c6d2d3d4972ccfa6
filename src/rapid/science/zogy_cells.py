"""ZOGY cell by cell, each cell with its own PSFs (see :mod:`rapid.science.psf_cells`).

Every cell is differenced with a margin of image around it, wide enough that the kernels'
reach (the PSF stamps' width) into the margin leaves the cell's own pixels as a difference of
the whole image with those PSFs would give them, and its part of D, D_var, S and Scorr is kept.
The noise levels (and so D's flux zero point Fd) are the whole image's in every cell, so D
keeps one flux scale across cell boundaries; what changes from cell to cell is D's PSF and the
kernels, which the later steps take from the cell a candidate lies in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rapid.science.psf_cells import CellGrid
from rapid.science.zogy import ZogyResult, zogy


@dataclass(frozen=True)
class CellKernels:
    """What the later steps need of one cell's difference: D's PSF and the D kernels."""

    Pd: np.ndarray
    kernel_n: np.ndarray
    kernel_r: np.ndarray


@dataclass
class CellZogy:
    """A stitched difference and each cell's own PSF and kernels.

    Attributes
    ----------
    whole : ZogyResult
        D, D_var, S, Scorr, Scorr_hi, Scorr_lo and noise_only of the whole image; its Pd and
        kernels are the central cell's, its skew the median cell's.
    cells : list of CellKernels
        Each cell's, in the grid's order.
    grid : CellGrid
        The cells.
    """

    whole: ZogyResult
    cells: list[CellKernels]
    grid: CellGrid


def zogy_cells(N: np.ndarray, R: np.ndarray, grid: CellGrid, psfs_n: Sequence[np.ndarray],
               psfs_r: Sequence[np.ndarray], *, var_n: np.ndarray, var_r: np.ndarray,
               sigma_n: float, sigma_r: float, margin: int | None = None,
               **kwargs) -> CellZogy:
    """:func:`rapid.science.zogy.zogy` in every cell of ``grid``, stitched.

    Parameters
    ----------
    N, R, var_n, var_r : ndarray
        As for :func:`rapid.science.zogy.zogy`, whole images.
    grid : CellGrid
        The cells; one cell runs ZOGY once on the whole image.
    psfs_n, psfs_r : sequence of ndarray
        Each cell's PSFs, in the grid's (row-major) order.
    sigma_n, sigma_r : float
        The whole images' background noise, used in every cell.
    margin : int, optional
        Pixels of image around each cell (default: the widest PSF stamp's side).
    **kwargs
        Passed on to :func:`rapid.science.zogy.zogy`.

    Returns
    -------
    CellZogy
    """
    if len(psfs_n) != grid.ncells or len(psfs_r) != grid.ncells:
        raise ValueError(f"need {grid.ncells} PSFs per image, got {len(psfs_n)} and "
                         f"{len(psfs_r)}")
    if grid.ncells == 1:
        r = zogy(N, R, psfs_n[0], psfs_r[0], var_n=var_n, var_r=var_r, sigma_n=sigma_n,
                 sigma_r=sigma_r, **kwargs)
        return CellZogy(whole=r, cells=[CellKernels(r.Pd, r.kernel_n, r.kernel_r)], grid=grid)
    if margin is None:
        margin = max(max(p.shape) for p in (*psfs_n, *psfs_r))
    ny, nx = N.shape
    images = ("D", "D_var", "S", "Scorr", "Scorr_hi", "Scorr_lo", "noise_only")
    out: dict[str, np.ndarray] = {}
    cells: list[CellKernels] = []
    skews, insides = [], []
    for c in range(grid.ncells):
        y0, y1, x0, x1 = grid.bounds(c)
        ey0, ey1 = max(y0 - margin, 0), min(y1 + margin, ny)
        ex0, ex1 = max(x0 - margin, 0), min(x1 + margin, nx)
        box = np.s_[ey0:ey1, ex0:ex1]
        r = zogy(N[box], R[box], psfs_n[c], psfs_r[c], var_n=var_n[box], var_r=var_r[box],
                 sigma_n=sigma_n, sigma_r=sigma_r, **kwargs)
        inner = np.s_[y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0]
        for name in images:
            part = getattr(r, name)
            if name in ("Scorr_hi", "Scorr_lo") and part is r.Scorr:
                continue  # no phases: the extremes are Scorr itself
            if part is None:
                continue  # no flux-noise or registration term: every pixel is noise only
            if name not in out:
                out[name] = np.zeros((ny, nx), dtype=part.dtype)
            out[name][y0:y1, x0:x1] = part[inner]
        cells.append(CellKernels(r.Pd, r.kernel_n, r.kernel_r))
        skews.append(r.skew)
        insides.append(r.pd_inside)
        # Fd depends on the noise levels and zero points only, the same in every cell
        Fd, Fn, Fr = r.Fd, r.Fn, r.Fr
        del r
    central = cells[grid.central()]
    whole = ZogyResult(D=out["D"], Pd=central.Pd, S=out["S"], Scorr=out["Scorr"], Fd=Fd,
                       D_var=out["D_var"], Fn=Fn, Fr=Fr, kernel_n=central.kernel_n,
                       kernel_r=central.kernel_r, Scorr_hi=out.get("Scorr_hi"),
                       Scorr_lo=out.get("Scorr_lo"), skew=float(np.median(skews)),
                       noise_only=out.get("noise_only"), pd_inside=insides[grid.central()])
    return CellZogy(whole=whole, cells=cells, grid=grid)
