"""Cosmic-ray tracks in a well-sampled science frame are masked before the difference."""

import numpy as np
from scipy.spatial import cKDTree

from rapid.science.config import CosmicRayConfig, DifferenceConfig
from rapid.science.cosmic_rays import cosmic_ray_mask
from rapid.science.difference import difference_images
from tests.science.diff_fakes import make_frame, star_field

SHAPE = (256, 256)


def _tracks(rng, img, n, *, edge=20):
    """``n`` straight tracks of 10-30 pixels (60-600 a pixel, two samples a pixel) added to
    ``img``; the map of the pixels they hit."""
    hit = np.zeros(img.shape, dtype=bool)
    for _ in range(n):
        x0, y0 = rng.uniform(edge + 30, img.shape[1] - edge - 30, 2)
        length, angle, amp = rng.uniform(10, 30), rng.uniform(0, np.pi), rng.uniform(60, 600)
        for t in np.linspace(0.0, length, int(2 * length)):
            x, y = int(x0 + t * np.cos(angle)), int(y0 + t * np.sin(angle))
            img[y, x] += amp / 2
            hit[y, x] = True
    return hit


def _pair(seed, fwhm, ntracks):
    rng = np.random.default_rng(seed)
    stars = list(zip(*star_field(rng, SHAPE, nstars=60, flux_range=(3e3, 2e5), edge=12)))
    sci = make_frame(rng, shape=SHAPE, fwhm=fwhm, sigma=8.0, stars=stars + [(128.4, 60.7, 4e3)])
    ref = make_frame(rng, shape=SHAPE, fwhm=fwhm * 0.9, sigma=3.0, stars=stars)
    hit = _tracks(rng, sci.data, ntracks)
    return sci, ref, hit, stars


def test_tracks_are_found_and_stars_are_not():
    sci, _, hit, stars = _pair(1, 3.5, 16)
    cr = cosmic_ray_mask(sci.data, np.square(sci.unc), np.zeros(SHAPE, bool), fwhm=3.5)
    assert cr[hit].mean() > 0.85
    # what is flagged beyond the tracks hugs them (but for a stray noise pixel or two), and
    # never a star's core
    grown = np.zeros(SHAPE, bool)
    yy, xx = np.nonzero(hit)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown[np.clip(yy + dy, 0, SHAPE[0] - 1), np.clip(xx + dx, 0, SHAPE[1] - 1)] = True
    assert (cr & ~grown).sum() <= 2
    x, y, _ = np.array(stars).T
    far = cKDTree(np.column_stack([xx, yy])).query(np.column_stack([x, y]))[0] > 4
    assert not cr[np.round(y[far]).astype(int), np.round(x[far]).astype(int)].any()
    # nor the transient, in this image only
    assert not cr[58:64, 125:132].any()
    # bad pixels are never flagged
    bad = hit.copy()
    assert not (cosmic_ray_mask(sci.data, np.square(sci.unc), bad, fwhm=3.5) & bad).any()


def test_the_psf_keeps_tracks():
    sci, _, hit, _ = _pair(1, 3.5, 16)
    cr = cosmic_ray_mask(sci.data, np.square(sci.unc), np.zeros(SHAPE, bool), fwhm=3.5,
                         psf=sci.psf)
    assert cr[hit].mean() > 0.85


def test_faint_sources_lifted_by_noise_are_not_rays():
    """Noise lifting a faint source's brightest pixel fires the Laplacian; the light about that
    pixel follows the PSF, so the PSF test lets the source be."""
    rng = np.random.default_rng(0)
    shape, grid = (512, 512), np.arange(14, 500, 28.0)
    xs, ys = (v.ravel() + rng.uniform(-0.5, 0.5, v.size) for v in np.meshgrid(grid, grid))
    # S/N 12 each (noise-equivalent area 20 pixels at 3 pixels FWHM)
    frame = make_frame(rng, shape=shape, fwhm=3.0, sigma=1.0,
                       stars=[(x, y, 55.0) for x, y in zip(xs, ys)])
    var, bad = np.square(frame.unc), np.zeros(shape, bool)

    def sources_hit(cr):
        yy, xx = np.nonzero(cr)
        return sum(bool(np.any(np.hypot(xx - x, yy - y) < 2.5)) for x, y in zip(xs, ys))

    assert sources_hit(cosmic_ray_mask(frame.data, var, bad, fwhm=3.0)) >= 5
    assert sources_hit(cosmic_ray_mask(frame.data, var, bad, fwhm=3.0, psf=frame.psf)) == 0


