"""Satellite, aircraft and meteor streaks in a difference image, found as lines in Scorr.

A streak crossing one exposure is a long, straight band of light that the other image lacks.
Scorr weighs it like a row of point sources: a streak of a fraction of a sky sigma per pixel
leaves a chain of candidates along it (3-31 per streak on simulated 1024x1024 ground-based
pairs), and its band widens Scorr's measured scatter, which raises the threshold everywhere. No
single candidate tells it is part of a line; the line shows only as a whole.

Scorr is averaged over blocks of about a PSF width (the blocks' own scatter is the unit), and
blocks above ``LEVEL`` become points. Compact groups of points (a source's residual) are set
aside and small ones taken as one point each, so that points are independent, as the test below
assumes. A Hough transform counts the points on every line, and a line is a candidate streak
when its count is improbable for points strewn at random with the image's density: the Poisson
tail of the count expected over the line's length inside the image, below ``FALSE_STREAKS`` per
image over all lines tried. The line is refitted to its points, cut to their run along it, and
widened to where the density of points either side falls to the image's. It is a streak
(:func:`_is_streak`) when it is long, its points are spread along it, the blocks along its whole
course are raised (a median), it does not keep to an edge of the data, and it is one long group
or many. Its points are then taken out and the search repeated.

Across a 1024x1024 image of unit noise, a streak whose Scorr is 1 sigma at its crest is found (a
few at 0.7); noise peaks on a streak pass a detection threshold from about 2.5. None was found on
eight simulated ground-based pairs nor on the Roman surveys of `rapid demo` (4088x4088 included),
where it takes 0.4 s per full-size image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, stats

# Block significance, in the blocks' robust sigma, above which a block is a point: 2.5 keeps
# 0.6% of the blocks of plain noise, few enough for a fast transform, while a streak's blocks
# pass at any brightness that can leave a candidate
LEVEL = 2.5
# Expected false streaks per image and sign over all the lines tried (Bonferroni)
FALSE_STREAKS = 1e-3
# A streak has at least this many points: a line through a few sources' residuals is not one
MIN_POINTS = 10
# Groups of this many points or more whose length is less than ELONGATION times their width are
# compact: a source's residual, not a streak
COMPACT_AREA = 3
ELONGATION = 2.5
# A streak spans at least this many blocks along its line (and its points are spread along it,
# see _spread): a trail crosses much of an image, while an elongated residual (a galaxy's, a
# star's diffraction spike, a source cut by a masked column) is a dense, short run
MIN_LENGTH = 25
# A streak's median block significance along its course is at least this: 2.5 sigma of the
# median of 40 blocks of plain noise, and half what a streak just found gives
CREST_MIN = 0.5
# Blocks from an edge of the data within which a line's points may not mostly lie
EDGE = 3
# No quarter of a streak's length holds more than this share of its points
SPREAD_MAX = 0.6
# Search at most this many streaks per sign
MAX_STREAKS = 8
# Blocks per side of the block image at most: sets the block size of large images
MAX_BLOCKS = 1024
# Points more than this many times the median spacing along a streak, and at least GAP_MIN
# blocks, from the rest of it end it
GAP_SPACINGS = 8.0
GAP_MIN = 32


@dataclass(frozen=True)
class Streak:
    """A streak in pixel coordinates: the band ``|x cos(theta) + y sin(theta) - rho| <=
    half_width`` between ``t0`` and ``t1`` along it (``t = -x sin(theta) + y cos(theta)``).

    Attributes
    ----------
    rho, theta : float
        The streak's centre line (pixels, radians).
    half_width : float
        Half-width of the band that holds its light, pixels.
    t0, t1 : float
        Its extent along the line, pixels.
    sign : int
        +1 in the science image (brightening), -1 in the reference.
    points : int
        Blocks above the level on it.
    expected : float
        Blocks expected on a line of its length from the image's density of points.
    """

    rho: float
    theta: float
    half_width: float
    t0: float
    t1: float
    sign: int
    points: int
    expected: float

    def contains(self, x, y) -> np.ndarray:
        """Whether pixel positions lie on the streak's band."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        c, s = np.cos(self.theta), np.sin(self.theta)
        across = np.abs(x * c + y * s - self.rho)
        along = -x * s + y * c
        return (across <= self.half_width) & (along >= self.t0) & (along <= self.t1)


