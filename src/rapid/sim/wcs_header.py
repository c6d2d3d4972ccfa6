"""FITS TAN-SIP headers for cutouts of GalSim's Roman SCA WCS, with fitted inverse (AP/BP) terms."""

from __future__ import annotations

import numpy as np
import galsim
from astropy.io import fits

#: Keywords of GalSim's Roman WCS header that describe the celestial WCS (the rest is
#: GalSim bookkeeping such as SIMPLE/BITPIX that does not belong in an extension header).
_WCS_KEYS = ("WCSAXES", "CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2",
             "CD1_1", "CD1_2", "CD2_1", "CD2_2", "LONPOLE", "A_ORDER", "B_ORDER")

#: Order of the fitted inverse SIP polynomials.
INVERSE_ORDER = 5


def sip_cutout_header(wcs: galsim.GSFitsWCS, *, offset: tuple[int, int], shape: tuple[int, int]
                      ) -> fits.Header:
    """FITS header of a GalSim Roman SCA WCS moved to a cutout, with inverse SIP terms.

    Parameters
    ----------
    wcs : galsim.GSFitsWCS
        One SCA's WCS as returned by ``galsim.roman.getWCS`` (it carries its FITS header).
    offset : tuple of int
        Zero-based (x, y) of the cutout's first pixel in the full SCA frame.
    shape : tuple of int
        Cutout shape (ny, nx); used to fit the inverse SIP over the cutout.

    Returns
    -------
    astropy.io.fits.Header
        CTYPE 'RA---TAN-SIP'/'DEC--TAN-SIP', CRVAL, CRPIX shifted by ``offset``, CD, the forward
        A/B coefficients unchanged (they are relative to CRPIX) and fitted AP/BP coefficients.
    """
    ox, oy = (int(v) for v in offset)
    ny, nx = (int(v) for v in shape)
    if nx < 1 or ny < 1:
        raise ValueError(f"shape must be positive, got {shape!r}")
    src = wcs.header
    hdr = fits.Header()
    for key in _WCS_KEYS:
        if key in src:
            hdr[key] = src[key]
    hdr["RADESYS"] = "ICRS"
    hdr["CRPIX1"] = float(src["CRPIX1"]) - ox
    hdr["CRPIX2"] = float(src["CRPIX2"]) - oy
    order = int(src["A_ORDER"])
    a = np.zeros((order + 1, order + 1))
    b = np.zeros((order + 1, order + 1))
    for i in range(order + 1):
        for j in range(order + 1 - i):
            if i + j >= 2 and f"A_{i}_{j}" in src:
                a[i, j] = float(src[f"A_{i}_{j}"])
                b[i, j] = float(src[f"B_{i}_{j}"])
                hdr[f"A_{i}_{j}"] = a[i, j]
                hdr[f"B_{i}_{j}"] = b[i, j]
    ap, bp = _fit_inverse(a, b, crpix=(hdr["CRPIX1"], hdr["CRPIX2"]), nx=nx, ny=ny)
    hdr["AP_ORDER"] = INVERSE_ORDER
    hdr["BP_ORDER"] = INVERSE_ORDER
    for (i, j), value in ap.items():
        hdr[f"AP_{i}_{j}"] = value
    for (i, j), value in bp.items():
        hdr[f"BP_{i}_{j}"] = value
    return hdr


def _poly(coef: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.zeros_like(u)
    for i in range(coef.shape[0]):
        for j in range(coef.shape[1]):
            if coef[i, j] != 0.0:
                out += coef[i, j] * u**i * v**j
    return out


def _fit_inverse(a, b, *, crpix, nx, ny):
    """Least-squares AP/BP so that u = U + AP(U, V) with U = u + A(u, v) over the cutout."""
    # A margin around the cutout keeps the inverse valid for sources just off the edge.
    margin = 0.1 * max(nx, ny) + 10
    xs = np.linspace(1 - margin, nx + margin, 24)
    ys = np.linspace(1 - margin, ny + margin, 24)
    x, y = (g.ravel() for g in np.meshgrid(xs, ys))
    u = x - crpix[0]
    v = y - crpix[1]
    uu = u + _poly(a, u, v)
    vv = v + _poly(b, u, v)
    terms = [(i, j) for i in range(INVERSE_ORDER + 1) for j in range(INVERSE_ORDER + 1 - i)
             if i + j >= 1]
    # Scale the coordinates for a well-conditioned fit, then undo the scaling per term.
    s = max(np.max(np.abs(uu)), np.max(np.abs(vv)), 1.0)
    design = np.stack([(uu / s) ** i * (vv / s) ** j for i, j in terms], axis=1)
    # Normal equations: the system is small and well scaled, and this avoids LAPACK's
    # threaded least-squares start-up cost, which dominated small images.
    gram = design.T @ design
    cu = np.linalg.solve(gram, design.T @ (u - uu))
    cv = np.linalg.solve(gram, design.T @ (v - vv))
    ap = {t: float(c / s ** (t[0] + t[1])) for t, c in zip(terms, cu)}
    bp = {t: float(c / s ** (t[0] + t[1])) for t, c in zip(terms, cv)}
    return ap, bp
