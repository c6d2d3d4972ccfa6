"""Outlier-rejected, inverse-variance weighted mean of a stack of resampled frames.

:func:`combine_stack` is the per-pixel heart of a reference coadd. Each output pixel sees at most
25 samples. Their medians are found for thousands of pixels at once by a sorting network
(vectorised comparisons, no per-pixel branching); the rejection tests and the weighted mean are
then one compiled loop (numba) over each pixel's own samples, rather than a dozen whole-stack
numpy passes and a sort of the full (frames x rows x width) block.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

__all__ = ["combine_stack"]


#: Pixels whose samples are sorted together; (32 x 4096) float32 work stays in a core's L2 cache.
_CHUNK = 4096


@functools.lru_cache(maxsize=None)
def _sorting_network(n: int) -> np.ndarray:
    """Comparator pairs (i, j), i < j < n, that sort n values: Batcher's odd-even merge sort of
    the next power of 2 >= n, padded with +inf.

    Applying them in order (swap when the value at i exceeds that at j) sorts any input. The
    padding never moves (a comparator meets it only as the larger value, at its higher index),
    so the comparators that reach past n are dropped: a quarter of them for 25 values.
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return pairs[pairs[:, 1] < n]


@numba.njit(cache=True, nogil=True, inline="always")
def _compare_exchange(lo, hi, width: int) -> None:
    for j in range(width):
        a = lo[j]
        b = hi[j]
        lo[j] = min(a, b)
        hi[j] = max(a, b)


