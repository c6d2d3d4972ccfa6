"""Matching candidates with truth, and the statistics reported from the matches."""

from __future__ import annotations

import numpy as np
import pytest

from rapid.evaluation.fom import completeness_curve, figure_of_merit, fp_limited_cut
from rapid.evaluation.quality import match_catalogs, summarize
from rapid.evaluation.recovery import match_one_to_one


def _truth(rows):
    keys = ("filename", "kind", "x", "y", "flux", "diff_flux", "mag", "snr_expected")
    cols = {k: np.array([r[i] for r in rows]) for i, k in enumerate(keys)}
    return cols


def _cat(x, y, sign, flux, flux_err, scorr):
    return {"x": np.array(x, float), "y": np.array(y, float), "sign": np.array(sign, int),
            "flux": np.array(flux, float), "flux_err": np.array(flux_err, float),
            "scorr_peak": np.array(scorr, float)}


ZP = 26.0


def _row(name, kind, x, y, diff, snr, baseline=0.0):
    flux = baseline + diff
    mag = ZP - 2.5 * np.log10(flux) if flux > 0 else np.nan
    return (name, kind, x, y, flux, diff, mag, snr)


def test_one_to_one_gives_each_candidate_to_the_closest_truth():
    idx, dist = match_one_to_one(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.9, 0.0]]), 2.0)
    assert idx.tolist() == [-1, 0]
    assert dist[1] == pytest.approx(0.1)
    assert np.isnan(dist[0])


def test_signs_false_positives_and_pulls():
    truth = _truth([
        _row("a.fits", "transient", 10, 10, 100.0, 20.0),      # found, pull +1
        _row("a.fits", "transient", 50, 50, 40.0, 8.0),        # missed
        _row("a.fits", "transient", 80, 80, -30.0, 6.0, 60.0),  # fading, found by a -1
        _row("a.fits", "variable", 30, 30, 5.0, 2.0),          # not to be found, not an FP
        _row("b.fits", "transient", 10, 10, 100.0, 20.0),      # other image
    ])
    cat = _cat([10.5, 80.2, 30.3, 70.0, 50.0], [10.0, 80.0, 30.0, 5.0, 50.0],
               [1, -1, 1, 1, -1], [110.0, 33.0, 5.0, 9.0, 40.0], [10.0, 6.0, 2.0, 2.0, 8.0],
               [11.0, -5.5, 3.0, 6.0, -5.0])
    m = match_catalogs(truth, [("a.fits", "H158", cat)])
    assert m.truth["found"].tolist() == [True, False, True]  # the -1 at (50, 50) has the wrong sign
    # near a truth object, a candidate of the wrong sign is no false positive either
    assert m.cands["false"].tolist() == [False, False, False, True, False]
    s = summarize(m)["overall"]
    assert s["fp_per_image"] == 1.0
    # without a difference-image S/N, only the exposure-S/N figures exist
    assert s["completeness_snr10"] is None and s["snr_diff_unknown"] == 3
    e = s["exposure_snr"]
    assert e["completeness_snr10"] == 1.0
    assert e["completeness_snr5"] == 1.0  # the S/N 6 one; S/N 8 lies in 7..10
    assert e["completeness_snr5_up"] == pytest.approx(2 / 3)
    # pulls: (110 - 100) / 10 = 1; fading: (-33 - -30) / 6 = -0.5
    assert sorted(((m.truth["flux"] - m.truth["diff_flux"]) / m.truth["flux_err"])[
        m.truth["found"]].tolist()) == pytest.approx([-0.5, 1.0])
    assert s["pull_median"] == pytest.approx(0.25)
    assert s["astrometry_median_px"] == pytest.approx(0.35)
    assert s["pull_snr10"]["objects"] == 0
    # with difference-image S/N known, the complete-regime pulls take only S/N >= 10 objects
    m.truth["snr_diff"] = np.array([20.0, 15.0, 6.0])
    s10 = summarize(m)["overall"]["pull_snr10"]
    assert s10["objects"] == 1 and s10["median"] == pytest.approx(1.0)


def test_fp_limited_cut_keeps_at_most_the_allowed_false_positives():
    score = np.array([9.0, 8.0, 7.0, 6.0, 20.0])
    false = np.array([True, True, True, True, False])
    cut = fp_limited_cut(score, false, 1, max_fp_per_image=2)
    assert ((score >= cut) & false).sum() == 2
    assert cut > 7.0
    assert fp_limited_cut(score, false, 2, max_fp_per_image=2) == 0.0


def test_figure_of_merit_terms_on_a_known_completeness_curve():
    rng = np.random.default_rng(3)
    mag = rng.uniform(20, 26, 6000)
    # completeness falls linearly from 1 at mag 22 to 0 at mag 25: 80% at 22.6, 50% at 23.5,
    # 20% at 24.4
    p = np.clip((25 - mag) / 3, 0, 1)
    found = rng.uniform(size=mag.size) < p
    true = 10 ** (-0.4 * (mag - 26))
    err = 10 ** (-0.4 * (24.25 - 26)) / 5  # S/N = 5 at mag 24.25
    meas = np.where(found, true + rng.normal(0, err, mag.size), np.nan)
    fom = figure_of_merit(mag, found, measured_flux=meas, flux_err=np.full(mag.size, err),
                          true_flux=true)
    assert fom["m80"] == pytest.approx(22.6, abs=0.15)
    assert fom["m_th"] == pytest.approx(23.5, abs=0.15)
    assert fom["m20"] == pytest.approx(24.4, abs=0.15)
    assert fom["m5sigma"] == pytest.approx(24.25, abs=0.1)
    # relative error 10% where S/N = 10: 0.75 mag brighter than S/N 5
    assert fom["m_ph10"] == pytest.approx(23.5, abs=0.2)
    w = {"m_th": 1.0, "m80": 0.8, "m20": 0.6, "m5sigma": 0.3, "m_ph10": 0.2}
    assert fom["fom"] == pytest.approx(sum(w[k] * fom[k] for k in w) / 2.9)


