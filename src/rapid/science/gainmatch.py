"""Flux scale and residual offsets between science and reference from cross-matched stars."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import sep
from astropy.stats import sigma_clip
from scipy.signal import fftconvolve
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
# A star is unblended when its detected neighbours near its aperture hold less than this share
# of its flux (:func:`_unblended`)
_NEIGHBOUR_SHARE = 0.01
# A field is crowded when fewer than this share of its bright matched sources are unblended:
# aperture fluxes then hold neighbours' light, and the ratio is measured on the two images
# brought to one PSF instead. Elsewhere aperture fluxes of twice the FWHM serve better: they
# hardly depend on the PSF models, which that measure needs good to a few per cent
_CROWDED_SHARE = 0.5
# Half-side of the box of that measure, in FWHM of the matched PSF: wide enough to hold nearly
# all of a source's light whatever the PSF models' errors
_BOX_FWHMS = 2.0
# Fewest sources that measure: any bright source counts there, a galaxy hosting a transient
# too, and among a handful such a one is not clipped (cutouts of a ground-based pair with 5-6
# bright sources gave ratios 6-15% off); a crowded field has hundreds
_MATCHED_MIN_SOURCES = 20


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
        Number of matched sources the ratio was measured on.
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


def _unblended(xy: np.ndarray, flux: np.ndarray, aperture_flag: np.ndarray,
               object_flag: np.ndarray, reach: float) -> np.ndarray:
    """Sources whose aperture is whole and whose detected neighbours within ``reach`` pixels
    hold under ``_NEIGHBOUR_SHARE`` of their own flux.

    sep's deblending flag is not held against a source: a deep image's isophotes join every
    star to its faint neighbours, and on 192-384 pixel cutouts of a ground-based pair with a
    reference 12 times deeper it left 2-6 stars for the ratio of the 10-30 there, too few in 3
    of 20 (the ratio then fell back to 1) and 4.9% off in another.
    """
    f = np.clip(np.nan_to_num(np.asarray(flux, dtype=np.float64)), 0.0, None)
    near = np.zeros(len(f))
    if len(f) > 1:
        pairs = cKDTree(xy).query_pairs(reach, output_type="ndarray")
        np.add.at(near, pairs[:, 0], f[pairs[:, 1]])
        np.add.at(near, pairs[:, 1], f[pairs[:, 0]])
    return ((aperture_flag == 0) & ((object_flag & ~sep.OBJ_MERGED) == 0)
            & (near < _NEIGHBOUR_SHARE * f))


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


def _psf_matched_ratios(sci: Frame, ref: Frame, sci_rms, ref_rms, xy: np.ndarray,
                        shift: tuple[float, float], fwhm: float) -> tuple[np.ndarray, np.ndarray]:
    """Science over reference flux of the sources at ``xy`` (science pixels), and its error,
    measured on the two images brought to one PSF.

    Each image, convolved with the other's PSF, shows every static source with the same
    profile, so the two are proportional pixel by pixel, neighbours and all. A linear measure
    taken at the same place in both therefore gives the ratio however crowded the field: here
    the sum over a box ``_BOX_FWHMS`` matched FWHM about the source less the mean of a ring
    about it, which also takes off any background level the two share over box and ring.
    Aperture fluxes of stars, whose neighbours' light the apertures of a sharp and a broad PSF
    hold in different shares, came out 4% and 11% low in ground-based fields of a star per 105
    and per 63 pixels; this gives 1.01 and 1.00 of the truth. The measure is carried over to
    each image's own pixels (the box-and-ring weights correlated with the other image's PSF),
    so its variance is exact for independent pixels. The reference's window is moved by the
    common offset ``shift`` (science minus reference). Sources whose windows leave the image
    or hold a bad pixel, or whose sums are not positive, are left out (NaN).
    """
    h = int(np.ceil(_BOX_FWHMS * fwhm))
    inner, outer = h + 2, h + 5
    yy, xx = np.mgrid[-outer:outer + 1, -outer:outer + 1]
    ring = np.maximum(np.abs(yy), np.abs(xx))
    box, annulus = ring <= h, ring >= inner
    w = box - annulus * (box.sum() / annulus.sum())
    ratio = np.full(len(xy), np.nan)
    error = np.full(len(xy), np.nan)
    sums = []
    for frame, rms, other, offset in ((sci, sci_rms, ref.psf, (0.0, 0.0)),
                                      (ref, ref_rms, sci.psf, shift)):
        p = np.asarray(other, dtype=np.float64)
        weights = fftconvolve(w, p[::-1, ::-1] / p.sum(), mode="full")
        half = weights.shape[0] // 2
        bad = frame.bad()
        rms = np.broadcast_to(np.asarray(rms, dtype=np.float32), frame.shape)
        ny, nx = frame.shape
        total = np.full(len(xy), np.nan)
        spread = np.full(len(xy), np.nan)
        for k, (x, y) in enumerate(xy):
            cx, cy = int(np.floor(x - offset[0] + 0.5)), int(np.floor(y - offset[1] + 0.5))
            if cx - half < 0 or cy - half < 0 or cx + half >= nx or cy + half >= ny:
                continue
            win = np.s_[cy - half:cy + half + 1, cx - half:cx + half + 1]
            if bad[win].any():
                continue
            total[k] = float(np.sum(weights * frame.data[win]))
            spread[k] = float(np.sum((weights * rms[win]) ** 2))
        sums.append((total, spread))
    (sn, vn), (sr, vr) = sums
    good = np.isfinite(sn) & np.isfinite(sr) & (sn > 0) & (sr > 0) & (vn > 0) & (vr > 0)
    ratio[good] = sn[good] / sr[good]
    error[good] = ratio[good] * np.hypot(np.sqrt(vn[good]) / sn[good],
                                         np.sqrt(vr[good]) / sr[good])
    return ratio, error


def gain_match(
    sci: Frame, ref: Frame, *, sci_rms: np.ndarray | float | None = None,
    ref_rms: np.ndarray | float | None = None, detect_thresh: float = 5.0,
    match_radius: float = 1.5, min_snr: float = 20.0, min_stars: int = 5,
    clip_sigma: float = 3.0, aperture_radius: float | None = None,
    saturation_fraction: float = 0.8, max_offset: float = 16.0,
) -> GainMatch:
    """Measure the flux ratio science / reference and residual offsets from matched stars.

    The ratio comes from aperture fluxes of the unblended stars, corrected with each image's
    PSF. In a crowded field, where fewer than half the bright sources are unblended, it is
    measured on the two images brought to one PSF instead, at every bright unsaturated source
    matched in both (:func:`_psf_matched_ratios`; at least ``_MATCHED_MIN_SOURCES``), where
    neighbours cancel; the aperture fluxes stand in when that needs PSFs not given or gives no
    ratio. The offsets come from the unblended stars, whose centroids no neighbour pulls.

    Parameters
    ----------
    sci, ref : Frame
        Background-subtracted science image and reference already on the science grid. Their
        ``psf`` (when set) is used for the ratio and for aperture corrections;
        ``meta["saturation"]`` and ``meta["zptmag"]`` are used when present.
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
        (the reference on the science grid keeps its fluxes, so equal units need no more).
    clip_sigma : float, optional
        Sigma clipping of ratios and offsets (3.0); the ratio is the inverse-variance
        weighted mean of the surviving ratios.
    aperture_radius : float, optional
        Aperture radius in pixels (the S/N of a source, and the ratio without PSFs); None:
        2 x the larger PSF FWHM, at least 3.
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
    unsaturated = np.ones(i.size, dtype=bool)
    for f, objs, k in ((sci, os_, i), (ref, or_, j)):
        sat = f.meta.get("saturation")
        if sat:
            unsaturated &= objs["peak"][k] < saturation_fraction * float(sat)
    # within an aperture and a FWHM, any neighbour's light reaches the aperture
    reach = aperture_radius + max(fw)
    unblended = (unsaturated & _unblended(xy_s, fs, gs, os_["flag"], reach)[i]
                 & _unblended(xy_r, fr, gr, or_["flag"], reach)[j])
    bright = unsaturated & (fs[i] > min_snr * es[i]) & (fr[j] > min_snr * er[j])
    # positions are worth having from fainter stars than ratios are
    located = unblended & (fs[i] > _LOCATE_SNR * es[i]) & (fr[j] > _LOCATE_SNR * er[j])
    ok = unblended & bright
    psf_dx, psf_dy = _psf_centre(sci.psf, window) - _psf_centre(ref.psf, window)
    fw_s, fw_r = fw[0], fw[-1]

    def offsets(ii, jj, ratio: float) -> dict:
        """The misregistration measured on the pairs (ii, jj), their offsets less that of the
        two PSFs' own centroids: the GainMatch fields (zero offsets without pairs)."""
        star_dx = xy_s[ii, 0] - xy_r[jj, 0] - psf_dx
        star_dy = xy_s[ii, 1] - xy_r[jj, 1] - psf_dy
        out = dict(star_x=xy_s[ii, 0], star_y=xy_s[ii, 1], star_dx=star_dx, star_dy=star_dy,
                   source_x=np.concatenate([xy_s[:, 0], xy_r[:, 0] + shift[0]]),
                   source_y=np.concatenate([xy_s[:, 1], xy_r[:, 1] + shift[1]]),
                   source_flux=np.concatenate([fs, fr * ratio]))
        if ii.size == 0:
            return dict(out, dx_median=0.0, dy_median=0.0, dx_rms=0.0, dy_rms=0.0)
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

    # in a crowded field, the ratio from the images brought to one PSF, on every bright
    # unsaturated source (a blend is as good as a star there), when both PSFs are known
    matched_fit = None
    crowded = ok.sum() < _CROWDED_SHARE * bright.sum()
    if crowded and sci.psf is not None and ref.psf is not None:
        pr, pe = _psf_matched_ratios(sci, ref, sci_rms, ref_rms, xy_s[i[bright]], shift,
                                     float(np.hypot(fw_s, fw_r)))
        matched_fit = clipped_weighted_mean(pr, pe, clip_sigma=clip_sigma,
                                            min_count=max(min_stars, _MATCHED_MIN_SOURCES))
    # the aperture fluxes of unblended stars: the ratio outside crowded fields (and where that
    # measure gives none), and the stars whose clean centroids register the images
    aperture_fit = None
    si, sj = i[ok], j[ok]
    if ok.sum() >= min_stars:
        corr = _encircled(ref.psf, aperture_radius) / _encircled(sci.psf, aperture_radius)
        ratio = fs[si] / fr[sj] * corr
        rel_err = np.hypot(es[si] / fs[si], er[sj] / fr[sj])
        aperture_fit = clipped_weighted_mean(ratio, ratio * rel_err, clip_sigma=clip_sigma,
                                             min_count=min_stars)
    if aperture_fit is not None and aperture_fit.ok:
        ii, jj = si[aperture_fit.used], sj[aperture_fit.used]
    else:
        ii, jj = i[located], j[located]
    best = next((f for f in (matched_fit, aperture_fit) if f is not None and f.ok), None)
    if best is None:
        return fallback(int(ok.sum() if aperture_fit is None else aperture_fit.used.sum()))
    return GainMatch(flux_ratio=best.mean, flux_ratio_err=best.error,
                     nmatched=int(best.used.sum()), **offsets(ii, jj, best.mean))

