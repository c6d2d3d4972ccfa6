"""Background subtraction with sep, masking bad pixels and sources."""

from __future__ import annotations

import dataclasses

import numpy as np
import sep
from scipy import ndimage

from rapid.science.image import Frame


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


def subtract_background(
    frame: Frame, *, box: int = 64, filter_size: int = 3, mask_sources: bool = True,
    source_thresh: float = 3.0,
) -> tuple[Frame, np.ndarray]:
    """Subtract a smooth sep background from a frame.

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
    frame : Frame
        Copy of ``frame`` with float32 background-subtracted data (bad pixels NaN) and
        ``meta["bkg_rms"]`` (the median background noise) added.
    rms : ndarray
        float32 map of the background noise (1 sigma per pixel).
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
    if mask_sources:
        sub = arr - bkg.back()
        try:
            _, seg = sep.extract(sub, source_thresh, err=bkg.rms(), mask=bad, minarea=5,
                                 segmentation_map=True)
            src = ndimage.binary_dilation(seg > 0, iterations=2)
        except Exception:  # sep gives up on pathological images (e.g. too many pixels active)
            src = np.zeros_like(bad)
        if (bad | src).mean() < 0.9:
            bkg = sep.Background(arr, mask=bad | src, bw=bw, bh=bh, fw=filter_size,
                                 fh=filter_size)
    back = bkg.back()
    rms = bkg.rms().astype(np.float32)
    out = (arr - back).astype(np.float32)
    out[bad] = np.nan
    meta = dict(frame.meta)
    meta["bkg_rms"] = float(np.median(rms[~bad])) if (~bad).any() else float(bkg.globalrms)
    return dataclasses.replace(frame, data=out, meta=meta), rms
