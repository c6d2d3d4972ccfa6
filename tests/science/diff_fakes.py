"""Small synthetic frames for the difference-imaging tests: Gaussian PSFs, white noise, stars."""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

from rapid.science.image import Frame
from rapid.science.psf import gaussian_psf


def tan_wcs(shape=(192, 192), *, ra=150.0, dec=2.0, scale_arcsec=0.11, crpix_shift=(0.0, 0.0)):
    """Simple north-up TAN WCS centred on the image (crpix_shift moves the grid, pixels)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [shape[1] / 2 + 0.5 + crpix_shift[0], shape[0] / 2 + 0.5 + crpix_shift[1]]
    w.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    w.pixel_shape = (shape[1], shape[0])
    return w


def add_star(img: np.ndarray, x: float, y: float, flux: float, fwhm: float, size: int = 25):
    """Add a pixel-integrated Gaussian star of total ``flux`` at zero-based (x, y)."""
    ix, iy = int(round(x)), int(round(y))
    h = size // 2
    from scipy.special import erf

    sigma = fwhm / 2.3548200450309493

    def prof(c, i):
        edges = np.arange(i - h, i + h + 2) - 0.5 - c
        return np.diff(0.5 * (1 + erf(edges / (np.sqrt(2) * sigma))))

    stamp = flux * np.outer(prof(y, iy), prof(x, ix))
    y0, x0 = iy - h, ix - h
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(img.shape[0], y0 + size), min(img.shape[1], x0 + size)
    img[ys:ye, xs:xe] += stamp[ys - y0:ye - y0, xs - x0:xe - x0]


def star_field(rng, shape, nstars=40, flux_range=(2000.0, 20000.0), edge=15):
    """Random positions and fluxes of ``nstars`` stars away from the edges."""
    x = rng.uniform(edge, shape[1] - edge, nstars)
    y = rng.uniform(edge, shape[0] - edge, nstars)
    f = np.exp(rng.uniform(*np.log(flux_range), nstars))
    return x, y, f


def make_frame(rng, *, shape=(192, 192), fwhm=2.5, sigma=10.0, stars=(), scale=1.0,
               wcs=None, with_psf=True, with_unc=True, saturation=None, zptmag=None,
               gain=1.0) -> Frame:
    """Frame of noise ``sigma`` plus ``stars`` (x, y, flux) scaled by ``scale``, with the
    Poisson noise of the stars for ``gain`` (electrons per unit)."""
    img = np.zeros(shape)
    for x, y, f in stars:
        add_star(img, x, y, f * scale, fwhm)
    unc = np.sqrt(sigma**2 + np.clip(img, 0, None) / gain)
    img = img + rng.normal(0.0, 1.0, shape) * unc
    meta = {}
    if saturation is not None:
        meta["saturation"] = saturation
        img = np.minimum(img, saturation)
    if zptmag is not None:
        meta["zptmag"] = zptmag
    return Frame(
        data=img.astype(np.float32), wcs=wcs if wcs is not None else tan_wcs(shape),
        psf=gaussian_psf(fwhm, size=25) if with_psf else None,
        unc=unc.astype(np.float32) if with_unc else None, meta=meta,
    )
