"""Image content: truth fluxes in the pixels, saturated and bad pixels flagged in DQ."""

import numpy as np
from astropy.io import fits

from rapid.jobs.products import read_table
from rapid.sim import simulate_survey


def _aperture_rate(path, x, y, radius):
    """Sky-subtracted aperture sum in DN/s around zero-based (x, y)."""
    with fits.open(path) as hdul:
        sci, hdr = hdul[1].data.astype(float), hdul[1].header
    yy, xx = np.mgrid[: sci.shape[0], : sci.shape[1]]
    inside = np.hypot(xx - x, yy - y) < radius
    return (sci[inside] - hdr["SKYLEVEL"]).sum() / hdr["EXPTIME"]


def test_transient_aperture_flux_matches_truth(tmp_path):
    # An empty sky (no stars or galaxies) so the aperture holds only the transient.
    clean = simulate_survey(tmp_path, fields=1, epochs=4, size=96, seed=5, stars_per_sca=0,
                            galaxies_per_sca=0, saturated_stars_per_image=0,
                            transients_per_image=4, variables_per_image=0, peak_snr=(300, 100))
    rows = [r for r in read_table(str(clean.truth)).to_pylist() if r["flux"] > 0]
    assert len(rows) == 4
    paths = {p.name: p for p in clean.images}
    psf = fits.getdata(clean.psfs[0]).astype(float)
    radius = 5.0
    py, px = np.mgrid[: psf.shape[0], : psf.shape[1]] - psf.shape[0] // 2
    fraction = psf[np.hypot(px, py) < radius].sum()
    ratios = [_aperture_rate(paths[r["filename"]], r["x"], r["y"], radius) / fraction / r["flux"]
              for r in rows]
    assert np.all(np.abs(np.array(ratios) - 1.0) < 0.04)


def test_bright_transient_in_crowded_field_matches_truth(survey, truth):
    best = max((r for r in truth if r["kind"] == "transient"), key=lambda r: r["snr_expected"])
    assert best["snr_expected"] > 40
    paths = {p.name: p for p in survey.images}
    psf = fits.getdata(survey.psfs[0]).astype(float)
    radius = 4.0
    py, px = np.mgrid[: psf.shape[0], : psf.shape[1]] - psf.shape[0] // 2
    fraction = psf[np.hypot(px, py) < radius].sum()
    # Static neighbours put light into the aperture too; the quiet epochs (flux 0) measure it
    # at the same sky position, as a difference image would.
    quiet = [_aperture_rate(paths[r["filename"]], r["x"], r["y"], radius) for r in truth
             if r["object_id"] == best["object_id"] and r["flux"] == 0.0]
    assert len(quiet) == 3
    now = _aperture_rate(paths[best["filename"]], best["x"], best["y"], radius)
    measured = (now - np.mean(quiet)) / fraction
    assert abs(measured / best["flux"] - 1.0) < 0.08


def test_saturated_pixels_flagged(survey):
    n_sat = 0
    for path in survey.images:
        with fits.open(path) as hdul:
            sci, dq, hdr = hdul[1].data, hdul[3].data, hdul[1].header
        at_limit = sci >= hdr["SATURATE"]
        n_sat += int(at_limit.sum())
        assert np.all(dq[at_limit] & 1)
        assert np.all(np.nan_to_num(sci, nan=0.0) <= hdr["SATURATE"])
        assert np.all(np.isnan(sci) == ((dq & 4) > 0))
        assert np.any(dq & 2)
    assert n_sat > 0


def test_error_image_tracks_sky_and_read_noise(survey):
    with fits.open(survey.images[0]) as hdul:
        err, hdr = hdul[2].data, hdul[1].header
    floor = np.sqrt(hdr["SKYLEVEL"] * hdr["GAIN"] + hdr["RDNOISE"] ** 2) / hdr["GAIN"]
    assert abs(np.nanmin(err) - floor) < 0.01 * floor
