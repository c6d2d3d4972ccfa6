"""Fields: the sky tiles of the Roman tessellation (NSIDE = 512), numbered 1 .. 6,291,458.

Field 1 is the north polar cap, fields 2 .. 6,291,457 run ring by ring from north to south
and within a ring by increasing RA, and field 6,291,458 is the south polar cap. Tile ``i``
of a ring of ``n`` tiles is centred on RA ``360 i / n`` and spans RA ``360 (i -/+ 1/2) / n``,
so tile 0 straddles RA 0 and its ``ra_min`` is negative. Everything is computed from the
definition in float64 (see :mod:`rapid.sky.rings`); RAPID's published table holds the same
numbers rounded to float32.

A point belongs to the tile with ``dec_min <= dec < dec_max`` and
``ra_min <= ra < ra_max`` (RA taken modulo 360); the caps own the poles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rapid.sky.rings import (
    _RING_FIRST_FIELD,
    NFIELDS,
    NRINGS,
    NSIDE,
    SOUTH_CAP_RING,
    _as_dec_array,
    _as_int_array,
    _dec_at,
    _ring_ntiles,
    _scalar_or_array,
    ring_edges,
    ring_of,
)

__all__ = [
    "NSIDE",
    "NFIELDS",
    "NORTH_CAP_FIELD",
    "SOUTH_CAP_FIELD",
    "Tile",
    "field_of",
    "field_ring_index",
    "tile",
    "tile_bounds",
    "tile_center",
    "tile_corners",
]

#: Field number of the north polar cap.
NORTH_CAP_FIELD = 1
#: Field number of the south polar cap.
SOUTH_CAP_FIELD = NFIELDS

#: RAs at which tile_corners places the four "corners" of a polar cap, on its edge.
_CAP_CORNER_RA = np.array([0.0, 90.0, 180.0, 270.0])


def _as_ra_array(ra) -> np.ndarray:
    """Float64 RA array normalised to [0, 360); ValueError naming ``ra`` if not finite."""
    arr = np.asarray(ra, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"ra must be finite, got {ra!r}")
    arr = np.mod(arr, 360.0)
    # np.mod of a tiny negative number can round up to exactly 360.
    return np.where(arr >= 360.0, 0.0, arr)


def _as_field_array(field) -> np.ndarray:
    return _as_int_array(field, "field", 1, NFIELDS)


def field_of(ra, dec):
    """Field (sky tile) holding each sky position.

    Parameters
    ----------
    ra : float or array_like
        Right ascension in degrees; any finite value (normalised modulo 360).
    dec : float or array_like
        Declination in degrees, within [-90, 90]. Broadcast against ``ra``.

    Returns
    -------
    int or ndarray of int64
        Field number, 1 (north cap) .. 6,291,458 (south cap). A Python int when both inputs
        are scalars.

    Raises
    ------
    ValueError
        If ``ra`` is not finite, or ``dec`` is not finite or outside [-90, 90].
    """
    ra_arr = _as_ra_array(ra)
    dec_arr = _as_dec_array(dec)
    ra_arr, dec_arr = np.broadcast_arrays(ra_arr, dec_arr)
    ring = np.atleast_1d(ring_of(dec_arr))
    n = _ring_ntiles(ring)
    # Tile i spans [(i - 1/2), (i + 1/2)) * 360 / n; the modulo folds RA just below 360
    # back into tile 0, which straddles RA 0.
    index = np.mod(np.floor(ra_arr.reshape(ring.shape) * n / 360.0 + 0.5).astype(np.int64), n)
    field = _RING_FIRST_FIELD[ring] + index
    field = field.reshape(dec_arr.shape)
    return _scalar_or_array(field, np.ndim(ra) == 0 and np.ndim(dec) == 0)


def field_ring_index(field):
    """Ring number and index within the ring of each field.

    Parameters
    ----------
    field : int or array_like of int
        Field number, 1 .. 6,291,458.

    Returns
    -------
    ring, index : int or ndarray of int64
        Ring 0 (north cap) .. 2048 (south cap) and tile index ``i`` within the ring
        (always 0 for the caps).

    Raises
    ------
    ValueError
        If ``field`` is not an integer in [1, 6291458].
    """
    ring, index = _ring_index(_as_field_array(field))
    scalar = np.ndim(field) == 0
    return _scalar_or_array(ring.astype(np.int64), scalar), _scalar_or_array(index, scalar)


def _ring_index(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring and index arrays of a validated int64 field array."""
    ring = (np.searchsorted(_RING_FIRST_FIELD, fields, side="right") - 1).astype(np.int64)
    return ring, fields - _RING_FIRST_FIELD[ring]


def _geometry(field):
    """Ring, index within the ring and ring tile count of validated fields."""
    ring, index = _ring_index(_as_field_array(field))
    return ring, index, _ring_ntiles(ring)


