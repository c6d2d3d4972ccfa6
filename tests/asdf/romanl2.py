"""Small Roman L2 ASDF files made with romanisim for the tests: stars only, GalSim PSF, no CRDS.

A full SCA (4088² pixels, up-the-ramp) takes minutes, so the image is a cut-out of SCA 1: the
counts are drawn by romanisim on a small GalSim image carrying the cut-out of galsim.roman's WCS,
the ramp is skipped (slope = electrons / gain / exposure time, with Poisson and read noise), and
the file is written by ``romanisim.image.make_asdf`` so that the metadata, photometry and datamodel
are romanisim's own. The GWCS is galsim.roman's SCA WCS preceded by the cut-out offset.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PIXEL_SCALE_DEG = 0.11 / 3600.0


@dataclass
class Pointing:
    """What stays fixed between epochs: boresight, SCA, filter, cut-out."""

    ra_ref: float = 11.1
    dec_ref: float = -43.8
    sca: int = 1
    optical_element: str = "F158"
    x0: int = 1800  # 0-based SCA pixel of the cut-out's pixel (0, 0)
    y0: int = 1800
    size: int = 200


def _romanisim():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from romanisim import image as rimage
        from romanisim import util
        from romanisim.models import bandpass, parameters
        from romanisim.models import wcs as rwcs
    return rimage, util, bandpass, parameters, rwcs


def base_metadata(pointing: Pointing, start_time: str) -> dict:
    """romanisim's default metadata for this pointing and time."""
    from astropy.time import Time

    *_, parameters, _ = _romanisim()
    meta = copy.deepcopy(parameters.default_parameters_dictionary)
    meta["instrument"]["detector"] = f"WFI{pointing.sca:02d}"
    meta["instrument"]["optical_element"] = pointing.optical_element
    meta["exposure"]["start_time"] = Time(start_time, format="isot", scale="utc")
    meta["wcsinfo"]["ra_ref"] = pointing.ra_ref
    meta["wcsinfo"]["dec_ref"] = pointing.dec_ref
    return meta


def cutout_wcs(pointing: Pointing, start_time: str):
    """(galsim WCS of the cut-out with origin 0, gwcs of the cut-out)."""
    import galsim
    from astropy.modeling import models

    rimage, util, bandpass, parameters, rwcs = _romanisim()
    sca_wcs = rwcs.get_wcs(base_metadata(pointing, start_time), usecrds=False)
    full = rwcs.convert_wcs_to_gwcs(sca_wcs)
    shift = models.Shift(pointing.x0) & models.Shift(pointing.y0)
    import gwcs

    cut = gwcs.WCS([(full.input_frame, shift | full.forward_transform), (full.output_frame, None)])
    cut.bounding_box = ((-0.5, pointing.size - 0.5), (-0.5, pointing.size - 0.5))
    # romanisim draws on images whose first pixel is 0, so galsim and gwcs pixels agree.
    gs = sca_wcs.shiftOrigin(galsim.PositionD(-pointing.x0, -pointing.y0))
    return gs, cut


def star_table(cut, pointing: Pointing, *, n: int, seed: int, mag_range=(18.0, 22.0),
               margin: int = 12):
    """Stars at random pixel positions of the cut-out (ra, dec in degrees, F158 in maggies)."""
    from astropy.table import Table

    rng = np.random.default_rng(seed)
    x = rng.uniform(margin, pointing.size - 1 - margin, n)
    y = rng.uniform(margin, pointing.size - 1 - margin, n)
    ra, dec = cut(x, y)
    mag = rng.uniform(*mag_range, n)
    return Table({"ra": np.mod(ra, 360.0), "dec": dec, "type": ["PSF"] * n, "n": np.full(n, -1.0),
                  "half_light_radius": np.zeros(n), "pa": np.zeros(n), "ba": np.ones(n),
                  pointing.optical_element: 10 ** (-0.4 * mag), "x": x, "y": y, "mag": mag})


def make_l2_asdf(path: str | Path, *, pointing: Pointing, start_time: str, stars,
                 seed: int = 1, sky_e_per_s: float = 1.0, bad_pixels=(), psf=None):
    """Write one L2 ImageModel ASDF file; returns the model written.

    ``stars`` is a :func:`star_table` (plus any transient rows); ``bad_pixels`` are (x, y)
    pixels given DQ = 1 (dead pixel).
    """
    import galsim

    rimage, util, bandpass, parameters, rwcs = _romanisim()
    from roman_datamodels import datamodels

    gs_wcs, cut = cutout_wcs(pointing, start_time)
    meta_model = datamodels.ImageModel.create_fake_data()
    meta = meta_model.meta
    meta["wcs"] = None
    for key, value in base_metadata(pointing, start_time).items():
        meta[key].update(value)
    util.add_more_metadata(meta, usecrds=False)
    exptime = float(meta["exposure"]["exposure_time"])
    gain = float(parameters.reference_data["gain"])
    read_noise = float(parameters.reference_data["readnoise"])
    sca, filt = pointing.sca, pointing.optical_element
    if psf is None:
        psf = make_psf(pointing, gs_wcs)
    img = galsim.ImageF(pointing.size, pointing.size, wcs=gs_wcs, xmin=0, ymin=0)
    rng = galsim.UniformDeviate(seed)
    rimage.simulate_counts_generic(
        img, exptime, objlist=stars, psf=psf, zpflux=bandpass.get_abflux(filt, sca),
        sky=sky_e_per_s, filter_name=filt, rng=rng)
    electrons = img.array.astype(np.float64)
    nprng = np.random.default_rng(seed)
    # A slope fitted over the ramp has read noise of order read_noise / exptime per DN/s.
    rn_dn = read_noise * np.sqrt(12.0 / len(meta["exposure"]["read_pattern"]))
    slope = (electrons / gain + nprng.normal(0.0, rn_dn, electrons.shape)) / exptime
    var_poisson = np.clip(electrons, 1.0, None) / gain ** 2 / exptime ** 2
    var_rn = np.full(electrons.shape, (rn_dn / exptime) ** 2)
    dq = np.zeros(electrons.shape, dtype=np.uint32)
    for x, y in bad_pixels:
        dq[y, x] = 1
    meta["wcs"] = cut
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = rimage.make_asdf(slope.astype(np.float32), var_rn.astype(np.float32),
                                    var_poisson.astype(np.float32), metadata=meta, dq=dq,
                                    gain=gain)
        model["meta"]["wcsinfo"]["s_region"] = rwcs.create_s_region(cut)
        # Small placeholders: the reference-pixel arrays are not used by RAPID.
        for side in ("left", "right", "top", "bottom"):
            model[f"border_ref_pix_{side}"] = model[f"border_ref_pix_{side}"][:1]
        model["amp33"] = model["amp33"][:1]
        dm = datamodels.ImageModel(model)
        dm.save(str(path))
    return dm


_PSF_CACHE: dict = {}


def make_psf(pointing: Pointing, wcs):
    """galsim.roman PSF (achromatic, pupil_bin 8) at the cut-out centre, cached."""
    key = (pointing.sca, pointing.optical_element, pointing.x0, pointing.y0)
    if key not in _PSF_CACHE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from romanisim import psf as rpsf
        centre = (pointing.x0 + pointing.size / 2, pointing.y0 + pointing.size / 2)
        _PSF_CACHE[key] = rpsf.make_psf(pointing.sca, pointing.optical_element, psftype="galsim",
                                        pix=centre, wcs=wcs)
    return _PSF_CACHE[key]
