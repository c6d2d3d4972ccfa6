"""Compile the science kernels ahead of the first job: ``python -m rapid.science.warmup``.

The per-pixel kernels (:mod:`rapid.science.sampling`, :mod:`rapid.science.stack` and the box
statistics of :mod:`rapid.science.coadd`) are compiled by numba on first use and cached on disk
(beside the modules, or under ``NUMBA_CACHE_DIR``). Running them here once on tiny inputs of
the types the pipeline passes puts every compiled version in that cache, so that no job spends
its first seconds compiling. Installation (``make install``, the container image) runs it.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["compile_kernels"]


def compile_kernels() -> float:
    """Run every compiled kernel once on tiny inputs; returns the seconds it took."""
    from astropy.wcs import WCS

    from rapid.science.coadd import MeshBackground
    from rapid.science.resample import CoarsePixelMap
    from rapid.science.sampling import (
        footprint_touches,
        interpolation_coefficients,
        sample_block,
        sample_mapped,
    )
    from rapid.science.stack import combine_stack

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    image = rng.normal(size=(40, 40)).astype(np.float32)
    bad = np.zeros(image.shape, dtype=bool)
    bad[5, 7] = True
    ys, xs = (np.mgrid[0:30, 0:30] * 1.1 + 0.3).astype(np.float64)
    for order in (0, 1, 3):
        coeffs = interpolation_coefficients(image, order)
        for maps in ({}, {"badmap": bad, "unc": np.ones_like(image), "satmap": bad}):
            sample_block(coeffs, ys, xs, order=order, src_shape=image.shape, **maps)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-3e-5, 3e-5]
    mapped = CoarsePixelMap(wcs, wcs, (30, 30), step=8).mapped_rows(0, 30)
    for order in (1, 3):
        coeffs = interpolation_coefficients(image, order)
        sample_mapped(coeffs, mapped, order=order, src_shape=image.shape, badmap=bad,
                      unc=np.ones_like(image), satmap=bad)
    footprint_touches(bad, ys, xs, order=3)
    MeshBackground(image, bad, box=8).back(0, 40, 0, 40)
    stack = rng.normal(size=(5, 6, 7)).astype(np.float32)
    weights = np.ones_like(stack)
    weights[0, 2, 3] = 0.0
    combine_stack(stack, weights)
    combine_stack(stack, weights, halo=1)
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"science kernels ready ({compile_kernels():.1f} s)")
