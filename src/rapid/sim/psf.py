"""Roman PSFs per (SCA, filter): the effective PSF (optics plus pixel response) and its files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import galsim
import galsim.roman as roman
import numpy as np

from rapid.io.fits_frame import psf_fits_bytes
from rapid.science.image import FinePsf
from rapid.sim.photometry import PIXEL_SCALE, bandpass as _bandpass


@dataclass
class PsfModel:
    """The PSF of one (SCA, filter) in pixel units of the detector frame.

    Attributes
    ----------
    native : ndarray
        Odd-sized effective PSF sampled at pixel centres, centred on the central pixel, sum 1.
    oversampled : ndarray
        The same effective PSF sampled ``oversamp`` times finer, centred on the central sample,
        sum 1.
    oversamp : int
        Oversampling factor.
    point : galsim.GSObject
        Profile drawing a unit-flux point source with ``method='no_pixel'`` (the pixel response
        is already in it); truncated to the ``native`` stamp so that image fluxes match the
        PSF file.
    optical : galsim.GSObject
        Optical PSF (no pixel) in pixel units, for convolving extended sources.
    """

    native: np.ndarray
    oversampled: np.ndarray
    oversamp: int
    point: galsim.GSObject
    optical: galsim.GSObject


def build_psf(sca: int, filter_name: str, *, size: int = 25, oversamp: int = 4, n_waves: int = 3,
              pupil_bin: int = 8) -> PsfModel:
    """Effective Roman PSF of one SCA centre and filter, from ``galsim.roman.getPSF``.

    Parameters
    ----------
    sca : int
        SCA number 1..18.
    filter_name : str
        Roman filter name, e.g. 'H158'.
    size : int, optional
        Odd side of the native stamp in pixels. Default 25.
    oversamp : int, optional
        Oversampling factor of the fine PSF. Default 4.
    n_waves : int, optional
        Wavelengths GalSim interpolates the chromatic PSF over. Default 3.
    pupil_bin : int, optional
        Pupil-plane binning; larger is faster and coarser. Default 8.

    Returns
    -------
    PsfModel
        The PSF model; a flat-f_nu source spectrum weights the wavelengths.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 3, got {size!r}")
    if oversamp < 1:
        raise ValueError(f"oversamp must be >= 1, got {oversamp!r}")
    bandpass = _bandpass(filter_name)
    chromatic = roman.getPSF(int(sca), filter_name, n_waves=n_waves, pupil_bin=pupil_bin)
    sed = galsim.SED(galsim.LookupTable([100.0, 3000.0], [1.0, 1.0], interpolant="linear"),
                     wave_type="nm", flux_type="fnu").withFlux(1.0, bandpass)
    # Draw the band-averaged optical PSF finely once; everything below works from this image.
    fine_scale = PIXEL_SCALE / oversamp
    nfine = (size + 8) * oversamp + 1
    optical_img = (chromatic * sed).drawImage(bandpass, nx=nfine, ny=nfine, scale=fine_scale,
                                              method="no_pixel")
    optical_arcsec = galsim.InterpolatedImage(optical_img, flux=1.0)
    optical = optical_arcsec.dilate(1.0 / PIXEL_SCALE)  # arcsec -> pixel units
    effective = galsim.Convolve(optical, galsim.Pixel(1.0))
    n_over = size * oversamp + (1 - oversamp % 2)  # odd, so a sample sits on the centre
    over = effective.drawImage(nx=n_over, ny=n_over, scale=1.0 / oversamp,
                               method="no_pixel").array.astype(np.float64)
    over /= over.sum()
    # A star drawn through the square stamp would stop at the stamp's edges; another exposure,
    # rolled or dithered, has that square elsewhere, and the edges would leave residuals in
    # every difference that real stars do not have. The profile ends instead in a circular
    # cosine taper over the last 3 pixels inside the stamp (for H158 the taper takes about 2%
    # of the stamp's flux; the stamp, image and PSF file stay consistent, all normalised
    # after it).
    c = (n_over - 1) / 2.0
    r = np.hypot(*np.mgrid[0:n_over, 0:n_over] - c) / oversamp
    r1 = size // 2 - 0.5
    r0 = r1 - 3.0
    over *= np.where(r <= r0, 1.0,
                     np.where(r >= r1, 0.0, 0.5 * (1.0 + np.cos(np.pi * (r - r0) / (r1 - r0)))))
    over /= over.sum()
    # The point-source profile interpolates the fine samples of the truncated stamp, scaled so
    # that a source on a pixel centre puts exactly its flux into the native stamp.
    point = galsim.InterpolatedImage(galsim.Image(over, scale=1.0 / oversamp),
                                     x_interpolant="quintic", normalization="sb",
                                     calculate_stepk=False, calculate_maxk=False)
    half = size // 2
    c = n_over // 2
    on_centres = over[c - half * oversamp: c + half * oversamp + 1: oversamp,
                      c - half * oversamp: c + half * oversamp + 1: oversamp]
    point = point.withFlux(point.flux / on_centres.sum())
    # The native stamp is the fine grid's on-centre samples, so the file and the images agree.
    native = on_centres / on_centres.sum()
    return PsfModel(native=native, oversampled=over, oversamp=oversamp, point=point,
                    optical=optical)


def psf_filename(filter_name: str, sca: int) -> str:
    """Basename of the PSF file of one filter and SCA."""
    return f"Roman_sim_psf_{filter_name}_{int(sca):02d}.fits"


def write_psf(path: Path, model: PsfModel, *, filter_name: str, sca: int) -> None:
    """Write a PSF file: native PSF in the primary HDU, oversampled PSF in HDU 'OVERSAMP'.

    Parameters
    ----------
    path : Path
        Output FITS path.
    model : PsfModel
        PSF to write.
    filter_name : str
        Filter name (header FILTER).
    sca : int
        SCA number (header SCA).
    """
    header = {"FILTER": filter_name, "SCA": int(sca),
              "PSFSCALE": (PIXEL_SCALE, "arcsec per sample"),
              "PSFNORM": ("SUM", "native stamp normalised to sum 1")}
    fine = FinePsf.normalised(model.oversampled, model.oversamp)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(psf_fits_bytes(model.native, fine, header=header))
