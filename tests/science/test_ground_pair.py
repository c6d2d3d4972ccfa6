"""``rapid diff`` as a new user runs it, on a ground-based pair (see ground_pair.py)."""

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from tests.science.ground_pair import write_ground_pair

from rapid.jobs.products import read_table


def _diff(directory, out, *extra):
    """``rapid diff`` on the pair in ``directory``: candidates, diff.fits header, stdout."""
    run = subprocess.run([sys.executable, "-m", "rapid", "diff", str(directory / "sci.fits"),
                          str(directory / "ref.fits"), "--out", str(directory / out), *extra],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    cands = read_table(str(directory / out / "candidates.parquet")).to_pydict()
    return ({k: np.asarray(v) for k, v in cands.items()},
            fits.getheader(directory / out / "diff.fits"), run.stdout)


@pytest.fixture(scope="module")
def ground_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ground")
    truth = write_ground_pair(d, seed=5)
    cands, header, _ = _diff(d, "out")
    return truth, cands, header, d


def _matches(c, x, y, sign, radius=2.0):
    return np.flatnonzero((np.hypot(c["x"] - x, c["y"] - y) < radius) & (c["sign"] == sign))


def test_reference_registered_despite_its_wcs(ground_run):
    truth, c, header, _ = ground_run
    # the reference's WCS is off by (0.5", -0.3") (2.2 science pixels) and 0.02 degree
    assert 2.0 < header["REGISTER_MAX"] < 3.0
    assert header["REGISTER_NSTARS"] >= 50
    assert header["DXRMSFIN"] < 0.1 and header["DYRMSFIN"] < 0.1


def test_transients_and_fading_stars_found_and_measured(ground_run):
    truth, c, _, _ = ground_run
    # a transient on a galaxy core or a star is weighed against the PSF-model mismatch of that
    # source (ZogyConfig.flux_noise); those on clear sky are found but where the reference
    # ends or a bright star's halo is masked
    clear = (truth.tsnr >= 10) & ~truth.on_source
    found = np.array([len(_matches(c, x, y, 1)) > 0 for x, y in zip(truth.tx, truth.ty)])
    assert clear.sum() >= 8
    assert found[clear].mean() >= 0.8
    assert found[truth.tsnr >= 10].mean() >= 0.6
    fading = [len(_matches(c, x, y, -1)) > 0 for x, y in zip(truth.vx, truth.vy)]
    assert sum(fading) >= 5
    # fluxes within a few percent: the PSF estimated on a 25-pixel stamp misses the outermost
    # Moffat wing
    ratios = [c["flux"][k[0]] / f for x, y, f, s in zip(truth.tx, truth.ty, truth.tflux, truth.tsnr)
              if s >= 10 and len(k := _matches(c, x, y, 1))]
    assert 0.9 < np.median(ratios) < 1.03


def test_transients_on_galaxies_and_stars_found_at_their_difference_snr(ground_run):
    # a static source's PSF-model residual is weighed at the mismatch its stars show (here
    # ~1%), and misregistration at the registration's own error, not the faint stars'
    # centroid noise: a transient on a galaxy core is found at the S/N it has in D
    from rapid.evaluation.diffsnr import psf_flux_sigma

    truth, c, header, d = ground_run
    assert header["REG_SIGMA_X"] < header["DXRMSFIN"]
    assert header["REG_SIGMA_Y"] < header["DYRMSFIN"]
    sigma = psf_flux_sigma(fits.getdata(d / "out" / "diff_unc.fits"),
                           fits.getdata(d / "out" / "diff_psf.fits"), truth.tx, truth.ty)
    on = truth.on_source & (truth.tflux / sigma >= 10)
    assert on.sum() >= 8
    found = [len(_matches(c, x, y, 1)) > 0 for x, y in zip(truth.tx[on], truth.ty[on])]
    assert np.mean(found) >= 0.9


def test_cosmic_rays_do_not_become_candidates(ground_run):
    truth, c, header, _ = ground_run
    near_cr = np.zeros(len(c["x"]), bool)
    for x, y in zip(truth.crx, truth.cry):
        near_cr |= np.hypot(c["x"] - x, c["y"] - y) < 3
    # the PSF (4.2 pixels) is wide enough for L.A.Cosmic to mask them before the difference
    assert header["NCOSMIC"] >= 100
    assert near_cr.sum() <= 5
    real = np.zeros(len(c["x"]), bool)
    for x, y in zip(truth.tx, truth.ty):
        real |= np.hypot(c["x"] - x, c["y"] - y) < 2
    for x, y in zip(truth.vx, truth.vy):
        real |= np.hypot(c["x"] - x, c["y"] - y) < 2
    assert (~real).sum() <= 15


def test_scorr_stays_level_up_to_the_reference_coverage_edge(ground_run):
    # the reference ends about 40 pixels before the science image's right edge, and both skies
    # slope; a background held flat over the last meshes left Scorr at -0.5 along that edge
    _, _, header, d = ground_run
    scorr = fits.getdata(d / "out" / "scorr.fits").astype(float)
    bad = ~np.isfinite(fits.getdata(d / "out" / "diff.fits"))
    rows = range(100, scorr.shape[0] - 100)
    edge = int(np.median([np.flatnonzero(bad[y, 800:])[0] + 800 for y in rows]))
    assert 950 < edge < 1010
    band = scorr[100:-100, edge - 40:edge - 2]
    assert abs(np.mean(band[np.isfinite(band)])) < 0.25
    assert header["NSTREAKS"] == 0


def test_measured_psf_mismatch_finds_transients_on_galaxies_and_stars(ground_run, tmp_path):
    # PSFs estimated from the stars match to a few per cent; weighing every static source as
    # if its model were 10% off hides the transients on galaxy cores and stars
    import dataclasses

    from rapid.science.config import DifferenceConfig, ZogyConfig
    from rapid.science.standalone import run_diff

    truth, c, header, _ = ground_run
    assert 0.01 <= header["FLUX_NOISE"] < 0.08
    d = tmp_path.parent / "ground0"
    fixed = run_diff(d / "sci.fits", d / "ref.fits", tmp_path / "fixed", config=DifferenceConfig(
        zogy=dataclasses.replace(ZogyConfig(), flux_noise_from_stars=False)))
    assert fixed.meta["flux_noise"] == 0.1
    f = {k: np.asarray(fixed.candidates[k]) for k in ("x", "y", "sign")}
    on = (truth.tsnr >= 10) & truth.on_source
    measured = sum(len(_matches(c, x, y, 1)) > 0 for x, y in zip(truth.tx[on], truth.ty[on]))
    at_fixed = sum(len(_matches(f, x, y, 1)) > 0 for x, y in zip(truth.tx[on], truth.ty[on]))
    assert measured >= at_fixed + 3


def test_zero_filled_reference_corner_is_masked_not_differenced(tmp_path):
    # a coadd's grid outside its footprint is often zeros: next to a sky-subtracted reference
    # that reads as blank sky, and every science star on it would be a transient
    from astropy.wcs import WCS

    from rapid.science.standalone import run_diff

    truth = write_ground_pair(tmp_path, seed=5, ref_fill=500)
    result = run_diff(tmp_path / "sci.fits", tmp_path / "ref.fits", tmp_path / "out")
    c = {k: np.asarray(result.candidates[k]) for k in ("x", "y", "ra", "dec", "sign")}
    real = np.zeros(len(c["x"]), bool)
    for x, y in zip(np.r_[truth.tx, truth.vx], np.r_[truth.ty, truth.vy]):
        real |= np.hypot(c["x"] - x, c["y"] - y) < 2
    assert (~real).sum() <= 5
    # the filled corner, seen from the science grid, is blanked in D
    wref = WCS(fits.getheader(tmp_path / "ref.fits"))
    yy, xx = np.mgrid[0:1024:8, 0:1024:8]
    rx, ry = wref.all_world2pix(*result.diff.wcs.all_pix2world(xx, yy, 0), 0)
    inside = (rx + ry < 480) & (rx > 0) & (ry > 0)
    assert inside.sum() > 100
    assert np.isnan(result.diff.data[yy[inside], xx[inside]]).all()


def test_psf_that_varies_across_the_field_is_followed(tmp_path):
    # the science FWHM changes by +-10% corner to corner: one PSF for the image leaves 2% of
    # every static source in the difference, and the mismatch allowance that quiets it buries
    # transients on galaxies; the difference runs in cells with the local PSFs instead
    truth = write_ground_pair(tmp_path, seed=6, psf_gradient=0.1)
    c, header, stdout = _diff(tmp_path, "cells")
    one, header_one, _ = _diff(tmp_path, "one", "--psf-cells", "0")
    assert header["PSF_CELLS"] >= 4 and header_one["PSF_CELLS"] == 1
    assert f"PSF fitted in {header['PSF_CELLS']} cells" in stdout
    assert header["PSF_VARIATION_SCI"] > 0.03
    # the mismatch the stars show with their cells' PSFs, and with one PSF for the image
    assert header["FLUX_NOISE"] < 0.015
    assert header_one["FLUX_NOISE"] > 0.018
    with fits.open(tmp_path / "cells" / "diff_psf.fits") as hdul:
        cube = hdul["CELLS"].data
        assert cube.shape[0] == header["PSF_CELLS"]
        assert hdul["CELLS"].header["XEDGE0"] == 0
        np.testing.assert_allclose(cube.sum(axis=(1, 2)), 1.0, atol=1e-4)
    bright = truth.tsnr >= 10
    assert bright.sum() >= 15

    def found(cands):
        return np.array([len(_matches(cands, x, y, 1)) > 0
                         for x, y in zip(truth.tx[bright], truth.ty[bright])])

    assert found(c).mean() >= 0.7  # 16 of 21
    assert found(c).sum() > found(one).sum()  # 14 of 21


def test_fluxes_are_corrected_in_a_field_of_few_isolated_stars(tmp_path):
    # the science PSF widens by 30% across the field: 16 cells, and the stars of the crowded
    # field that are isolated enough for the aperture correction are only four; without it
    # the stacked PSF puts every flux 8% high
    from rapid.io.fits_frame import read_fits_frame
    from rapid.science.difference import difference_images

    truth = write_ground_pair(tmp_path, seed=7, psf_gradient=0.3)
    result = difference_images(read_fits_frame(tmp_path / "sci.fits"),
                               read_fits_frame(tmp_path / "ref.fits"))
    assert result.meta["psf_cells"] >= 9
    assert np.isfinite(result.meta["apcorr_sci"])
    c = result.candidates
    x, y, flux = (np.asarray(c[k]) for k in ("x", "y", "flux"))
    d = np.hypot(x[:, None] - truth.tx, y[:, None] - truth.ty)
    hit = (d.min(axis=0) < 2) & (truth.tsnr >= 10) & ~truth.on_source
    assert hit.sum() >= 6
    ratio = flux[np.argmin(d, axis=0)[hit]] / truth.tflux[hit]
    assert abs(np.median(ratio) - 1) < 0.03


def test_a_crowded_field_keeps_its_flux_ratio_and_background_level(tmp_path):
    # 3560 stars on 612^2 pixels (a star per 105 pixels, an eighth of one per PSF core): no
    # pixel is free of starlight, and each aperture holds its neighbours' light in different
    # shares under the broad and the sharp PSF. Aperture fluxes of the few unblended stars
    # had given a ratio of 0.915, and source-free pixels no level to match: 6 of the 40
    # transients were found
    truth = write_ground_pair(tmp_path, seed=1, size=512, nstars=3560, ngal=80)
    cands, header, _ = _diff(tmp_path, "out")
    assert header["SCALEFACREF"] == pytest.approx(1.0, abs=0.02)
    assert header["NMATCHED"] >= 20
    found = sum(_matches(cands, x, y, 1).size > 0 for x, y in zip(truth.tx, truth.ty))
    assert found >= 12
    assert np.sum(cands["sign"] < 0) <= 8 + 3  # the 8 fading stars, and little else


def _cut_pair(src, dst, x0, y0, n):
    """An n x n cutout of the science image at (x0, y0) and the part of the reference under it
    (with a 20-pixel margin), written to ``dst`` as a pair of its own."""
    from astropy.wcs import WCS

    dst.mkdir()
    with fits.open(src / "sci.fits") as h:
        data, header = h[0].data, h[0].header.copy()
    w = WCS(header)
    header.update(w[y0:y0 + n, x0:x0 + n].to_header())
    fits.writeto(dst / "sci.fits", data[y0:y0 + n, x0:x0 + n], header)
    with fits.open(src / "ref.fits") as h:
        rdata, rheader = h[0].data, h[0].header.copy()
    wr = WCS(rheader)
    ra, dec = w.all_pix2world([x0, x0 + n, x0, x0 + n], [y0, y0, y0 + n, y0 + n], 0)
    px, py = wr.all_world2pix(ra, dec, 0)
    a0, a1 = int(max(0, px.min() - 20)), int(min(rdata.shape[1], px.max() + 20))
    b0, b1 = int(max(0, py.min() - 20)), int(min(rdata.shape[0], py.max() + 20))
    rheader.update(wr[b0:b1, a0:a1].to_header())
    fits.writeto(dst / "ref.fits", rdata[b0:b1, a0:a1], rheader)


def test_a_cutout_of_few_stars_gets_its_psf_registration_and_mismatch(tmp_path):
    # 192^2 pixels of the pair with 5 transients (S/N 4.7-8.9, all on or by galaxies) and 3-8
    # stars for the PSF in each image. Its stack over a 41-pixel stamp was two galaxies and a
    # blend (FWHM 8.8 for 4.9); sep's deblending flags left 2 stars to register a reference
    # whose WCS is 1.8 pixels off, too few then, and none for a flux ratio; the stars' PSF
    # mismatch could not be measured within 63 pixels of an edge, so the default 10% weighed
    # the transients down to Scorr 2-4: none was found, and a fading false one was
    truth = write_ground_pair(tmp_path, seed=1)
    _cut_pair(tmp_path, tmp_path / "cut", 200, 700, 192)
    cands, header, _ = _diff(tmp_path / "cut", "out")
    assert header["SCI_FWHM"] == pytest.approx(4.92, rel=0.05)  # the whole image's estimate
    assert header["REGISTER_NSTARS"] >= 5
    assert header["REG_SIGMA_X"] < 0.1 and header["REG_SIGMA_Y"] < 0.1
    assert header["FLUX_NOISE"] < 0.05
    # the deep reference's isophotes join most stars to faint neighbours: counted by the
    # light of those neighbours, not by sep's deblending flag, enough stars give a ratio
    assert header["GAINMATCH_METHOD"] == "stars"
    assert header["SCALEFACREF"] == pytest.approx(1.0, abs=0.02)
    tx, ty = truth.tx - 200, truth.ty - 700
    inside = (tx >= 0) & (tx < 192) & (ty >= 0) & (ty < 192)
    assert inside.sum() == 5
    d = np.hypot(cands["x"][:, None] - tx[inside], cands["y"][:, None] - ty[inside])
    assert (d.min(axis=0) < 2).sum() >= 2
    assert (d.min(axis=1) < 2).all()  # nothing else
