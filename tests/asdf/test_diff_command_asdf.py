"""``rapid diff`` takes Roman L2 ASDF images as they come from the ground system's simulator."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from tests.asdf.conftest import TRANSIENT_XY

from rapid.jobs.products import read_table


@pytest.mark.slow
def test_rapid_diff_on_two_asdf_epochs(roman_survey, tmp_path):
    sci, ref = roman_survey.paths[-1], roman_survey.paths[0]
    run = subprocess.run([sys.executable, "-m", "rapid", "diff", str(sci), str(ref),
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    table = read_table(str(tmp_path / "candidates.parquet"))
    c = {k: np.asarray(v) for k, v in table.to_pydict().items()}
    d = np.hypot(c["x"] - TRANSIENT_XY[0], c["y"] - TRANSIENT_XY[1])
    k = int(np.argmin(d))
    assert d[k] < 1.0 and c["sign"][k] == 1 and c["snr"][k] > 20
    # one exposure against another: the 40 steady stars subtract away
    assert int((d > 3).sum()) <= 3
    with fits.open(tmp_path / "diff.fits") as hdul:
        assert hdul[0].header["BUNIT"] == "DN/s" and "CTYPE1" in hdul[0].header


def test_asdf_input_refuses_an_uncertainty_file(roman_survey, tmp_path):
    from rapid.science.standalone import run_diff

    unc = tmp_path / "unc.fits"
    fits.writeto(unc, np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match="carries its own uncertainty"):
        run_diff(roman_survey.paths[-1], roman_survey.paths[0], tmp_path / "out", sci_unc=unc)
    assert not (tmp_path / "out").exists()
