import numpy as np
import pytest
from astropy.io import fits

from rapid.io.fits_frame import write_fits_image
from rapid.jobs.products import read_table
from rapid.science.standalone import run_diff
from tests.science.diff_fakes import make_frame, star_field


@pytest.mark.parametrize("even_psf", [False, True])
def test_run_diff_writes_products_with_required_columns(tmp_path, even_psf):
    rng = np.random.default_rng(70)
    shape = (160, 160)
    stars = list(zip(*star_field(rng, shape, 30, flux_range=(5e3, 5e4))))
    sci = make_frame(rng, shape=shape, fwhm=2.5, sigma=8.0, stars=stars + [(80.4, 60.2, 4000.0)])
    ref = make_frame(rng, shape=shape, fwhm=3.0, sigma=4.0, stars=stars + [(40.0, 120.0, 4000.0)])
    # no uncertainty images: the noise model comes from the background and the gain
    write_fits_image(tmp_path / "sci.fits", sci.data, sci.wcs, header_extra={"GAIN": 1.0})
    write_fits_image(tmp_path / "ref.fits", ref.data, ref.wcs, header_extra={"GAIN": 1.0})
    # an even-sided PSF file (the stamp without its last row and column, centred on pixel
    # n/2) is read as well as the odd one
    write_fits_image(tmp_path / "sci_psf.fits", sci.psf[:-1, :-1] if even_psf else sci.psf, None)
    out = tmp_path / "out"
    result = run_diff(tmp_path / "sci.fits", tmp_path / "ref.fits", out,
                      sci_psf=tmp_path / "sci_psf.fits")
    for name in ("diff.fits", "scorr.fits", "diff_psf.fits", "candidates.parquet"):
        assert (out / name).is_file()
    t = read_table(str(out / "candidates.parquet")).to_pydict()
    assert {"x", "y", "ra", "dec", "flux", "flux_err", "snr", "sign"} <= set(t)
    assert sorted(t["sign"]) == [-1, 1]
    assert min(t["flux"]) >= 0
    k = t["sign"].index(1)
    pos = {c: t[c][k] for c in ("x", "y", "flux", "flux_err")}
    assert abs(pos["x"] - 80.4) < 0.3 and abs(pos["y"] - 60.2) < 0.3
    assert abs(pos["flux"] - 4000.0) < 3 * pos["flux_err"]
    with fits.open(out / "diff.fits") as hdul:
        assert hdul[0].data.shape == shape and "CTYPE1" in hdul[0].header
        assert hdul[0].header["SCALEFACREF"] == result.meta["scalefacref"]
    with fits.open(out / "diff_psf.fits") as hdul:
        assert abs(hdul[0].data.sum() - 1.0) < 1e-5 and hdul[0].data.shape[0] % 2 == 1
    assert result.meta["sci_psf_source"] == "frame" and result.meta["ref_psf_source"] == "estimated"


def test_rapid_diff_command_applies_threshold_options(tmp_path):
    import subprocess
    import sys

    rng = np.random.default_rng(71)
    shape = (128, 128)
    stars = list(zip(*star_field(rng, shape, 20, flux_range=(5e3, 5e4))))
    sci = make_frame(rng, shape=shape, fwhm=2.5, sigma=8.0, stars=stars + [(70.3, 50.6, 5000.0)])
    ref = make_frame(rng, shape=shape, fwhm=2.8, sigma=4.0, stars=stars)
    write_fits_image(tmp_path / "sci.fits", sci.data, sci.wcs, header_extra={"GAIN": 1.0})
    write_fits_image(tmp_path / "ref.fits", ref.data, ref.wcs, header_extra={"GAIN": 1.0})

    def rapid_diff(*options, out=tmp_path / "out"):
        return subprocess.run([sys.executable, "-m", "rapid", "diff", str(tmp_path / "sci.fits"),
                               str(tmp_path / "ref.fits"), "--out", str(out),
                               *options], capture_output=True, text=True)

    run = rapid_diff("--threshold", "6.5", "--false-alarms", "0")
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr  # both PSFs and the flux scale measured on the stars
    header = fits.getheader(tmp_path / "out" / "diff.fits")
    # the threshold is in units of Scorr's measured std; no false-alarm level was asked for
    assert header["DETECT_THRESHOLD"] == pytest.approx(6.5 * header["SCORRSTD"], rel=1e-5)
    assert "FALSE_ALARM_THRESHOLD" not in header
    assert "above Scorr" in run.stdout
    # an extension suffix names the file before it
    run = subprocess.run([sys.executable, "-m", "rapid", "diff", f"{tmp_path / 'sci.fits'}[0]",
                          f"{tmp_path / 'absent.fits'}[SCI,1]", "--out", str(tmp_path / "o2")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and f"{tmp_path / 'absent.fits'}: no such file" in run.stderr
    run = rapid_diff("--false-alarms", "-1")
    assert run.returncode == 2 and "--false-alarms" in run.stderr
    (tmp_path / "a-file").write_text("")
    run = rapid_diff(out=tmp_path / "a-file")
    assert run.returncode == 2 and "cannot make the output folder" in run.stderr
    assert "Traceback" not in run.stderr
