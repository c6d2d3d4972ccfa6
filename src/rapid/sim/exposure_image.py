"""One L2 image of the survey: sources placed through the WCS, noise, FITS file and truth rows."""

from __future__ import annotations

from pathlib import Path

import galsim
import numpy as np

from rapid.sim import files, photometry, scene
from rapid.sim.psf import PIXEL_SCALE, PsfModel, psf_filename
from rapid.sim.render import Galaxy, PointSource, draw_sources, observe
from rapid.sim.wcs_header import sip_cutout_header

#: Sources this far (pixels) outside the image are still drawn, for their wings.
_MARGIN_PX = 50


def _format_dateobs(when) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def _positions(wcs, ra, dec, *, offset: int, size: int, centre):
    """One-based cutout (x, y) and full-frame (X, Y) of sky positions near the image, and
    the indices of those within the image plus margin."""
    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    if len(ra) == 0:
        return np.zeros(0, int), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)
    xi, eta = scene.project(centre.ra.deg, centre.dec.deg, ra, dec)
    reach = (size * np.sqrt(2) / 2 + _MARGIN_PX) * PIXEL_SCALE * 1.05
    near = np.flatnonzero(np.hypot(xi, eta) < reach)
    if len(near) == 0:
        return near, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)
    big_x, big_y = wcs.radecToxy(ra[near], dec[near], units="deg")
    big_x, big_y = np.atleast_1d(big_x), np.atleast_1d(big_y)
    x, y = big_x - offset, big_y - offset
    inside = (x > -_MARGIN_PX) & (x < size + _MARGIN_PX) & (y > -_MARGIN_PX) & (y < size + _MARGIN_PX)
    return near[inside], x[inside], y[inside], big_x[inside], big_y[inside]


def simulate_image(path: Path, exp, sca: int, wcs: galsim.GSFitsWCS, psf: PsfModel,
                   static: scene.StaticCatalog, bright: scene.StaticCatalog, varying: list,
                   *, size: int, offset: int, seed: int, exptime: float, read_noise: float,
                   gain: float, saturation: float, artefacts: tuple[int, int, int]) -> list[dict]:
    """Draw, write and describe one SCA image of one exposure.

    Parameters
    ----------
    path : Path
        Output FITS path.
    exp : pointing.Exposure
        The exposure.
    sca : int
        SCA number.
    wcs : galsim.GSFitsWCS
        Full-frame WCS of this SCA in this exposure.
    psf : PsfModel
        PSF of this SCA and filter.
    static, bright : scene.StaticCatalog
        The static sky and the saturating stars.
    varying : list of scene.VaryingSource
        Transients and variables.
    size, offset : int
        Cutout side and zero-based offset of its first pixel in the full frame.
    seed : int
        Survey seed.
    exptime, read_noise, gain, saturation : float
        Seconds, electrons, electrons per DN, DN.
    artefacts : tuple of int
        Numbers of cosmic rays, hot pixels and NaN pixels.

    Returns
    -------
    list of dict
        Truth rows of the transients and variables that fall in the image.
    """
    filt = exp.filter
    lam = photometry.wavelength_um(filt)
    zp_e = photometry.zeropoint_electrons(filt)
    zp_dn = photometry.zeropoint_dn(filt, gain)
    centre_pix = offset + (size + 1) / 2.0
    centre = wcs.toWorld(galsim.PositionD(centre_pix, centre_pix))

    def to_e(mag):
        return 10.0 ** (-0.4 * (np.asarray(mag) - zp_e)) * exptime

    points, galaxies = [], []
    for cat in (static, bright):
        idx, x, y, bx, by = _positions(wcs, cat.ra, cat.dec, offset=offset, size=size,
                                       centre=centre)
        flux = to_e(cat.mag_in(lam)[idx]) if len(idx) else np.zeros(0)
        for k, i in enumerate(idx):
            if cat.kind[i] == 0:
                points.append(PointSource(x[k], y[k], float(flux[k])))
            else:
                jac = wcs.jacobian(image_pos=galsim.PositionD(bx[k], by[k]))
                galaxies.append(Galaxy(x[k], y[k], float(flux[k]), int(cat.profile[i]),
                                       float(cat.hlr[i]), float(cat.q[i]), float(cat.beta[i]),
                                       float(cat.bulge_frac[i]), jac))

    sky_e = photometry.sky_electrons(filt, exp.target_ra, exp.target_dec, exp.wcs_date, exptime)
    background = sky_e + read_noise**2
    name = path.name
    dateobs = _format_dateobs(exp.dateobs)
    rows, clear = [], []
    idx, x, y, _, _ = _positions(wcs, [v.ra for v in varying], [v.dec for v in varying],
                                 offset=offset, size=size, centre=centre)
    for k, i in enumerate(idx):
        v = varying[i]
        base_e = float(to_e(v.mag_in(lam)))
        flux_e = base_e * v.relative_flux(exp.mjd)
        baseline_e = base_e * v.baseline_relative_flux()
        if flux_e > 0:
            points.append(PointSource(x[k], y[k], flux_e))
        x0, y0 = x[k] - 1.0, y[k] - 1.0  # zero-based
        if not (-0.5 <= x0 < size - 0.5 and -0.5 <= y0 < size - 0.5):
            continue
        clear.append((x0, y0))
        per_s = exptime * gain
        rows.append(dict(
            filename=name, expid=exp.expid, sca=sca, filter=filt, field=exp.field,
            dateobs=dateobs, mjd=exp.mjd, kind=v.kind, object_id=v.object_id, ra=v.ra,
            dec=v.dec, x=float(x0), y=float(y0), flux=flux_e / per_s,
            baseline_flux=baseline_e / per_s, diff_flux=(flux_e - baseline_e) / per_s,
            mag=float(zp_dn - 2.5 * np.log10(flux_e / per_s)) if flux_e > 0 else float("nan"),
            snr_expected=float(photometry.expected_snr(flux_e - baseline_e, flux_e, background,
                                                       psf.native))))

    model = draw_sources((size, size), psf, points, galaxies)
    rng = np.random.default_rng([seed, 5, exp.expid, sca])
    sci, err, dq = observe(model, sky_e=sky_e, read_noise=read_noise, gain=gain,
                           saturation=saturation, rng=rng, n_cosmic=artefacts[0],
                           n_hot=artefacts[1], n_nan=artefacts[2], keep_clear=clear)
    observation = {
        "TELESCOP": "ROMAN", "INSTRUME": "WFI",
        "DATE-OBS": (dateobs, "exposure start, UTC"),
        "MJD-OBS": (exp.mjd, "exposure start, MJD UTC"),
        "EXPTIME": (exptime, "s"), "FILTER": filt, "SCA": sca, "EXPID": exp.expid,
        "ZPTMAG": (zp_dn, "AB mag of 1 DN/s"), "GAIN": (gain, "e-/DN"),
        "RDNOISE": (read_noise, "e-"), "SATURATE": (saturation, "DN"),
        "SKYLEVEL": (sky_e / gain, "mean sky, DN"), "BUNIT": "DN",
        "PSFFILE": psf_filename(filt, sca), "FIELD": (exp.field, "tile aimed at"),
        "EPOCH": exp.epoch, "PA_FPA": (exp.pa_fpa_deg, "focal-plane position angle, deg"),
        "WCSDATE": (exp.wcs_date.strftime("%Y-%m-%d"), "date given to galsim.roman.getWCS"),
    }
    wcs_header = sip_cutout_header(wcs, offset=(offset, offset), shape=(size, size))
    files.write_l2_image(path, sci, err, dq, observation, wcs_header)
    return rows
