"""Drawing one SCA image: sources through the PSF, sky, noise, detector artefacts and DQ flags."""

from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np

from rapid.sim.psf import PIXEL_SCALE, PsfModel

#: DQ bit values (0 = good).
DQ_SATURATED = 1
DQ_COSMIC_HOT = 2
DQ_NAN = 4


@dataclass
class PointSource:
    """A point source at one-based image position (x, y) with ``flux_e`` electrons."""

    x: float
    y: float
    flux_e: float


@dataclass
class Galaxy:
    """A galaxy at one-based image position (x, y); shape parameters as in StaticCatalog."""

    x: float
    y: float
    flux_e: float
    profile: int
    hlr: float
    q: float
    beta: float
    bulge_frac: float
    jacobian: galsim.JacobianWCS


def _add_stamp(image: galsim.Image, profile: galsim.GSObject, x: float, y: float, half: int,
               method: str) -> None:
    ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    bounds = galsim.BoundsI(ix - half, ix + half, iy - half, iy + half)
    overlap = bounds & image.bounds
    if not overlap.isDefined():
        return
    stamp = galsim.ImageF(bounds, scale=1.0)
    profile.drawImage(stamp, offset=(x - ix, y - iy), method=method)
    image[overlap] += stamp[overlap]


def _galaxy_profile(g: Galaxy) -> galsim.GSObject:
    gsp = galsim.GSParams(maximum_fft_size=4096)
    if g.profile == 0:
        prof = galsim.Exponential(half_light_radius=g.hlr, gsparams=gsp)
    elif g.profile == 1:
        # A truncated de Vaucouleurs keeps the FFTs small.
        prof = galsim.DeVaucouleurs(half_light_radius=g.hlr, trunc=8 * g.hlr, gsparams=gsp)
    else:
        disk = galsim.Exponential(half_light_radius=g.hlr, gsparams=gsp)
        bulge = galsim.DeVaucouleurs(half_light_radius=0.5 * g.hlr, trunc=4 * g.hlr, gsparams=gsp)
        prof = galsim.Add([(1 - g.bulge_frac) * disk, g.bulge_frac * bulge])
    prof = prof.shear(q=g.q, beta=g.beta * galsim.radians).withFlux(g.flux_e)
    # The shape is defined on the sky; the local Jacobian maps it into this image's pixels,
    # so galaxies turn with the roll and carry the local distortion.
    return g.jacobian.profileToImage(prof)


def draw_sources(shape: tuple[int, int], psf: PsfModel, points: list[PointSource],
                 galaxies: list[Galaxy]) -> np.ndarray:
    """Noiseless image (electrons) of point sources and galaxies convolved with the PSF.

    Parameters
    ----------
    shape : tuple of int
        Image shape (ny, nx).
    psf : PsfModel
        PSF of this SCA and filter.
    points, galaxies : list
        Sources with one-based image positions and fluxes in electrons.

    Returns
    -------
    ndarray
        float64 image of shape ``shape``.
    """
    ny, nx = shape
    image = galsim.ImageD(nx, ny, scale=1.0)
    half_point = psf.native.shape[0] // 2
    for p in points:
        if p.flux_e > 0:
            _add_stamp(image, psf.point * p.flux_e, p.x, p.y, half_point, "no_pixel")
    for g in galaxies:
        if g.flux_e <= 0:
            continue
        half = int(min(48, np.ceil(5 * g.hlr / PIXEL_SCALE + half_point)))
        prof = galsim.Convolve(_galaxy_profile(g), psf.optical)
        _add_stamp(image, prof, g.x, g.y, half, "auto")
    return image.array.copy()


def _cosmic_ray_pixels(rng, nx, ny):
    x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
    length = rng.uniform(1.0, 10.0)
    angle = rng.uniform(0, np.pi)
    t = np.linspace(0.0, length, int(np.ceil(length)) + 1)
    xs = np.clip(np.floor(x0 + t * np.cos(angle)).astype(int), 0, nx - 1)
    ys = np.clip(np.floor(y0 + t * np.sin(angle)).astype(int), 0, ny - 1)
    return ys, xs


def observe(model_e: np.ndarray, *, sky_e: float, read_noise: float, gain: float,
            saturation: float, rng: np.random.Generator, n_cosmic: int, n_hot: int, n_nan: int,
            keep_clear: list[tuple[float, float]] = (), clear_radius: float = 8.0
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add sky, Poisson and read noise, artefacts and saturation to a noiseless image.

    Parameters
    ----------
    model_e : ndarray
        Noiseless source image, electrons.
    sky_e : float
        Sky plus thermal background per pixel, electrons.
    read_noise : float
        Read noise, electrons.
    gain : float
        Gain, electrons per DN.
    saturation : float
        Saturation level, DN; brighter pixels are clipped to it and flagged.
    rng : numpy.random.Generator
        Random numbers for the noise and the artefacts.
    n_cosmic, n_hot, n_nan : int
        Numbers of cosmic-ray tracks, hot pixels and NaN pixels.
    keep_clear : list of (x, y), optional
        Zero-based positions kept free of artefacts within ``clear_radius`` pixels.
    clear_radius : float, optional
        Default 8 pixels.

    Returns
    -------
    sci, err, dq : ndarray
        float32 image in DN, float32 1-sigma uncertainty in DN, uint32 DQ flags.
    """
    if read_noise < 0 or gain <= 0 or saturation <= 0:
        raise ValueError("read_noise must be >= 0, gain and saturation > 0")
    ny, nx = model_e.shape
    expected = model_e + sky_e
    counts = rng.poisson(np.clip(expected, 0, None)).astype(np.float64)
    counts += rng.normal(0.0, read_noise, size=expected.shape)
    sci = counts / gain
    err = np.sqrt(np.clip(expected, 0, None) + read_noise**2) / gain
    dq = np.zeros(expected.shape, np.uint32)
    clear = np.asarray(keep_clear, dtype=float).reshape(-1, 2)

    def _clear(ys, xs):
        if len(clear) == 0:
            return True
        d = np.hypot(xs[:, None] - clear[None, :, 0], ys[:, None] - clear[None, :, 1])
        return bool(np.all(d > clear_radius))

    def _accept(make):
        for _ in range(50):
            ys, xs = make()
            if _clear(np.atleast_1d(ys), np.atleast_1d(xs)):
                return np.atleast_1d(ys), np.atleast_1d(xs)
        return None

    for _ in range(n_cosmic):
        hit = _accept(lambda: _cosmic_ray_pixels(rng, nx, ny))
        if hit is not None:
            sci[hit] += rng.uniform(300.0, 3000.0, size=len(hit[0])) / gain
            dq[hit] |= DQ_COSMIC_HOT
    for _ in range(n_hot):
        hit = _accept(lambda: (rng.integers(0, ny, 1), rng.integers(0, nx, 1)))
        if hit is not None:
            sci[hit] += rng.uniform(2000.0, 30000.0) / gain
            dq[hit] |= DQ_COSMIC_HOT
    saturated = sci >= saturation
    sci[saturated] = saturation
    dq[saturated] |= DQ_SATURATED
    for _ in range(n_nan):
        hit = _accept(lambda: (rng.integers(0, ny, 1), rng.integers(0, nx, 1)))
        if hit is not None:
            sci[hit] = np.nan
            err[hit] = np.nan
            dq[hit] |= DQ_NAN
    return sci.astype(np.float32), err.astype(np.float32), dq
