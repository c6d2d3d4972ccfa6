"""Registration of the reference against the science image from cross-matched stars.

The reference reaches the science grid through the two images' WCS. An error in either solution
(a zero-point offset, a small rotation or scale error: a tenth of an arcsecond is a pixel of
Roman's) leaves every star as a dipole in the difference image. ZOGY's astrometric-noise term
hides such dipoles in Scorr, but it also hides transients near stars and on their host galaxies,
and the fluxes measured there on D stay wrong. So the offsets of matched stars are fitted as an
affine function of the science position (a shift alone when there are few stars) and, where that
fit is significant, the reference is resampled once more through the corrected mapping: science
pixel (x, y) takes the reference at the sky position of (x - dx(x, y), y - dy(x, y)).

Offsets larger than the cross-match radius are first found by :func:`common_offset`, a vote over
the differences of all pairs of bright sources from the two catalogs. What is left after the
registration is weighed by ZOGY's astrometric-noise term, at the size
:func:`registration_noise` measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.spatial import cKDTree


def common_offset(xy_a: np.ndarray, xy_b: np.ndarray, max_offset: float, *,
                  radius: float = 1.0, min_votes: int = 3) -> tuple[float, float] | None:
    """The offset ``a - b`` shared by most pairs of positions, or None when none stands out.

    Every pair closer than ``max_offset`` votes for its difference; the difference with the most
    others within ``radius`` wins, refined to their median. Pairs of unrelated sources spread
    their votes over the whole disc, the true pairs pile up at one point.

    Parameters
    ----------
    xy_a, xy_b : ndarray
        (n, 2) positions (x, y) in pixels of the two catalogs, best the brightest few hundred.
    max_offset : float
        Largest offset searched, pixels.
    radius : float, optional
        Votes within this distance of each other agree (1 pixel): a centroid's error is a
        fraction of it.
    min_votes : int, optional
        Fewest agreeing pairs for an answer (3).

    Returns
    -------
    (dx, dy) or None
    """
    xy_a = np.asarray(xy_a, dtype=np.float64).reshape(-1, 2)
    xy_b = np.asarray(xy_b, dtype=np.float64).reshape(-1, 2)
    if max_offset <= 0 or len(xy_a) == 0 or len(xy_b) == 0:
        return None
    neighbours = cKDTree(xy_b).query_ball_point(xy_a, r=max_offset)
    ia = np.repeat(np.arange(len(xy_a)), [len(n) for n in neighbours])
    ib = np.fromiter((j for n in neighbours for j in n), dtype=np.intp, count=len(ia))
    if len(ia) < min_votes:
        return None
    diffs = xy_a[ia] - xy_b[ib]
    tree = cKDTree(diffs)
    counts = np.array([len(n) for n in tree.query_ball_point(diffs, r=radius)])
    best = int(np.argmax(counts))
    if counts[best] < min_votes:
        return None
    agree = diffs[tree.query_ball_point(diffs[best], r=radius)]
    # A lone true pair in a sparse field wins with the pairs of its neighbours: ask for the
    # winner to beat the votes a uniform spread would give one point by a wide margin.
    expected = len(diffs) * (radius / max_offset) ** 2
    if counts[best] < 3.0 * expected + min_votes:
        return None
    dx, dy = np.median(agree, axis=0)
    return float(dx), float(dy)


@dataclass(frozen=True)
class Registration:
    """Offsets science minus reference, an affine function of the science position.

    ``dx(x, y) = cx . (1, u, v)`` and likewise for dy, with ``u = (x - centre_x) / scale``,
    ``v = (y - centre_y) / scale``.

    Attributes
    ----------
    cx, cy : ndarray
        Coefficients (3,) of dx and dy (the linear ones 0 for a shift-only fit).
    centre : (float, float)
        (x, y) about which the fit is made, pixels.
    scale : float
        Position unit of the linear terms, pixels.
    cov : ndarray
        (3, 3) covariance of the coefficients for unit residuals.
    sigma : (float, float)
        Residual rms of dx and dy about the fit, pixels.
    nstars : int
        Stars kept by the fit.
    """

    cx: np.ndarray
    cy: np.ndarray
    centre: tuple[float, float]
    scale: float
    cov: np.ndarray
    sigma: tuple[float, float]
    nstars: int

    def _design(self, x, y) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        return np.stack([np.ones_like(x), (x - self.centre[0]) / self.scale,
                         (y - self.centre[1]) / self.scale], axis=-1)

    def offsets(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) at science positions ``x``, ``y`` (arrays of one shape)."""
        a = self._design(x, y)
        return a @ self.cx, a @ self.cy

    def significant(self, shape, *, min_shift: float, nsigma: float) -> bool:
        """True when at a corner or the centre of an image of ``shape`` the fitted offset exceeds
        both ``min_shift`` pixels and ``nsigma`` times its own error."""
        ny, nx = shape
        x = np.array([0.0, nx - 1.0, 0.0, nx - 1.0, (nx - 1) / 2])
        y = np.array([0.0, 0.0, ny - 1.0, ny - 1.0, (ny - 1) / 2])
        a = self._design(x, y)
        dx, dy = a @ self.cx, a @ self.cy
        # variance of a predicted offset: a^T C a times the residual variance
        spread = np.einsum("ij,jk,ik->i", a, self.cov, a)
        size = np.hypot(dx, dy)
        err = np.sqrt(spread * (self.sigma[0] ** 2 + self.sigma[1] ** 2))
        return bool(np.any((size > min_shift) & (size > nsigma * err)))

    def largest(self, shape) -> float:
        """Largest offset over the corners of an image of ``shape``, pixels."""
        ny, nx = shape
        dx, dy = self.offsets(np.array([0.0, nx - 1.0, 0.0, nx - 1.0]),
                              np.array([0.0, 0.0, ny - 1.0, ny - 1.0]))
        return float(np.max(np.hypot(dx, dy)))


