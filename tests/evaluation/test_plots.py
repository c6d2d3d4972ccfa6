"""The evaluation's PNG plots are written."""

import numpy as np

from rapid.evaluation.plots import write_plots
from rapid.evaluation.quality import match_catalogs


def test_plots_are_png_files(tmp_path):
    rng = np.random.default_rng(1)
    n = 60
    x, y = rng.uniform(10, 500, n), rng.uniform(10, 500, n)
    diff = 10 ** rng.uniform(0, 2, n)
    truth = {"filename": np.array(["a.fits"] * n), "kind": np.array(["transient"] * n),
             "x": x, "y": y, "flux": diff, "diff_flux": diff, "mag": 26 - 2.5 * np.log10(diff),
             "snr_expected": diff / 3, "snr_diff": np.where(diff > 90, np.nan, 0.875 * diff / 3),
             "masked": diff > 90}
    seen = diff > 10
    cat = {"x": x[seen] + 0.1, "y": y[seen], "sign": np.ones(seen.sum(), int),
           "flux": diff[seen], "flux_err": np.full(seen.sum(), 3.0),
           "scorr_peak": diff[seen] / 3}
    files = write_plots(match_catalogs(truth, [("a.fits", "H158", cat)]), tmp_path / "plots")
    assert [f.name for f in files] == ["completeness_snr.png", "completeness_mag.png",
                                       "false_positives.png"]
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000
