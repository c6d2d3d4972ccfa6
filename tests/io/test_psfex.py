"""PSFEx models read as PSF files: the constant term, at native and finer sampling."""

import io

import numpy as np
import pytest
from astropy.io import fits
from scipy.special import erf

from rapid.io.fits_frame import read_fits_frame, read_psfs
from tests.science.diff_fakes import tan_wcs


def _effective(u: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian of ``sigma`` pixels integrated over a pixel centred at ``u``."""
    s = sigma * np.sqrt(2)
    return (erf((u + 0.5) / s) - erf((u - 0.5) / s)) / 2


def _psfex_file(sigma: float, step: float, n: int, degree: int = 2) -> bytes:
    """A model as PSFEx writes it: the pixel-convolved PSF every ``step`` pixels, centred on
    sample n // 2, as the constant term, and other polynomial terms that vanish at POLZERO."""
    u = (np.arange(n) - n // 2) * step
    terms = (degree + 1) * (degree + 2) // 2
    rng = np.random.default_rng(1)
    masks = np.concatenate([np.outer(_effective(u, sigma), _effective(u, sigma))[None],
                            rng.normal(0, 0.01, (terms - 1, n, n))]).astype(np.float32)
    column = fits.Column(name="PSF_MASK", format=f"{masks.size}E", dim=f"({n}, {n}, {terms})",
                         array=masks[None])
    table = fits.BinTableHDU.from_columns([column], name="PSF_DATA")
    table.header.update(POLNAXIS=2, POLNAME1="X_IMAGE", POLZERO1=1024.5, POLSCAL1=2048.0,
                        POLNAME2="Y_IMAGE", POLZERO2=1024.5, POLSCAL2=2048.0, POLDEG1=degree,
                        PSF_SAMP=step, PSFNAXIS=3, PSFAXIS1=n, PSFAXIS2=n, PSFAXIS3=terms)
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(buf)
    return buf.getvalue()


@pytest.mark.parametrize("sigma, step, n, factor, tolerance", [
    (0.6, 0.5, 35, 2, 1e-6),    # sampled twice per pixel: read as it is
    (0.6, 0.25, 36, 4, 1e-6),   # four times, even side (centre on sample 18)
    (1.2, 0.8, 35, 2, 5e-3),    # not a whole factor: interpolated onto a grid of 2
    (1.5, 1.0, 25, None, 1e-6),  # at the pixels
    (2.0, 1.3, 25, None, 5e-3),  # coarser than the pixels: interpolated
])
def test_psfex_model_gives_the_pixel_convolved_psf(sigma, step, n, factor, tolerance):
    native, fine = read_psfs(io.BytesIO(_psfex_file(sigma, step, n)))
    h = native.shape[0] // 2
    assert native.shape == (2 * h + 1, 2 * h + 1) and h >= int(n // 2 * step) - 1
    expected = np.outer(_effective(np.arange(-h, h + 1), sigma),
                        _effective(np.arange(-h, h + 1), sigma))
    expected /= expected.sum()
    assert np.abs(native - expected).max() < tolerance * expected.max()
    if factor is None:
        assert fine is None
        return
    assert fine.factor == factor
    hf = fine.data.shape[0] // 2
    u = np.arange(-hf, hf + 1) / factor
    fine_expected = np.outer(_effective(u, sigma), _effective(u, sigma))
    fine_expected *= factor ** 2 / fine_expected.sum()
    assert np.abs(fine.data - fine_expected).max() < tolerance * fine_expected.max()


def test_a_frame_takes_a_psfex_file_as_its_psf(tmp_path):
    shape = (64, 64)
    data = np.random.default_rng(2).normal(0, 1, shape)
    fits.PrimaryHDU(data, header=tan_wcs(shape).to_header()).writeto(tmp_path / "img.fits")
    (tmp_path / "img.psf").write_bytes(_psfex_file(0.7, 0.5, 31))
    frame = read_fits_frame(tmp_path / "img.fits", psf_path=tmp_path / "img.psf")
    assert frame.psf.shape == (15, 15) and frame.psf.sum() == pytest.approx(1.0)
    assert frame.psf_fine is not None and frame.psf_fine.factor == 2
    assert np.unravel_index(frame.psf.argmax(), frame.psf.shape) == (7, 7)


def test_a_table_that_is_not_a_psfex_model_is_refused(tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column(name="FLUX", format="E",
                                                       array=np.ones(3))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "cat.fits")
    with pytest.raises(ValueError, match="no image HDU and no PSFEx model"):
        read_psfs(tmp_path / "cat.fits")
    buf = io.BytesIO()
    bad = fits.HDUList.fromstring(_psfex_file(0.6, 0.5, 35))
    bad[1].header["PSF_SAMP"] = 0.0
    bad.writeto(buf)
    with pytest.raises(ValueError, match="PSF_SAMP"):
        read_psfs(io.BytesIO(buf.getvalue()))
