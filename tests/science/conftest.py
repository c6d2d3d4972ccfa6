"""Small synthetic images shared by the science tests.

The fixtures return factory functions so that each test states the numbers it relies on:

- ``make_wcs(ra, dec, shape, *, scale_arcsec=0.11, rot_deg=0, flip=False, sip=False)``: a TAN
  (optionally SIP-distorted, Roman-like) celestial WCS centred on (ra, dec).
- ``gaussian_psf(sigma, *, size=None)``: a pixel-integrated Gaussian stamp summing to 1.
- ``render_stars(shape, x, y, flux, sigma)``: pixel-integrated Gaussian stars (zero-based x, y).
- ``star_field(n, ra, dec, radius_arcsec, *, flux_range, seed)``: random sky positions and fluxes.
- ``star_frame(wcs, shape, ra, dec, flux, *, sigma, noise, seed, ...)``: a :class:`Frame` of the
  stars seen through ``wcs`` with Gaussian noise, constant ``unc`` and a PSF stamp.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS, Sip
from scipy.special import erf

from rapid.science.image import Frame


def _make_wcs(ra, dec, shape, *, scale_arcsec=0.11, rot_deg=0.0, flip=False, sip=False,
              sip_scale=1.0):
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    s = scale_arcsec / 3600.0
    th = np.deg2rad(rot_deg)
    # North up, east left, rotated by rot_deg; ``flip`` mirrors the x axis (east right).
    cd = np.array([[-s * np.cos(th), s * np.sin(th)], [s * np.sin(th), s * np.cos(th)]])
    if flip:
        cd[:, 0] *= -1
    w.wcs.cd = cd
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    if sip:
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        # Roman-like: a few pixels of distortion at the edge of a 4088-pixel SCA, up to order 5;
        # ``sip_scale`` rescales the coefficients so small test images get similar shifts.
        a = np.zeros((6, 6))
        b = np.zeros((6, 6))
        k = float(sip_scale)
        a[2, 0], a[1, 1], a[0, 2] = 2.0e-6 * k, -1.2e-6 * k, 0.8e-6 * k
        b[2, 0], b[1, 1], b[0, 2] = -0.7e-6 * k, 1.5e-6 * k, 1.1e-6 * k
        a[3, 0], a[1, 2] = 1.5e-10 * k**2, -0.8e-10 * k**2
        b[0, 3], b[2, 1] = 1.2e-10 * k**2, 0.6e-10 * k**2
        a[5, 0], b[0, 5] = 2.0e-17 * k**4, -1.5e-17 * k**4
        a[3, 2], b[2, 3] = 1.0e-17 * k**4, 1.0e-17 * k**4
        w.sip = Sip(a, b, None, None, w.wcs.crpix)
    w.pixel_shape = (nx, ny)
    return w


def _gaussian_psf(sigma, *, size=None):
    if size is None:
        size = 2 * int(np.ceil(5 * sigma)) + 1
    c = (size - 1) / 2
    stamp = _render_stars((size, size), [c], [c], [1.0], sigma)
    return (stamp / stamp.sum()).astype(np.float32)


def _pixel_integrated_1d(edges, centre, sigma):
    z = (edges - centre) / (np.sqrt(2.0) * sigma)
    return 0.5 * np.diff(erf(z))


def _render_stars(shape, x, y, flux, sigma):
    ny, nx = shape
    img = np.zeros(shape, dtype=np.float64)
    half = int(np.ceil(6 * sigma)) + 1
    for xi, yi, fi in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(flux)):
        ix, iy = int(round(xi)), int(round(yi))
        x0, x1 = max(0, ix - half), min(nx, ix + half + 1)
        y0, y1 = max(0, iy - half), min(ny, iy + half + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        px = _pixel_integrated_1d(np.arange(x0, x1 + 1) - 0.5, xi, sigma)
        py = _pixel_integrated_1d(np.arange(y0, y1 + 1) - 0.5, yi, sigma)
        img[y0:y1, x0:x1] += fi * np.outer(py, px)
    return img


def _star_field(n, ra, dec, radius_arcsec, *, flux_range=(50.0, 500.0), seed=0,
                min_sep_arcsec=1.5):
    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < n:
        d = rng.uniform(-radius_arcsec, radius_arcsec, 2) / 3600.0
        if pos and np.min(np.hypot(*(np.array(pos) - d).T)) * 3600 < min_sep_arcsec:
            continue
        pos.append(d)
    pos = np.array(pos)
    dec_s = dec + pos[:, 1]
    ra_s = ra + pos[:, 0] / np.cos(np.deg2rad(dec))
    flux = rng.uniform(*flux_range, n)
    return ra_s, dec_s, flux


def _star_frame(wcs, shape, ra, dec, flux, *, sigma=1.2, noise=1.0, seed=0, background=0.0,
                zptmag=17.0, mjdobs=60000.0, extra=None, psf_size=None):
    """Stars of reference-zero-point ``flux`` observed at ``zptmag``, in DN/s."""
    x, y = wcs.all_world2pix(ra, dec, 0)
    # A frame with zero point zptmag records flux * 10**(-0.4*(17 - zptmag)) DN/s.
    scale = 10 ** (-0.4 * (17.0 - zptmag))
    img = _render_stars(shape, x, y, np.asarray(flux) * scale, sigma) + background
    if extra is not None:
        img += extra
    rng = np.random.default_rng(seed)
    img += rng.normal(0.0, noise, shape)
    return Frame(
        data=img.astype(np.float32),
        wcs=wcs,
        psf=_gaussian_psf(sigma, size=psf_size),
        unc=np.full(shape, noise, dtype=np.float32),
        mask=np.zeros(shape, dtype=bool),
        meta={"zptmag": zptmag, "mjdobs": mjdobs, "filter": "H158", "exptime": 100.0},
    )


@pytest.fixture(scope="session")
def make_wcs():
    return _make_wcs


@pytest.fixture(scope="session")
def gaussian_psf():
    return _gaussian_psf


@pytest.fixture(scope="session")
def render_stars():
    return _render_stars


@pytest.fixture(scope="session")
def star_field():
    return _star_field


@pytest.fixture(scope="session")
def star_frame():
    return _star_frame
