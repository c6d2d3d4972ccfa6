"""HEALPix NESTED indices of sky positions (the ``hp6`` and ``hp9`` columns).

In the NESTED scheme the pixel of order ``k`` holding a position is the pixel of order
``k + 1`` divided by 4, so ``hp9 // 64 == hp6`` for every position.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy_healpix import lonlat_to_healpix

from rapid.sky.rings import _as_dec_array

__all__ = ["hp_index", "hp6", "hp9"]

#: Highest HEALPix order accepted (nside = 2**29 is HEALPix's own limit).
MAX_ORDER = 29


def hp_index(ra, dec, order: int):
    """HEALPix NESTED pixel index of each sky position.

    Parameters
    ----------
    ra : float or array_like
        Right ascension in degrees; any finite value.
    dec : float or array_like
        Declination in degrees, within [-90, 90]. Broadcast against ``ra``.
    order : int
        HEALPix order ``k`` (``nside = 2**k``), 0 .. 29.

    Returns
    -------
    int or ndarray of int64
        Pixel index in [0, 12 * 4**order). A Python int when both inputs are scalars.

    Raises
    ------
    ValueError
        If ``order`` is not an integer in [0, 29], ``ra`` is not finite, or ``dec`` is not
        finite or outside [-90, 90].
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 0 <= order <= MAX_ORDER:
        raise ValueError(f"order must be an integer in [0, {MAX_ORDER}], got {order!r}")
    ra_arr = np.asarray(ra, dtype=np.float64)
    if not np.all(np.isfinite(ra_arr)):
        raise ValueError(f"ra must be finite, got {ra!r}")
    dec_arr = _as_dec_array(dec)
    ra_arr, dec_arr = np.broadcast_arrays(np.mod(ra_arr, 360.0), dec_arr)
    index = lonlat_to_healpix(ra_arr * u.deg, dec_arr * u.deg, 2 ** int(order), order="nested")
    index = np.asarray(index, dtype=np.int64)
    if np.ndim(ra) == 0 and np.ndim(dec) == 0:
        return int(index)
    return index


def hp6(ra, dec):
    """HEALPix NESTED index of order 6 (nside 64, 49,152 pixels of about 0.92 deg).

    Parameters
    ----------
    ra, dec : float or array_like
        Position in degrees, as for :func:`hp_index`.

    Returns
    -------
    int or ndarray of int64
        Pixel index in [0, 49152).
    """
    return hp_index(ra, dec, 6)


def hp9(ra, dec):
    """HEALPix NESTED index of order 9 (nside 512, 3,145,728 pixels of about 0.11 deg).

    Parameters
    ----------
    ra, dec : float or array_like
        Position in degrees, as for :func:`hp_index`.

    Returns
    -------
    int or ndarray of int64
        Pixel index in [0, 3145728).
    """
    return hp_index(ra, dec, 9)
