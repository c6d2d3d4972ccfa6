"""Flux scale and residual offsets between science and reference from cross-matched stars."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import sep
from astropy.stats import sigma_clip
from scipy.spatial import cKDTree

from rapid.science.background import sep_ready
from rapid.science.clipped_mean import clipped_weighted_mean
from rapid.science.extraction import extract
from rapid.science.image import Frame
from rapid.science.psf import fit_psf_fwhm
from rapid.science.registration import common_offset, registration_noise

# Brightest sources of each catalog that vote for the common offset: enough to outvote chance
# pairs in any field, few enough that the vote stays cheap in a crowded one.
_VOTERS = 300
# Smallest S/N, in both images, of a matched star whose position registers the images when too
# few stars are bright enough for the flux ratio: its centroid is good to a tenth of the FWHM.
_LOCATE_SNR = 10.0


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
        Median offset science minus reference of matched stars, less the offset between the
        two PSFs' own centroids (the misregistration ZOGY sees), pixels.
    dx_rms, dy_rms : float
        Root mean square of those offsets, pixels (RAPID's ``dxrmsfin``, ``dyrmsfin``).
    nmatched : int
        Number of matched stars used.
    method : str
        "stars" (measured), "zptmag" (from the two zero points) or "unity" (no information).
    star_x, star_y, star_dx, star_dy : ndarray
        Science positions and offsets (science minus reference) of the matched stars whose
        ratios survived the clipping, before the offsets' own clipping: what a registration
        fit needs (:func:`rapid.science.registration.fit_registration`). Without a measured
        ratio, those of the stars matched at S/N >= 10 in both images (``_LOCATE_SNR``),
        whose positions still register the images, with the offsets' statistics below.
    reg_sigma_x, reg_sigma_y : float
        The registration noise of ZOGY, pixels: the part of the offsets' scatter that the
        stars' own centroid noise does not explain
        (:func:`rapid.science.registration.registration_noise`).
    source_x, source_y, source_flux : ndarray
        Science-grid positions and aperture fluxes (science units) of every source detected in
        either image, matched or not: the neighbours that can crowd a star's stamp.
    """

    flux_ratio: float
    flux_ratio_err: float
    dx_median: float
    dy_median: float
    dx_rms: float
    dy_rms: float
    nmatched: int
    method: str = "stars"
    star_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    star_y: np.ndarray = field(default_factory=lambda: np.empty(0))
    star_dx: np.ndarray = field(default_factory=lambda: np.empty(0))
    star_dy: np.ndarray = field(default_factory=lambda: np.empty(0))
    reg_sigma_x: float = 0.0
    reg_sigma_y: float = 0.0
    source_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    source_y: np.ndarray = field(default_factory=lambda: np.empty(0))
    source_flux: np.ndarray = field(default_factory=lambda: np.empty(0))

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


def _catalog(frame: Frame, rms: np.ndarray | float, thresh: float, radius: float, sig: float):
    """Sources of ``frame``: (xy, flux, flux_err, aperture flag, sep objects).

    Positions are Gaussian-windowed centroids of width ``sig`` (SExtractor's XWIN): several
    times more precise than isophotal barycentres, and measured the same way on the PSF model
    (:func:`_psf_centre`), so that a PSF whose light is not centred on its stamp does not read
    as a misregistration.
    """
    bad = frame.bad()
    arr = sep_ready(frame.data, bad)
    err = np.ascontiguousarray(rms, dtype=np.float32) if np.ndim(rms) else float(rms)
    try:
        objs = extract(arr, thresh, err=err, mask=bad, minarea=5)
    except Exception:  # too many pixels / objects: treat as no usable stars
        return None
    if len(objs) == 0:
        return None
    xw, yw, wflag = sep.winpos(arr, objs["x"], objs["y"], sig, mask=bad)
    # a windowed centroid pulled off by a neighbour keeps the barycentre
    lost = (wflag != 0) | ~(np.hypot(xw - objs["x"], yw - objs["y"]) < 1.0)
    xy = np.column_stack([np.where(lost, objs["x"], xw), np.where(lost, objs["y"], yw)])
    flux, ferr, flag = sep.sum_circle(arr, objs["x"], objs["y"], radius, err=err, mask=bad)
    return xy, flux, ferr, flag, objs