def block_significance(scorr: np.ndarray, mask: np.ndarray | None, block: int) -> tuple:
    """Mean of Scorr over ``block`` x ``block`` pixels in units of the blocks' robust scatter,
    and whether each block has data on at least half its pixels."""
    ny, nx = scorr.shape[0] // block, scorr.shape[1] // block
    crop = (slice(0, ny * block), slice(0, nx * block))
    valid = np.ones(scorr.shape, bool)[crop] if mask is None else ~mask[crop]
    values = np.where(valid, scorr[crop], np.float32(0.0))
    total = values.reshape(ny, block, nx, block).sum(axis=(1, 3), dtype=np.float64)
    count = valid.reshape(ny, block, nx, block).sum(axis=(1, 3), dtype=np.int32)
    good = count >= block * block / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(good, total / np.maximum(count, 1), 0.0)
    # Scorr's noise is correlated over a PSF width, so a block's scatter is measured, not
    # derived; the full blocks of the image set it
    full = count == block * block
    ref = mean[full] if full.sum() > 100 else mean[good]
    if ref.size < 100:
        return np.zeros_like(mean), good
    centre = np.median(ref)
    scale = 1.4826 * np.median(np.abs(ref - centre))
    if not np.isfinite(scale) or scale <= 0:
        return np.zeros_like(mean), good
    return np.where(good, (mean - centre) / scale, 0.0), good


def streak_points(points: np.ndarray) -> np.ndarray:
    """The points a streak can be made of: compact groups (a source's residual; see
    ``ELONGATION``) dropped, and each group smaller than ``COMPACT_AREA`` taken as one point at
    its centre, so that points counted along a line are independent: Scorr's noise, and a
    faint source's residual, come in pairs of neighbouring blocks as often as singly."""
    labels, n = ndimage.label(points, structure=np.ones((3, 3)))
    if n == 0:
        return points
    idx = np.arange(1, n + 1)
    area = ndimage.sum_labels(points, labels, idx)
    yy, xx = np.indices(points.shape)
    my = ndimage.mean(yy, labels, idx)
    mx = ndimage.mean(xx, labels, idx)
    syy = ndimage.mean(yy * yy, labels, idx) - my * my
    sxx = ndimage.mean(xx * xx, labels, idx) - mx * mx
    sxy = ndimage.mean(xx * yy, labels, idx) - mx * my
    # eigenvalues of each group's covariance: its length and width squared, up to a factor
    half_tr, det = (sxx + syy) / 2, sxx * syy - sxy * sxy
    root = np.sqrt(np.maximum(half_tr * half_tr - det, 0.0))
    big, small = half_tr + root, np.maximum(half_tr - root, 1.0 / 12)  # a pixel's own width
    compact = (area >= COMPACT_AREA) & (big < ELONGATION**2 * small)
    small_group = area < COMPACT_AREA
    keep = np.concatenate([[False], ~compact & ~small_group])
    out = points & keep[labels]
    out[np.round(my[small_group]).astype(int), np.round(mx[small_group]).astype(int)] = True
    return out


