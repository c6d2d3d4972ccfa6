import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from rapid.io.fits_frame import read_fits_frame, write_fits_image
from rapid.io.units import CountUnit, count_unit
from rapid.science.psf import gaussian_psf
from tests.science.diff_fakes import tan_wcs


def _sip_wcs(shape):
    w = tan_wcs(shape)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    from astropy.wcs import Sip

    a = np.zeros((3, 3))
    b = np.zeros((3, 3))
    a[2, 0], b[0, 2] = 2e-5, -1e-5
    w.sip = Sip(a, b, None, None, w.wcs.crpix)
    return w


def test_generic_image_with_tan_wcs_and_no_exptime(tmp_path):
    data = np.arange(64 * 48, dtype=np.float64).reshape(48, 64)
    data[3, 4] = np.nan
    hdr = tan_wcs((48, 64)).to_header()
    hdr["FILTER"] = "r"
    hdr["DATE-OBS"] = "2028-09-07T12:00:00"
    path = tmp_path / "generic.fits"
    fits.PrimaryHDU(data, header=hdr).writeto(path)
    f = read_fits_frame(path)
    assert f.data.dtype == np.float32 and f.shape == (48, 64)
    assert f.mask[3, 4] and np.isnan(f.data[3, 4]) and f.mask.sum() == 1
    assert f.psf is None and f.unc is None
    assert f.meta["filter"] == "r" and f.meta["exptime"] is None and f.meta["zptmag"] is None
    assert f.meta["mjdobs"] == pytest.approx(62021.5)
    ra, dec = f.wcs.pixel_to_world_values(31.5, 23.5)
    assert (ra, dec) == pytest.approx((150.0, 2.0), abs=1e-6)
    with pytest.raises(ValueError, match="EXPTIME"):
        read_fits_frame(path, per_second=True)


def _write_l2(tmp_path, *, with_psf=True):
    shape = (40, 50)
    rng = np.random.default_rng(0)
    sci = rng.normal(100.0, 5.0, shape)
    sci[10, 10] = 70000.0
    err = np.full(shape, 5.0)
    dq = np.zeros(shape, np.int32)
    dq[20, 30] = 4
    hdr = _sip_wcs(shape).to_header(relax=True)
    hdr.update(EXPTIME=100.0, SATURATE=65000.0, ZPTMAG=17.0, GAIN=1.5, FILTER="H158",
               **{"MJD-OBS": 62000.25})
    if with_psf:
        hdr["PSFFILE"] = "psf_h158.fits"
        fits.PrimaryHDU(gaussian_psf(1.5, size=15) * 3.0).writeto(tmp_path / "psf_h158.fits")
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, header=hdr, name="SCI"),
                         fits.ImageHDU(err, name="ERR"), fits.ImageHDU(dq, name="DQ")])
    path = tmp_path / "l2.fits"
    hdul.writeto(path)
    return path, sci


def test_l2_layout_per_second(tmp_path):
    path, sci = _write_l2(tmp_path)
    f = read_fits_frame(path, per_second=True)
    assert f.meta["hdu"] == "SCI" and f.meta["units"] == "DN/s"
    assert f.data[0, 0] == pytest.approx(sci[0, 0] / 100.0, rel=1e-6)
    assert f.unc[0, 0] == pytest.approx(0.05)
    assert f.meta["saturation"] == pytest.approx(650.0)
    assert f.mask[10, 10] and f.mask[20, 30] and f.mask.sum() == 2
    assert f.psf.shape == (15, 15) and f.psf.sum() == pytest.approx(1.0)
    assert f.meta["zptmag"] == pytest.approx(17.0) and f.meta["gain"] == 1.5
    assert f.meta["mjdobs"] == 62000.25 and f.meta["filter"] == "H158"
    assert f.wcs.sip is not None and f.wcs.sip.a[2, 0] == pytest.approx(2e-5)


def test_l2_layout_in_dn_adjusts_zero_point(tmp_path):
    path, sci = _write_l2(tmp_path)
    f = read_fits_frame(path)
    assert f.data[0, 0] == pytest.approx(sci[0, 0], rel=1e-6)
    assert f.meta["zptmag"] == pytest.approx(17.0 + 5.0)
    assert f.meta["saturation"] == 65000.0


