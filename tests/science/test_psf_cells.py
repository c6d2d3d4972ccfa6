"""PSFs that vary across the image: cells, the moments' field, stretched PSFs, and ZOGY by cell."""

import numpy as np
import pytest
from tests.science.diff_fakes import add_star, tan_wcs

from rapid.science.image import Frame
from rapid.science.psf import (cut_stamps, estimate_psf, find_psf_stars, fit_psf_fwhm,
                               gaussian_psf, isolated_stars, star_stamps)
from rapid.science.psf_cells import (CellGrid, fit_psf_field, psf_cells, stretched_psf,
                                     weighted_moments)
from rapid.science.zogy import zogy
from rapid.science.zogy_cells import zogy_cells


def test_cell_grid_indexes_positions_and_finds_the_centre():
    grid = CellGrid.regular((100, 300), 2, 3)
    assert grid.y_edges == (0, 50, 100) and grid.x_edges == (0, 100, 200, 300)
    assert grid.shape == (2, 3) and grid.ncells == 6
    # pixel 99 is the last of column 0: its centre and anything that rounds to it stay there
    idx = grid.index([250.0, 99.4, 99.6, -5.0], [10.0, 49.4, 49.6, 500.0])
    assert idx.tolist() == [2, 0, 4, 3]
    assert grid.central() == 4
    assert grid.bounds(4) == (50, 100, 100, 200)


def test_stretched_psf_takes_the_moments_of_a_wider_elongated_psf():
    psf = gaussian_psf(4.0, size=31)
    # the truth: 10% wider along y, 5% along x
    yy, xx = np.mgrid[-15:16, -15:16]
    true = np.exp(-(yy / (1.10 * 1.7)) ** 2 / 2 - (xx / (1.05 * 1.7)) ** 2 / 2)
    true /= true.sum()
    sigma = 1.7
    out = stretched_psf(psf, weighted_moments(true, sigma), sigma)
    assert out.sum() == pytest.approx(1.0)
    misfit = np.sqrt(np.sum((out - true) ** 2) / np.sum(true**2))
    before = np.sqrt(np.sum((psf - true) ** 2) / np.sum(true**2))
    assert before > 0.08
    assert misfit < 0.01


def _varying_field(rng, shape, gradient, nstars=500):
    """Stars whose FWHM is 3.5 (1 + gradient (x + y - n) / n) pixels, in Gaussian noise."""
    n = shape[0]
    img = np.zeros(shape)
    x = rng.uniform(20, shape[1] - 20, nstars)
    y = rng.uniform(20, shape[0] - 20, nstars)
    flux = 10 ** rng.uniform(4, 5.5, nstars)
    for xi, yi, fi in zip(x, y, flux):
        add_star(img, xi, yi, fi, 3.5 * (1 + gradient * (xi + yi - n) / n), size=31)
    img += rng.normal(0, 5.0, shape)
    return Frame(data=img.astype(np.float32), wcs=tan_wcs(shape))


def _cells_of_field(seed, gradient, shape=(1024, 1024)):
    """The whole-image PSF and the cells of a :func:`_varying_field` (reference PSF given)."""
    frame = _varying_field(np.random.default_rng(seed), shape, gradient)
    stars = find_psf_stars(frame)
    psf = estimate_psf(frame, size=31, stars=stars)
    return psf, psf_cells(stars, None, psf, psf, shape)


def test_psf_cells_follow_a_psf_that_widens_across_the_image():
    psf, cells = _cells_of_field(11, 0.1)
    assert cells.grid.ncells >= 4
    assert cells.variation_n > 0.05
    # the reference's PSF came with it: the same in every cell
    assert all(p is psf for p in cells.psfs_r)
    fwhm, truth = [], []
    for c in (0, cells.grid.ncells - 1):  # the two far corners
        y0, y1, x0, x1 = cells.grid.bounds(c)
        truth.append(3.5 * (1 + 0.1 * ((x0 + x1 - 1) / 2 + (y0 + y1 - 1) / 2 - 1024) / 1024))
        fwhm.append(fit_psf_fwhm(cells.psfs_n[c]))
        # within what the whole image's estimate is off by itself (1.3% here)
        assert fwhm[-1] == pytest.approx(truth[-1], rel=0.025)
        assert abs(fit_psf_fwhm(psf) / truth[-1] - 1) > 0.04
    assert fwhm[1] / fwhm[0] == pytest.approx(truth[1] / truth[0], rel=0.015)