@numba.njit(cache=True, nogil=True)
def _medians(values, weights, network, med_out, n_out) -> None:
    """Per-pixel median of the valid samples (NaN where none) and their number.

    The samples of a run of pixels are sorted together by a sorting network, one comparator at
    a time over all the pixels (a branch-free loop the compiler vectorises), invalid samples
    entering as +inf so that each pixel's n valid values come first; several times faster than
    sorting each pixel's samples on their own.
    """
    nk, ny, nx = values.shape
    work = np.empty((nk, _CHUNK), dtype=np.float32)
    count = np.empty(_CHUNK, dtype=np.int64)
    for i in range(ny):
        for c0 in range(0, nx, _CHUNK):
            width = min(nx, c0 + _CHUNK) - c0
            count[:width] = 0
            for k in range(nk):
                for j in range(width):
                    if weights[k, i, c0 + j] > 0:
                        work[k, j] = values[k, i, c0 + j]
                        count[j] += 1
                    else:
                        work[k, j] = np.inf
            for c in range(network.shape[0]):
                _compare_exchange(work[network[c, 0]], work[network[c, 1]], width)
            for j in range(width):
                n = count[j]
                n_out[i, c0 + j] = n
                if n > 0:
                    med_out[i, c0 + j] = 0.5 * (np.float64(work[(n - 1) // 2, j])
                                                + np.float64(work[n // 2, j]))
                else:
                    med_out[i, c0 + j] = np.nan


@numba.njit(cache=True, nogil=True, inline="always")
def _local_peak(med, r: int, j: int) -> float:
    """Largest |median| over pixel (r, j) and its 8 neighbours (NaN neighbours skipped)."""
    ny, nx = med.shape
    peak = 0.0
    for a in range(max(r - 1, 0), min(r + 2, ny)):
        for b in range(max(j - 1, 0), min(j + 2, nx)):
            v = abs(med[a, b])
            if v > peak:  # False for NaN
                peak = v
    return peak


@numba.njit(cache=True, nogil=True)
def _combine(values, weights, med_all, n_all, halo, clip2, tol2, mean_out, sumw_out,
             count_out) -> int:
    nk, ny_all, nx = values.shape
    ny = ny_all - 2 * halo
    vrow = np.empty((nx, nk), dtype=np.float32)
    wrow = np.empty((nx, nk), dtype=np.float32)
    keep = np.empty(nk, dtype=np.bool_)
    rejected = 0
    for i in range(ny):
        r = i + halo
        for k in range(nk):
            for j in range(nx):
                vrow[j, k] = values[k, r, j]
                wrow[j, k] = weights[k, r, j]
        for j in range(nx):
            v = vrow[j]
            w = wrow[j]
            n = n_all[r, j]
            if n == 0:
                mean_out[i, j] = np.nan
                sumw_out[i, j] = 0.0
                count_out[i, j] = 0
                continue
            med = med_all[r, j]
            b = clip2 * tol2 * med * med
            for k in range(nk):
                keep[k] = w[k] > 0
            if n >= 3:
                a = clip2 * (1.0 + np.pi / (2.0 * n))
                kept = 0
                for k in range(nk):
                    if keep[k]:
                        d = v[k] - med
                        if d * d * w[k] > w[k] * b + a:
                            keep[k] = False
                        else:
                            kept += 1
                if kept < 2:
                    # The samples disagree among themselves, not one with the rest: a variable
                    # star, or a bright star's flank resampled from different sub-pixel phases.
                    # All of them stand, rather than a pixel the difference image would have to
                    # mask (every bright star and variable of a 3-frame reference lost pixels
                    # so, and with them their surroundings); all, not some, so that a variable
                    # star is the same mean of its epochs in its core and on its fainter flanks.
                    for k in range(nk):
                        keep[k] = w[k] > 0
            elif n == 2:
                # Two samples: drop the higher when they disagree (cosmic rays, transients).
                vmax = -np.inf
                vmin = np.inf
                sig2 = 0.0
                for k in range(nk):
                    if keep[k]:
                        vmax = max(vmax, v[k])
                        vmin = min(vmin, v[k])
                        sig2 += 1.0 / w[k]
                # Which of two disagreeing samples is right is unknown, and on a bright
                # undersampled star's flank frames resampled from different phases differ by a
                # fraction of the star's peak, not of the pixel's own (much lower) value:
                # dropping the higher there would bias the flank low, so the allowance follows
                # the brightest median next to the pixel.
                peak = _local_peak(med_all, r, j)
                if (vmax - vmin) ** 2 > clip2 * (sig2 + tol2 * peak * peak):
                    for k in range(nk):
                        if keep[k] and v[k] == vmax:
                            keep[k] = False
            if n >= 4:
                sw = 0.0
                swv = 0.0
                for k in range(nk):
                    if keep[k]:
                        sw += w[k]
                        swv += w[k] * v[k]
                if sw > 0:
                    # Second pass against the weighted mean of the survivors (the first pass
                    # kept two at least); it may never leave fewer than two.
                    mean = swv / sw
                    survivors = 0
                    for k in range(nk):
                        if w[k] > 0:
                            d = v[k] - mean
                            if not (d * d * w[k] > w[k] * b + clip2):
                                survivors += 1
                    if survivors >= 2:
                        for k in range(nk):
                            d = v[k] - mean
                            keep[k] = w[k] > 0 and not (d * d * w[k] > w[k] * b + clip2)
            sw = 0.0
            swv = 0.0
            count = 0
            for k in range(nk):
                if keep[k]:
                    sw += w[k]
                    swv += w[k] * v[k]
                    count += 1
            mean_out[i, j] = swv / sw if sw > 0 else np.nan
            sumw_out[i, j] = sw
            count_out[i, j] = count
            rejected += n - count
    return rejected


def combine_stack(values: np.ndarray, weights: np.ndarray, *, clip_sigma: float = 3.0,
                  interp_tolerance: float = 0.2, halo: int = 0):
    """Inverse-variance weighted mean of a stack with per-pixel outlier rejection.

    Each sample k has sigma_k = 1/sqrt(weight_k). With 3 or more samples, a sample is rejected when
    it deviates from the median by more than ``clip_sigma`` times
    sqrt(sigma_k² (1 + pi/(2n)) + (interp_tolerance * median)²), the second term allowing for
    interpolation differences on bright, undersampled stars; when that would leave fewer than
    two, the samples disagree among themselves rather than one with the rest (a variable star, a
    bright star's flank resampled from different phases) and all are kept. With 4 or more
    samples the test is repeated against the weighted mean of the survivors (with sigma_k²
    alone as the first term); it replaces the first verdict unless it would leave fewer than
    two samples. With exactly 2 samples the higher one is dropped when they disagree by more
    than ``clip_sigma`` times sqrt(sigma_1² + sigma_2² + (interp_tolerance * peak)²) (cosmic
    rays and transients are positive), where ``peak`` is the largest |median| over the pixel and
    its 8 neighbours: on a star's flank two frames resampled from different sub-pixel phases
    differ by a fraction of the star's peak, and with no third sample to tell which is right,
    dropping the higher would bias the flank low (and leave a false brightening in every
    difference image against it). A single sample is kept.

    Parameters
    ----------
    values : ndarray
        (K, ny, nx) stack, NaN where a frame has no valid sample.
    weights : ndarray
        (K, ny, nx) inverse variances, 0 where invalid.
    clip_sigma : float, optional
        Rejection threshold in sigma (default 3).
    interp_tolerance : float, optional
        Fractional allowance for interpolation differences (default 0.2).
    halo : int, optional
        Rows at the top and at the bottom of the stack that only give the neighbourhood of the
        others (0 or 1): a stack combined in row blocks then sees across the block edges.

    Returns
    -------
    mean, sumw, count, nrejected
        float32 weighted mean (NaN where nothing survives), float32 sum of surviving weights,
        int16 number of surviving samples per pixel, and the number of rejected samples; for
        the ``ny - 2 * halo`` rows inside the halo.
    """
    values = np.asarray(values)
    weights = np.asarray(weights)
    if values.ndim != 3 or values.shape != weights.shape:
        raise ValueError(f"values and weights must be 3-D of one shape, got {values.shape} "
                         f"and {weights.shape}")
    if not (np.isfinite(clip_sigma) and clip_sigma > 0):
        raise ValueError(f"clip_sigma must be positive, got {clip_sigma}")
    if not (np.isfinite(interp_tolerance) and interp_tolerance >= 0):
        raise ValueError(f"interp_tolerance must be >= 0, got {interp_tolerance}")
    if halo not in (0, 1) or values.shape[1] <= 2 * halo:
        raise ValueError(f"halo must be 0 or 1 and leave rows to combine, got {halo} for "
                         f"{values.shape[1]} rows")
    _, ny_all, nx = values.shape
    ny = ny_all - 2 * halo
    values = np.ascontiguousarray(values, dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    med = np.empty((ny_all, nx), dtype=np.float64)
    nvalid = np.empty((ny_all, nx), dtype=np.int64)
    _medians(values, weights, _sorting_network(values.shape[0]), med, nvalid)
    mean = np.empty((ny, nx), dtype=np.float32)
    sumw = np.empty((ny, nx), dtype=np.float32)
    count = np.empty((ny, nx), dtype=np.int16)
    rejected = _combine(values, weights, med, nvalid, int(halo), float(clip_sigma) ** 2,
                        float(interp_tolerance) ** 2, mean, sumw, count)
    return mean, sumw, count, int(rejected)