def test_explicit_psf_and_unc_files(tmp_path):
    path, _ = _write_l2(tmp_path, with_psf=False)
    fits.PrimaryHDU(gaussian_psf(2.0, size=11)).writeto(tmp_path / "p.fits")
    fits.PrimaryHDU(np.full((40, 50), 7.0)).writeto(tmp_path / "u.fits")
    f = read_fits_frame(path, psf_path=tmp_path / "p.fits", unc_path=tmp_path / "u.fits")
    assert f.psf.shape == (11, 11) and f.unc[5, 5] == 7.0
    # an even-sided stamp is put on an odd grid (tests/science/test_fine_psf.py: where)
    fits.PrimaryHDU(np.ones((10, 10))).writeto(tmp_path / "even.fits")
    psf = read_fits_frame(path, psf_path=tmp_path / "even.fits").psf
    assert psf.shape == (11, 11) and psf.sum() == pytest.approx(1.0)


def test_bad_inputs_name_file_and_problem(tmp_path):
    nowcs = tmp_path / "nowcs.fits"
    fits.PrimaryHDU(np.zeros((8, 8))).writeto(nowcs)
    with pytest.raises(ValueError, match="nowcs.fits.*celestial WCS"):
        read_fits_frame(nowcs)
    table = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="a", format="E", array=np.zeros(3))])]).writeto(table)
    with pytest.raises(ValueError, match="table.fits.*no image"):
        read_fits_frame(table)
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"not a fits file at all")
    with pytest.raises(ValueError, match="junk.fits"):
        read_fits_frame(junk)
    path, _ = _write_l2(tmp_path)
    with pytest.raises(ValueError, match="no HDU"):
        read_fits_frame(path, hdu="NOPE")


def test_write_fits_image_roundtrip_keeps_sip(tmp_path):
    w = _sip_wcs((30, 20))
    data = np.random.default_rng(1).normal(size=(30, 20))
    buf = io.BytesIO()
    write_fits_image(buf, data, w, header_extra={"SCALEFAC": 1.25})
    buf.seek(0)
    with fits.open(buf) as hdul:
        assert hdul[0].data.dtype == np.dtype(">f4")
        assert hdul[0].header["SCALEFAC"] == 1.25
        w2 = WCS(hdul[0].header)
    assert w2.sip is not None
    assert np.allclose(w2.all_pix2world([[3.0, 17.0]], 0), w.all_pix2world([[3.0, 17.0]], 0))
    with pytest.raises(ValueError, match="2-D"):
        write_fits_image(tmp_path / "x.fits", np.zeros(3), w)


def test_psf_file_round_trip_keeps_the_fine_sampling():
    from rapid.io.fits_frame import psf_fits_bytes, read_psfs
    from rapid.science.fine_psf import centre_samples
    from rapid.science.image import FinePsf

    factor = 3
    r = np.arange(-21, 22) / factor  # 43 fine samples: 14 pixels around the centre
    fine_1d = np.exp(-0.5 * (r / 1.1) ** 2)
    fine = FinePsf.normalised(np.outer(fine_1d, fine_1d), factor)
    native = centre_samples(fine.data, factor, (13, 13))
    data = psf_fits_bytes(native / native.sum(), fine,
                          header={"PSFSCALE": (0.11, "arcsec per sample"), "FILTER": "H158"})
    psf, back = read_psfs(io.BytesIO(data))
    assert psf.shape == (13, 13) and psf.sum() == pytest.approx(1.0)
    assert back is not None and back.factor == factor
    assert back.data / back.data.sum() == pytest.approx(fine.data / fine.data.sum(), abs=1e-7)
    with fits.open(io.BytesIO(data)) as hdul:
        assert hdul[0].header["PSFSCALE"] == 0.11 and hdul[0].header["FILTER"] == "H158"
        assert hdul["OVERSAMP"].header["PSFSCALE"] == pytest.approx(0.11 / factor)
    # without a fine PSF the file holds the stamp alone
    psf, back = read_psfs(io.BytesIO(psf_fits_bytes(native)))
    assert back is None and psf.shape == (13, 13)


