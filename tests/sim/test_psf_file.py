"""PSF files: normalised, centred, with the oversampled PSF in HDU 'OVERSAMP'."""

import numpy as np
from astropy.io import fits


def test_psf_file_sums_to_one_and_peaks_at_centre(survey):
    assert [p.name for p in survey.psfs] == ["Roman_sim_psf_H158_01.fits"]
    with fits.open(survey.psfs[0]) as hdul:
        native = hdul[0].data.astype(float)
        assert native.shape == (25, 25)
        assert abs(native.sum() - 1.0) < 1e-5
        assert np.unravel_index(np.argmax(native), native.shape) == (12, 12)
        assert hdul[0].header["FILTER"] == "H158" and hdul[0].header["SCA"] == 1
        assert hdul[0].header["PSFSCALE"] == 0.11
        over = hdul["OVERSAMP"].data.astype(float)
        assert hdul["OVERSAMP"].header["OVERSAMP"] == 4
        assert over.shape[0] % 2 == 1 and abs(over.sum() - 1.0) < 1e-5
        c = over.shape[0] // 2
        assert np.unravel_index(np.argmax(over), over.shape) == (c, c)
        # Roman's PSF is undersampled: a large share of the light in the central pixel.
        assert 0.15 < native[12, 12] < 0.5


def test_the_psf_ends_in_a_circle_inside_its_stamp(survey):
    with fits.open(survey.psfs[0]) as hdul:
        over = hdul["OVERSAMP"].data.astype(float)
        factor = hdul["OVERSAMP"].header["OVERSAMP"]
    c = (over.shape[0] - 1) / 2
    r = np.hypot(*np.mgrid[0:over.shape[0], 0:over.shape[1]] - c) / factor
    # nothing at or beyond 11.5 pixels, the stamp's diagonals included (a square cut would keep
    # them out to 17 pixels), so a drawn star has no square edge
    assert np.all(over[r >= 11.5] == 0)
    assert np.any(over[(r >= 11.5) & (r < 12.0)] == 0) and r.max() > 16
    # the wing inside is still there and falls smoothly towards the circle
    ring = (r > 6.0) & (r < 7.0)
    assert np.all(over[ring] > 0)
    assert np.all(over[(r > 8.5) & (r < 11.5)] < over[ring].max())
