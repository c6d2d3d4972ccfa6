"""Sky levels by local linear regression, which hold the sky's slope up to an edge of the data.

sep, like SExtractor, keeps a mesh's sky statistic only when at least half of the mesh's pixels
are valid; the others take their neighbours' values. Beside a reference's coverage edge, a chip
gap or a masked bright galaxy the background is then flat over one to two meshes while the sky
goes on sloping. On a simulated ground-based pair whose sky slopes by 3% across the field the
resampled reference's background was 2 ADU (0.1 sigma per pixel) off at its coverage edge, and
Scorr stood at -0.9 over the last 40 pixels: a band of false fading candidates, and a trail
search that took the band for a trail.

Here a sky is fitted to the valid pixels themselves: blocks a quarter of the kernel wide give the
median of their valid pixels at the centroid of those pixels, and a local linear regression
with a Gaussian kernel, weighted by the pixels each block holds, follows the slope up to the
edge where a mesh statistic cannot. :func:`edge_correction` refits sep's background next to the
meshes sep replaced; :func:`local_linear_level` is the whole smooth level of an image (the
difference of science and reference, whose sky is symmetric noise about that level).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: sep's least fraction of valid pixels for a mesh to keep its own statistic (BACK_MINGOODFRAC)
MIN_GOOD_FRACTION = 0.5


def _block_centres(n: int, block: int) -> np.ndarray:
    """Pixel coordinates of the centres of ``n`` blocks of ``block`` pixels."""
    return (np.arange(n) + 0.5) * block - 0.5


def _valid_fraction(skip: np.ndarray, box: int) -> np.ndarray:
    """Fraction of valid pixels in each ``box`` x ``box`` mesh (partial at the far edges)."""
    ny, nx = skip.shape
    valid = np.pad(~skip, ((0, -ny % box), (0, -nx % box)))
    counts = valid.reshape(valid.shape[0] // box, box, valid.shape[1] // box,
                           box).sum(axis=(1, 3))
    rows = np.minimum(box, ny - box * np.arange(counts.shape[0]))
    cols = np.minimum(box, nx - box * np.arange(counts.shape[1]))
    return counts / np.outer(rows, cols)


def replaced_meshes(skip: np.ndarray, box: int) -> np.ndarray:
    """The sep meshes (``box`` pixels, partial at the far edges) with fewer than half of their
    pixels valid: those whose statistic sep replaces by its neighbours'."""
    return _valid_fraction(skip, box) < MIN_GOOD_FRACTION


