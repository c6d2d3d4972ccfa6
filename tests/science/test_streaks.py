"""Satellite trails: found as lines in Scorr, and their candidates dropped."""

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage
from tests.science.ground_pair import write_ground_pair

from rapid.io.fits_frame import read_fits_frame
from rapid.science.config import DetectConfig, DifferenceConfig
from rapid.science.difference import difference_images
from rapid.science.streaks import find_streaks, on_streaks, streak_mask


def _scorr_noise(rng, shape=(1024, 1024)):
    """Unit noise correlated over a couple of pixels, as Scorr's is."""
    z = ndimage.gaussian_filter(rng.normal(size=shape), 1.2)
    return z / z.std()


def _line(shape, x0, y0, angle_deg, peak, width=2.0):
    yy, xx = np.indices(shape)
    a = np.radians(angle_deg)
    across = (xx - x0) * np.sin(a) - (yy - y0) * np.cos(a)
    return peak * np.exp(-0.5 * (across / width) ** 2)


def _distance(x, y, x0, y0, angle_deg):
    a = np.radians(angle_deg)
    return np.abs((x - x0) * np.sin(a) - (y - y0) * np.cos(a))


@pytest.mark.parametrize("angle", [17.0, 90.0, 133.0])
def test_a_faint_trail_is_found_where_it_lies(angle):
    # Scorr of 1.5 sigma at its crest: too faint for a candidate on it (that takes ~2.5)
    rng = np.random.default_rng(int(angle))
    z = _scorr_noise(rng) + _line((1024, 1024), 500.0, 480.0, angle, 1.5)
    streaks = find_streaks(z, fwhm=3.0)
    assert len(streaks) == 1
    s = streaks[0]
    assert s.sign == 1
    # the band holds the line's course across the image and little else
    t = np.linspace(-400, 400, 81)
    a = np.radians(angle)
    x, y = 500 + t * np.cos(a), 480 + t * np.sin(a)
    assert s.contains(x, y).mean() > 0.95
    off = 3 * s.half_width
    assert not s.contains(x + off * np.sin(a), y - off * np.cos(a)).any()
    assert s.half_width < 20


def test_a_short_trail_in_the_reference_is_fading_and_ends_where_it_does():
    rng = np.random.default_rng(3)
    line = _line((1024, 1024), 300.0, 300.0, 30.0, -2.0)
    yy, xx = np.indices(line.shape)
    along = (xx - 300) * np.cos(np.radians(30)) + (yy - 300) * np.sin(np.radians(30))
    line[(along < -150) | (along > 250)] = 0.0  # 400 pixels of it
    streaks = find_streaks(_scorr_noise(rng) + line, fwhm=3.0)
    assert [s.sign for s in streaks] == [-1]
    a = np.radians(30)
    inside = [300 + t * np.cos(a) for t in (-120, 0, 220)], [300 + t * np.sin(a) for t in
                                                             (-120, 0, 220)]
    beyond = [300 + t * np.cos(a) for t in (-300, 450)], [300 + t * np.sin(a) for t in
                                                         (-300, 450)]
    assert streaks[0].contains(*inside).all()
    assert not streaks[0].contains(*beyond).any()


@pytest.mark.parametrize("seed", range(4))
def test_noise_sources_and_masked_areas_make_no_trail(seed):
    rng = np.random.default_rng(seed)
    z = _scorr_noise(rng)
    # residuals of sources of both signs, from faint to bright, 2 pixels wide
    spikes = np.zeros(z.shape)
    iy, ix = rng.integers(0, 1024, (2, 400))
    spikes[iy, ix] = rng.choice([-1, 1], 400) * 10 ** rng.uniform(0.5, 2, 400)
    z += ndimage.gaussian_filter(spikes, 2.0) * (2 * np.pi * 2.0**2)
    mask = np.zeros(z.shape, bool)
    mask[:, 600:604] = True  # a bad column
    mask[:200, :300] = True  # no reference there
    z[mask] = 0.0
    assert find_streaks(z, mask, fwhm=3.0) == []


