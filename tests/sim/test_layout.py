"""The file layout and header keywords that ingest and the science job read."""

import json
import re

import numpy as np
from astropy.io import fits

from rapid.sim.photometry import zeropoint_dn

OBS_KEYS = ("DATE-OBS", "MJD-OBS", "EXPTIME", "FILTER", "SCA", "ZPTMAG", "GAIN", "RDNOISE",
            "SATURATE", "SKYLEVEL", "BUNIT", "PSFFILE", "FIELD")


def test_one_image_per_field_epoch_filter_sca(survey):
    assert survey.n_exposures == 12
    assert len(survey.images) == 12
    names = [p.name for p in survey.images]
    assert names[0] == "Roman_sim_H158_00001_01.fits"
    assert names[-1] == "Roman_sim_H158_00012_01.fits"
    assert all(p.parent.name == "H158" and p.parent.parent.name == "images" for p in survey.images)


def test_hdus_types_and_keywords(survey):
    with fits.open(survey.images[0]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "ERR", "DQ"]
        assert hdul[0].data is None
        assert hdul[1].data.dtype == np.dtype(">f4") and hdul[1].data.shape == (128, 128)
        assert hdul[2].data.dtype == np.dtype(">f4")
        assert hdul[3].data.dtype.kind == "u" and hdul[3].data.dtype.itemsize == 4
        sci = hdul[1].header
        for key in OBS_KEYS:
            assert key in sci and hdul[0].header[key] == sci[key]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", sci["DATE-OBS"])
        assert sci["DATE-OBS"] == "2028-09-07T00:00:00.000"
        assert sci["MJD-OBS"] == 62021.0
        assert sci["BUNIT"] == "DN" and sci["FILTER"] == "H158" and sci["SCA"] == 1
        assert sci["PSFFILE"] == "Roman_sim_psf_H158_01.fits"
        assert sci["ZPTMAG"] == zeropoint_dn("H158", 1.0)
        assert sci["CTYPE1"] == "RA---TAN-SIP" and sci["CTYPE2"] == "DEC--TAN-SIP"
        assert sci["A_ORDER"] == 4 and "A_2_0" in sci and "AP_1_0" in sci and "BP_0_2" in sci
        # The image is in DN, sky included: its median sits near SKYLEVEL.
        assert abs(np.nanmedian(hdul[1].data) - sci["SKYLEVEL"]) < 0.1 * sci["SKYLEVEL"]


def test_dateobs_follows_cadence(survey):
    mjds = [fits.getheader(p, 1)["MJD-OBS"] for p in survey.images]
    assert np.all(np.diff(mjds) > 0)
    # Two fields per epoch, epochs five days apart.
    assert np.isclose(mjds[2] - mjds[0], 5.0)


def test_survey_json_counts(survey):
    doc = json.loads(survey.survey_json.read_text())
    assert doc["counts"]["n_images"] == 12
    assert doc["arguments"]["size"] == 128
    assert doc["fields"] == survey.fields
    assert doc["truth"] == "truth.parquet"
