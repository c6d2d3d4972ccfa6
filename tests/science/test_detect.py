import numpy as np
import pytest
from tests.science.diff_fakes import add_star

from rapid.science.detect import detect_candidates
from rapid.science.psf import gaussian_psf
from rapid.science.zogy import zogy

SHAPE = (160, 160)


def _diff(seed, plus=(), minus=()):
    rng = np.random.default_rng(seed)
    N = rng.normal(0, 5.0, SHAPE)
    R = rng.normal(0, 5.0, SHAPE)
    for x, y, f in plus:
        add_star(N, x, y, f, 2.5)
    for x, y, f in minus:
        add_star(R, x, y, f, 2.5)
    p = gaussian_psf(2.5)
    return zogy(N, R, p, p, sigma_n=5.0, sigma_r=5.0)


def test_both_signs_found_at_the_right_place():
    z = _diff(30, plus=[(40.3, 50.6, 3000.0)], minus=[(110.7, 100.2, 3000.0)])
    t = detect_candidates(z.Scorr, z.D, np.sqrt(z.D_var))
    assert len(t) == 2
    pos = t[t["sign"] == 1][0]
    neg = t[t["sign"] == -1][0]
    assert np.hypot(pos["x"] - 40.3, pos["y"] - 50.6) < 0.3
    assert np.hypot(neg["x"] - 110.7, neg["y"] - 100.2) < 0.3
    assert pos["scorr_peak"] > 5 and neg["scorr_peak"] < -5
    assert set(t.colnames) >= {"x", "y", "scorr_peak", "sign"}


def test_mask_edges_and_sign_option():
    z = _diff(31, plus=[(40.0, 50.0, 3000.0), (3.0, 80.0, 3000.0)],
              minus=[(110.0, 100.0, 3000.0)])
    mask = np.zeros(SHAPE, bool)
    mask[45:56, 35:46] = True
    # threshold 6: a 5.06-sigma noise peak of this seed is not what the test is about
    t = detect_candidates(z.Scorr, z.D, np.sqrt(z.D_var), mask=mask, edge=8, threshold=6.0)
    assert list(t["sign"]) == [-1]
    t = detect_candidates(z.Scorr, z.D, None, both_signs=False, edge=0, threshold=6.0)
    assert len(t) == 2 and (t["sign"] == 1).all()


def test_pure_noise_gives_at_most_one_candidate_and_empty_table_has_columns():
    z = _diff(32)
    t = detect_candidates(z.Scorr, z.D, np.sqrt(z.D_var))
    assert len(t) <= 1
    t = detect_candidates(np.zeros(SHAPE), np.zeros(SHAPE))
    assert len(t) == 0 and "scorr_peak" in t.colnames


def test_bad_arguments():
    with pytest.raises(ValueError, match="threshold"):
        detect_candidates(np.zeros(SHAPE), np.zeros(SHAPE), threshold=0)
    with pytest.raises(ValueError, match="D has shape"):
        detect_candidates(np.zeros(SHAPE), np.zeros((10, 10)))
