"""The simulated sky: a static catalogue of stars and galaxies, plus transients and variables.

The static sky is one catalogue for the whole survey, so that images of neighbouring tiles
that overlap show the same objects. Transients, variable stars and deliberately saturated stars
belong to a field: they are placed, from a seed of their own per field, inside the part of the
sky that every epoch's image of that field covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Reference wavelength (micron) of the catalogue magnitudes; colours are in mag per micron.
REF_WAVELENGTH_UM = 1.58
#: Area of one full SCA on the sky, square degrees.
SCA_AREA_DEG2 = (4088 * 0.11 / 3600.0) ** 2


def deproject(ra0: float, dec0: float, xi_arcsec, eta_arcsec):
    """Gnomonic inverse: (xi east, eta north) arcsec around (ra0, dec0) -> (ra, dec) degrees."""
    xi = np.radians(np.asarray(xi_arcsec, dtype=float) / 3600.0)
    eta = np.radians(np.asarray(eta_arcsec, dtype=float) / 3600.0)
    d0 = np.radians(dec0)
    dec = np.arcsin((np.sin(d0) + eta * np.cos(d0)) / np.sqrt(1.0 + xi**2 + eta**2))
    ra = ra0 + np.degrees(np.arctan2(xi, np.cos(d0) - eta * np.sin(d0)))
    return np.mod(ra, 360.0), np.degrees(dec)


def project(ra0: float, dec0: float, ra, dec):
    """Gnomonic projection: (ra, dec) degrees -> (xi east, eta north) arcsec around (ra0, dec0)."""
    a = np.radians(np.asarray(ra, dtype=float) - ra0)
    d = np.radians(np.asarray(dec, dtype=float))
    d0 = np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a)
    xi = np.cos(d) * np.sin(a) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a)) / cosc
    return np.degrees(xi) * 3600.0, np.degrees(eta) * 3600.0


def _power_law_mags(rng, n, lo, hi, slope):
    """Magnitudes with counts rising as 10**(slope * m) between lo and hi."""
    u = rng.uniform(size=n)
    a, b = 10.0 ** (slope * lo), 10.0 ** (slope * hi)
    return np.log10(a + u * (b - a)) / slope


@dataclass
class StaticCatalog:
    """Stars and galaxies (kind 0 and 1). Galaxy shape: profile 0 exponential, 1 de Vaucouleurs,
    2 bulge + disk; hlr in arcsec; q axis ratio; beta position angle (radians, east of north)."""

    ra: np.ndarray
    dec: np.ndarray
    kind: np.ndarray
    mag: np.ndarray
    color: np.ndarray
    profile: np.ndarray
    hlr: np.ndarray
    q: np.ndarray
    beta: np.ndarray
    bulge_frac: np.ndarray

    def __len__(self) -> int:
        return len(self.ra)

    def mag_in(self, wavelength_um: float) -> np.ndarray:
        """AB magnitudes in a filter of effective wavelength ``wavelength_um``."""
        return self.mag + self.color * (wavelength_um - REF_WAVELENGTH_UM)


def make_static_catalog(ra0: float, dec0: float, radius_arcsec: float, *, stars_per_sca: float,
                        galaxies_per_sca: float, seed: int,
                        star_mags: tuple[float, float] = (17.0, 26.0),
                        galaxy_mags: tuple[float, float] = (19.0, 26.0),
                        avoid: list[tuple[float, float, float]] = ()) -> StaticCatalog:
    """Random stars and galaxies in a disc of ``radius_arcsec`` around (ra0, dec0).

    Parameters
    ----------
    ra0, dec0 : float
        Disc centre, degrees.
    radius_arcsec : float
        Disc radius, arcsec.
    stars_per_sca, galaxies_per_sca : float
        Mean numbers per full SCA area (4088 x 4088 pixels).
    seed : int
        Seed of the catalogue.
    star_mags, galaxy_mags : tuple of float, optional
        Magnitude ranges. Defaults (17, 26) and (19, 26).
    avoid : list of (ra, dec, radius_arcsec), optional
        Discs kept free of static objects.

    Returns
    -------
    StaticCatalog
        Stars first, then galaxies.
    """
    if radius_arcsec <= 0:
        raise ValueError(f"radius_arcsec must be positive, got {radius_arcsec!r}")
    if stars_per_sca < 0 or galaxies_per_sca < 0:
        raise ValueError("stars_per_sca and galaxies_per_sca must be >= 0")
    rng = np.random.default_rng([seed, 2])
    area = np.pi * (radius_arcsec / 3600.0) ** 2
    n_star = rng.poisson(stars_per_sca * area / SCA_AREA_DEG2)
    n_gal = rng.poisson(galaxies_per_sca * area / SCA_AREA_DEG2)
    n = n_star + n_gal
    r = radius_arcsec * np.sqrt(rng.uniform(size=n))
    phi = rng.uniform(0, 2 * np.pi, size=n)
    ra, dec = deproject(ra0, dec0, r * np.cos(phi), r * np.sin(phi))
    kind = np.r_[np.zeros(n_star, np.int8), np.ones(n_gal, np.int8)]
    mag = np.r_[_power_law_mags(rng, n_star, *star_mags, 0.2),
                _power_law_mags(rng, n_gal, *galaxy_mags, 0.35)]
    color = rng.normal(0.0, 0.3, size=n)
    profile = np.r_[np.zeros(n_star, np.int8), rng.choice(3, size=n_gal, p=[0.5, 0.2, 0.3])]
    # Fainter galaxies are smaller: about 0.6" at mag 20, 0.15" at mag 26.
    hlr = np.r_[np.zeros(n_star),
                np.clip(0.6 * 10 ** (-0.1 * (mag[n_star:] - 20.0)) * 10 ** rng.normal(0, 0.15, n_gal),
                        0.08, 1.2)]
    q = np.r_[np.ones(n_star), rng.uniform(0.3, 1.0, n_gal)]
    beta = np.r_[np.zeros(n_star), rng.uniform(0, np.pi, n_gal)]
    bulge = np.r_[np.zeros(n_star), rng.uniform(0.1, 0.5, n_gal)]
    keep = np.ones(n, bool)
    for ra_a, dec_a, rad in avoid:
        xi, eta = project(ra_a, dec_a, ra, dec)
        keep &= np.hypot(xi, eta) > rad
    return StaticCatalog(ra[keep], dec[keep], kind[keep], mag[keep], color[keep], profile[keep],
                         hlr[keep], q[keep], beta[keep], bulge[keep])


@dataclass
class VaryingSource:
    """A transient (SN-like light curve) or a sinusoidal variable star.

    For a transient ``mag`` is the peak magnitude, the flux is zero before ``t0`` (MJD), rises
    as ((t - t0) / t_rise)**2 to the peak and then declines as exp(-(t - t0 - t_rise) / tau).
    For a variable ``mag`` is the mean magnitude and the flux is
    mean * (1 + amp * sin(2 pi (t - t0) / period + phase)).
    """

    object_id: int
    kind: str
    field: int
    ra: float
    dec: float
    mag: float
    color: float
    t0: float
    t_rise: float = 0.0
    tau: float = 0.0
    period: float = 0.0
    amp: float = 0.0
    phase: float = 0.0

    def mag_in(self, wavelength_um: float) -> float:
        """Peak (transient) or mean (variable) AB magnitude in a filter."""
        return self.mag + self.color * (wavelength_um - REF_WAVELENGTH_UM)

    def relative_flux(self, mjd: float) -> float:
        """Flux at ``mjd`` relative to the peak (transient) or mean (variable) flux."""
        dt = mjd - self.t0
        if self.kind == "variable":
            return 1.0 + self.amp * np.sin(2 * np.pi * dt / self.period + self.phase)
        if dt <= 0:
            return 0.0
        if dt < self.t_rise:
            return (dt / self.t_rise) ** 2
        return float(np.exp(-(dt - self.t_rise) / self.tau))

    def baseline_relative_flux(self) -> float:
        """Relative flux in the reference epochs: 0 for transients, the mean (1) for variables."""
        return 1.0 if self.kind == "variable" else 0.0


def place_in_disc(rng, n: int, radius_arcsec: float, min_sep_arcsec: float,
                  taken: list[tuple[float, float, float]]) -> list[tuple[float, float]]:
    """Up to ``n`` random (xi, eta) in a disc, each at least its separation from the others.

    ``taken`` holds (xi, eta, separation) of points placed before; new points are appended.
    """
    out = []
    for _ in range(200 * max(n, 1)):
        if len(out) == n:
            break
        r = radius_arcsec * np.sqrt(rng.uniform())
        phi = rng.uniform(0, 2 * np.pi)
        xi, eta = r * np.cos(phi), r * np.sin(phi)
        if all(np.hypot(xi - a, eta - b) >= max(s, min_sep_arcsec) for a, b, s in taken):
            taken.append((xi, eta, min_sep_arcsec))
            out.append((xi, eta))
    return out
