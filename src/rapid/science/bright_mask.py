"""Masks around bad pixels, and halos around saturated stars scaled by the star's brightness.

Every masked pixel grows by a few pixels (its neighbours carry part of the same defect). A
masked area bordered by bright pixels is a saturated star core (or a defect on a star): its
light beyond the core is still there in both images, and whatever of it the PSF models do not
describe is left in the difference. The models describe nothing beyond their stamps, and
within them no better than to some fraction of the light, so the residual a star leaves at
radius r is about ``F * wing(r)``, where F is its total flux and ``wing`` the PSF's profile:
the largest value at that radius inside the stamp, falling beyond it as a power of r measured
on the stamp's outer half, never slower than ``r**-3`` (the envelope of a diffraction pattern:
a space telescope's wings; a seeing-limited Moffat profile falls as ``r**-2beta``, and assuming
r**-3 there would mask hundreds of pixels around every saturated star). The halo is masked out
to where that residual drops below the per-pixel noise. F cannot be measured on the saturated
core; it is fitted to the unsaturated rim as ``median(rim / wing(r_rim))``. A star ten times
brighter thus gets a halo ``10**(1/3)`` times wider (for r**-3) once it reaches beyond the
stamp, as the masks of wide-field surveys grow with a star's brightness. The star is centred
where the rim is brightest and fitted to the rim near it: a dead column or a trail crossing a
source is not a saturated star at the column's middle whose flux its far-away rim could
measure. A large masked area (the edge of a reference's coverage, a gap, a blank block) can
have several bright stars on its rim; each gets its own halo, brightest first, and none of
them is taken for a core spanning the whole area (whose "flux", fitted to a rim hundreds of
pixels away, would blank a disc of the largest radius about the area's middle).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from rapid.science.badpixels import true_pixels
from rapid.science.box_filters import cross_dilation

# Slowest fall-off of the wing beyond the PSF stamp: the r**-3 envelope of an Airy pattern
WING_POWER = 3.0
# Steepest one measured (a Moffat profile with beta = 4)
MAX_WING_POWER = 8.0
# Longest step between rim pixels of one star: across a one-pixel dead column (2 pixels)
RIM_LINK = 2.5


def wing_power(profile: np.ndarray) -> float:
    """The power ``p`` of ``r**-p`` that the wing ``profile`` falls with over its outer half,
    between ``WING_POWER`` and ``MAX_WING_POWER`` (``WING_POWER`` when it cannot be measured)."""
    edge = len(profile) - 1
    r = np.arange(max(edge // 2, 1), edge + 1)
    values = np.asarray(profile, dtype=np.float64)[r]
    ok = values > 0
    if ok.sum() < 3:
        return WING_POWER
    slope = np.polyfit(np.log(r[ok]), np.log(values[ok]), 1)[0]
    return float(np.clip(-slope, WING_POWER, MAX_WING_POWER))


def wing_profile(*psfs: np.ndarray) -> np.ndarray:
    """The largest value of the PSFs (each summing to 1) in unit-wide rings about the centre.

    Parameters
    ----------
    *psfs : ndarray
        Odd-sized centred stamps.

    Returns
    -------
    ndarray
        ``profile[k]`` for radii in ``[k - 0.5, k + 0.5)``, out to the largest ring that fits
        inside the smallest stamp.
    """
    if not psfs:
        raise ValueError("wing_profile needs at least one PSF")
    half = min(min(p.shape) // 2 for p in psfs)
    prof = np.zeros(half + 1)
    for p in psfs:
        p = np.asarray(p, dtype=np.float64)
        p = p / p.sum()
        cy, cx = p.shape[0] // 2, p.shape[1] // 2
        yy, xx = np.mgrid[-cy:p.shape[0] - cy, -cx:p.shape[1] - cx]
        ring = np.rint(np.hypot(yy, xx)).astype(int)
        inside = ring <= half
        np.maximum.at(prof, ring[inside], p[inside])
    return prof


def wing_at(profile: np.ndarray, r: np.ndarray, power: float = WING_POWER) -> np.ndarray:
    """The wing profile at radii ``r``, extended beyond the stamp by ``r**-power``."""
    r = np.asarray(r, dtype=np.float64)
    edge = len(profile) - 1
    inner = profile[np.clip(np.rint(r).astype(int), 0, edge)]
    outer = profile[edge] * (edge / np.maximum(r, 1e-9)) ** power
    return np.where(r <= edge, inner, outer)


def halo_radius(flux: float, profile: np.ndarray, sigma: float, *,
                max_radius: float = 256.0, power: float = WING_POWER) -> float:
    """Radius beyond which ``flux * wing(r)`` stays below ``sigma``.

    Parameters
    ----------
    flux : float
        Total flux of the star.
    profile : ndarray
        From :func:`wing_profile`.
    sigma : float
        Per-pixel noise, same units as ``flux``.
    max_radius : float, optional
        Upper bound on the answer (256 pixels).
    power : float, optional
        Fall-off of the wing beyond the stamp (``WING_POWER``).

    Returns
    -------
    float
        0 when even the centre is below ``sigma``.
    """
    if not (np.isfinite(flux) and flux > 0 and sigma > 0):
        return 0.0
    edge = len(profile) - 1
    above = np.flatnonzero(flux * profile > sigma)
    if above.size == 0:
        return 0.0
    if above[-1] < edge:
        return float(above[-1]) + 0.5
    beyond = edge * (flux * profile[edge] / sigma) ** (1.0 / power)
    return float(min(max(beyond, edge + 0.5), max_radius))


def mask_bright_halos(bad: np.ndarray, value_at: Callable[[np.ndarray], np.ndarray], *,
                      grow: int, sigma: float, bright_snr: float, profile: np.ndarray,
                      max_radius: float = 256.0, power: float | None = None) -> np.ndarray:
    """Grow masked areas by ``grow`` pixels, and mask the halos of bright ones.

    Parameters
    ----------
    bad : ndarray
        Boolean map of masked pixels.
    value_at : callable
        ``value_at(where)`` gives the brightness (background-subtracted, the larger of the
        two images) at the pixels selected by the boolean map ``where``; only rim pixels of
        masked areas are ever asked for.
    grow : int
        Pixels every masked area grows by (cross-shaped steps).
    sigma : float
        Per-pixel background noise, units of ``value_at``.
    bright_snr : float
        A masked area whose rim reaches ``bright_snr * sigma`` gets a halo mask.
    profile : ndarray
        PSF wing profile (:func:`wing_profile`).
    max_radius : float, optional
        Largest halo radius (256 pixels).
    power : float, optional
        Fall-off of the wing beyond the stamp; None measures it on ``profile``
        (:func:`wing_power`).

    Returns
    -------
    ndarray
        The grown mask. Each halo is drawn inside its own box, so the cost follows the number
        of bright areas, not the image size.
    """
    out = cross_dilation(bad, grow)
    if not bad.any() or not np.isfinite(bright_snr) or not sigma > 0:
        return out
    if power is None:
        power = wing_power(profile)
    region = cross_dilation(bad)
    labels, n = ndimage.label(region)
    rim = region & ~bad
    del region
    values = np.nan_to_num(value_at(rim))
    rim_labels = labels[rim]
    peak = np.zeros(n + 1)
    np.maximum.at(peak, rim_labels, values)
    bright = np.flatnonzero(peak >= bright_snr * sigma)
    bright = bright[bright > 0]
    if bright.size == 0:
        return out
    rim_y, rim_x = true_pixels(rim)
    boxes = ndimage.find_objects(labels)
    order = np.argsort(rim_labels, kind="stable")
    starts = np.searchsorted(rim_labels[order], bright)
    stops = np.searchsorted(rim_labels[order], bright, side="right")
    for lab, a, b in zip(bright, starts, stops):
        idx = order[a:b]
        ys, xs = boxes[lab - 1]
        area = (labels[ys, xs] == lab) & bad[ys, xs]
        _mask_stars_on_rim(out, values[idx], rim_y[idx], rim_x[idx], area, (ys.start, xs.start),
                           grow=grow, sigma=sigma, bright=bright_snr * sigma, profile=profile,
                           max_radius=max_radius, power=power)
    return out


def _linked_to(ry: np.ndarray, rx: np.ndarray, k: int, link: float) -> np.ndarray:
    """Which of the points (ry, rx) are joined to point ``k`` by steps of at most ``link``."""
    if len(ry) == 1:
        return np.ones(1, bool)
    pairs = cKDTree(np.column_stack([ry, rx])).query_pairs(link, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                       shape=(len(ry), len(ry)))
    _, component = connected_components(graph, directed=False)
    return component == component[k]


def _mask_stars_on_rim(out: np.ndarray, v: np.ndarray, ry: np.ndarray, rx: np.ndarray,
                       area: np.ndarray, origin: tuple[int, int], *, grow: int, sigma: float,
                       bright: float, profile: np.ndarray, max_radius: float,
                       power: float) -> None:
    """Mask, in ``out``, the halo of every bright star on the rim (``v`` at ``ry, rx``) of one
    masked area (``area``, a boolean box whose first pixel is ``origin`` of the image),
    brightest first.

    A star is the stretch of rim at least half as bright as its brightest pixel and joined to
    it (steps of at most ``RIM_LINK`` pixels, which bridge a one-pixel column between its two
    sides): a large masked area (a reference's edge, a gap) can have several stars on its rim,
    each with its own halo, and none of them is the whole area's saturated core.
    """
    ny, nx = out.shape
    left = np.ones(len(v), bool)
    while left.any():
        k = int(np.argmax(np.where(left, v, -np.inf)))
        if v[k] < bright:
            return
        half = np.flatnonzero(left & (v >= 0.5 * v[k]))
        joined = _linked_to(ry[half], rx[half], int(np.flatnonzero(half == k)[0]), RIM_LINK)
        top = np.zeros(len(v), bool)
        top[half[joined]] = True
        # The star is the masked part next to its bright rim: all of a saturated core (bright
        # all around), only the stretch where a dead column or a trail crosses a source
        reach = float(np.max(np.hypot(ry[top] - ry[k], rx[top] - rx[k]))) + 1.0
        # the masked pixels within reach, read from a window of the area (which may be large)
        wy = max(ry[k] - int(reach) - 1 - origin[0], 0)
        wx = max(rx[k] - int(reach) - 1 - origin[1], 0)
        py, px = np.nonzero(area[wy:ry[k] + int(reach) + 2 - origin[0],
                                 wx:rx[k] + int(reach) + 2 - origin[1]])
        py, px = py + wy + origin[0], px + wx + origin[1]
        part = np.hypot(py - ry[k], px - rx[k]) <= reach
        cy, cx = float(py[part].mean()), float(px[part].mean())
        r_rim = np.hypot(ry - cy, rx - cx)
        near = r_rim <= float(np.max(r_rim[top])) + 2.0
        left &= ~(near | top)
        w = wing_at(profile, r_rim[near], power)
        ok = w > 0
        flux = float(np.median(v[near][ok] / w[ok])) if ok.any() else 0.0
        radius = halo_radius(flux, profile, sigma, max_radius=max_radius, power=power)
        core = float(np.max(np.hypot(py[part] - cy, px[part] - cx))) + 0.5
        if part.sum() >= 0.3 * np.pi * core**2:
            # A saturated core (compact, unlike a column) has a sharp bright edge, which the
            # two images' kernels blur differently over a PSF width: the growth and a pixel
            # beyond that edge at least
            radius = max(radius, core + grow + 1)
        if radius <= 0:
            continue
        r = int(np.ceil(radius))
        y0, y1 = max(int(np.floor(cy)) - r, 0), min(int(np.ceil(cy)) + r + 1, ny)
        x0, x1 = max(int(np.floor(cx)) - r, 0), min(int(np.ceil(cx)) + r + 1, nx)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        out[y0:y1, x0:x1] |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
