"""The science job's exit code when the science image lies outside its reference (33)."""

import numpy as np
from tests.science.diff_fakes import make_frame, tan_wcs

from rapid import exitcodes
from rapid.jobs.products import fits_bytes
from rapid.jobs.spec import ImageInput, ReferenceInput, ScienceSpec, TileGrid
from rapid.science.job import run_science


def _write(path, data, wcs=None, header=None):
    path.write_bytes(fits_bytes(np.asarray(data, dtype=np.float32), wcs, header=header))
    return path.resolve().as_uri()


def test_science_image_outside_the_reference_ends_with_exit_33(tmp_path):
    rng = np.random.default_rng(80)
    shape = (96, 96)
    sci = make_frame(rng, shape=shape, wcs=tan_wcs(shape, ra=150.0))
    ref = make_frame(rng, shape=shape, wcs=tan_wcs(shape, ra=152.0))
    sci_uri = _write(tmp_path / "sci.fits", sci.data, sci.wcs,
                     header={"EXPTIME": 100.0, "MJD-OBS": 62000.0})
    ref_uri = _write(tmp_path / "ref.fits", ref.data, ref.wcs)
    cov_uri = _write(tmp_path / "cov.fits", np.full(shape, 5.0), ref.wcs)
    unc_uri = _write(tmp_path / "unc.fits", ref.unc, ref.wcs)
    spec = ScienceSpec(
        jid=1, procdate="20280101",
        science=ImageInput(rid=1, uri=sci_uri, checksum="", expid=1, sca=1, fid=2,
                           filter="H158", field=1, mjdobs=62000.0, exptime=100.0),
        tile=TileGrid(field=1, ra0=152.0, dec0=2.0),
        reference=ReferenceInput(rfid=1, version=1, uri=ref_uri, coverage_uri=cov_uri,
                                 uncertainty_uri=unc_uri),
        product_prefix=(tmp_path / "out").resolve().as_uri(),
        log_uri=(tmp_path / "log").resolve().as_uri())
    manifest = run_science(spec)
    assert manifest.exitcode == exitcodes.NO_REFERENCE == 33
    assert "no reference possible" in manifest.message
    assert manifest.diffimage is None