def test_the_mask_of_a_streak_is_its_band():
    z = _scorr_noise(np.random.default_rng(7), (512, 768)) + _line((512, 768), 300, 200, 61, 3.0)
    streaks = find_streaks(z, fwhm=3.0)
    assert len(streaks) == 1
    mask = streak_mask(streaks, z.shape, rows=100)
    yy, xx = np.indices(z.shape)
    assert np.array_equal(mask, streaks[0].contains(xx, yy))
    assert np.array_equal(on_streaks(streaks, xx[::7, ::5], yy[::7, ::5]), mask[::7, ::5])
    # the band holds the line, and about the width asked for
    assert mask[_distance(xx, yy, 300, 200, 61) < 3].mean() > 0.95
    assert 0.02 < mask.mean() < 0.15


def test_small_empty_or_masked_images_have_no_streak():
    z = _line((48, 48), 24, 24, 45, 5.0)
    assert find_streaks(z, fwhm=3.0) == []
    # nor images without data or without noise
    assert find_streaks(np.zeros((512, 512)), fwhm=3.0) == []
    assert find_streaks(_line((512, 512), 9, 9, 45, 5.0), np.ones((512, 512), bool)) == []
    assert not on_streaks([], [1.0], [2.0]).any()


@pytest.fixture(scope="module")
def trail_pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("trail")
    # one faint trail (0.5 sky sigma per pixel) and one bright (5 sigma)
    trails = ((400.0, 520.0, 28.0, 0.5), (600.0, 300.0, 117.0, 5.0))
    truth = write_ground_pair(d, seed=1, trails=trails)
    sci, ref = read_fits_frame(d / "sci.fits"), read_fits_frame(d / "ref.fits")
    runs = {on: difference_images(sci, ref, config=DifferenceConfig(
        detect=DetectConfig(streaks=on))) for on in (False, True)}
    return truth, trails, runs, d


def _near_trails(table, trails, radius=15.0):
    x, y = np.asarray(table["x"]), np.asarray(table["y"])
    near = np.zeros(x.shape, bool)
    for x0, y0, angle, _ in trails:
        near |= _distance(x, y, x0, y0, angle) < radius
    return near


def test_candidates_on_satellite_trails_are_dropped(trail_pair):
    _, trails, runs, _ = trail_pair
    before, after = runs[False], runs[True]
    assert _near_trails(before.candidates, trails).sum() >= 5
    assert _near_trails(after.candidates, trails).sum() == 0
    assert after.meta["nstreaks"] == 2
    # what lies on them, and at most a couple beside them (the bands end a PSF width out)
    near = _near_trails(before.candidates, trails).sum()
    assert near <= after.meta["nstreaked"] <= near + 2
    assert before.meta["nstreaks"] == 0


def test_transients_off_the_trails_are_kept(trail_pair):
    truth, trails, runs, _ = trail_pair
    far = np.min([_distance(truth.tx, truth.ty, *t[:3]) for t in trails], axis=0) > 30

    def found(result):
        c = result.candidates
        d = np.hypot(np.asarray(c["x"])[:, None] - truth.tx, np.asarray(c["y"])[:, None]
                     - truth.ty)
        return (d.min(axis=0) < 2) & far & (truth.tsnr >= 10)

    assert found(runs[False]).sum() >= 10
    assert np.array_equal(found(runs[True]), found(runs[False]))
    # the trails' bands are left out of Scorr's scatter, which sets the threshold
    assert runs[True].meta["scorrstd"] < runs[False].meta["scorrstd"] - 0.01


def test_rapid_diff_says_what_it_found_and_dropped(trail_pair):
    _, _, runs, d = trail_pair
    run = subprocess.run([sys.executable, "-m", "rapid", "diff", str(d / "sci.fits"),
                          str(d / "ref.fits"), "--out", str(d / "out")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    dropped = runs[True].meta["nstreaked"]
    assert f"2 trails found, {dropped} candidates on them dropped" in run.stdout
    header = fits.getheader(d / "out" / "diff.fits")
    assert header["NSTREAKS"] == 2 and header["NSTREAKED"] == dropped