def _psf_centre(psf: np.ndarray | None, sig: float) -> np.ndarray:
    """Windowed centroid of a PSF stamp relative to its centre pixel, (x, y) pixels."""
    if psf is None:
        return np.zeros(2)
    c = (np.array(psf.shape[::-1]) - 1) / 2.0
    xw, yw, flag = sep.winpos(sep_ready(psf), np.array([c[0]]), np.array([c[1]]), sig)
    if flag[0] != 0 or not np.all(np.isfinite([xw[0], yw[0]])):
        return np.zeros(2)
    return np.array([xw[0], yw[0]]) - c


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
    saturation_fraction: float = 0.8, max_offset: float = 16.0,
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
        Fewest matches for a measured ratio (5); fewer falls back to zero points, else 1
        (the reference on the science grid keeps its fluxes, so equal units need no more).0.
    clip_sigma : float, optional
        Sigma clipping of ratios and offsets (3.0); the ratio is the inverse-variance
        weighted mean of the surviving ratios.
    aperture_radius : float, optional
        Aperture radius in pixels; None: 2 x the larger PSF FWHM, at least 3.
    saturation_fraction : float, optional
        Skip stars peaking above this fraction of either saturation level (0.8).
    max_offset : float, optional
        Largest common offset between the two images searched before the cross-match, pixels
        (16; :func:`rapid.science.registration.common_offset`); 0 matches at zero offset.

    Returns
    -------
    GainMatch
    """
    if sci.shape != ref.shape:
        raise ValueError(f"ref has shape {ref.shape}, sci has {sci.shape}: resample it first")
    if match_radius <= 0:
        raise ValueError(f"match_radius must be > 0, got {match_radius}")
    fw = [fit_psf_fwhm(p) for p in (sci.psf, ref.psf) if p is not None] or [2.0]
    if aperture_radius is None:
        aperture_radius = max(3.0, 2.0 * max(fw))
    # one centroid window for both images and both PSFs
    window = max(fw) / 2.3548

    def robust_rms(f: Frame) -> float:
        good = f.data[~f.bad()]
        if good.size == 0:
            return 1.0
        return float(1.4826 * np.median(np.abs(good - np.median(good)))) or 1.0

    sci_rms = robust_rms(sci) if sci_rms is None else sci_rms
    ref_rms = robust_rms(ref) if ref_rms is None else ref_rms
    cs = _catalog(sci, sci_rms, detect_thresh, aperture_radius, window)
    cr = _catalog(ref, ref_rms, detect_thresh, aperture_radius, window)
    if cs is None or cr is None:
        return _fallback(sci, ref, 0)
    (xy_s, fs, es, gs, os_), (xy_r, fr, er, gr, or_) = cs, cr
    # a WCS error larger than the match radius would leave no star matched: find it first
    shift = common_offset(xy_s[np.argsort(-fs)[:_VOTERS]], xy_r[np.argsort(-fr)[:_VOTERS]],
                          max_offset) or (0.0, 0.0)
    d, j = cKDTree(xy_r + np.asarray(shift)).query(xy_s, distance_upper_bound=match_radius)
    i = np.flatnonzero(np.isfinite(d))
    j = j[i]
    ok = (gs[i] == 0) & (gr[j] == 0) & (os_["flag"][i] == 0) & (or_["flag"][j] == 0)
    for f, objs, k in ((sci, os_, i), (ref, or_, j)):
        sat = f.meta.get("saturation")
        if sat:
            ok &= objs["peak"][k] < saturation_fraction * float(sat)
    # positions are worth having from fainter stars than ratios are
    located = ok & (fs[i] > _LOCATE_SNR * es[i]) & (fr[j] > _LOCATE_SNR * er[j])
    ok &= (fs[i] > min_snr * es[i]) & (fr[j] > min_snr * er[j])
    psf_dx, psf_dy = _psf_centre(sci.psf, window) - _psf_centre(ref.psf, window)
    fw_s, fw_r = fw[0], fw[-1]

    def offsets(ii, jj, ratio: float) -> dict:
        """The misregistration measured on the pairs (ii, jj), their offsets less that of the
        two PSFs' own centroids: the GainMatch fields."""
        star_dx = xy_s[ii, 0] - xy_r[jj, 0] - psf_dx
        star_dy = xy_s[ii, 1] - xy_r[jj, 1] - psf_dy
        out = dict(star_x=xy_s[ii, 0], star_y=xy_s[ii, 1], star_dx=star_dx, star_dy=star_dy,
                   source_x=np.concatenate([xy_s[:, 0], xy_r[:, 0] + shift[0]]),
                   source_y=np.concatenate([xy_s[:, 1], xy_r[:, 1] + shift[1]]),
                   source_flux=np.concatenate([fs, fr * ratio]))
        if ii.size == 0:
            return out
        keep = ~(np.ma.getmaskarray(sigma_clip(star_dx, sigma=clip_sigma))
                 | np.ma.getmaskarray(sigma_clip(star_dy, sigma=clip_sigma)))
        dx, dy = star_dx[keep], star_dy[keep]
        centroid_var = ((fw_s * es[ii] / fs[ii]) ** 2 + (fw_r * er[jj] / fr[jj]) ** 2)[keep]
        return dict(out, dx_median=float(np.median(dx)), dy_median=float(np.median(dy)),
                    dx_rms=float(np.sqrt(np.mean(dx**2))), dy_rms=float(np.sqrt(np.mean(dy**2))),
                    reg_sigma_x=registration_noise(dx, centroid_var),
                    reg_sigma_y=registration_noise(dy, centroid_var))

    def fallback(n: int) -> GainMatch:
        # no ratio, but the stars' positions still register the images
        gm = _fallback(sci, ref, n)
        return replace(gm, **offsets(i[located], j[located], gm.flux_ratio))

    if ok.sum() < min_stars:
        return fallback(int(ok.sum()))
    si, sj = i[ok], j[ok]
    corr = _encircled(ref.psf, aperture_radius) / _encircled(sci.psf, aperture_radius)
    ratio = fs[si] / fr[sj] * corr
    rel_err = np.hypot(es[si] / fs[si], er[sj] / fr[sj])
    fit = clipped_weighted_mean(ratio, ratio * rel_err, clip_sigma=clip_sigma,
                                min_count=min_stars)
    if not fit.ok:
        return fallback(int(fit.used.sum()))
    use = fit.used
    return GainMatch(flux_ratio=fit.mean, flux_ratio_err=fit.error, nmatched=int(use.sum()),
                     **offsets(si[use], sj[use], fit.mean))