def test_cells_asked_smaller_than_the_default_smallest_are_made():
    """A PSF twice as wide at one corner as at the other, on cells of at most 128 pixels: the
    grid goes below the 256 pixels it stops at by default (``rapid diff --psf-cells``)."""
    frame = _varying_field(np.random.default_rng(13), (1024, 1024), 0.5)
    stars = find_psf_stars(frame)
    psf = estimate_psf(frame, size=31, stars=stars)
    default = psf_cells(stars, None, psf, psf, (1024, 1024))
    small = psf_cells(stars, None, psf, psf, (1024, 1024), cell_size=128)
    assert default.grid.ncells <= 16 < small.grid.ncells


def test_psf_cells_leave_a_constant_psf_whole():
    psf, cells = _cells_of_field(12, 0.0)
    assert cells.grid.ncells == 1
    assert cells.variation_n < 0.015
    assert cells.psfs_n[0] is psf


def test_zogy_by_cells_with_one_psf_equals_zogy_of_the_whole_image():
    rng = np.random.default_rng(13)
    shape = (300, 420)
    sci, ref = np.zeros(shape), np.zeros(shape)
    for _ in range(60):
        x, y, f = rng.uniform(0, 420), rng.uniform(0, 300), 10 ** rng.uniform(3, 5)
        add_star(sci, x, y, f, 3.0)
        add_star(ref, x, y, f, 2.5)
    sci += rng.normal(0, 3.0, shape)
    ref += rng.normal(0, 1.5, shape)
    pn, pr = gaussian_psf(3.0, size=25), gaussian_psf(2.5, size=25)
    vn, vr = np.full(shape, 9.0, np.float32), np.full(shape, 2.25, np.float32)
    kwargs = dict(var_n=vn, var_r=vr, sigma_n=3.0, sigma_r=1.5, sigma_x=0.02, sigma_y=0.02,
                  flux_noise=0.02)
    whole = zogy(sci, ref, pn, pr, **kwargs)
    grid = CellGrid.regular(shape, 2, 3)
    cells = zogy_cells(sci, ref, grid, [pn] * 6, [pr] * 6, **kwargs)
    assert len(cells.cells) == 6
    np.testing.assert_allclose(cells.whole.Pd, whole.Pd, atol=1e-6)
    assert cells.whole.Fd == pytest.approx(whole.Fd)
    # the cells' margins hold the kernels' reach: the seams do not show (the image's own
    # borders differ: there the whole image's transforms wrap around, the cells' do not)
    inner = np.s_[30:-30, 30:-30]
    d_noise = np.std(whole.D[inner])
    assert np.abs(cells.whole.D - whole.D)[inner].max() < 1e-3 * d_noise
    assert np.abs(cells.whole.Scorr - whole.Scorr)[inner].max() < 1e-3


def test_a_star_whose_stamp_sums_negative_keeps_the_others_paired_with_their_positions():
    # a star on an over-subtracted background (beside a satellite trail, say) sums below 0:
    # its stamp is left out of the PSF, and the moments' field still pairs each star's stamp
    # with its own position (it once dropped the stamp and misaligned every later one)
    frame = _varying_field(np.random.default_rng(5), (512, 512), 0.1, nstars=200)
    stars = find_psf_stars(frame)
    idx = isolated_stars(stars, 31)
    assert idx.size > 20
    x, y = stars.objects["x"][idx], stars.objects["y"][idx]
    # a star whose stamp no other stamp overlaps
    apart = np.min(np.hypot(x[:, None] - x, y[:, None] - y) + 1e9 * np.eye(idx.size), axis=1)
    k = int(np.flatnonzero(apart > 32)[0])
    iy, ix = int(round(y[k])), int(round(x[k]))
    stars.image[iy - 5:iy + 6, ix - 5:ix + 6] -= 1e6
    stamps = cut_stamps(stars, idx, 31)
    assert stamps.shape == (idx.size, 31, 31)
    assert np.isnan(stamps[k]).all()
    assert np.isfinite(np.delete(stamps, k, axis=0)).all()
    # the stack's stamps: the stellar locus's (every size of this 10% gradient; not the
    # tenth whose outer light a neighbour's raises), all finite, the negative one left out
    used = star_stamps(stars, 31, 1000)
    assert np.isfinite(used).all() and 0.85 * idx.size <= len(used) <= idx.size - 1
    psf = gaussian_psf(3.5, size=31)
    field = fit_psf_field(stars, idx, psf, (512, 512), degree=1)
    assert field.field.nstars <= idx.size - 1
