"""Declination rings of the Roman sky tessellation (NSIDE = 512).

The tessellation cuts the sky into 2049 declination bins: the north polar cap (ring 0),
rings 1 .. 4N-1 from north to south, and the south polar cap (ring 4N). Ring ``j`` is
centred on the HEALPix ring latitude ``delta((2N - j) / (4N))`` and bounded by the same
function at ``j -/+ 1/2``; it holds ``2 c_j`` tiles with
``c_j = 4 min(j, N, 4N - j)``, twice HEALPix's RA resolution.

Everything here is evaluated in float64 from that definition. The 2048 ring boundaries and
the first field number of each ring are evaluated once at import (16 KB each) so that
``ring_of`` is an exact binary search against the very numbers that ``ring_edges`` reports:
a point on a boundary lands in the same ring whichever function one asks.
"""

from __future__ import annotations

import numpy as np

#: HEALPix-like resolution parameter of the Roman tessellation.
NSIDE = 512
#: Number of rings between the two polar caps (4 NSIDE - 1).
NRINGS = 4 * NSIDE - 1
#: Number of declination bins: the rings plus the two caps.
NDECBINS = NRINGS + 2
#: Number of fields (sky tiles), caps included: 24 NSIDE**2 + 2.
NFIELDS = 24 * NSIDE * NSIDE + 2

#: Ring number of the north polar cap.
NORTH_CAP_RING = 0
#: Ring number of the south polar cap.
SOUTH_CAP_RING = NRINGS + 1


def _dec_at(x: np.ndarray) -> np.ndarray:
    """Declination (degrees) at fractional ring index ``x`` (0 = north pole, 4N = south pole).

    Integer ``x`` is a ring centre, half-integer ``x`` a ring boundary. In the polar zones
    the colatitude is taken from ``sin(theta / 2) = x / (N sqrt 6)``, which is the same
    curve as ``asin(1 - x**2 / (3 N**2))`` but keeps full precision next to the poles.
    """
    x = np.asarray(x, dtype=np.float64)
    n = float(NSIDE)
    north = x < n
    south = x > 3 * n
    # Equatorial belt: sin(dec) = 8 y / 3 with y = (2N - x) / (4N).
    dec = np.degrees(np.arcsin(np.clip((2.0 * n - x) * 2.0 / (3.0 * n), -1.0, 1.0)))
    # Polar zones: distance (in rings) from the nearer pole sets the colatitude.
    xp = np.where(north, x, 4.0 * n - x)
    colat = np.degrees(2.0 * np.arcsin(np.clip(xp / (n * np.sqrt(6.0)), 0.0, 1.0)))
    dec = np.where(north, 90.0 - colat, dec)
    dec = np.where(south, colat - 90.0, dec)
    return dec


def _ring_ntiles(ring: np.ndarray) -> np.ndarray:
    """Tiles in each ring (caps: 1), without validation."""
    ring = np.asarray(ring, dtype=np.int64)
    c = 4 * np.minimum(np.minimum(ring, NSIDE), 4 * NSIDE - ring)
    return np.where((ring <= 0) | (ring > NRINGS), 1, 2 * c).astype(np.int64)


# Boundary m (m = 0 .. 4N-1) lies between ring m and ring m+1; ring j spans
# [_BOUNDARIES[j], _BOUNDARIES[j-1]). Boundary 0 is the edge of the north cap.
_BOUNDARIES = _dec_at(np.arange(NRINGS + 1, dtype=np.float64) + 0.5)
_BOUNDARIES_ASC = _BOUNDARIES[::-1].copy()

# First field number of every ring 0 .. 4N (ring 0 is field 1, the north cap).
_RING_FIRST_FIELD = np.concatenate(
    ([1], 1 + np.cumsum(_ring_ntiles(np.arange(0, NRINGS + 1))))
).astype(np.int64)


def _as_int_array(value, name: str, lo: int, hi: int) -> np.ndarray:
    """Integer array of ``value`` checked to lie in [lo, hi]; ValueError naming ``name``."""
    arr = np.asarray(value)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer)
        or (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
    ):
        raise ValueError(f"{name} must be integer-valued, got {value!r}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got values in [{arr.min()}, {arr.max()}]")
    return arr


