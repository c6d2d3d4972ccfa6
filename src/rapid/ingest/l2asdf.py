"""Read what the operations database needs from a Roman L2 ASDF file (roman_datamodels ImageModel).

The record is the same :class:`~rapid.ingest.l2fits.L2Header` a FITS file gives, so the rest of
ingest does not care where it came from. The GWCS is stored as its TAN-SIP approximation
(SIP up to order 5); the largest difference between the two over the image, in pixels, is kept
with the SIP coefficients under ``SIPERR``. The zero point comes from ``meta.photometry`` as
explained in :mod:`rapid.io.asdf_frame`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rapid.ingest.filters import canonical_filter
from rapid.ingest.l2fits import SIP_KEY, L2Error, L2Header, wcs_columns

SIP_ERROR_KEY = "SIPERR"  # max |GWCS - TAN-SIP| in pixels, in the l2files sip dict


def read_l2_asdf_header(path: str | Path, *, max_sip_error: float = 0.01) -> L2Header:
    """Parse the metadata of a Roman L2 ASDF image.

    Parameters
    ----------
    path : path
        The ASDF file.
    max_sip_error : float, optional
        Target accuracy in pixels of the TAN-SIP approximation of the GWCS (0.01); the fit
        error actually reached is recorded either way.

    Returns
    -------
    L2Header
        ``sip`` holds the A_/B_/AP_/BP_ keywords and ``SIPERR``; ``psffile`` is None.

    Raises
    ------
    L2Error
        Unreadable or truncated file (the arrays are read once to check), not an L2
        ImageModel, or missing WCS, start time, exposure time, detector or filter; the message
        names which.
    """
    from rapid.io.asdf_frame import check_arrays, open_l2_model, read_l2_meta

    path = Path(path)
    try:
        with open_l2_model(path) as model:
            facts = read_l2_meta(model, max_sip_error=max_sip_error)
            # The checksum reads the whole file anyway; reading the arrays once more catches a
            # truncated file here rather than in a science job.
            check_arrays(model, facts.shape)
        filt = canonical_filter(facts.optical_element)
    except ValueError as exc:
        raise L2Error(str(exc)) from None

    ny, nx = facts.shape
    xs = np.array([(nx - 1) / 2, 0, nx - 1, nx - 1, 0], dtype=float)
    ys = np.array([(ny - 1) / 2, 0, 0, ny - 1, ny - 1], dtype=float)
    ra, dec = facts.gwcs(xs, ys, with_bounding_box=False)
    ra, dec = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise L2Error("WCS gives no sky position for the image corners")
    ra = np.mod(ra, 360.0)

    header, wcs = facts.sip.header, facts.sip.wcs
    wcs_fields = wcs_columns(wcs, header)
    sip = {key: float(header[key]) for key in header if SIP_KEY.match(key)}
    sip[SIP_ERROR_KEY] = float(facts.sip.max_error_pix)
    return L2Header(
        dateobs=facts.start_time, mjdobs=facts.mjd, exptime=facts.exptime, filter=filt,
        sca=facts.sca, zptmag=facts.zptmag, naxis1=nx, naxis2=ny, wcs=wcs_fields, sip=sip,
        ra0=float(ra[0]), dec0=float(dec[0]),
        ra_corners=tuple(float(v) for v in ra[1:]),  # type: ignore[arg-type]
        dec_corners=tuple(float(v) for v in dec[1:]),  # type: ignore[arg-type]
        psffile=None,
    )