def fit_registration(x, y, dx, dy, shape, *, clip: float = 3.0,
                     min_affine: int = 10) -> Registration | None:
    """Fit the offsets ``dx``, ``dy`` of matched stars at science positions ``x``, ``y``.

    Parameters
    ----------
    x, y, dx, dy : array_like
        Star positions on the science image and offsets science minus reference, pixels.
    shape : (int, int)
        Science image shape; its centre and half-diagonal set the fit's origin and unit.
    clip : float, optional
        Stars whose residual exceeds ``clip`` times the robust rms are dropped, iteratively (3).
    min_affine : int, optional
        Fewest stars for the affine fit (10); fewer fit a shift.

    Returns
    -------
    Registration or None
        None with fewer than 2 stars. Two fit a shift whose error comes from how well they
        agree: a small image may hold no more, and a reference off by two pixels leaves every
        source a dipole; two that disagree (one mismatched) give a shift that
        :meth:`Registration.significant` refuses.
    """
    x, y, dx, dy = (np.asarray(v, dtype=np.float64).ravel() for v in (x, y, dx, dy))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(dx) & np.isfinite(dy)
    if ok.sum() < 2:
        return None
    ny, nx = shape
    centre = ((nx - 1) / 2.0, (ny - 1) / 2.0)
    scale = max(1.0, 0.5 * float(np.hypot(nx, ny)))
    ncoef = 3 if ok.sum() >= min_affine else 1
    a_all = np.stack([np.ones_like(x), (x - centre[0]) / scale, (y - centre[1]) / scale], axis=-1)

    def solve(use):
        a = a_all[use][:, :ncoef]
        coef_x = np.linalg.lstsq(a, dx[use], rcond=None)[0]
        coef_y = np.linalg.lstsq(a, dy[use], rcond=None)[0]
        return coef_x, coef_y, dx - a_all[:, :ncoef] @ coef_x, dy - a_all[:, :ncoef] @ coef_y

    use = ok.copy()
    for _ in range(10):
        coef_x, coef_y, rx, ry = solve(use)
        r = np.hypot(rx, ry)
        # the per-axis sigma of a 2-D Gaussian from the median radius, sigma * sqrt(2 ln 2),
        # over all stars: the median ignores the blunders, and the clipped set's median would
        # shrink with each pass
        rms = max(float(np.median(r[ok])) / np.sqrt(2 * np.log(2)), 1e-6)
        new = ok & (r < clip * rms)
        if new.sum() < max(3, ncoef + 2) or np.array_equal(new, use):
            break
        use = new
    coef_x, coef_y, rx, ry = solve(use)
    a = a_all[use][:, :ncoef]
    cov = np.zeros((3, 3))
    cov[:ncoef, :ncoef] = np.linalg.pinv(a.T @ a)
    cx = np.zeros(3)
    cy = np.zeros(3)
    cx[:ncoef], cy[:ncoef] = coef_x, coef_y
    dof = max(int(use.sum()) - ncoef, 1)
    sigma = (float(np.sqrt(np.sum(rx[use] ** 2) / dof)), float(np.sqrt(np.sum(ry[use] ** 2) / dof)))
    return Registration(cx=cx, cy=cy, centre=centre, scale=scale, cov=cov, sigma=sigma,
                        nstars=int(use.sum()))


def registration_noise(offsets: np.ndarray, centroid_var: np.ndarray, *,
                       min_stars: int = 10, per_bin: int = 25) -> float:
    """The registration error of one axis, net of the stars' centroid noise.

    A matched star's offset holds the registration error at its place and the noise of its
    two centroids, which grows as (FWHM / S/N)^2: the scatter of faint stars says little about
    how well a bright static source is subtracted. The stars are grouped by ``centroid_var``
    (sum over both images of (FWHM / S/N)^2; about ``per_bin`` stars a group, 2 to 10 groups),
    each group's mean square offset is fitted as ``a + b * centroid_var`` (``b`` >= 0, the
    unknown constant of the centroid estimator), weighing a group by the inverse variance of
    its mean square, and ``sqrt(a)`` is returned. Errors that do not fall with S/N
    (distortions left by the registration, pixel-phase errors of undersampled images) stay in
    ``a``. With fewer than ``min_stars`` stars, the plain root mean square.
    """
    y = np.asarray(offsets, dtype=np.float64) ** 2
    x = np.asarray(centroid_var, dtype=np.float64)
    ok = np.isfinite(y) & np.isfinite(x)
    y, x = y[ok], x[ok]
    if y.size == 0:
        return 0.0
    if y.size < min_stars:
        return float(np.sqrt(np.mean(y)))
    groups = np.array_split(np.argsort(x), int(np.clip(y.size // per_bin, 2, 10)))
    mx = np.array([x[g].mean() for g in groups])
    my = np.array([y[g].mean() for g in groups])
    if not my.max() > 0:  # identical positions: no registration error at all
        return 0.0
    # a mean of n squared Gaussian deviates has variance 2 mean^2 / n
    sw = np.sqrt([g.size for g in groups]) / np.maximum(my, 1e-6 * my.max())
    (a, _b), _ = nnls(np.column_stack([np.ones_like(mx), mx]) * sw[:, None], my * sw)
    return float(np.sqrt(a))
