"""A ground-based science/reference pair unlike the Roman simulation in every respect.

Moffat PSFs (beta 2.5 and 3, FWHM 4.2 and 3.7 pixels, the science one elongated), counts in ADU
on a sky of 1500 ADU with a gradient, a reference that is a deep, sky-subtracted coadd on a grid
rotated by 90 degrees, mirrored, with another pixel scale, and whose WCS is off by half an
arcsecond and 0.02 degree; stars, exponential-disk galaxies, transients (half of them on
galaxies), fading stars, cosmic rays in the science exposure and a dead column written as
zeros; optionally the reference's corner outside its footprint filled with zeros, as coadds and
drizzled images do, and a science PSF whose width varies across the field, as a wide-field
camera's does; optionally satellite trails across the science exposure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from scipy.signal import fftconvolve

from tests.science.conftest import _make_wcs

SCI_SCALE, REF_SCALE = 0.263, 0.27  # arcsec per pixel
SKY, GAIN, READ_NOISE = 1500.0, 4.0, 7.0
SATURATE = 60000.0


@dataclass
class GroundTruth:
    tx: np.ndarray  # transients: science pixels, flux (ADU), S/N in the science image
    ty: np.ndarray
    tflux: np.ndarray
    tsnr: np.ndarray
    on_source: np.ndarray  # within 5 pixels of a galaxy or 4 of a star of S/N >= 10
    vx: np.ndarray  # fading stars
    vy: np.ndarray
    crx: np.ndarray  # cosmic rays
    cry: np.ndarray


def _sampled(profile, dx, dy, half, sub=3) -> np.ndarray:
    """``profile(x, y)`` integrated over the pixels of a (2 half + 1)^2 stamp whose centre pixel
    is offset by (dx, dy) from the profile's centre."""
    n = 2 * half + 1
    g = (np.arange(n * sub) - (n * sub - 1) / 2) / sub
    yy, xx = np.meshgrid(g - dy, g - dx, indexing="ij")
    return profile(xx, yy).reshape(n, sub, n, sub).sum(axis=(1, 3))


def _moffat(fwhm, beta, e=0.0, pa=0.0):
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))

    def profile(x, y):
        c, s = np.cos(pa), np.sin(pa)
        u = (x * c + y * s) / (1 - e / 2)
        v = (-x * s + y * c) / (1 + e / 2)
        return (1 + (u * u + v * v) / alpha**2) ** (-beta)

    return profile


def _add(img, x, y, stamp):
    h = stamp.shape[0] // 2
    ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    y0, x0 = iy - h, ix - h
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(img.shape[0], y0 + 2 * h + 1), min(img.shape[1], x0 + 2 * h + 1)
    if ye > ys and xe > xs:
        img[ys:ye, xs:xe] += stamp[ys - y0:ye - y0, xs - x0:xe - x0]


