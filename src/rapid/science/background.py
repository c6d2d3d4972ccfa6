"""Background subtraction with sep, masking bad pixels and sources."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import sep
from scipy import ndimage

from rapid.science.extraction import extract
from rapid.science.image import Frame
from rapid.science.local_linear_sky import edge_correction, local_linear_level


def sep_ready(data: np.ndarray, bad: np.ndarray | None = None) -> np.ndarray:
    """Return ``data`` as a C-contiguous native float32 array with bad / non-finite pixels at 0.

    sep reads the raw buffer, so it needs native byte order and contiguity; NaNs would poison
    its statistics even when masked in some code paths.
    """
    arr = np.ascontiguousarray(data, dtype=np.float32).copy()
    fill = ~np.isfinite(arr)
    if bad is not None:
        fill |= bad
    arr[fill] = 0.0
    return arr


def source_mask(data: np.ndarray, rms: np.ndarray | float, bad: np.ndarray,
                thresh: float) -> np.ndarray:
    """Pixels of the sources sep finds above ``thresh`` sigma (5 pixels or more) in
    background-subtracted ``data``, grown by 2 pixels; none when sep gives up (on pathological
    images, e.g. with too many pixels active)."""
    arr = sep_ready(data, bad)
    err = np.ascontiguousarray(rms, dtype=np.float32) if np.ndim(rms) else float(rms)
    try:
        _, seg = extract(arr, thresh, err=err, mask=bad, minarea=5, segmentation_map=True)
    except Exception:
        return np.zeros(arr.shape, dtype=bool)
    return ndimage.binary_dilation(seg > 0, iterations=2)


@dataclass(frozen=True)
class Background:
    """Outcome of :func:`estimate_background`.

    Attributes
    ----------
    frame : Frame
        Copy of the input with float32 background-subtracted data (bad pixels NaN) and
        ``meta["bkg_rms"]`` (the median background noise) added.
    rms : ndarray
        float32 map of the background noise (1 sigma per pixel).
    sources : ndarray or None
        The source mask the final estimate left out (None when sources were not masked).
    """

    frame: Frame
    rms: np.ndarray
    sources: np.ndarray | None


def estimate_background(
    frame: Frame, *, box: int = 64, filter_size: int = 3, mask_sources: bool = True,
    source_thresh: float = 3.0,
) -> Background:
    """Estimate a smooth sep background of a frame and subtract it.

    Parameters
    ----------
    frame : Frame
        Image to process; bad pixels (``frame.bad()``) are ignored and stay NaN.
    box : int, optional
        Mesh cell size in pixels (64).
    filter_size : int, optional
        Median filter size in mesh cells (3).
    mask_sources : bool, optional
        Re-estimate the background with detected sources masked (True).
    source_thresh : float, optional
        Threshold in background sigma for the source mask (3.0).

    Returns
    -------
    Background
    """
    if not isinstance(frame, Frame):
        raise ValueError(f"frame must be a Frame, got {type(frame).__name__}")
    if box < 4:
        raise ValueError(f"box must be >= 4 pixels, got {box}")
    if filter_size < 1:
        raise ValueError(f"filter_size must be >= 1, got {filter_size}")
    bad = frame.bad()
    if bad.all():
        raise ValueError("frame has no valid pixels")
    arr = sep_ready(frame.data, bad)
    ny, nx = arr.shape
    bw, bh = min(box, nx), min(box, ny)
    bkg = sep.Background(arr, mask=bad, bw=bw, bh=bh, fw=filter_size, fh=filter_size)
    src = None
    skip = bad
    if mask_sources:
        src = source_mask(arr - bkg.back(), bkg.rms(), bad, source_thresh)
        if (bad | src).mean() < 0.9:
            skip = bad | src
            bkg = sep.Background(arr, mask=skip, bw=bw, bh=bh, fw=filter_size, fh=filter_size)
    back = bkg.back()
    # sep's background is flat over the meshes beside a large masked region
    corr = edge_correction(arr, back, skip, min(bw, bh))
    if corr is not None:
        back += corr
    rms = bkg.rms().astype(np.float32)
    out = (arr - back).astype(np.float32)
    out[bad] = np.nan
    meta = dict(frame.meta)
    meta["bkg_rms"] = float(np.median(rms[~bad])) if (~bad).any() else float(bkg.globalrms)
    return Background(dataclasses.replace(frame, data=out, meta=meta), rms, src)


def subtract_background(
    frame: Frame, *, box: int = 64, filter_size: int = 3, mask_sources: bool = True,
    source_thresh: float = 3.0,
) -> tuple[Frame, np.ndarray]:
    """The background-subtracted frame and its noise map (see :func:`estimate_background`)."""
    b = estimate_background(frame, box=box, filter_size=filter_size, mask_sources=mask_sources,
                            source_thresh=source_thresh)
    return b.frame, b.rms


def match_level(
    sci: Frame, ref: Frame, ratio: float, bad: np.ndarray, sci_rms: np.ndarray,
    ref_rms: np.ndarray, *, scale: float = 128.0, source_thresh: float = 3.0,
    sources: np.ndarray | None = None,
) -> tuple[Frame, np.ndarray]:
    """The science frame with the smooth level of ``sci - ratio * ref`` taken off.

    Each background was estimated on its own image, with its own sources masked. Light of
    sources too faint to be masked raises a background, and a deeper image masks more of it:
    a science frame's background comes out higher than its deeper reference's, by a level
    that is the same over both images' static sky yet is left in their difference (on a
    simulated crowded ground-based pair, 0.03 sigma per pixel: 0.25 sigma in Scorr, and
    fluxes 2% low). On the same grid, away from the sources of either image, both hold the
    same sky, so the smooth level of their difference is what the two estimates disagree by.
    It is fitted by local linear regression (:func:`.local_linear_level`), which, unlike a
    mesh statistic, holds its slope up to the edge of the reference's coverage, and taken off
    the science frame: the reference, masked deeper, has the truer background.

    Parameters
    ----------
    sci, ref : Frame
        Background-subtracted science frame and reference on its grid (reference units).
    ratio : float
        Science flux over reference flux (the gain match's).
    bad : ndarray
        Pixels bad in either.
    sci_rms, ref_rms : ndarray
        Their background noise maps.
    scale : float, optional
        Gaussian kernel of the fit in pixels (128, sigma).
    source_thresh : float, optional
        Sources above this many sigma in either image are masked (3.0).
    sources : ndarray, optional
        The sources of both images, when their background estimates found them already
        (:attr:`Background.sources`); else they are found here, at ``source_thresh``.

    Returns
    -------
    frame : Frame
        ``sci`` with the level subtracted (bad pixels stay NaN); unchanged when fewer than a
        tenth of the pixels are free of sources.
    level : ndarray
        float32 map of what was subtracted (zeros when nothing was).
    """
    if sci.shape != ref.shape or bad.shape != sci.shape:
        raise ValueError(f"science {sci.shape}, reference {ref.shape} and mask {bad.shape} "
                         "must share a grid")
    if sources is None:
        sources = (source_mask(sci.data, sci_rms, bad, source_thresh)
                   | source_mask(ref.data, ref_rms, bad, source_thresh))
    elif sources.shape != sci.shape:
        raise ValueError(f"sources {sources.shape} and science {sci.shape} differ")
    skip = bad | sources
    level = None if skip.mean() > 0.9 else local_linear_level(
        sci.data - np.float32(ratio) * ref.data, skip, scale)
    if level is None:
        return sci, np.zeros(sci.shape, dtype=np.float32)
    return dataclasses.replace(sci, data=(sci.data - level).astype(np.float32)), level