@pytest.mark.parametrize("side", [100, 101])
def test_a_file_holding_only_an_oversampled_psf_is_binned_to_pixels(side):
    """stpsf's OVERSAMP image alone (or any PSF drawn 4 times finer): the native stamp is its
    pixel integral, not the fine image read as four times wider."""
    from scipy.special import erf

    from rapid.io.fits_frame import read_psfs

    factor, sigma = 4, 0.6  # sigma in pixels
    # each sample the Gaussian's integral over its sub-pixel, as stpsf draws them
    edges = (np.arange(side + 1) - side / 2) / factor
    fine_1d = np.diff(erf(edges / (sigma * np.sqrt(2))))
    hdu = fits.PrimaryHDU(np.outer(fine_1d, fine_1d).astype(np.float32))
    hdu.header["OVERSAMP"] = factor
    buf = io.BytesIO()
    hdu.writeto(buf)
    psf, fine = read_psfs(io.BytesIO(buf.getvalue()))
    assert fine is not None and fine.factor == factor
    assert psf.shape[0] % 2 == 1 and psf.shape[0] >= 23 and psf.sum() == pytest.approx(1.0)
    # a Gaussian integrated over each pixel, centred on the middle pixel
    edges = np.arange(-(psf.shape[0] // 2) - 0.5, psf.shape[0] // 2 + 1)
    pixel_1d = np.diff(erf(edges / (sigma * np.sqrt(2)))) / 2
    expected = np.outer(pixel_1d, pixel_1d)
    assert np.abs(psf - expected).max() < 1e-3 * expected.max()


def test_variance_extension_gives_the_uncertainty(tmp_path):
    # LSST-style exposure: IMAGE, MASK (source bits, not bad pixels), VARIANCE; no ERR
    shape = (30, 40)
    rng = np.random.default_rng(1)
    image = rng.normal(0.0, 3.0, shape)
    var = np.full(shape, 9.0)
    var[5, 7] = 16.0
    var[12, 20] = 0.0  # no uncertainty known: unusable
    mask = np.zeros(shape, np.int32)
    mask[:, :10] = 32  # 'DETECTED' everywhere on the left: not a bad-pixel mask
    hdr = _sip_wcs(shape).to_header(relax=True)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image, header=hdr, name="IMAGE"),
                  fits.ImageHDU(mask, header=hdr, name="MASK"),
                  fits.ImageHDU(var, header=hdr, name="VARIANCE")]).writeto(tmp_path / "e.fits")
    f = read_fits_frame(tmp_path / "e.fits")
    assert f.meta["hdu"] == "IMAGE"
    assert f.unc[0, 0] == pytest.approx(3.0) and f.unc[5, 7] == pytest.approx(4.0)
    assert f.mask[12, 20] and int(f.mask.sum()) == 1
    assert np.isnan(f.data[12, 20])


@pytest.mark.parametrize("bunit, divided, gain", [
    ("DN", True, 1.5), ("adu", True, 1.5), ("DN/s", False, 1.5), ("DN s-1", False, 1.5),
    ("electrons", True, 1.0), ("e-/s", False, 1.0), ("MJy/sr", False, 1.5),
])
def test_bunit_says_whether_the_pixels_are_divided_by_the_exposure_time(tmp_path, bunit,
                                                                         divided, gain):
    """Counts per exposure are divided by EXPTIME; a rate or a calibrated unit is not (it
    would make every flux EXPTIME times too small); in electrons the gain is 1."""
    path, sci = _write_l2(tmp_path)
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].header["BUNIT"] = bunit
    f = read_fits_frame(path, per_second=True)
    scale = 100.0 if divided else 1.0
    assert f.data[0, 0] == pytest.approx(sci[0, 0] / scale, rel=1e-6)
    assert f.unc[0, 0] == pytest.approx(5.0 / scale)
    assert f.meta["saturation"] == pytest.approx(65000.0 / scale)
    assert f.meta["zptmag"] == pytest.approx(17.0) and f.meta["gain"] == gain
    assert f.meta["units"] == (f"{bunit}/s" if divided else bunit)
    # kept in its own units, only counts per exposure move the zero point by EXPTIME
    assert read_fits_frame(path).meta["zptmag"] == pytest.approx(17.0 + (5.0 if divided else 0))


def test_count_units():
    assert count_unit(None) == CountUnit(per_second=False, electrons=False)
    assert count_unit("DN / s") == CountUnit(per_second=True, electrons=False)
    assert count_unit("electron s**-1") == CountUnit(per_second=True, electrons=True)
    assert count_unit("counts") == CountUnit(per_second=False, electrons=False)
    assert count_unit("MJy/sr") is None and count_unit("nanomaggy") is None


@pytest.mark.parametrize("dtype, scale, zero", [(np.uint32, 1, 0), (np.uint16, 1, 0),
                                                (np.int16, 1, 0), (np.int32, 2, 5)])