def _chords(theta: np.ndarray, rho: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Length of each line ``x cos(theta) + y sin(theta) = rho`` (arrays of one shape) inside
    the box of block centres ``[-0.5, nx - 0.5] x [-0.5, ny - 0.5]``."""
    ny, nx = shape
    c, s = np.cos(theta), np.sin(theta)
    px, py = rho * c, rho * s  # the line's foot; its direction is (-s, c)
    lo = np.full(np.shape(rho), -np.inf)
    hi = np.full(np.shape(rho), np.inf)
    for p, d, a, b in ((px, -s, -0.5, nx - 0.5), (py, c, -0.5, ny - 0.5)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (a - p) / d, (b - p) / d
        par = np.abs(d) < 1e-12
        inside = (p >= a) & (p <= b)
        t_lo = np.where(par, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
        t_hi = np.where(par, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
        lo, hi = np.maximum(lo, t_lo), np.minimum(hi, t_hi)
    return np.clip(hi - lo, 0.0, None)


def _hough(y: np.ndarray, x: np.ndarray, theta: np.ndarray, nrho: int, rho0: float):
    """Points per (theta, rho) bin of unit width, rho binned from ``rho0``."""
    acc = np.zeros((len(theta), nrho), dtype=np.int32)
    chunk = max(1, int(2e7 // max(1, len(x))))
    for a in range(0, len(theta), chunk):
        th = theta[a:a + chunk]
        r = np.floor(x[None, :] * np.cos(th)[:, None] + y[None, :] * np.sin(th)[:, None]
                     - rho0 + 0.5).astype(np.int64)
        flat = (np.arange(len(th))[:, None] * nrho + r).ravel()
        acc[a:a + len(th)] = np.bincount(flat, minlength=len(th) * nrho).reshape(len(th), nrho)
    return acc


def _strongest_line(py, px, shape, density, theta, rho, ntrials):
    """The (theta, rho) bin with the least probable count, if below the false-streak rate."""
    acc = _hough(py, px, theta, len(rho), rho[0])
    # pairs of neighbouring bins: a streak along the border of two rows of blocks casts its
    # points into both
    acc = acc[:, :-1] + acc[:, 1:]
    ia, ir = np.nonzero(acc >= MIN_POINTS)
    count = acc[ia, ir]
    lam = density * (_chords(theta[ia], rho[ir], shape) + _chords(theta[ia], rho[ir] + 1, shape))
    # a quick cut first: the exact tail only where the count could pass
    cand = count > lam + 4 * np.sqrt(lam)
    if not cand.any():
        return None
    ia, ir, count, lam = ia[cand], ir[cand], count[cand], lam[cand]
    logp = stats.poisson.logsf(count - 1, lam)
    best = int(np.argmin(logp))
    if logp[best] > np.log(FALSE_STREAKS / ntrials):
        return None
    return int(ia[best]), int(ir[best]), float(lam[best])


def _refine(py, px, theta, rho, *, width=2.0, iterations=3) -> tuple[float, float]:
    """The line through the points within ``width`` blocks of a Hough line, by total least
    squares: the transform's bins are a block wide, and a long streak drifts out of the one
    that holds most of it."""
    for _ in range(iterations):
        c, s = np.cos(theta), np.sin(theta)
        near = np.abs(px * c + py * s - rho) <= width
        if near.sum() < 3:
            break
        x, y = px[near], py[near]
        cov = np.cov(np.vstack([x - x.mean(), y - y.mean()]))
        normal = np.linalg.eigh(cov)[1][:, 0]  # the direction of least spread
        theta = float(np.arctan2(normal[1], normal[0])) % np.pi
        rho = float(x.mean() * np.cos(theta) + y.mean() * np.sin(theta))
    return theta, rho


def _band(py, px, theta, rho, along_lo, along_hi, density, length):
    """Half-width in blocks of the streak's band: out to where the density of points in unit
    strips either side falls to ``density`` (3 sigma)."""
    c, s = np.cos(theta), np.sin(theta)
    across = px * c + py * s - rho
    along = -px * s + py * c
    on = (along >= along_lo) & (along <= along_hi)
    expect = density * max(length, 1.0)
    half = 0
    while half < 50:
        k = half + 1
        n = np.sum(on & (np.abs(across) > k - 0.5) & (np.abs(across) <= k + 0.5))
        if n <= 2 * expect + 3 * np.sqrt(2 * expect) + 1:  # both strips together
            break
        half = k
    return half


def _spread(along: np.ndarray, t0: float, t1: float) -> bool:
    """Whether points lie along the whole run from ``t0`` to ``t1``, as a streak's do: three
    of its quarters hold some, and none holds most. A chain of two or three sources' residuals
    with a stray point or two beyond it is as long, and not so."""
    counts = np.histogram(along, bins=4, range=(t0, t1))[0]
    return bool((counts > 0).sum() >= 3 and counts.max() <= SPREAD_MAX * counts.sum())


def _is_streak(along: np.ndarray, group: np.ndarray, t0: float, t1: float, at_edge: float,
               crest: float) -> bool:
    """Whether a line's points (``along`` it, in connected ``group``s) make a streak that runs
    from ``t0`` to ``t1``, given the share of them at an edge of the data and the median
    block significance along the line.

    A streak is long (``MIN_LENGTH``), spread along its length (:func:`_spread`), away from the
    edges, raises the blocks along its whole course (``CREST_MIN``), and is either one long
    group (a bright streak) or many (a faint one's fragments). A few cosmic-ray tracks, a
    galaxy's residual, or a chain of sources that happen to line up are few short groups.
    """
    if t1 - t0 < MIN_LENGTH or at_edge > 0.5 or crest < CREST_MIN or not _spread(along, t0, t1):
        return False
    ids, inverse = np.unique(group, return_inverse=True)
    if ids.size >= MIN_POINTS:
        return True
    lo = np.full(ids.size, np.inf)
    hi = np.full(ids.size, -np.inf)
    np.minimum.at(lo, inverse, along)
    np.maximum.at(hi, inverse, along)
    return bool(np.max(hi - lo) >= MIN_LENGTH)


def _crest(z: np.ndarray, good: np.ndarray, theta: float, rho: float, t0: float,
           t1: float) -> float:
    """Median of the block significance ``z`` along a line from ``t0`` to ``t1``. A streak
    raises it along its whole length; a line that strings a few sources' residuals together
    with noise peaks finds plain noise on most of its course, and a median near 0."""
    t = np.arange(t0, t1 + 1.0)
    c, s = np.cos(theta), np.sin(theta)
    x, y = rho * c - t * s, rho * s + t * c
    inside = (x >= 0) & (x <= z.shape[1] - 1) & (y >= 0) & (y <= z.shape[0] - 1)
    x, y = x[inside], y[inside]
    keep = good[np.round(y).astype(int), np.round(x).astype(int)]
    if keep.sum() < MIN_POINTS:
        return 0.0
    values = ndimage.map_coordinates(z, [y[keep], x[keep]], order=1)
    return float(np.median(values))


def _extent(along: np.ndarray) -> tuple[float, float]:
    """The run of positions along a line that holds most of them, cut at wide gaps; an empty
    run (0, 0) when there are none."""
    t = np.sort(along)
    if t.size < 2:
        return (float(t[0]), float(t[0])) if t.size else (0.0, 0.0)
    spacing = float(np.median(np.diff(t))) if t.size > 2 else float(t[-1] - t[0])
    gap = max(GAP_MIN, GAP_SPACINGS * spacing)
    breaks = np.flatnonzero(np.diff(t) > gap)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [t.size - 1]])
    k = int(np.argmax(ends - starts))
    margin = max(spacing, 1.0)
    return float(t[starts[k]] - margin), float(t[ends[k]] + margin)


def find_streaks(scorr: np.ndarray, mask: np.ndarray | None = None, *, fwhm: float = 2.0,
                signs: tuple[int, ...] = (1, -1)) -> list[Streak]:
    """Streaks (satellites, aircraft, meteors) in ``scorr``, in its pixel coordinates.

    Parameters
    ----------
    scorr : ndarray
        Scorr (or any significance image of unit noise that a streak raises along its length).
    mask : ndarray of bool, optional
        Pixels without data.
    fwhm : float
        FWHM of the difference PSF, pixels: sets the block size (at least 4 pixels, and at
        most ``MAX_BLOCKS`` blocks per side).
    signs : tuple of int
        +1: streaks in the science image; -1: in the reference.

    Returns
    -------
    list of Streak
        The streaks found, strongest first for each sign.
    """
    shape = scorr.shape
    block = int(max(4, np.ceil(fwhm), np.ceil(max(shape) / MAX_BLOCKS)))
    if min(shape) < 16 * block:
        return []
    z, good = block_significance(scorr, mask, block)
    # Scorr along the image's edges and about masked areas departs from plain noise over
    # whole rows of blocks (the kernels run off the data there): those blocks cast no points
    good = ndimage.binary_erosion(good, structure=np.ones((3, 3)), border_value=0)
    # farther out, the excess is weaker but still there along a whole edge (the edge of a
    # reference's coverage, a bad column): a line that keeps to it is not a streak
    edge = ~ndimage.binary_erosion(good, structure=np.ones((2 * EDGE + 1,) * 2),
                                   border_value=0)
    bshape = z.shape
    diag = float(np.hypot(*bshape))
    # angular steps of two blocks over the longest line: the nearest step then drifts at most
    # half a block from a line's true course over the image, which keeps it within a pair of
    # bins (_strongest_line); _refine then fits it
    theta = np.linspace(0.0, np.pi, int(np.ceil(np.pi * diag / 2)), endpoint=False)
    rho = np.arange(-np.ceil(bshape[1]), np.ceil(diag) + 1)
    # lines across the image: the image's mean width over all directions, per angle
    ntrials = len(theta) * 2.0 / np.pi * (bshape[0] + bshape[1])
    streaks: list[Streak] = []
    for sign in signs:
        points = streak_points((sign * z > LEVEL) & good)
        py, px = (v.astype(np.float64) for v in np.nonzero(points))
        group = ndimage.label(points, structure=np.ones((3, 3)))[0][points]
        for _ in range(MAX_STREAKS):
            if py.size < MIN_POINTS:
                break
            # of the points left: a bright streak's own would raise the count expected of a
            # faint one that crosses it
            density = py.size / max(1, good.sum())
            found = _strongest_line(py, px, bshape, density, theta, rho, ntrials)
            if found is None:
                break
            ia, ir, lam = found
            th, r = float(theta[ia]), float(rho[ir]) + 0.5
            # the points of the transform's bins: taken out should the refitted line miss them
            binned = np.abs(px * np.cos(th) + py * np.sin(th) - r) <= 1.0
            th, r = _refine(py, px, th, r)
            c, s = np.cos(th), np.sin(th)
            across = px * c + py * s - r
            along = -px * s + py * c
            t0, t1 = _extent(along[np.abs(across) <= 1.0])
            half = _band(py, px, th, r, t0, t1, density, t1 - t0)
            take = (np.abs(across) <= half + 1.0) & (along >= t0) & (along <= t1)
            if not take.any():
                py, px, group = py[~binned], px[~binned], group[~binned]
                continue
            thin = take & (np.abs(across) <= 1.0)
            if _is_streak(along[thin], group[thin], t0, t1,
                          edge[py[thin].astype(int), px[thin].astype(int)].mean(),
                          _crest(sign * z, good, th, r, t0, t1)):
                streaks.append(_to_pixels(th, r, half, t0, t1, block, fwhm, sign,
                                          int(take.sum()), lam))
            # a streak's points, or a line's that is none (see _is_streak): search on without
            py, px, group = py[~take], px[~take], group[~take]
    return streaks


def _to_pixels(theta, rho, half, t0, t1, block, fwhm, sign, points, expected) -> Streak:
    """A streak found on the block grid, in the image's pixels: block (i, j) covers pixels
    ``i * block ... (i + 1) * block - 1``, so its centre is pixel ``block * i + (block - 1) / 2``.
    The band takes in the blocks either side and a PSF width, where a streak's faint edge can
    still raise a candidate."""
    c, s = np.cos(theta), np.sin(theta)
    off = (block - 1) / 2.0
    return Streak(rho=block * rho + off * (c + s), theta=theta,
                 half_width=block * (half + 1.0) + fwhm,
                 t0=block * t0 + off * (c - s) - block, t1=block * t1 + off * (c - s) + block,
                 sign=sign, points=points, expected=expected)


def on_streaks(streaks: list[Streak], x, y) -> np.ndarray:
    """Whether positions lie on any of ``streaks``."""
    x = np.asarray(x, float)
    out = np.zeros(x.shape, bool)
    for streak in streaks:
        out |= streak.contains(x, y)
    return out


def streak_mask(streaks: list[Streak], shape: tuple[int, int], rows: int = 512) -> np.ndarray:
    """Boolean image of the pixels on any of ``streaks``."""
    out = np.zeros(shape, bool)
    x = np.arange(shape[1], dtype=np.float64)[None, :]
    for r0 in range(0, shape[0], rows):
        y = np.arange(r0, min(shape[0], r0 + rows), dtype=np.float64)[:, None]
        for streak in streaks:
            out[r0:r0 + rows] |= streak.contains(x, y)
    return out
