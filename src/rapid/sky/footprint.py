"""Which fields a footprint on the sky (an SCA image, say) overlaps, plus unit-vector helpers.

The footprint is a quadrilateral given by its four corners in order round its edge; its
edges are taken as great-circle arcs (the sky image of a straight pixel edge under a TAN
projection). Tiles are RA/Dec rectangles inside declination rings, so the overlap is found
ring by ring, exactly rather than by sampling:

* A footprint that does not contain a pole lies within 180 deg of RA, and along a
  great-circle arc and along a parallel RA changes monotonically. So the RA extent of the
  footprint inside a ring's declination band begins and ends only at corners lying in the
  band or at points where edges cross the band's two bounding parallels. Between two such
  critical RAs the extent is wholly in or wholly out, which the meridian arc across the band
  at their midpoint decides (it is clipped against each edge's great circle in closed form).
  The tiles of the ring whose RA span meets the extent are the overlapping ones.
* A footprint that contains a pole is star-shaped about it: on each meridian it reaches from
  the pole down to its edge. It meets a ring's band at RA ``alpha`` exactly when the point
  ``(alpha, band edge nearer the pole)`` is inside it. The edges' crossings of that parallel
  split RA into arcs that are wholly in or wholly out; the midpoint of each arc decides.

Tiles that only touch the footprint along an edge or at a corner are included, so rounding
never makes the result miss a tile.
"""

from __future__ import annotations

import numpy as np

from rapid.sky.rings import (
    NFIELDS,
    NRINGS,
    _as_dec_array,
    _ring_ntiles,
    ring_edges,
    ring_first_field,
    ring_of,
)
from rapid.sky.tiles import field_of

__all__ = ["angular_separation_deg", "fields_overlapping", "unit_vector"]

#: Largest accepted distance (degrees) of a footprint corner from the footprint's centre.
MAX_FOOTPRINT_RADIUS_DEG = 30.0

# Slack (radians) on arc-parameter and inside tests so that points exactly on an edge or a
# corner count as touching despite rounding.
_EPS = 1e-12


def unit_vector(ra, dec):
    """Cartesian unit vector of each sky position.

    Cone searches need no trigonometry in SQL with these stored per row: a position is within
    ``r`` of ``(x0, y0, z0)`` when ``x * x0 + y * y0 + z * z0 > cos(r)``.

    Parameters
    ----------
    ra : float or array_like
        Right ascension in degrees.
    dec : float or array_like
        Declination in degrees, within [-90, 90]. Broadcast against ``ra``.

    Returns
    -------
    x, y, z : float or ndarray of float64
        ``(cos dec cos ra, cos dec sin ra, sin dec)``.

    Raises
    ------
    ValueError
        If ``ra`` is not finite, or ``dec`` is not finite or outside [-90, 90].
    """
    ra_arr = np.radians(_as_ra(ra))
    dec_arr = np.radians(_as_dec_array(dec))
    cos_dec = np.cos(dec_arr)
    x, y, z = np.broadcast_arrays(cos_dec * np.cos(ra_arr), cos_dec * np.sin(ra_arr), np.sin(dec_arr))
    if np.ndim(ra) == 0 and np.ndim(dec) == 0:
        return float(x), float(y), float(z)
    return x.copy(), y.copy(), z.copy()


def angular_separation_deg(ra1, dec1, ra2, dec2):
    """Angle on the sky between two positions (degrees).

    Uses the Vincenty form (atan2 of cross and dot products), accurate at all separations
    including very small ones and antipodes.

    Parameters
    ----------
    ra1, dec1, ra2, dec2 : float or array_like
        Positions in degrees; broadcast against each other.

    Returns
    -------
    float or ndarray of float64
        Separation in [0, 180] degrees.

    Raises
    ------
    ValueError
        If an RA is not finite, or a Dec is not finite or outside [-90, 90].
    """
    a = np.stack(np.broadcast_arrays(*unit_vector(ra1, dec1)), axis=-1)
    b = np.stack(np.broadcast_arrays(*unit_vector(ra2, dec2)), axis=-1)
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.sum(a * b, axis=-1)
    sep = np.degrees(np.arctan2(cross, dot))
    scalar = all(np.ndim(v) == 0 for v in (ra1, dec1, ra2, dec2))
    return float(sep) if scalar else sep


