"""A PSF estimated from stars, with its wings taken from a Moffat profile fitted to it.

A median stack of star stamps describes the core well: it is where the stars' light is. Its
wings, a few per cent of the light spread over most of the stamp, are at the mercy of what lies
around each star: the background estimate, which takes in part of a bright star's halo,
neighbours, and the noise of few stars. On a simulated ground-based pair (Moffat beta 2.5) the
stack of a whole 1024x1024 image held 0.02% of the light beyond 15 pixels where the PSF holds
1%, and the stack of a 200x300 cutout 1.5%, in lumps. Lumps and steps in a PSF model's wings
come back as spots of both signs around every bright star of the difference, a few PSF widths
out, where ZOGY's flux-noise term no longer weighs them. An elliptical Moffat profile fitted to
the whole stack follows its core and carries it out smoothly, as seeing-limited PSFs fall off;
beyond ``OUTER`` FWHM the PSF is the Moffat's, inside ``INNER`` the stack's, with a cosine
blend between. This is the analytic-profile-plus-residual description of DAOPHOT and PSFEx, the
residual kept only where the stars measure it well.

On 20 cutouts (128-384 pixels a side) of the simulated pairs of seeds 1-4
(`tests/science/ground_pair.py`) the candidates besides transients and variable stars fell
from 71 to 2, and 25 rather than 24 of the 29 transients at S/N >= 10 were found; on the whole
1024x1024 pairs of seeds 1-8 and the 2048x2048 pair every figure moved by one object at most.
An undersampled PSF (under ``rapid.science.config.PsfConfig.moffat_wings_from_fwhm`` pixels
wide) is left as it is: its wings are diffraction's, not seeing's.

A stack of a few stars is noisy in its core too, and there the Moffat, with seven parameters
fitted to every pixel, is nearer the truth than the stack: :func:`moffat_within_noise` takes it
whole when it departs from the stack by no more than the stack's own noise, which the stacks of
two halves of the stars measure (:func:`rapid.science.psf.stack_noise`). On five 192x192
cutouts of the simulated pair of seed 1, whose 3-8 stars the PSF came from, the relative L2
error of the science PSF fell from 0.12-0.34 (core from the stack, on the widened stamp) to
0.015-0.059; the Moffat departed from the stacks by 0.7-1.0 times their noise. The whole image's
50 stars tell the stack from the Moffat (2.4 times the noise), and keep the stack's core: a real
PSF is no exact Moffat, and enough stars show where it is not.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from rapid.science.psf import (HOT_PIXEL_FRACTION, PsfStars, cut_stamps, fit_psf_fwhm,
                               gaussian_psf, isolated_stars, span_size, stack_noise,
                               stack_stars)

# Blend radii, in FWHM of the stack: its core within INNER, the Moffat's wings beyond OUTER
INNER = 1.5
OUTER = 2.5
# Each pixel is integrated over SUB x SUB points: a Moffat a few pixels wide changes within one
SUB = 3
# The Moffat replaces a stack whose mean squared departure from it is at most this many times
# the stack's own noise variance (:func:`moffat_within_noise`); about 1 when the Moffat is exact
WITHIN_NOISE = 1.5
# The PSF of an image with too few stars for a stack is a Moffat fitted to one of its brightest
# FEW_SOURCES isolated sources (few_source_psf), none narrower than MIN_FWHM pixels
FEW_SOURCES = 5
MIN_FWHM = 0.8
# Relative weight floor of the fit, as a fraction of the peak: the wings count, their noise not
# more than the core's
FLOOR = 1e-3


def moffat_stamp(params, size: int) -> np.ndarray:
    """Pixel-integrated elliptical Moffat on a ``size`` x ``size`` stamp centred on the middle
    pixel: ``params`` = (amplitude, x0, y0, log a, log b, t, beta) with the profile
    ``(1 + a dx^2 + b dy^2 + 2 c dx dy) ** -beta``, ``c = tanh(t) sqrt(a b)`` (so that the
    quadratic form stays positive)."""
    amp, x0, y0, la, lb, t, beta = params
    a, b = np.exp(la), np.exp(lb)
    c = np.tanh(t) * np.sqrt(a * b)
    g = (np.arange(size * SUB) - (size * SUB - 1) / 2) / SUB
    dy, dx = np.meshgrid(g - y0, g - x0, indexing="ij")
    q = a * dx * dx + b * dy * dy + 2 * c * dx * dy
    return amp * ((1 + q) ** (-beta)).reshape(size, SUB, size, SUB).mean(axis=(1, 3))


def fit_moffat(psf: np.ndarray, fwhm: float | None = None,
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """The elliptical Moffat (normalised, on the stamp's grid) that fits a square, odd PSF stamp
    best, with its parameters (see :func:`moffat_stamp`); None when the fit fails. ``fwhm``
    is the stamp's :func:`rapid.science.psf.fit_psf_fwhm` when the caller has it."""
    psf = np.asarray(psf, dtype=np.float64)
    size = psf.shape[0]
    total = psf.sum()
    if psf.ndim != 2 or psf.shape[1] != size or size % 2 == 0 or not total > 0:
        return None
    p = psf / total
    fwhm = fit_psf_fwhm(p) if fwhm is None else fwhm
    beta0 = 3.0
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta0) - 1))
    start = [p.max(), 0.0, 0.0, -2 * np.log(alpha), -2 * np.log(alpha), 0.0, beta0]

    def weight_of(profile):
        return 1.0 / np.sqrt(np.clip(profile, FLOOR * profile.max(), None))

    def fitted(params, weight, **loss):
        try:
            fit = optimize.least_squares(
                lambda q: ((moffat_stamp(q, size) - p) * weight).ravel(), params,
                bounds=([0, -2, -2, -12, -12, -5, 1.2], [np.inf, 2, 2, 5, 5, 5, 20]), **loss)
        except (ValueError, FloatingPointError):
            return None
        model = moffat_stamp(fit.x, size)
        return (model, fit.x) if fit.success and np.isfinite(model.sum()) and model.sum() > 0 \
            else None

    # Weights from the stack itself favour the pixels its noise pushed low: with a stack of 3-5
    # stars the wings came out too faint (beta 3.2-3.8 for a true 2.5, 2% of the light moved
    # into the core). The second pass weighs by the first fit's profile instead, with a robust
    # loss on the scale of its residuals, so that a neighbour's lump, which the first pass's
    # weights played down, does not lift the wings.
    first = fitted(start, weight_of(p))
    if first is None:
        return None
    weight = weight_of(first[0])
    scale = max(1.4826 * float(np.median(np.abs((first[0] - p) * weight))), 1e-12)
    second = fitted(first[1], weight, loss="soft_l1", f_scale=scale)
    if second is None:
        return None
    model, params = second
    return model / model.sum(), params