def _block_medians(data: np.ndarray, skip: np.ndarray, size: int):
    """Median of each block's valid pixels, their count, and their centroid (x, y)."""
    ny, nx = data.shape
    r = np.pad(np.where(skip, np.float32(np.nan), data.astype(np.float32, copy=False)),
               ((0, -ny % size), (0, -nx % size)), constant_values=np.nan)
    nby, nbx = r.shape[0] // size, r.shape[1] // size
    valid = np.isfinite(r).reshape(nby, size, nbx, size)
    count = valid.sum(axis=(1, 3))
    offsets = np.arange(size, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = valid.sum(axis=1) @ offsets / count + np.arange(nbx)[None, :] * size
        cy = valid.sum(axis=3).transpose(0, 2, 1) @ offsets / count \
            + np.arange(nby)[:, None] * size
    # sorted, NaN last: the median is read at the valid count's middle (4x nanmedian's speed)
    ranked = np.sort(r.reshape(nby, size, nbx, size).transpose(0, 2, 1, 3)
                     .reshape(nby, nbx, -1), axis=-1)
    lo = np.take_along_axis(ranked, (np.maximum(count - 1, 0) // 2)[..., None], -1)[..., 0]
    hi = np.take_along_axis(ranked, (count // 2)[..., None], -1)[..., 0]
    some = count > 0
    med = np.where(some, 0.5 * (lo.astype(np.float64) + hi), 0.0)
    return med, count.astype(np.float64), np.where(some, cx, 0.0), np.where(some, cy, 0.0)


def _local_linear(values, weights, cx, cy, sigma_blocks: float, block: int) -> np.ndarray:
    """Local linear regression of ``values`` (at ``cx``, ``cy``, with ``weights``) under a
    Gaussian kernel of ``sigma_blocks`` blocks, at the centres of the blocks; NaN where no
    weight reaches. A slope the data cannot constrain (a one-block-wide strip) is held near
    zero by a ridge of 1% of the kernel's weight."""
    def smooth(a):
        return ndimage.gaussian_filter(a, sigma_blocks, mode="constant", cval=0.0, truncate=3.0)

    scale = sigma_blocks * block  # coordinates in kernel widths keep the equations conditioned
    nby, nbx = values.shape
    pv, pu = np.meshgrid(_block_centres(nby, block) / scale, _block_centres(nbx, block) / scale,
                         indexing="ij")
    u, v = cx / scale, cy / scale
    s0, su, sv = smooth(weights), smooth(weights * u), smooth(weights * v)
    suu, svv, suv = smooth(weights * u * u), smooth(weights * v * v), smooth(weights * u * v)
    sz = smooth(weights * values)
    szu, szv = smooth(weights * values * u), smooth(weights * values * v)
    # moments about each block's centre
    mu, mv = su - pu * s0, sv - pv * s0
    muu = suu - 2 * pu * su + pu * pu * s0
    mvv = svv - 2 * pv * sv + pv * pv * s0
    muv = suv - pu * sv - pv * su + pu * pv * s0
    ridge = 1e-2 * s0
    m = np.stack([np.stack([s0, mu, mv], -1), np.stack([mu, muu + ridge, muv], -1),
                  np.stack([mv, muv, mvv + ridge], -1)], -2)
    rhs = np.stack([sz, szu - pu * sz, szv - pv * sz], -1)
    out = np.full(s0.shape, np.nan)
    ok = s0 > 1e-6 * float(s0.max())
    if ok.any():
        out[ok] = np.linalg.solve(m[ok], rhs[ok][..., None])[..., 0, 0]
    return out


def _to_pixels(grid: np.ndarray, block: int, shape) -> np.ndarray:
    """Block-centre values bilinearly interpolated onto the pixels of ``shape``."""
    full = ndimage.zoom(grid, block, order=1, grid_mode=True, mode="nearest")
    return full[:shape[0], :shape[1]].astype(np.float32)


def local_linear_level(data: np.ndarray, skip: np.ndarray, scale: float) -> np.ndarray | None:
    """The smooth level of ``data`` (pixels in ``skip`` and NaNs left out) under a Gaussian
    kernel of ``scale`` pixels (sigma), from block medians a quarter of ``scale`` wide; float32
    on the pixels of ``data``, None when no pixel is valid."""
    if not scale >= 4:
        raise ValueError(f"scale must be >= 4 pixels, got {scale!r}")
    block = int(scale) // 4
    med, n, cx, cy = _block_medians(data, skip, block)
    if not (n > 0).any():
        return None
    fit = _local_linear(med, n, cx, cy, scale / block, block)
    return _to_pixels(np.where(np.isfinite(fit), fit, 0.0), block, data.shape)


def edge_correction(data: np.ndarray, back: np.ndarray, skip: np.ndarray,
                    box: int) -> np.ndarray | None:
    """What to add to sep's background ``back`` of ``data`` (meshes of ``box`` pixels, pixels
    in ``skip`` left out) next to the meshes sep replaced: the local linear fit of the sky with
    a kernel of one mesh, less ``back``, less the offset of the block median from sep's mode
    estimate (the light of faint sources), taken from the blocks sep measured on full meshes
    nearby.
    Applied in full out to the second ring of meshes about a replaced one and tapered to zero
    by the third's centre; None where no valid pixel lies that near one.
    """
    fraction = _valid_fraction(skip, box)
    replaced = fraction < MIN_GOOD_FRACTION
    if not replaced.any():
        return None
    rings = ndimage.distance_transform_cdt(~replaced, metric="chessboard")
    taper = np.clip(2.5 - rings, 0.0, 1.0)
    if not ((fraction > 0) & (taper > 0)).any():
        return None
    block = max(1, box // 4)
    ny, nx = data.shape
    by, bx = _block_centres(-(-ny // block), block), _block_centres(-(-nx // block), block)
    # the taper at the blocks' centres, bilinear between the meshes' centres
    gy, gx = np.meshgrid((by - (box - 1) / 2) / box, (bx - (box - 1) / 2) / box, indexing="ij")
    t = ndimage.map_coordinates(taper, [gy.clip(0, taper.shape[0] - 1),
                                        gx.clip(0, taper.shape[1] - 1)], order=1)
    if not (t > 0).any():
        return None
    # the sky itself is fitted: the residual from sep's background bends where sep's
    # extrapolation begins, and a linear fit across that bend would fall short of it
    med, n, cx, cy = _block_medians(data, skip, block)
    at = ndimage.map_coordinates(back, np.meshgrid(np.minimum(by, ny - 1), np.minimum(bx, nx - 1),
                                                   indexing="ij"), order=1)
    sigma = box / block
    fit = _local_linear(med, n, cx, cy, sigma, block) - at
    trusted = np.where(t == 0, n, 0.0)
    offset = np.zeros_like(med)
    if trusted.sum() > 0:
        def wide(a):
            return ndimage.gaussian_filter(a, 3 * sigma, mode="constant", truncate=3.0)

        above = med - at
        with np.errstate(invalid="ignore", divide="ignore"):
            near = wide(trusted * above) / wide(trusted)
        offset = np.where(np.isfinite(near), near, float(np.median(above[trusted > 0])))
    corr = np.where(np.isfinite(fit), t * (fit - offset), 0.0)
    return _to_pixels(corr, block, data.shape)