def test_dq_flags_what_is_not_zero_however_stored(tmp_path, dtype, scale, zero):
    """Unsigned planes are stored signed with BZERO 2**(bits-1): the mask is read off the
    stored values and must flag the physical non-zero values, 0 excluded."""
    shape = (30, 40)
    sci = np.random.default_rng(1).normal(100.0, 5.0, shape)
    physical = np.zeros(shape, dtype=np.int64)
    physical[3, 4], physical[10, 20], physical[29, 39] = 1, 2**15 - 1 if dtype == np.int16 else 7, 4
    dq_hdu = fits.ImageHDU(physical.astype(dtype), name="DQ")
    if scale != 1 or zero != 0:  # an explicitly scaled plane: physical = BSCALE * raw + BZERO
        dq_hdu = fits.ImageHDU(((physical - zero) // scale).astype(dtype), name="DQ")
        dq_hdu.header["BSCALE"], dq_hdu.header["BZERO"] = scale, zero
        physical = (physical - zero) // scale * scale + zero
    hdr = _sip_wcs(shape).to_header(relax=True)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, header=hdr, name="SCI"),
                  dq_hdu]).writeto(tmp_path / "img.fits")
    frame = read_fits_frame(tmp_path / "img.fits")
    assert np.array_equal(frame.mask, physical != 0)


def _mosaic(tmp_path):
    """A two-CCD file: SCI, ERR and DQ extensions with EXTVER 1 and 2, CCD 2 shifted on the
    sky and holding other values."""
    hdus = [fits.PrimaryHDU()]
    for ver in (1, 2):
        wcs = tan_wcs((30, 40))
        wcs.wcs.crval = [150.0 + 0.1 * ver, 2.0]
        dq = np.zeros((30, 40), np.int16)
        dq[ver, ver] = 1
        # distinct values: a flat patch would be masked as a fill value
        sci = 100.0 * ver + np.arange(30 * 40.0).reshape(30, 40) / 1200
        for name, data in (("SCI", sci),
                           ("ERR", np.full((30, 40), float(ver))), ("DQ", dq)):
            hdu = fits.ImageHDU(data, header=wcs.to_header() if name == "SCI" else None,
                                name=name)
            hdu.ver = ver
            hdus.append(hdu)
    path = tmp_path / "mosaic.fits"
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.mark.parametrize("suffix", ["[SCI,2]", "[sci, 2]", "[4]"])
def test_a_path_names_one_ccd_of_a_mosaic_with_its_own_err_and_dq(tmp_path, suffix):
    from rapid.io.frame import read_frame

    path = _mosaic(tmp_path)
    f = read_frame(f"{path}{suffix}")
    assert 200 <= np.nanmin(f.data) < 201 and np.all(f.unc == 2.0)
    assert f.mask[2, 2] and not f.mask[1, 1] and f.mask.sum() == 1
    assert f.wcs.wcs.crval[0] == pytest.approx(150.2)
    # without a suffix the first SCI is read, with its own companions
    first = read_frame(path)
    assert 100 <= np.nanmin(first.data) < 101 and np.all(first.unc == 1.0) and first.mask[1, 1]


def test_extension_suffixes_that_name_nothing_say_so(tmp_path):
    from rapid.io.frame import read_frame, split_extension

    path = _mosaic(tmp_path)
    with pytest.raises(ValueError, match=r"no HDU \('SCI', 3\)"):
        read_frame(f"{path}[SCI,3]")
    with pytest.raises(ValueError, match="holds no 2-D image"):
        read_frame(f"{path}[0]")
    with pytest.raises(ValueError, match="not a whole number"):
        split_extension(f"{path}[SCI,x]")
    with pytest.raises(ValueError, match="ASDF file has no extensions"):
        read_frame(tmp_path / "image.asdf[1]")
    # a file whose own name ends in brackets is that file
    odd = tmp_path / "odd[1]"
    odd.write_bytes(b"")
    assert split_extension(odd) == (odd, None)


def test_uncertainty_and_psf_files_take_an_extension_suffix(tmp_path):
    path = _mosaic(tmp_path)
    psf_path = tmp_path / "psfs.fits"
    fits.HDUList([fits.PrimaryHDU(gaussian_psf(1.5, size=15)),
                  fits.ImageHDU(gaussian_psf(3.0, size=21), name="WIDE")]).writeto(psf_path)
    f = read_fits_frame(f"{path}[SCI,2]", unc_path=f"{path}[ERR,1]",
                        psf_path=f"{psf_path}[WIDE]")
    assert np.all(f.unc == 1.0) and f.psf.shape == (21, 21)
