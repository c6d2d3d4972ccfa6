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
