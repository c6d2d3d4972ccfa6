"""A FITS TAN-SIP approximation of a GWCS, with its fit error measured in pixels.

The operations database stores WCS as FITS TAN-SIP (SIP up to order 5) and resampling works on
astropy WCS, so a Roman L2 GWCS is approximated once, and how far the approximation strays from
the GWCS is measured on a dense grid rather than taken on trust.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

MAX_SIP_ORDER = 5  # the l2files table holds SIP coefficients up to order 5


@dataclass(frozen=True)
class SipFit:
    """A TAN-SIP approximation of a GWCS.

    Attributes
    ----------
    header : astropy.io.fits.Header
        CTYPE/CRPIX/CRVAL/CD and A_/B_/AP_/BP_ keywords.
    wcs : astropy.wcs.WCS
        The same as an astropy WCS.
    max_error_pix : float
        Largest distance in pixels, over a grid covering the image, between a pixel and the SIP
        WCS's pixel for the sky position the GWCS gives it.
    """

    header: fits.Header
    wcs: WCS
    max_error_pix: float


def fit_sip(gwcs_obj, shape: tuple[int, int], *, max_pix_error: float = 0.01,
            max_order: int = MAX_SIP_ORDER, npoints: int = 32) -> SipFit:
    """Approximate a GWCS by FITS TAN-SIP over an image and measure the fit error.

    Parameters
    ----------
    gwcs_obj : gwcs.wcs.WCS
        Pixel (0-based x, y) to celestial coordinates.
    shape : tuple of int
        Image shape (ny, nx); the fit covers pixels 0..nx-1, 0..ny-1.
    max_pix_error : float, optional
        Target accuracy in pixels (0.01); the lowest SIP order meeting it is used, up to
        ``max_order``.
    max_order : int, optional
        Highest SIP order (5, what the operations database holds).
    npoints : int, optional
        Grid points per axis for the fit and for measuring the error (32).

    Returns
    -------
    SipFit

    Raises
    ------
    ValueError
        A bad ``shape``, ``max_pix_error`` or ``max_order``, or a GWCS that cannot be fitted.
    """
    if len(shape) != 2 or min(shape) < 2:
        raise ValueError(f"shape must be (ny, nx) with both at least 2, got {shape}")
    if not max_pix_error > 0:
        raise ValueError(f"max_pix_error must be positive, got {max_pix_error}")
    if not 1 <= max_order <= 9:
        raise ValueError(f"max_order must be 1..9, got {max_order}")
    ny, nx = int(shape[0]), int(shape[1])
    box = ((0.0, nx - 1.0), (0.0, ny - 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            header = gwcs_obj.to_fits_sip(
                bounding_box=box, max_pix_error=max_pix_error, degree=range(1, max_order + 1),
                max_inv_pix_error=max_pix_error, inv_degree=range(1, max_order + 1),
                npoints=npoints)
        except Exception as exc:  # gwcs and astropy.modeling raise many kinds
            raise ValueError(f"GWCS cannot be approximated by TAN-SIP "
                             f"({type(exc).__name__}: {exc})") from None
    # to_fits_sip describes the whole pipeline's output frame; keep only what a 2-D image needs.
    for key in ("WCSAXES",):
        header.remove(key, ignore_missing=True)
    header["NAXIS"] = 2
    header["NAXIS1"] = nx
    header["NAXIS2"] = ny
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=2)
    return SipFit(header=header, wcs=wcs,
                  max_error_pix=sip_error_pix(gwcs_obj, wcs, shape, npoints=npoints))


def sip_error_pix(gwcs_obj, wcs: WCS, shape: tuple[int, int], *, npoints: int = 32) -> float:
    """Largest pixel distance between a GWCS and an astropy WCS over an image.

    Each grid pixel goes to the sky through the GWCS and back to pixels through ``wcs`` (SIP
    distortion included, inverted iteratively so the inverse SIP terms do not enter).

    Parameters
    ----------
    gwcs_obj : gwcs.wcs.WCS
        The reference transform.
    wcs : astropy.wcs.WCS
        Its approximation.
    shape : tuple of int
        Image shape (ny, nx).
    npoints : int, optional
        Grid points per axis (32).

    Returns
    -------
    float
        Maximum distance in pixels (inf when a grid point has no sky position).
    """
    if npoints < 2:
        raise ValueError(f"npoints must be at least 2, got {npoints}")
    ny, nx = shape
    xs, ys = np.meshgrid(np.linspace(0, nx - 1, npoints), np.linspace(0, ny - 1, npoints))
    ra, dec = gwcs_obj(xs.ravel(), ys.ravel(), with_bounding_box=False)
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        return float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        px, py = wcs.all_world2pix(ra, dec, 0, tolerance=1e-6, maxiter=50)
    return float(np.max(np.hypot(px - xs.ravel(), py - ys.ravel())))