def _as_ra(ra) -> np.ndarray:
    arr = np.asarray(ra, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"ra must be finite, got {ra!r}")
    return arr


def _vec(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _ra_of(p: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(p[..., 1], p[..., 0])) % 360.0


def _dec_of(p: np.ndarray) -> np.ndarray:
    return np.degrees(np.arcsin(np.clip(p[..., 2], -1.0, 1.0)))


class _Quad:
    """A convex spherical quadrilateral with great-circle edges (internal)."""

    def __init__(self, ra: np.ndarray, dec: np.ndarray):
        self.ra, self.dec = ra, dec
        self.v = _vec(ra, dec)
        centre = self.v.sum(axis=0)
        norm = np.linalg.norm(centre)
        if norm < 1e-9:
            raise ValueError("ra_corners, dec_corners do not describe a small footprint")
        self.centre = centre / norm
        self.ra_centre = float(_ra_of(self.centre))
        self.radius = float(np.degrees(np.max(np.arccos(np.clip(self.v @ self.centre, -1, 1)))))
        if self.radius > MAX_FOOTPRINT_RADIUS_DEG:
            raise ValueError(
                f"ra_corners, dec_corners span {self.radius:.3g} deg from their centre; "
                f"at most {MAX_FOOTPRINT_RADIUS_DEG} deg is supported"
            )
        self.a = self.v
        self.b = np.roll(self.v, -1, axis=0)
        # Edge planes: inward normals once the orientation is known.
        normals = np.cross(self.a, self.b)
        scale = np.linalg.norm(normals, axis=1)
        # Edges of zero length (repeated corners) constrain nothing.
        real = scale > 1e-15
        normals = normals[real] / scale[real, None]
        side = normals @ self.centre
        if np.any(side > 1e-12) and np.any(side < -1e-12):
            raise ValueError("ra_corners, dec_corners must go round a convex quadrilateral in order")
        # Unit normals pointing into the footprint, for the real edges only.
        self.normals = -normals if np.sum(side) < 0 else normals
        self.real_edges = real
        # Arc parametrisation p(s) = a cos s + u sin s, s in [0, theta].
        dot = np.clip(np.sum(self.a * self.b, axis=1), -1.0, 1.0)
        self.theta = np.arccos(dot)
        u = self.b - dot[:, None] * self.a
        unorm = np.linalg.norm(u, axis=1)
        self.u = np.where(unorm[:, None] > 0, u / np.where(unorm > 0, unorm, 1.0)[:, None], 0.0)
        # z(s) = R cos(s - phi).
        self.amp = np.hypot(self.a[:, 2], self.u[:, 2])
        self.phase = np.arctan2(self.u[:, 2], self.a[:, 2])

    def inside(self, p: np.ndarray) -> np.ndarray:
        """True where unit vectors ``p`` (..., 3) are inside or on the footprint."""
        return np.all(p @ self.normals.T >= -_EPS, axis=-1)

    def _points(self, edge: int, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        return np.cos(s)[:, None] * self.a[edge] + np.sin(s)[:, None] * self.u[edge]

    def _on_arc(self, edge: int, s: np.ndarray) -> np.ndarray:
        s = np.mod(s, 2 * np.pi)
        s = np.where(s > 2 * np.pi - _EPS, 0.0, s)
        return s[s <= self.theta[edge] + _EPS]

    def dec_extrema(self) -> np.ndarray:
        """Points where an edge reaches its own highest or lowest declination mid-arc."""
        out = []
        for edge in np.flatnonzero(self.real_edges):
            if self.amp[edge] == 0.0:
                continue
            s = self._on_arc(edge, np.array([self.phase[edge], self.phase[edge] + np.pi]))
            out.append(self._points(edge, s))
        return np.concatenate(out) if out else np.empty((0, 3))

    def crossings(self, dec_deg: float) -> np.ndarray:
        """Points where the edges cross the parallel ``dec_deg``."""
        z0 = np.sin(np.radians(dec_deg))
        out = []
        for edge in np.flatnonzero(self.real_edges):
            amp = self.amp[edge]
            if amp == 0.0 or abs(z0) > amp:
                continue
            half = np.arccos(np.clip(z0 / amp, -1.0, 1.0))
            s = self._on_arc(edge, self.phase[edge] + np.array([half, -half]))
            out.append(self._points(edge, s))
        return np.concatenate(out) if out else np.empty((0, 3))

    def meets_meridians(self, ra: np.ndarray, dec_min: float, dec_max: float) -> np.ndarray:
        """True where the meridian arc at RA ``ra`` from ``dec_min`` to ``dec_max`` meets the footprint.

        The arc is ``p(t) = A cos t + U sin t`` for ``t`` in [0, T]; each edge keeps the part
        where ``n . p(t) >= 0``, a sinusoid with zeros pi apart, so on an arc shorter than pi
        that part is one interval. The arc meets the footprint when the intervals overlap.
        """
        ra = np.radians(np.asarray(ra, dtype=np.float64))
        d0 = np.radians(dec_min)
        span = np.radians(dec_max - dec_min)
        start = np.stack([np.cos(d0) * np.cos(ra), np.cos(d0) * np.sin(ra), np.full_like(ra, np.sin(d0))], axis=-1)
        north = np.stack([-np.sin(d0) * np.cos(ra), -np.sin(d0) * np.sin(ra), np.full_like(ra, np.cos(d0))], axis=-1)
        f_a = start @ self.normals.T
        f_u = north @ self.normals.T
        f_end = f_a * np.cos(span) + f_u * np.sin(span)
        ok_start, ok_end = f_a >= -_EPS, f_end >= -_EPS
        with np.errstate(divide="ignore", invalid="ignore"):
            zero = np.clip(np.arctan(-f_a / f_u), 0.0, span)
        lo = np.where(ok_start, 0.0, np.where(ok_end, zero, np.inf))
        hi = np.where(ok_end, span, np.where(ok_start, zero, -np.inf))
        return lo.max(axis=-1) <= hi.min(axis=-1) + _EPS

    def unwrap(self, ra: np.ndarray) -> np.ndarray:
        """RA folded into (ra_centre - 180, ra_centre + 180]."""
        return self.ra_centre - np.mod(self.ra_centre - ra + 180.0, 360.0) + 180.0


def _tiles_in_ra_span(ring: int, ra_lo: float, ra_hi: float) -> np.ndarray:
    """Fields of ``ring`` whose RA span meets the closed interval [ra_lo, ra_hi] (unwrapped)."""
    n = int(_ring_ntiles(np.int64(ring)))
    k_lo = int(np.floor(ra_lo * n / 360.0 + 0.5))
    k_hi = int(np.floor(ra_hi * n / 360.0 + 0.5))
    # Tile k's lower edge equals ra_lo exactly when ra_lo sits on a boundary; take the
    # neighbour below too, since touching counts.
    if np.isclose(ra_lo * n / 360.0 + 0.5, k_lo, rtol=0.0, atol=1e-9):
        k_lo -= 1
    if k_hi - k_lo + 1 >= n:
        k = np.arange(n)
    else:
        k = np.mod(np.arange(k_lo, k_hi + 1), n)
    return ring_first_field(ring) + k.astype(np.int64)


def _ring_fields_plain(quad: _Quad, ring: int) -> np.ndarray:
    """Fields of ``ring`` overlapped by a footprint that contains no pole."""
    dec_min, dec_max = ring_edges(ring)
    in_band = (quad.dec >= dec_min) & (quad.dec <= dec_max)
    pts = [quad.v[in_band], quad.crossings(dec_min), quad.crossings(dec_max)]
    ext = quad.dec_extrema()
    if len(ext):
        d = _dec_of(ext)
        pts.append(ext[(d >= dec_min) & (d <= dec_max)])
    pts = np.concatenate(pts)
    if len(pts) == 0:
        return np.empty(0, dtype=np.int64)
    # Every critical RA belongs to the footprint's extent in the band; between two of them
    # the extent is all in or all out, and the meridian at the midpoint tells which.
    crit = np.unique(quad.unwrap(_ra_of(pts)))
    inside = quad.meets_meridians(0.5 * (crit[:-1] + crit[1:]), dec_min, dec_max)
    out, start = [], crit[0]
    for k, member in enumerate(inside):
        if not member:
            out.append(_tiles_in_ra_span(ring, float(start), float(crit[k])))
            start = crit[k + 1]
    out.append(_tiles_in_ra_span(ring, float(start), float(crit[-1])))
    return np.concatenate(out)


def _ring_fields_polar(quad: _Quad, ring: int, north: bool) -> np.ndarray:
    """Fields of ``ring`` overlapped by a footprint that contains the (north or south) pole."""
    dec_min, dec_max = ring_edges(ring)
    edge_dec = dec_max if north else dec_min
    ra_cross = np.sort(_ra_of(quad.crossings(edge_dec)))
    if len(ra_cross) == 0:
        if quad.inside(_vec(np.array(0.0), np.array(edge_dec))):
            return ring_first_field(ring) + np.arange(int(_ring_ntiles(np.int64(ring))))
        return np.empty(0, dtype=np.int64)
    starts = ra_cross
    ends = np.append(ra_cross[1:], ra_cross[0] + 360.0)
    mids = 0.5 * (starts + ends)
    keep = quad.inside(_vec(mids, np.full_like(mids, edge_dec)))
    out = [_tiles_in_ra_span(ring, float(a), float(b)) for a, b in zip(starts[keep], ends[keep])]
    # The crossing points themselves touch the footprint.
    out.append(field_of(ra_cross, np.full_like(ra_cross, edge_dec)).ravel())
    return np.concatenate(out)


def fields_overlapping(ra_corners, dec_corners):
    """Fields whose tile overlaps a small quadrilateral footprint on the sky.

    Parameters
    ----------
    ra_corners : array_like, shape (4,)
        RA of the footprint's corners in degrees, in order round its edge (either sense).
        Any finite values; a footprint may straddle RA 0 / 360.
    dec_corners : array_like, shape (4,)
        Dec of the corners in degrees, within [-90, 90]. A footprint may contain a pole.

    Returns
    -------
    ndarray of int64
        Sorted, unique field numbers of every tile that overlaps or touches the footprint
        (edges are great-circle arcs; see the module docstring for the method).

    Raises
    ------
    ValueError
        If the inputs are not four finite corners, a Dec is outside [-90, 90], the corners do
        not go round a convex quadrilateral, or the footprint reaches more than
        ``MAX_FOOTPRINT_RADIUS_DEG`` (30 deg) from its centre.
    """
    ra = np.asarray(ra_corners, dtype=np.float64)
    dec = np.asarray(dec_corners, dtype=np.float64)
    if ra.shape != (4,):
        raise ValueError(f"ra_corners must hold 4 values, got shape {ra.shape}")
    if dec.shape != (4,):
        raise ValueError(f"dec_corners must hold 4 values, got shape {dec.shape}")
    if not np.all(np.isfinite(ra)):
        raise ValueError(f"ra_corners must be finite, got {ra_corners!r}")
    if not np.all(np.isfinite(dec)) or dec.min() < -90.0 or dec.max() > 90.0:
        raise ValueError(f"dec_corners must be finite and within [-90, 90], got {dec_corners!r}")
    ra = np.mod(ra, 360.0)
    quad = _Quad(ra, dec)
    if len(quad.normals) < 2:
        # All four corners coincide: the footprint is a point.
        return np.unique(np.atleast_1d(field_of(ra, dec)))

    decs = [dec]
    ext = quad.dec_extrema()
    if len(ext):
        decs.append(_dec_of(ext))
    decs = np.concatenate(decs)
    north = bool(quad.inside(np.array([0.0, 0.0, 1.0])))
    south = bool(quad.inside(np.array([0.0, 0.0, -1.0])))
    dec_hi = 90.0 if north else float(decs.max())
    dec_lo = -90.0 if south else float(decs.min())

    out = [np.atleast_1d(field_of(ra, dec))]
    top, bottom = ring_of(dec_hi), ring_of(dec_lo)
    if top < 1:
        out.append(np.array([1], dtype=np.int64))
    if bottom > NRINGS:
        out.append(np.array([NFIELDS], dtype=np.int64))
    for ring in range(max(top, 1), min(bottom, NRINGS) + 1):
        if north:
            out.append(_ring_fields_polar(quad, ring, north=True))
        elif south:
            out.append(_ring_fields_polar(quad, ring, north=False))
        else:
            out.append(_ring_fields_plain(quad, ring))
    return np.unique(np.concatenate(out).astype(np.int64))