def tile_center(field):
    """Centre of each field's tile.

    Parameters
    ----------
    field : int or array_like of int
        Field number, 1 .. 6,291,458.

    Returns
    -------
    ra, dec : float or ndarray of float64
        Centre in degrees, RA in [0, 360). The caps are centred on their pole (RA 0, Dec +/-90).

    Raises
    ------
    ValueError
        If ``field`` is not an integer in [1, 6291458].
    """
    ring, index, n = _geometry(field)
    ra = 360.0 * index / n
    dec = _dec_at(ring.astype(np.float64))
    scalar = np.ndim(field) == 0
    return _scalar_or_array(ra, scalar), _scalar_or_array(dec, scalar)


def tile_bounds(field):
    """RA and Dec ranges of each field's tile.

    Parameters
    ----------
    field : int or array_like of int
        Field number, 1 .. 6,291,458.

    Returns
    -------
    ra_min, ra_max, dec_min, dec_max : float or ndarray of float64
        Degrees. ``ra_min`` is negative for tile 0 of a ring (e.g. -22.5 .. 22.5 for field
        2), so ``ra_min < ra_max`` always holds; the caps span RA 0 .. 360 and reach their
        pole.

    Raises
    ------
    ValueError
        If ``field`` is not an integer in [1, 6291458].
    """
    ring, index, n = _geometry(field)
    cap = (ring < 1) | (ring > NRINGS)
    ra_min = np.where(cap, 0.0, 180.0 * (2 * index - 1) / n)
    ra_max = np.where(cap, 360.0, 180.0 * (2 * index + 1) / n)
    dec_min, dec_max = ring_edges(ring)
    scalar = np.ndim(field) == 0
    return tuple(_scalar_or_array(np.asarray(v), scalar) for v in (ra_min, ra_max, dec_min, dec_max))


def tile_corners(field):
    """Four corners of each field's tile.

    Parameters
    ----------
    field : int or array_like of int
        Field number, 1 .. 6,291,458.

    Returns
    -------
    ra, dec : ndarray of float64
        Shape ``(4,)`` for a scalar field, ``field.shape + (4,)`` otherwise; degrees, RA in
        [0, 360). Order: (ra_min, dec_min), (ra_max, dec_min), (ra_max, dec_max),
        (ra_min, dec_max), i.e. south-west, south-east, north-east, north-west, going round
        the tile. A polar cap has no corners; it is given the four points of its edge at
        RA 0, 90, 180, 270 (in that order).

    Raises
    ------
    ValueError
        If ``field`` is not an integer in [1, 6291458].
    """
    ring, _, _ = _geometry(field)
    ra_min, ra_max, dec_min, dec_max = (np.asarray(v) for v in tile_bounds(np.asarray(field)))
    ra = np.stack([ra_min, ra_max, ra_max, ra_min], axis=-1)
    dec = np.stack([dec_min, dec_min, dec_max, dec_max], axis=-1)
    north = (ring < 1)[..., None]
    south = (ring > NRINGS)[..., None]
    ra = np.where(north | south, _CAP_CORNER_RA, ra)
    dec = np.where(north, dec_min[..., None], dec)
    dec = np.where(south, dec_max[..., None], dec)
    ra = np.mod(ra, 360.0)
    return ra, dec


@dataclass(frozen=True)
class Tile:
    """One field's tile.

    Attributes
    ----------
    field : int
        Field number, 1 .. 6,291,458.
    ra0, dec0 : float
        Centre (degrees); the pole for a cap.
    bounds : tuple of float
        ``(ra_min, ra_max, dec_min, dec_max)`` as returned by :func:`tile_bounds`.
    corners : tuple of tuple of float
        ``((ra1, dec1), ..., (ra4, dec4))`` in the order of :func:`tile_corners`.
    ring : int
        Ring number, 0 (north cap) .. 2048 (south cap).
    index : int
        Tile index within its ring.
    """

    field: int
    ra0: float
    dec0: float
    bounds: tuple[float, float, float, float]
    corners: tuple[tuple[float, float], ...]
    ring: int
    index: int

    @property
    def is_cap(self) -> bool:
        """True for the two polar caps."""
        return self.ring == 0 or self.ring == SOUTH_CAP_RING


def tile(field: int) -> Tile:
    """Everything about one field's tile.

    Parameters
    ----------
    field : int
        Field number, 1 .. 6,291,458.

    Returns
    -------
    Tile
        Centre, bounds, corners, ring and index of the tile.

    Raises
    ------
    ValueError
        If ``field`` is not an integer in [1, 6291458].
    """
    if np.ndim(field) != 0:
        raise ValueError(f"field must be a single integer, got {field!r}")
    ring, index = field_ring_index(field)
    ra0, dec0 = tile_center(field)
    bounds = tuple(float(v) for v in tile_bounds(field))
    cra, cdec = tile_corners(field)
    corners = tuple((float(r), float(d)) for r, d in zip(cra, cdec))
    return Tile(int(field), float(ra0), float(dec0), bounds, corners, int(ring), int(index))