def with_moffat_wings(psf: np.ndarray, fwhm: float | None = None) -> np.ndarray:
    """``psf`` (normalised) within ``INNER`` FWHM of its centre, the Moffat fitted to it beyond
    ``OUTER``; the stamp as it is when no Moffat fits it. ``fwhm`` as for
    :func:`fit_moffat`."""
    stack = np.asarray(psf, dtype=np.float64)
    stack = stack / stack.sum()
    fwhm = fit_psf_fwhm(stack) if fwhm is None else fwhm
    fitted = fit_moffat(stack, fwhm)
    if fitted is None:
        return stack.astype(psf.dtype)
    model, params = fitted
    half = (psf.shape[0] - 1) / 2
    yy, xx = np.indices(psf.shape) - half
    r = np.hypot(xx - params[1], yy - params[2]) / fwhm
    w = np.clip((OUTER - r) / (OUTER - INNER), 0.0, 1.0)
    w = 0.5 - 0.5 * np.cos(np.pi * w)  # 1 inside INNER, 0 beyond OUTER
    out = w * stack + (1 - w) * model
    return (out / out.sum()).astype(psf.dtype)


def moffat_within_noise(stamps: np.ndarray, size: int, *, min_stars: int = 3,
                        ) -> np.ndarray | None:
    """The elliptical Moffat fitted to the median stack of star ``stamps`` (normalised, each
    centred on its star, see :func:`rapid.science.psf.cut_stamps`), on an odd ``size`` stamp
    and normalised, when the stack cannot tell the two apart: their mean squared difference is
    at most ``WITHIN_NOISE`` times the stack's noise variance
    (:func:`rapid.science.psf.stack_noise`). None when it can, when fewer than ``min_stars``
    stamps are given (at least 2) or when no Moffat fits."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be odd and positive, got {size}")
    if len(stamps) < max(2, min_stars):
        return None
    stack = stack_stars(stamps, min_stars)
    fitted = fit_moffat(stack)
    if fitted is None:
        return None
    model, params = fitted
    noise = stack_noise(stamps)
    misfit = float(np.mean((stack - model) ** 2))
    if not (np.isfinite(noise) and noise > 0 and misfit <= WITHIN_NOISE * noise):
        return None
    # centred on the stamp: each star was cut out about its windowed centroid, and the stack's
    # recentring on its centre of mass follows its neighbours' light in a crowded field
    out = moffat_stamp(np.r_[params[0], 0.0, 0.0, params[3:]], size)
    return out / out.sum()


def few_source_psf(stars: PsfStars, size: int, *, span_fwhm: float, max_size: int,
                   ) -> np.ndarray | None:
    """A PSF for an image with too few stars for a stack: the elliptical Moffat fitted to the
    narrowest of its brightest ``FEW_SOURCES`` isolated, usable sources, whole, on a stamp of
    ``span_fwhm`` FWHM (at most ``max_size``); the narrowest source's Gaussian where no
    Moffat converges; None without such a source.

    One or two stars, or a bright transient, on a small cutout say the PSF's width where a
    default cannot: a 2-pixel Gaussian standing in for a 4.5-pixel Moffat put every flux of
    160x160 ground-based cutouts at a quarter of the truth. Of the few sources, stars are the
    narrowest (galaxies are wider); a source with most of its light in one pixel is a cosmic
    ray or a hot pixel, and one narrower than ``MIN_FWHM`` pixels is no PSF either.
    """
    idx = isolated_stars(stars, size)[:FEW_SOURCES]
    objs = stars.objects
    idx = idx[objs["peak"][idx] <= HOT_PIXEL_FRACTION * stars.flux[idx]]
    moffats, widths = [], []
    for stamp in cut_stamps(stars, idx, size):
        if not np.isfinite(stamp).all():
            continue
        fitted = fit_moffat(stamp)
        fwhm = fit_psf_fwhm(fitted[0] if fitted is not None else stamp)
        if fwhm >= MIN_FWHM:
            (moffats if fitted is not None else widths).append((fwhm, fitted))
    if moffats:
        fwhm, (_, params) = min(moffats, key=lambda m: m[0])
        out = moffat_stamp(np.r_[params[0], 0.0, 0.0, params[3:]],
                           max(size, span_size(fwhm, span_fwhm, max_size)))
        return out / out.sum()
    if widths:
        # a faint source's Moffat may not converge (its wings are noise): its width still
        # tells, as a Gaussian's, which loses the wings' light but not the core's
        fwhm = min(w for w, _ in widths)
        return gaussian_psf(fwhm, size=max(size, span_size(fwhm, span_fwhm, max_size)))
    return None