def _as_dec_array(dec) -> np.ndarray:
    """Float64 array of declinations checked to lie in [-90, 90]."""
    arr = np.asarray(dec, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or (arr.size and (arr.min() < -90.0 or arr.max() > 90.0)):
        raise ValueError(f"dec must be finite and within [-90, 90] degrees, got {dec!r}")
    return arr


def _scalar_or_array(arr: np.ndarray, scalar_input: bool):
    """Python scalar for scalar input, the array otherwise."""
    return arr.item() if scalar_input else arr


def ring_of(dec):
    """Declination bin (ring number) holding each declination.

    Parameters
    ----------
    dec : float or array_like
        Declination in degrees, within [-90, 90].

    Returns
    -------
    int or ndarray of int64
        0 for the north polar cap, 1 .. 2047 for the rings from north to south, 2048 for the
        south polar cap. Each ring owns its lower boundary (``dec_min <= dec < dec_max``);
        the north cap owns the pole and its lower boundary, the south cap owns the pole.

    Raises
    ------
    ValueError
        If ``dec`` is not finite or lies outside [-90, 90].
    """
    arr = _as_dec_array(dec)
    # Count of boundaries strictly north of dec = ring number (see _BOUNDARIES).
    ring = NRINGS + 1 - np.searchsorted(_BOUNDARIES_ASC, arr, side="right")
    return _scalar_or_array(ring.astype(np.int64), np.ndim(dec) == 0)


def ring_ntiles(ring):
    """Number of tiles in each ring.

    Parameters
    ----------
    ring : int or array_like of int
        Ring number, 0 (north cap) .. 2048 (south cap).

    Returns
    -------
    int or ndarray of int64
        ``2 c_j`` with ``c = (4, 8, ..., 4(N-1), 4N x (2N+1), 4(N-1), ..., 4)``: 8 in ring 1,
        4096 in the equatorial rings 512 .. 1536, 1 for each cap.

    Raises
    ------
    ValueError
        If ``ring`` is not an integer in [0, 2048].
    """
    arr = _as_int_array(ring, "ring", NORTH_CAP_RING, SOUTH_CAP_RING)
    return _scalar_or_array(_ring_ntiles(arr), np.ndim(ring) == 0)


def ring_dec(ring):
    """Centre declination of each ring (degrees); +90 / -90 for the caps.

    Parameters
    ----------
    ring : int or array_like of int
        Ring number, 0 (north cap) .. 2048 (south cap).

    Returns
    -------
    float or ndarray of float64
        ``delta((2N - j) / (4N))``.

    Raises
    ------
    ValueError
        If ``ring`` is not an integer in [0, 2048].
    """
    arr = _as_int_array(ring, "ring", NORTH_CAP_RING, SOUTH_CAP_RING)
    return _scalar_or_array(_dec_at(arr.astype(np.float64)), np.ndim(ring) == 0)


def ring_edges(ring):
    """Lower and upper declination edge of each ring (degrees).

    Parameters
    ----------
    ring : int or array_like of int
        Ring number, 0 (north cap) .. 2048 (south cap).

    Returns
    -------
    dec_min, dec_max : float or ndarray of float64
        ``delta`` at ring index ``j + 1/2`` and ``j - 1/2``; the caps reach the poles.

    Raises
    ------
    ValueError
        If ``ring`` is not an integer in [0, 2048].
    """
    arr = _as_int_array(ring, "ring", NORTH_CAP_RING, SOUTH_CAP_RING)
    dec_min = np.where(arr > NRINGS, -90.0, _BOUNDARIES[np.clip(arr, 0, NRINGS)])
    dec_max = np.where(arr < 1, 90.0, _BOUNDARIES[np.clip(arr - 1, 0, NRINGS)])
    scalar = np.ndim(ring) == 0
    return _scalar_or_array(dec_min, scalar), _scalar_or_array(dec_max, scalar)


def ring_first_field(ring):
    """Field number of tile 0 of each ring.

    Parameters
    ----------
    ring : int or array_like of int
        Ring number, 0 (north cap) .. 2048 (south cap).

    Returns
    -------
    int or ndarray of int64
        1 for the north cap, 2 for ring 1, ..., 6291458 for the south cap.

    Raises
    ------
    ValueError
        If ``ring`` is not an integer in [0, 2048].
    """
    arr = _as_int_array(ring, "ring", NORTH_CAP_RING, SOUTH_CAP_RING)
    return _scalar_or_array(_RING_FIRST_FIELD[arr], np.ndim(ring) == 0)