def write_ground_pair(directory, *, seed=1, size=1024, nstars=800, ngal=100, ntransients=40,
                      ncosmics=80, ref_fill=0, psf_gradient=0.0, trails=()) -> GroundTruth:
    """Write ``sci.fits`` and ``ref.fits`` to ``directory``; return the truth.

    ``ref_fill`` > 0 sets the reference's pixels with x + y < ref_fill to zero.
    ``psf_gradient`` g makes the science FWHM 4.2 (1 + g (x + y - size) / size) pixels: from
    1 - g times the centre's at the corner (0, 0) to 1 + g at the opposite one.
    ``trails`` holds (x, y, angle in degrees from the x axis, peak in sky sigma) of straight
    trails through the science image, with the science PSF's FWHM across."""
    rng = np.random.default_rng(seed)
    ra0, dec0 = 150.0, 2.0
    sci_shape = (size, size)
    ref_shape = (int(size * 0.98), int(size * 1.12))
    wsci = _make_wcs(ra0, dec0, sci_shape, scale_arcsec=SCI_SCALE)
    offset = (20 * size / 2048 / 3600, -30 * size / 2048 / 3600)
    wref = _make_wcs(ra0 + offset[0], dec0 + offset[1], ref_shape, scale_arcsec=REF_SCALE,
                     rot_deg=90.0, flip=True)
    # the reference's header: half an arcsecond and 0.02 degree off
    cosd = np.cos(np.radians(dec0))
    wref_header = _make_wcs(ra0 + offset[0] + 0.5 / 3600 / cosd, dec0 + offset[1] - 0.3 / 3600,
                            ref_shape, scale_arcsec=REF_SCALE, rot_deg=90.02, flip=True)
    ny, nx = sci_shape
    xs = rng.uniform(-50, nx + 50, nstars)
    ys = rng.uniform(-50, ny + 50, nstars)
    flux = 10 ** (-0.4 * (15 + 8.5 * rng.power(2.2, nstars) - 30))
    gx, gy = rng.uniform(0, nx, ngal), rng.uniform(0, ny, ngal)
    gflux = 10 ** (-0.4 * (17 + 5 * rng.random(ngal) - 30))
    gre, gq, gpa = rng.uniform(2, 8, ngal), rng.uniform(0.4, 1, ngal), rng.uniform(0, np.pi, ngal)
    sig_sky = np.sqrt(SKY / GAIN + (READ_NOISE / GAIN) ** 2)
    def sci_psf(x, y):
        return _moffat(4.2 * (1 + psf_gradient * (x + y - size) / size), 2.5, 0.1, 0.5)

    def ref_psf(x, y):
        return _moffat(1.0 / REF_SCALE, 3.0)

    stamp = _sampled(sci_psf(size / 2, size / 2), 0, 0, 20)
    nea = stamp.sum() ** 2 / np.sum(stamp**2)
    half = ntransients // 2
    host = rng.choice(ngal, half, replace=False)
    tx = np.concatenate([gx[host] + rng.normal(0, 2, half),
                         rng.uniform(20, nx - 20, ntransients - half)])
    ty = np.concatenate([gy[host] + rng.normal(0, 2, half),
                         rng.uniform(20, ny - 20, ntransients - half)])
    tsnr = np.exp(rng.uniform(np.log(3), np.log(40), ntransients))
    tflux = tsnr * sig_sky * np.sqrt(nea)
    inner = np.flatnonzero((xs > 20) & (xs < nx - 20) & (ys > 20) & (ys < ny - 20)
                           & (flux < 10 ** (-0.4 * (19 - 30))))
    fading = rng.choice(inner, 8, replace=False)
    extra = np.zeros(nstars)
    extra[fading] = rng.uniform(1500, 8000, 8)
    ra_s, dec_s = wsci.all_pix2world(xs, ys, 0)
    ra_g, dec_g = wsci.all_pix2world(gx, gy, 0)

    def render(w, shape, psf, gain, star_flux, with_transients):
        img = np.zeros(shape)
        px, py = w.all_world2pix(ra_s, dec_s, 0)
        for k in np.flatnonzero((px > -30) & (px < shape[1] + 30) & (py > -30)
                                & (py < shape[0] + 30)):
            st = _sampled(psf(px[k], py[k]), px[k] - np.floor(px[k] + 0.5),
                          py[k] - np.floor(py[k] + 0.5), 20)
            _add(img, px[k], py[k], star_flux[k] * st / st.sum())
        # galaxies: the profile is defined in science pixels, seen through this grid's Jacobian
        c = np.array([[shape[1] / 2, shape[0] / 2]])
        sky = w.all_pix2world(np.vstack([c, c + [1, 0], c + [0, 1]]), 0)
        p = wsci.all_world2pix(sky, 0)
        jac = np.array([p[1] - p[0], p[2] - p[0]]).T
        gpx, gpy = w.all_world2pix(ra_g, dec_g, 0)
        for k in np.flatnonzero((gpx > -30) & (gpx < shape[1] + 30) & (gpy > -30)
                                & (gpy < shape[0] + 30)):
            def disk(x, y, k=k):
                u = jac[0, 0] * x + jac[0, 1] * y
                v = jac[1, 0] * x + jac[1, 1] * y
                c, s = np.cos(gpa[k]), np.sin(gpa[k])
                return np.exp(-1.678 * np.hypot(u * c + v * s, (-u * s + v * c) / gq[k]) / gre[k])
            ix, iy = np.floor(gpx[k] + 0.5), np.floor(gpy[k] + 0.5)
            g = _sampled(disk, gpx[k] - ix, gpy[k] - iy, 25)
            psf_stamp = _sampled(psf(gpx[k], gpy[k]), 0, 0, 20)
            _add(img, gpx[k], gpy[k],
                 gflux[k] * fftconvolve(g / g.sum(), psf_stamp / psf_stamp.sum(), mode="same"))
        if with_transients:
            for x, y, f in zip(tx, ty, tflux):
                st = _sampled(psf(x, y), x - np.floor(x + 0.5), y - np.floor(y + 0.5), 20)
                _add(img, x, y, f * st / st.sum())
        yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
        total = img + SKY * (1 + 0.05 * xx / shape[1] - 0.03 * yy / shape[0])
        return (rng.poisson(np.clip(total * gain, 0, None)) / gain
                + rng.normal(0, READ_NOISE / gain, shape))

    sci = render(wsci, sci_shape, sci_psf, GAIN, flux, True)
    yy, xx = np.mgrid[0:ny, 0:nx]
    for x0, y0, angle, peak in trails:
        a = np.radians(angle)
        across = (xx - x0) * np.sin(a) - (yy - y0) * np.cos(a)
        sci += peak * sig_sky * np.exp(-0.5 * (across / (4.2 / 2.3548)) ** 2)
    crx, cry = rng.integers(5, nx - 5, ncosmics), rng.integers(5, ny - 5, ncosmics)
    for x, y in zip(crx, cry):
        angle, amp = rng.uniform(0, np.pi), rng.uniform(200, 5000)
        for t in range(int(rng.integers(1, 4))):
            sci[int(y + t * np.sin(angle)), int(x + t * np.cos(angle))] += amp * rng.uniform(0.5, 1)
    sci[:, nx * 3 // 5] = 0.0
    sci = np.minimum(sci, SATURATE)
    ref = np.minimum(render(wref, ref_shape, ref_psf, GAIN * 12, flux + extra, False) - SKY,
                     SATURATE - SKY)
    if ref_fill > 0:
        yy, xx = np.mgrid[0:ref_shape[0], 0:ref_shape[1]]
        ref[xx + yy < ref_fill] = 0.0
    for data, w, gain, sat, name in ((sci, wsci, GAIN, SATURATE, "sci"),
                                     (ref, wref_header, GAIN * 12, SATURATE - SKY, "ref")):
        header = w.to_header()
        header.update(GAIN=gain, SATURATE=sat, BUNIT="ADU")
        fits.writeto(f"{directory}/{name}.fits", data.astype(np.float32), header, overwrite=True)
    to_galaxy = np.min(np.hypot(tx[:, None] - gx[None], ty[:, None] - gy[None]), axis=1)
    to_star = np.hypot(tx[:, None] - xs[None], ty[:, None] - ys[None])
    on_star = np.any((to_star < 4) & (flux >= 10 * sig_sky * np.sqrt(nea))[None], axis=1)
    return GroundTruth(tx=tx, ty=ty, tflux=tflux, tsnr=tsnr, on_source=(to_galaxy < 5) | on_star,
                       vx=xs[fading], vy=ys[fading], crx=crx, cry=cry)
