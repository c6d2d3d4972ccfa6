"""Candidate detection on the Scorr image, brightening (+Scorr) and fading (-Scorr)."""

from __future__ import annotations

import numpy as np
import sep
from astropy.table import Table, vstack

from rapid.science.background import sep_ready
from rapid.science.extraction import extract

CANDIDATE_COLUMNS = ("x", "y", "xpeak", "ypeak", "scorr_peak", "sign", "npix")


def _empty() -> Table:
    t = Table(names=CANDIDATE_COLUMNS, dtype=("f8", "f8", "i8", "i8", "f4", "i2", "i8"))
    return t


def _extract(img, mask, threshold, minarea, nthresh, cont):
    return extract(img, threshold, mask=mask, minarea=minarea, filter_kernel=None,
                   deblend_nthresh=nthresh, deblend_cont=cont, clean=False)


def _brightest_near(img: np.ndarray, bad: np.ndarray, xp: np.ndarray, yp: np.ndarray, *,
                    radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The good pixel of ``img`` with the highest value within ``radius`` of each (xp, yp)."""
    ny, nx = img.shape
    best = np.where(bad[yp, xp], -np.inf, img[yp, xp])
    bx, by = xp.copy(), yp.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            y = np.clip(yp + dy, 0, ny - 1)
            x = np.clip(xp + dx, 0, nx - 1)
            v = np.where(bad[y, x], -np.inf, img[y, x])
            better = v > best
            best = np.where(better, v, best)
            bx, by = np.where(better, x, bx), np.where(better, y, by)
    return bx, by


def detect_candidates(
    scorr: np.ndarray, D: np.ndarray, D_unc: np.ndarray | None = None, *,
    mask: np.ndarray | None = None, threshold: float = 5.0, minarea: int = 2,
    both_signs: bool = True, edge: int = 8, deblend_nthresh: int = 32,
    deblend_cont: float = 0.005, centroid_sigma: float = 1.0, analysis_fraction: float = 0.5,
    threshold_fading: float | None = None, scorr_fading: np.ndarray | None = None,
) -> Table:
    """Find candidates as connected areas of Scorr whose peak passes a threshold.

    Scorr is already a matched-filter S/N image, so no further smoothing is applied; the
    default 5-sigma threshold is the usual ZOGY choice (RAPID runs SExtractor at 2.5 sigma
    relative with minimum area 5, which on large images admits many noise peaks).

    The threshold applies to the peak, and ``minarea`` to the area above
    ``analysis_fraction * threshold`` (SExtractor's analysis threshold). Counting the area at
    the detection threshold itself would reject real point sources whose peak S/N is below
    about twice the threshold when the PSF is undersampled (Roman: a source with Scorr peak 8
    has only 3-4 pixels above 5), and would make the completeness depend on the pixel scale.

    Parameters
    ----------
    scorr : ndarray
        Scorr image (unit variance on noise).
    D : ndarray
        Difference image on which positions are refined (windowed centroid).
    D_unc : ndarray, optional
        Uncertainty of D; pixels where it is not finite are treated as masked.
    mask : ndarray, optional
        Boolean, True where pixels must not produce candidates.
    threshold : float, optional
        Absolute threshold on Scorr (5.0); on -Scorr too unless ``threshold_fading`` is given.
    minarea : int, optional
        Fewest connected pixels above ``analysis_fraction * threshold`` (2, as
        :class:`rapid.science.config.DetectConfig`; one-pixel objects are never point sources).
    both_signs : bool, optional
        Also detect fading sources on -Scorr (True).
    edge : int, optional
        Drop candidates whose peak is closer than this to the border, pixels (8).
    deblend_nthresh, deblend_cont : int, float, optional
        sep deblending parameters (32, 0.005).
    centroid_sigma : float, optional
        Gaussian window sigma in pixels of the centroid on D (1.0; about FWHM / 2.35 of Pd).
    analysis_fraction : float, optional
        Fraction of the threshold at which the connected area is measured (0.5); 1 counts the
        area at the threshold.
    threshold_fading : float, optional
        Threshold on -Scorr for fading candidates (default ``threshold``); the two differ when
        the noise of Scorr is skewed.
    scorr_fading : ndarray, optional
        Image whose negative is searched for fading candidates (default ``scorr``); with
        sub-pixel phases, ``scorr`` is the highest and this the lowest Scorr over the phases.

    Returns
    -------
    astropy.table.Table
        Columns x, y (zero-based, refined on D), xpeak, ypeak (the brightest pixel of D within
        2 pixels of the Scorr peak, where the centroid starts), scorr_peak
        (the Scorr peak of the object, negative for fading), sign (+1 brightening, -1
        fading), npix.
    """
    scorr = np.asarray(scorr)
    if scorr.ndim != 2:
        raise ValueError(f"scorr must be 2-D, got shape {scorr.shape}")
    if np.shape(D) != scorr.shape:
        raise ValueError(f"D has shape {np.shape(D)}, scorr has {scorr.shape}")
    if D_unc is not None and np.shape(D_unc) != scorr.shape:
        raise ValueError(f"D_unc has shape {np.shape(D_unc)}, scorr has {scorr.shape}")
    if mask is not None and np.shape(mask) != scorr.shape:
        raise ValueError(f"mask has shape {np.shape(mask)}, scorr has {scorr.shape}")
    if scorr_fading is not None and np.shape(scorr_fading) != scorr.shape:
        raise ValueError(f"scorr_fading has shape {np.shape(scorr_fading)}, scorr has "
                         f"{scorr.shape}")
    if threshold_fading is None:
        threshold_fading = threshold
    if not (threshold > 0 and threshold_fading > 0):
        raise ValueError(f"thresholds must be > 0, got {threshold}, {threshold_fading}")
    if minarea < 1:
        raise ValueError(f"minarea must be >= 1, got {minarea}")
    if not 0 < analysis_fraction <= 1:
        raise ValueError(f"analysis_fraction must be within (0, 1], got {analysis_fraction}")
    bad = ~np.isfinite(scorr) | ~np.isfinite(D)
    if scorr_fading is not None:
        bad |= ~np.isfinite(scorr_fading)
    if D_unc is not None:
        bad |= ~np.isfinite(D_unc)
    if mask is not None:
        bad |= mask.astype(bool)
    ny, nx = scorr.shape
    sc = sep_ready(scorr, bad)
    sc_fading = sc if scorr_fading is None else sep_ready(scorr_fading, bad)
    d_arr = sep_ready(D, bad)
    tables = []
    for sign in (1, -1) if both_signs else (1,):
        thresh = threshold if sign > 0 else threshold_fading
        objs = _extract(sc if sign > 0 else -sc_fading, bad, thresh * analysis_fraction, minarea,
                        deblend_nthresh, deblend_cont)
        if len(objs) == 0:
            continue
        xp, yp = objs["xpeak"].astype(int), objs["ypeak"].astype(int)
        keep = (objs["peak"] >= thresh) & (xp >= edge) & (xp < nx - edge) & (yp >= edge) & (yp < ny - edge)
        keep &= ~bad[yp.clip(0, ny - 1), xp.clip(0, nx - 1)]
        objs, xp, yp = objs[keep], xp[keep], yp[keep]
        if len(objs) == 0:
            continue
        # Start the centroid at the brightest pixel of sign * D near the Scorr peak: where the
        # Scorr variance holds terms that grow with the source (registration, PSF-model noise),
        # a bright source's Scorr is flat-topped and its peak pixel may sit on the flank.
        xp, yp = _brightest_near(sign * d_arr, bad, xp, yp, radius=2)
        sig = np.full(len(objs), float(centroid_sigma))
        wx, wy, wflag = sep.winpos(sign * d_arr, xp.astype(float), yp.astype(float), sig,
                                   mask=bad)
        off = np.hypot(wx - xp, wy - yp)
        bad_c = (wflag != 0) | ~np.isfinite(wx) | ~np.isfinite(wy) | (off > 1.5)
        x = np.where(bad_c, objs["x"], wx)
        y = np.where(bad_c, objs["y"], wy)
        tables.append(Table({
            "x": x.astype(float), "y": y.astype(float), "xpeak": xp, "ypeak": yp,
            "scorr_peak": (sign * objs["peak"]).astype(np.float32),
            "sign": np.full(len(objs), sign, dtype=np.int16),
            "npix": objs["npix"].astype(np.int64),
        }))
    if not tables:
        return _empty()
    out = vstack(tables)
    out.sort("scorr_peak", reverse=True)
    return out
