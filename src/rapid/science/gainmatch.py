"""Flux scale and residual offsets between science and reference from cross-matched stars."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sep
from astropy.stats import sigma_clip
from scipy.spatial import cKDTree

from rapid.science.background import sep_ready
from rapid.science.image import Frame
from rapid.science.psf import fit_psf_fwhm


@dataclass(frozen=True)
class GainMatch:
    """Outcome of :func:`gain_match`.

    Attributes
    ----------
    flux_ratio : float
        Science flux over reference flux of the same star (RAPID's ``scalefacref``).
    flux_ratio_err : float
        1-sigma error of ``flux_ratio`` (NaN when not measured from stars).
    dx_median, dy_median : float
        Median offset science minus reference of matched stars, pixels.
    dx_rms, dy_rms : float
        Root mean square of those offsets, pixels (the registration noise of ZOGY).
    nmatched : int
        Number of matched stars used.
    method : str
        "stars" (measured), "zptmag" (from the two zero points) or "unity" (no information).
    """

    flux_ratio: float
    flux_ratio_err: float
    dx_median: float
    dy_median: float
    dx_rms: float
    dy_rms: float
    nmatched: int
    method: str = "stars"

    @property
    def flagged(self) -> bool:
        """True when the ratio did not come from matched stars."""
        return self.method != "stars"


def _encircled(psf: np.ndarray | None, radius: float) -> float:
    """Fraction of a PSF's flux inside a circle of ``radius`` about its centre pixel."""
    if psf is None:
        return 1.0
    c = (np.array(psf.shape) - 1) / 2.0
    frac, _, _ = sep.sum_circle(np.ascontiguousarray(psf, dtype=np.float64),
                                np.array([c[1]]), np.array([c[0]]), radius, subpix=5)
    return float(frac[0] / psf.sum())


def _catalog(frame: Frame, rms: np.ndarray | float, thresh: float, radius: float):
    bad = frame.bad()
    arr = sep_ready(frame.data, bad)
    err = np.ascontiguousarray(rms, dtype=np.float32) if np.ndim(rms) else float(rms)
    try:
        objs = sep.extract(arr, thresh, err=err, mask=bad, minarea=5)
    except Exception:  # too many pixels / objects: treat as no usable stars
        return None
    if len(objs) == 0:
        return None
    flux, ferr, flag = sep.sum_circle(arr, objs["x"], objs["y"], radius, err=err, mask=bad)
    return objs, flux, ferr, flag


def _fallback(sci: Frame, ref: Frame, n: int) -> GainMatch:
    zs, zr = sci.meta.get("zptmag"), ref.meta.get("zptmag")
    nan = float("nan")
    if zs is not None and zr is not None and np.isfinite(zs) and np.isfinite(zr):
        # equal magnitudes: zs - 2.5 log10(fs) = zr - 2.5 log10(fr)
        return GainMatch(float(10 ** (0.4 * (float(zs) - float(zr)))), nan, 0.0, 0.0, 0.0, 0.0,
                         n, "zptmag")
    return GainMatch(1.0, nan, 0.0, 0.0, 0.0, 0.0, n, "unity")


def gain_match(
    sci: Frame, ref: Frame, *, sci_rms: np.ndarray | float | None = None,
    ref_rms: np.ndarray | float | None = None, detect_thresh: float = 5.0,
    match_radius: float = 1.5, min_snr: float = 20.0, min_stars: int = 5,
    clip_sigma: float = 3.0, aperture_radius: float | None = None,
    saturation_fraction: float = 0.8,
) -> GainMatch:
    """Measure the flux ratio science / reference and residual offsets from matched stars.

    Parameters
    ----------
    sci, ref : Frame
        Background-subtracted science image and reference already on the science grid. Their
        ``psf`` (when set) is used for aperture corrections; ``meta["saturation"]`` and
        ``meta["zptmag"]`` are used when present.
    sci_rms, ref_rms : ndarray or float, optional
        1-sigma noise per pixel (map, source noise included where known, or scalar); the
        robust pixel std when None.
    detect_thresh : float, optional
        Extraction threshold in sigma (5.0).
    match_radius : float, optional
        Cross-match radius in pixels (1.5).
    min_snr : float, optional
        Smallest aperture S/N in both images (20).
    min_stars : int, optional
        Fewest matches for a measured ratio (5); fewer falls back to zero points, else 1.0.
    clip_sigma : float, optional
        Sigma clipping of ratios and offsets (3.0); the ratio is the inverse-variance
        weighted mean of the surviving ratios.
    aperture_radius : float, optional
        Aperture radius in pixels; None: 2 x the larger PSF FWHM, at least 3.
    saturation_fraction : float, optional
        Skip stars peaking above this fraction of either saturation level (0.8).

    Returns
    -------
    GainMatch
    """
    if sci.shape != ref.shape:
        raise ValueError(f"ref has shape {ref.shape}, sci has {sci.shape}: resample it first")
    if match_radius <= 0:
        raise ValueError(f"match_radius must be > 0, got {match_radius}")
    if aperture_radius is None:
        fw = [fit_psf_fwhm(p) for p in (sci.psf, ref.psf) if p is not None] or [2.0]
        aperture_radius = max(3.0, 2.0 * max(fw))

    def robust_rms(f: Frame) -> float:
        good = f.data[~f.bad()]
        if good.size == 0:
            return 1.0
        return float(1.4826 * np.median(np.abs(good - np.median(good)))) or 1.0

    sci_rms = robust_rms(sci) if sci_rms is None else sci_rms
    ref_rms = robust_rms(ref) if ref_rms is None else ref_rms
    cs = _catalog(sci, sci_rms, detect_thresh, aperture_radius)
    cr = _catalog(ref, ref_rms, detect_thresh, aperture_radius)
    if cs is None or cr is None:
        return _fallback(sci, ref, 0)
    (os_, fs, es, gs), (or_, fr, er, gr) = cs, cr
    d, j = cKDTree(np.column_stack([or_["x"], or_["y"]])).query(
        np.column_stack([os_["x"], os_["y"]]), distance_upper_bound=match_radius)
    i = np.flatnonzero(np.isfinite(d))
    j = j[i]
    ok = (gs[i] == 0) & (gr[j] == 0) & (os_["flag"][i] == 0) & (or_["flag"][j] == 0)
    ok &= (fs[i] > min_snr * es[i]) & (fr[j] > min_snr * er[j])
    for f, objs, k in ((sci, os_, i), (ref, or_, j)):
        sat = f.meta.get("saturation")
        if sat:
            ok &= objs["peak"][k] < saturation_fraction * float(sat)
    i, j = i[ok], j[ok]
    if i.size < min_stars:
        return _fallback(sci, ref, int(i.size))
    corr = _encircled(ref.psf, aperture_radius) / _encircled(sci.psf, aperture_radius)
    ratio = fs[i] / fr[j] * corr
    rel_err = np.hypot(es[i] / fs[i], er[j] / fr[j])
    sig = ratio * rel_err
    good = np.isfinite(ratio) & np.isfinite(sig) & (sig > 0)
    if good.sum() < min_stars:
        return _fallback(sci, ref, int(good.sum()))
    # Inverse-variance weighted mean, clipping on each star's own error: the bright stars carry
    # the precision, and a bright star blended with a variable or a transient is an outlier by
    # many of its own sigmas although its ratio lies within the scatter of the faint stars.
    mean = float(np.median(ratio[good]))
    use = good.copy()
    for _ in range(10):
        z = np.where(good, (ratio - mean) / np.where(good, sig, 1.0), np.inf)
        scale = max(1.0, 1.4826 * float(np.median(np.abs(z[use]))))
        new = good & (np.abs(z) < clip_sigma * scale)
        if new.sum() < min_stars:
            return _fallback(sci, ref, int(new.sum()))
        w = 1.0 / sig[new] ** 2
        mean = float(np.sum(w * ratio[new]) / np.sum(w))
        if np.array_equal(new, use):
            break
        use = new
    r, w = ratio[use], 1.0 / sig[use] ** 2
    mean = float(np.sum(w * r) / np.sum(w))
    chi2 = float(np.sum(w * (r - mean) ** 2) / max(r.size - 1, 1))
    ratio_err = float(np.sqrt(max(chi2, 1.0) / np.sum(w)))
    dx = (os_["x"][i] - or_["x"][j])[use]
    dy = (os_["y"][i] - or_["y"][j])[use]
    keep = ~(np.ma.getmaskarray(sigma_clip(dx, sigma=clip_sigma))
             | np.ma.getmaskarray(sigma_clip(dy, sigma=clip_sigma)))
    dx, dy = dx[keep], dy[keep]
    return GainMatch(
        flux_ratio=mean, flux_ratio_err=ratio_err,
        dx_median=float(np.median(dx)), dy_median=float(np.median(dy)),
        dx_rms=float(np.sqrt(np.mean(dx**2))), dy_rms=float(np.sqrt(np.mean(dy**2))),
        nmatched=int(r.size), method="stars",
    )
