"""Roman photometric scales: zero points, sky levels and the expected S/N of a point source."""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache

import galsim
import galsim.roman as roman
import numpy as np

#: Nominal pixel scale, arcsec per pixel.
PIXEL_SCALE = roman.pixel_scale

#: The eight Roman imaging filters RAPID knows.
FILTERS = ("F184", "H158", "J129", "K213", "R062", "Y106", "Z087", "W146")


@lru_cache(maxsize=None)
def _all_bandpasses() -> dict:
    return roman.getBandpasses(AB_zeropoint=True)


def bandpass(filter_name: str) -> galsim.Bandpass:
    """GalSim's Roman bandpass of a filter, with its AB zero point."""
    return _all_bandpasses()[check_filter(filter_name)]


def check_filter(filter_name: str) -> str:
    """Return ``filter_name`` if it is a Roman imaging filter, else raise ValueError."""
    if filter_name not in FILTERS:
        raise ValueError(f"filters must be among {FILTERS}, got {filter_name!r}")
    return filter_name


def wavelength_um(filter_name: str) -> float:
    """Effective wavelength of a filter, micron."""
    return bandpass(filter_name).effective_wavelength / 1000.0


def zeropoint_electrons(filter_name: str) -> float:
    """AB magnitude giving 1 electron per second through the Roman collecting area."""
    return bandpass(filter_name).zeropoint + 2.5 * np.log10(roman.collecting_area)


def zeropoint_dn(filter_name: str, gain: float) -> float:
    """ZPTMAG: AB magnitude of 1 DN/s, for ``gain`` electrons per DN."""
    return zeropoint_electrons(filter_name) - 2.5 * np.log10(gain)


def sky_electrons(filter_name: str, ra: float, dec: float, date: _dt.datetime,
                  exptime: float) -> float:
    """Zodiacal sky (``galsim.roman.getSkyLevel``) plus thermal background per pixel, electrons."""
    pos = galsim.CelestialCoord(ra * galsim.degrees, dec * galsim.degrees)
    zodi = roman.getSkyLevel(bandpass(filter_name), world_pos=pos, exptime=exptime, date=date)
    return float(zodi * PIXEL_SCALE**2 + roman.thermal_backgrounds[filter_name] * exptime)


def expected_snr(diff_e, total_e, background_e: float, psf: np.ndarray):
    """S/N of a PSF-weighted measurement of ``diff_e`` against a noiseless reference.

    Parameters
    ----------
    diff_e : float or ndarray
        Flux difference, electrons (sign ignored).
    total_e : float or ndarray
        Total source flux in the science image, electrons (its Poisson noise counts).
    background_e : float
        Sky plus read-noise variance per pixel, electrons.
    psf : ndarray
        Native PSF, sum 1.

    Returns
    -------
    float or ndarray
        sqrt(sum_i (d P_i)^2 / (B + F P_i)).
    """
    p = psf.ravel()
    diff, total = np.broadcast_arrays(np.abs(np.asarray(diff_e, dtype=float)),
                                      np.clip(np.asarray(total_e, dtype=float), 0, None))
    weight = np.sum(p**2 / (background_e + total[..., None] * p), axis=-1)
    snr = diff * np.sqrt(weight)
    return float(snr) if snr.ndim == 0 else snr


def flux_for_snr(snr: float, background_e: float, psf: np.ndarray) -> float:
    """Flux (electrons) of a new point source whose expected S/N is ``snr``."""
    if snr <= 0:
        raise ValueError(f"snr must be positive, got {snr!r}")
    lo, hi = 1e-3, 1e12
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        if float(expected_snr(mid, mid, background_e, psf)) < snr:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-10:
            break
    return float(np.sqrt(lo * hi))
