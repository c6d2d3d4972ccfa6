"""Background subtraction with sep, masking bad pixels and sources."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.fft
import sep
from scipy import ndimage

from rapid.science.box_filters import cross_dilation
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
    return cross_dilation(seg > 0, 2)


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
    """

    frame: Frame
    rms: np.ndarray


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
    return Background(dataclasses.replace(frame, data=out, meta=meta), rms)


def subtract_background(
    frame: Frame, *, box: int = 64, filter_size: int = 3, mask_sources: bool = True,
    source_thresh: float = 3.0,
) -> tuple[Frame, np.ndarray]:
    """The background-subtracted frame and its noise map (see :func:`estimate_background`)."""
    b = estimate_background(frame, box=box, filter_size=filter_size, mask_sources=mask_sources,
                            source_thresh=source_thresh)
    return b.frame, b.rms


def psf_matched_difference(sci: np.ndarray, ref: np.ndarray, ratio: float, bad: np.ndarray,
                           psf_sci: np.ndarray, psf_ref: np.ndarray) -> np.ndarray:
    """``sci (x) psf_ref - ratio * ref (x) psf_sci``: both images brought to one PSF, so that
    every static source cancels whatever the two PSFs, and what is left is noise, the
    changes, and the difference of the two backgrounds. Bad pixels count as 0; float32. The
    convolutions are circular on the image's fast FFT size (4088 -> 4096), as ZOGY's are: the
    pixels within half a PSF stamp of the border also see the opposite border's."""
    from rapid.science.psf import pad_psf  # psf builds on this module's sep_ready

    ny, nx = sci.shape
    shape = (scipy.fft.next_fast_len(ny, real=True), scipy.fft.next_fast_len(nx, real=True))

    def spectrum(image):
        return scipy.fft.rfft2(np.where(bad, np.float32(0.0), image).astype(np.float32,
                                                                            copy=False), shape)

    def psf_spectrum(psf):
        return scipy.fft.rfft2(pad_psf(psf, shape, np.float32), shape)

    hat = spectrum(sci)
    hat *= psf_spectrum(psf_ref)
    other = spectrum(ref)
    other *= psf_spectrum(psf_sci)
    other *= np.float32(ratio)
    hat -= other
    del other
    return np.ascontiguousarray(scipy.fft.irfft2(hat, shape)[:ny, :nx])


def match_level(
    sci: Frame, ref: Frame, ratio: float, bad: np.ndarray, psf_sci: np.ndarray,
    psf_ref: np.ndarray, *, scale: float = 128.0,
) -> tuple[Frame, np.ndarray]:
    """The science frame with the smooth level of its difference from the reference taken off.

    Each background was estimated on its own image, with its own sources masked. Light of
    sources too faint to be masked raises a background, and a deeper image masks more of it,
    a sharper one less of its sources' wings: the two estimates disagree by a level that the
    difference image keeps (on a simulated crowded ground-based pair, 0.03 sigma per pixel:
    0.25 sigma in Scorr, and fluxes 2% low; where a ground-based field holds a star per 105
    pixels, a level that made Scorr negative between all the stars and left 80 fading
    candidates). That level is measured where the difference holds nothing else: on the two
    images brought to one PSF (:func:`psf_matched_difference`), where every static source
    cancels and every good pixel counts, however crowded the field. It is fitted by local
    linear regression of block medians (:func:`.local_linear_level`), which, unlike a mesh
    statistic, holds its slope up to the edge of the reference's coverage, and taken off the
    science frame: the reference, masked deeper, has the truer background.

    Parameters
    ----------
    sci, ref : Frame
        Background-subtracted science frame and reference on its grid (reference units).
    ratio : float
        Science flux over reference flux (the gain match's).
    bad : ndarray
        Pixels bad in either.
    psf_sci, psf_ref : ndarray
        Their PSF stamps, odd-sized and centred.
    scale : float, optional
        Gaussian kernel of the fit in pixels (128, sigma).

    Returns
    -------
    frame : Frame
        ``sci`` with the level subtracted (bad pixels stay NaN); unchanged when fewer than a
        tenth of the pixels lie more than a PSF stamp's half-width from a bad one and from
        the border.
    level : ndarray
        float32 map of what was subtracted, in science units (zeros when nothing was).
    """
    if sci.shape != ref.shape or bad.shape != sci.shape:
        raise ValueError(f"science {sci.shape}, reference {ref.shape} and mask {bad.shape} "
                         "must share a grid")
    # a bad pixel, counted as 0, reaches half a stamp into the convolved images, and so does
    # the opposite border
    reach = max(max(psf_sci.shape), max(psf_ref.shape)) // 2
    skip = ndimage.maximum_filter(bad, size=2 * reach + 1) if bad.any() else bad.copy()
    skip[:reach] = skip[-reach:] = True
    skip[:, :reach] = skip[:, -reach:] = True
    level = None if skip.mean() > 0.9 else local_linear_level(
        psf_matched_difference(sci.data, ref.data, ratio, bad, psf_sci, psf_ref), skip, scale)
    if level is None:
        return sci, np.zeros(sci.shape, dtype=np.float32)
    return dataclasses.replace(sci, data=(sci.data - level).astype(np.float32)), level