def test_completeness_curve_leaves_out_sparse_bins():
    centres, comp, counts = completeness_curve(np.array([20.1, 20.2, 20.1, 23.0]),
                                               np.array([True, False, True, True]))
    assert centres.tolist() == [20.125]
    assert comp.tolist() == pytest.approx([2 / 3])
    assert counts.tolist() == [3]


def test_match_catalogs_rejects_a_truth_table_without_columns():
    with pytest.raises(ValueError, match="diff_flux"):
        match_catalogs({"filename": np.array([]), "kind": np.array([]), "x": np.array([]),
                        "y": np.array([]), "flux": np.array([]), "mag": np.array([]),
                        "snr_expected": np.array([])}, [])


def test_completeness_is_measured_against_the_difference_image_snr():
    truth = _truth([
        _row("a.fits", "transient", 10, 10, 100.0, 11.0),  # found; S/N in D 9.6: 7..10
        _row("a.fits", "transient", 50, 50, 40.0, 8.0),    # missed; S/N in D 6.0: 5..7
        _row("a.fits", "transient", 80, 80, 60.0, 6.5),    # found; S/N in D 5.7: 5..7
        _row("a.fits", "transient", 20, 90, 50.0, 30.0),   # missed, on a masked area
        _row("a.fits", "transient", 90, 20, 90.0, 25.0),   # found; S/N in D 21
    ])
    truth["snr_diff"] = np.array([9.6, 6.0, 5.7, np.nan, 21.0])
    truth["masked"] = np.array([False, False, False, True, False])
    cat = _cat([10.2, 80.0, 90.1], [10.0, 80.3, 20.0], [1, 1, 1], [100.0, 60.0, 90.0],
               [10.0, 10.0, 4.0], [10.0, 6.0, 22.0])
    m = match_catalogs(truth, [("a.fits", "H158", cat)])
    assert m.truth["found"].tolist() == [True, False, True, False, True]
    assert m.truth["masked"].tolist() == [False, False, False, True, False]
    s = summarize(m)["overall"]
    assert s["snr"] == "difference-image S/N"
    assert s["masked"] == 1 and s["snr_diff_unknown"] == 0
    assert s["completeness_snr10"] == 1.0  # only the S/N 21 one; the masked one is left out
    assert s["completeness_snr5"] == 0.5  # 5.7 found, 6.0 missed
    assert s["completeness_snr5_up"] == 0.75
    by_bin = {b["snr_lo"]: (b["n"], b["completeness"]) for b in s["completeness_vs_snr"]}
    assert by_bin[5.0] == (2, 0.5) and by_bin[7.0] == (1, 1.0) and by_bin[20.0] == (1, 1.0)
    assert sum(b["n"] for b in s["completeness_vs_snr"]) == 4
    # against the exposure S/N every object counts, the masked miss included
    e = s["exposure_snr"]
    assert e["snr"] == "exposure S/N (noiseless reference)"
    assert e["completeness_snr10"] == pytest.approx(2 / 3)
    assert e["completeness_snr5"] == 1.0
    assert s["snr_diff_over_expected_median"] == pytest.approx(np.median(
        [9.6 / 11, 6.0 / 8, 5.7 / 6.5, 21 / 25]))
    # the figure of merit does not depend on the S/N, and leaves out the masked object
    keep = ~truth["masked"]
    plain = {k: np.asarray(v)[keep] for k, v in truth.items() if k not in ("snr_diff", "masked")}
    assert summarize(match_catalogs(plain, [("a.fits", "H158", cat)]))["overall"]["fom"] == \
        s["fom"]



def test_match_catalogs_rejects_a_misshapen_snr_diff():
    truth = _truth([_row("a.fits", "transient", 10, 10, 100.0, 11.0)])
    truth["snr_diff"] = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="snr_diff"):
        match_catalogs(truth, [])


def test_objects_on_masked_areas_are_left_out_of_the_figure_of_merit():
    rng = np.random.default_rng(8)
    n = 400
    x, y = rng.uniform(10, 990, n), rng.uniform(10, 990, n)
    diff = 10 ** rng.uniform(0.0, 3.0, n)  # magnitudes 18.5-26
    rows = [_row("a.fits", "transient", x[k], y[k], diff[k], diff[k] / 3) for k in range(n)]
    truth = _truth(rows)
    masked = rng.uniform(size=n) < 0.3  # e.g. outside the reference: never found
    seen = ~masked & (diff > 30)
    truth["masked"] = masked
    truth["snr_diff"] = np.where(masked, np.nan, diff / 3)
    cat = _cat(x[seen], y[seen], np.ones(seen.sum()), diff[seen], np.full(seen.sum(), 3.0),
               diff[seen] / 3)
    fom = summarize(match_catalogs(truth, [("a.fits", "H158", cat)]))["overall"]["fom"]
    # without the masked objects the curve is that of the detector: 80% just brighter than
    # the flux limit (30, magnitude 22.3), not where 30% of missed masked objects drag it
    assert fom["m80"] == pytest.approx(ZP - 2.5 * np.log10(30.0), abs=0.3)
    unmasked = {k: v for k, v in truth.items() if k not in ("masked", "snr_diff")}
    blind = summarize(match_catalogs(unmasked, [("a.fits", "H158", cat)]))["overall"]["fom"]
    assert blind["m80"] is None or blind["m80"] < fom["m80"] - 0.5
