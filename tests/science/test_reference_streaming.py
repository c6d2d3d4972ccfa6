"""Reference coadds from lazily loaded frames, with bilinear resampling, and the cached catalog."""

import numpy as np
import pytest

from rapid.science.reference import build_reference, reference_catalog
from tests.science.test_reference import DEC, NOISE, RA, SIGMA, SIZE, _frames


@pytest.fixture(scope="module")
def frames_truth(make_wcs, star_frame, star_field):
    return _frames(make_wcs, star_frame, star_field)


def test_loaders_give_the_same_coadd_and_are_called_once(frames_truth):
    frames, _ = frames_truth
    calls = []

    def loader(i):
        def load():
            calls.append(i)
            return frames[i]
        return load

    eager = build_reference(frames, ra0=RA, dec0=DEC, size=SIZE, block_rows=64)
    lazy = build_reference([loader(i) for i in range(5)], ra0=RA, dec0=DEC, size=SIZE,
                           block_rows=64)
    assert calls == [0, 1, 2, 3, 4]
    assert np.array_equal(eager.frame.data, lazy.frame.data, equal_nan=True)
    assert np.array_equal(eager.coverage, lazy.coverage)
    # A generator is read only up to max_frames.
    gen = build_reference((f for f in frames), ra0=RA, dec0=DEC, size=SIZE, max_frames=4)
    assert gen.nframes == 4 and gen.meta["mjdobsmax"] == 60015.0


def test_bilinear_coadd_keeps_fluxes_and_box_noise(frames_truth, render_stars):
    frames, (ra, dec, flux) = frames_truth
    ref = build_reference(frames, ra0=RA, dec0=DEC, size=SIZE, block_rows=64, order=1)
    x, y = ref.frame.wcs.all_world2pix(ra, dec, 0)
    model = render_stars(ref.frame.shape, x, y, flux, SIGMA)
    yy, xx = np.mgrid[0:ref.frame.shape[0], 0:ref.frame.shape[1]]
    ratios = [ref.frame.data[np.hypot(xx - xi, yy - yi) <= 7].sum() / fi
              for xi, yi, fi in zip(x, y, flux)
              if ref.coverage[np.hypot(xx - xi, yy - yi) <= 7].min() == 5]
    assert len(ratios) >= 10
    assert abs(np.mean(ratios) - 1) < 0.02
    clean = (ref.coverage == 5) & (model < 0.02 * NOISE)
    resid = np.where(clean, ref.frame.data - model, np.nan)
    b = 6
    ny, nx = (s // b * b for s in resid.shape)
    sums = resid[:ny, :nx].reshape(ny // b, b, nx // b, b).sum(axis=(1, 3))
    sums = sums[np.isfinite(sums)]
    assert np.std(sums) / b == pytest.approx(NOISE / np.sqrt(5), rel=0.15)
    # Bilinear smoothing lowers the per-pixel noise to ~0.67 of the box-sum figure.
    assert 0.55 * NOISE / np.sqrt(5) < np.nanstd(resid) < 0.8 * NOISE / np.sqrt(5)


def test_catalog_is_extracted_once_and_order_is_checked(frames_truth):
    frames, _ = frames_truth
    ref = build_reference(frames[:3], ra0=RA, dec0=DEC, size=SIZE)
    assert ref.catalog is not None and len(ref.catalog) == ref.meta["nsexcatsources"]
    cat = reference_catalog(ref)
    assert cat is not ref.catalog and len(cat) == len(ref.catalog)
    # The default call returns the kept catalog; other settings extract afresh.
    ref.catalog = ref.catalog[:3]
    assert len(reference_catalog(ref)) == 3
    assert len(reference_catalog(ref, minarea=6)) > 3
    with pytest.raises(ValueError, match="order"):
        build_reference(frames, ra0=RA, dec0=DEC, size=SIZE, order=2)
