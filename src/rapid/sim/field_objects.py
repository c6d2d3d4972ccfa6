"""Per-field objects: transients, variable stars and saturating stars in the common footprint."""

from __future__ import annotations

import numpy as np

from rapid.sim import photometry, pointing, scene
from rapid.sim.psf import PIXEL_SCALE, PsfModel

#: Pixels kept between a field object and the footprint edge (the PSF stamp half-width and more).
_EDGE_MARGIN_PX = 14
#: Minimum separations, pixels: between transients/variables, and from a saturating star.
_MIN_SEP_PX = 12
_BRIGHT_SEP_PX = 30


def common_radius_arcsec(size: int, dither_arcsec: float) -> float:
    """Radius around a tile centre that every dithered, rolled image of ``size`` pixels covers."""
    # 0.98 leaves room for the few-percent pixel-scale changes of the SIP distortion.
    return 0.98 * 0.5 * size * PIXEL_SCALE - dither_arcsec - _EDGE_MARGIN_PX * PIXEL_SCALE


def place_field_objects(field_ids, exposures, filters, scas, psfs: dict[tuple, PsfModel], *,
                        size: int, dither_arcsec: float, seed: int, exptime: float,
                        read_noise: float, n_transients: int, n_variables: int, n_bright: int,
                        quiet_epochs: int, peak_snr: tuple[float, float]):
    """Transients, variables and saturating stars of every field.

    Parameters
    ----------
    field_ids : list of int
        Fields of the survey.
    exposures : list of pointing.Exposure
        The survey's exposures (their times set the transients' start times).
    filters, scas : tuple
        Survey filters and SCAs; the first of each sets the transients' peak S/N.
    psfs : dict
        PsfModel per (sca, filter).
    size : int
        Image side, pixels.
    dither_arcsec : float
        Dither radius, arcsec.
    seed : int
        Survey seed (each field draws from its own stream).
    exptime, read_noise : float
        Exposure time (s) and read noise (e-) for the S/N of the transients.
    n_transients, n_variables, n_bright : int
        Numbers per field.
    quiet_epochs : int
        Transients start after the last exposure of this epoch index minus one.
    peak_snr : tuple of float
        Peak S/N of the brightest and faintest transient.

    Returns
    -------
    varying : list of scene.VaryingSource
    bright : scene.StaticCatalog
        The saturating stars.
    """
    for name, n in (("transients_per_image", n_transients), ("variables_per_image", n_variables),
                    ("saturated_stars_per_image", n_bright)):
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n!r}")
    if min(peak_snr) <= 0:
        raise ValueError(f"peak_snr must be positive, got {peak_snr!r}")
    radius = common_radius_arcsec(size, dither_arcsec)
    filt0, sca0 = filters[0], scas[0]
    lam0 = photometry.wavelength_um(filt0)
    zp0 = photometry.zeropoint_electrons(filt0)
    varying, bright = [], []
    next_id = 1
    for field in field_ids:
        rng = np.random.default_rng([seed, 4, field])
        ra0, dec0 = pointing.field_center(field)
        mine = [e for e in exposures if e.field == field]
        epochs = max(e.epoch for e in mine) + 1
        first = {k: min(e.mjd for e in mine if e.epoch == k) for k in range(epochs)}
        last = {k: max(e.mjd for e in mine if e.epoch == k) for k in range(epochs)}
        sky = photometry.sky_electrons(filt0, ra0, dec0, mine[0].wcs_date, exptime)
        background = sky + read_noise**2
        if radius <= 0:
            continue
        taken: list = []
        spots = scene.place_in_disc(rng, n_transients + n_variables, radius,
                                    _MIN_SEP_PX * PIXEL_SCALE, taken)
        spots += [None] * (n_transients + n_variables - len(spots))
        snrs = np.geomspace(max(peak_snr), min(peak_snr), n_transients) if n_transients else []
        for i in range(n_transients):
            color = rng.normal(0.0, 0.2)
            flux_e = photometry.flux_for_snr(float(snrs[i]), background,
                                             psfs[(sca0, filt0)].native)
            mag_f0 = zp0 - 2.5 * np.log10(flux_e / exptime)
            # Start between the last quiet epoch and the first active one, so the first
            # active epoch catches the transient rising or near its peak.
            if quiet_epochs == 0:
                t0 = first[0] - rng.uniform(1.0, 5.0)
            elif quiet_epochs >= epochs:
                t0 = last[epochs - 1] + 1.0
            else:
                gap = first[quiet_epochs] - last[quiet_epochs - 1]
                t0 = first[quiet_epochs] - rng.uniform(0.3, 0.9) * gap
            t_rise, tau = rng.uniform(2.0, 6.0), rng.uniform(15.0, 40.0)
            if spots[i] is None:
                continue
            ra, dec = scene.deproject(ra0, dec0, *spots[i])
            varying.append(scene.VaryingSource(
                object_id=next_id, kind="transient", field=field, ra=float(ra), dec=float(dec),
                mag=float(mag_f0 - color * (lam0 - scene.REF_WAVELENGTH_UM)), color=color,
                t0=float(t0), t_rise=t_rise, tau=tau))
            next_id += 1
        for i in range(n_variables):
            spot = spots[n_transients + i]
            mag, color = rng.uniform(18.5, 21.5), rng.normal(0.0, 0.3)
            period, amp, phase = rng.uniform(2.0, 30.0), rng.uniform(0.1, 0.4), rng.uniform(0, 6.3)
            if spot is None:
                continue
            ra, dec = scene.deproject(ra0, dec0, *spot)
            varying.append(scene.VaryingSource(
                object_id=next_id, kind="variable", field=field, ra=float(ra), dec=float(dec),
                mag=float(mag), color=color, t0=float(first[0]), period=period, amp=amp,
                phase=phase))
            next_id += 1
        for xi, eta in scene.place_in_disc(rng, n_bright, radius, _BRIGHT_SEP_PX * PIXEL_SCALE,
                                           [(a, b, _BRIGHT_SEP_PX * PIXEL_SCALE)
                                            for a, b, _ in taken]):
            ra, dec = scene.deproject(ra0, dec0, xi, eta)
            bright.append((float(ra), float(dec), rng.uniform(13.5, 15.0)))
    n = len(bright)
    arr = np.array(bright, dtype=float).reshape(n, 3)
    catalog = scene.StaticCatalog(
        ra=arr[:, 0], dec=arr[:, 1], kind=np.zeros(n, np.int8), mag=arr[:, 2], color=np.zeros(n),
        profile=np.zeros(n, np.int8), hlr=np.zeros(n), q=np.ones(n), beta=np.zeros(n),
        bulge_frac=np.zeros(n))
    return varying, catalog