def test_difference_masks_tracks_of_a_well_sampled_frame():
    sci, ref, _, _ = _pair(2, 3.5, 16)
    found = difference_images(sci, ref)
    assert found.meta["ncosmic"] > 100
    c = found.candidates
    assert len(c) == 1 and abs(c["x"][0] - 128.4) < 0.5 and abs(c["y"][0] - 60.7) < 0.5
    # without the step the tracks are candidates
    off = DifferenceConfig(cosmic_rays=CosmicRayConfig(min_fwhm=np.inf))
    kept = difference_images(sci, ref, config=off)
    assert kept.meta["ncosmic"] == 0 and len(kept.candidates) > 5


def test_undersampled_frame_is_not_searched():
    """An undersampled star's core is as sharp as a cosmic ray: L.A.Cosmic would take it."""
    sci, ref, _, _ = _pair(3, 1.4, 0)
    cr = cosmic_ray_mask(sci.data, np.square(sci.unc), np.zeros(SHAPE, bool), fwhm=1.4)
    assert cr.sum() > 0  # what the step would do: flag stars
    result = difference_images(sci, ref)
    assert result.meta["ncosmic"] == 0 and "cosmic_rays" not in result.timings


def test_the_other_image_keeps_the_stars_of_a_deep_one():
    """Bright stars of a deep image have flanks as sharp as a ray against its little noise; the
    other image of the pair holds them, not the rays."""
    rng = np.random.default_rng(0)
    stars = list(zip(*star_field(rng, SHAPE, nstars=150, flux_range=(1e4, 1e6), edge=12)))
    deep = make_frame(rng, shape=SHAPE, fwhm=3.5, sigma=1.0, stars=stars, gain=50.0)
    other = make_frame(rng, shape=SHAPE, fwhm=3.2, sigma=1.0, stars=stars, gain=50.0)
    hit = _tracks(rng, deep.data, 6)
    var, good = np.square(deep.unc), np.zeros(SHAPE, bool)
    alone = cosmic_ray_mask(deep.data, var, good, fwhm=3.5)
    assert (alone & ~hit).sum() > 500
    paired = cosmic_ray_mask(deep.data, var, good, fwhm=3.5, other=other.data)
    assert (paired & ~hit).sum() < 20
    assert paired[hit].mean() > 0.85


def test_an_undersampled_reference_on_a_finer_grid_is_not_searched():
    """A reference of 1.5 pixels FWHM at twice the science's pixel scale looks 3 pixels wide
    on the science grid, yet its stars are as sharp as rays in its own pixels: L.A.Cosmic
    took the cores of most of its bright stars."""
    from tests.science.diff_fakes import tan_wcs

    rng = np.random.default_rng(11)
    x, y, f = star_field(rng, SHAPE, nstars=60, flux_range=(3e3, 2e5), edge=16)
    sci = make_frame(rng, shape=SHAPE, fwhm=3.2, sigma=5.0, stars=list(zip(x, y, f)))
    half = (128, 128)
    ref = make_frame(rng, shape=half, fwhm=1.5, sigma=2.0,
                     stars=list(zip(x / 2 - 0.25, y / 2 - 0.25, f)),
                     wcs=tan_wcs(half, scale_arcsec=0.22))
    result = difference_images(sci, ref)
    assert result.meta["ref_fwhm"] > 2.5  # as wide as a searched PSF, on the science grid
    assert result.meta["ref_fwhm_own"] < 2.0
    assert result.meta["ncosmic_ref"] == 0
    # and the user is told that its sources' fluxes depend on their pixel phase
    from rapid.science.cautions import difference_cautions

    assert any("the reference is undersampled" in n for n in difference_cautions(result.meta))
