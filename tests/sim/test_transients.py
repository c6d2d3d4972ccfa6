"""Transients: absent in the first three epochs, then present over a range of S/N."""

import numpy as np
from astropy.io import fits


def _epochs(survey):
    return {p.name: fits.getheader(p, 1)["EPOCH"] for p in survey.images}


def test_transients_absent_in_first_three_epochs(survey, truth):
    epoch = _epochs(survey)
    early = [r for r in truth if r["kind"] == "transient" and epoch[r["filename"]] < 3]
    assert len(early) == 2 * 10 * 3
    assert all(r["flux"] == 0.0 and r["diff_flux"] == 0.0 for r in early)
    assert all(np.isnan(r["mag"]) and r["snr_expected"] == 0.0 for r in early)


def test_transients_present_later_with_spread_of_snr(survey, truth):
    epoch = _epochs(survey)
    later = [r for r in truth if r["kind"] == "transient" and epoch[r["filename"]] >= 3]
    assert len(later) == 2 * 10 * 3
    assert all(r["flux"] > 0 and r["baseline_flux"] == 0.0 for r in later)
    first_active = [r["snr_expected"] for r in later if epoch[r["filename"]] == 3]
    assert max(first_active) > 20
    assert min(first_active) < 6


def test_variables_vary_around_their_baseline(truth):
    rows = [r for r in truth if r["kind"] == "variable"]
    assert len(rows) == 2 * 3 * 6
    for oid in {r["object_id"] for r in rows}:
        mine = [r for r in rows if r["object_id"] == oid]
        base = mine[0]["baseline_flux"]
        assert base > 0 and all(r["baseline_flux"] == base for r in mine)
        assert all(np.isclose(r["diff_flux"], r["flux"] - base) for r in mine)
        assert np.std([r["flux"] for r in mine]) > 0.02 * base
