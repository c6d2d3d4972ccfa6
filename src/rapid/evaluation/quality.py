"""Detection quality of candidate catalogs measured against a simulator's truth table.

Each truth row (one varying object in one image, see :mod:`rapid.sim.files`) whose flux changed
(``diff_flux != 0``) is an object to find. It is *recovered* when a candidate of the same sign
(brightening: ``sign = +1``; fading: ``sign = -1``) lies within ``radius`` pixels; pairs are
made one-to-one, closest first. A candidate is a *false positive* when no truth transient or
variable of its image lies within ``radius`` pixels, whatever the sign: residuals of static
stars and galaxies, cosmic rays and noise all count.

Photometry of a recovered object compares the signed measured flux ``sign * flux`` with the
true ``diff_flux`` (both in the science image's units, DN/s): the pull is
``(sign * flux - diff_flux) / flux_err`` and the relative error ``(sign * flux - diff_flux) /
|diff_flux|``. Pulls are summarised over all recovered objects and over those at
difference-image S/N >= 10, where detection is complete: fainter ones are found only when
noise lifts them over the threshold, which biases their pulls up. Magnitudes are those of the flux change, ``zp - 2.5 log10 |diff_flux|``, with the
image's zero point taken from the truth table (``mag + 2.5 log10 flux``).

Completeness is reported against two S/N figures. The *difference-image S/N* (``snr_diff``) is
the true flux change over the uncertainty of an optimal PSF fit in the difference image,
computed from the registered image's own D_unc and PSF (:mod:`rapid.evaluation.diffsnr`); it
is what a detector on D can reach, reference noise included. Objects whose PSF core lies on a
masked area have none; they are left out of these figures and counted (``masked``). The
*exposure S/N* (``snr_expected``, the simulator's) is that of the science exposure against a
noiseless reference; it overstates the S/N in D, by a factor of about 1 / 0.875 for a
3-frame reference, and is kept under ``exposure_snr`` for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rapid.evaluation.completeness_fit import fit_completeness
from rapid.evaluation.fom import figure_of_merit, fp_limited_cut
from rapid.evaluation.recovery import match_one_to_one

SNR_BINS = (0.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 1e9)
# difference-image S/N above which detection is complete, so pulls carry no selection bias
COMPLETE_SNR = 10.0


@dataclass
class Matched:
    """Truth rows and candidates of the evaluated images, matched.

    Attributes
    ----------
    truth : dict of ndarray
        One entry per truth object to find: image (index), filter, snr_expected (exposure
        S/N), snr_diff (difference-image S/N, NaN when unknown or masked), masked (bool: PSF
        core on a masked area), mag (of the flux change), diff_flux, found (bool), flux (signed
        measured flux, NaN when not found), flux_err, snr (measured), score (the candidate's
        |scorr_peak|), distance (pixels).
    cands : dict of ndarray
        One entry per candidate: image, filter, sign, score, false (bool: matches no truth).
    images : ndarray
        Filter of each evaluated image.
    """

    truth: dict[str, np.ndarray]
    cands: dict[str, np.ndarray]
    images: np.ndarray


def _score(cat: dict[str, np.ndarray]) -> np.ndarray:
    """How significant a candidate is: |Scorr peak|, or its measured S/N when Scorr is absent."""
    n = len(cat["x"])
    s = np.abs(np.asarray(cat.get("scorr_peak", np.full(n, np.nan)), dtype=float))
    snr = np.abs(np.asarray(cat.get("snr", np.full(n, np.nan)), dtype=float))
    return np.where(np.isfinite(s), s, snr)


def match_catalogs(truth: dict[str, np.ndarray], catalogs: list[tuple[str, str, dict]], *,
                   radius: float = 2.0, kinds: tuple[str, ...] = ("transient",)) -> Matched:
    """Match the candidate catalogs of several images with the truth table.

    Parameters
    ----------
    truth : dict of ndarray
        Truth-table columns (at least filename, kind, x, y, flux, diff_flux, mag,
        snr_expected), and optionally snr_diff (difference-image S/N, NaN where unknown) and
        masked (bool), as :func:`rapid.evaluation.evaluate.truth_difference_snr` gives them.
    catalogs : list of (filename, filter, dict of ndarray)
        For each evaluated image: its L2 basename, its filter and its candidate columns
        (x, y zero-based, flux >= 0, flux_err, sign, and optionally snr and scorr_peak).
    radius : float, optional
        Matching radius, pixels (2.0).
    kinds : tuple of str, optional
        Truth kinds whose flux changes are to be found (("transient",)). Variable stars are
        left out by default: the truth gives their change from the baseline, but a reference
        coadd holds their mean over the reference epochs, so the change a difference image
        should show is not known. Candidates on variables are never false positives.

    Returns
    -------
    Matched
    """
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    for col in ("filename", "kind", "x", "y", "flux", "diff_flux", "mag", "snr_expected"):
        if col not in truth:
            raise ValueError(f"truth lacks column {col!r}")
    names = np.asarray(truth["filename"]).astype(str)
    kinds_all = np.asarray(truth["kind"]).astype(str)
    tx, ty = np.asarray(truth["x"], float), np.asarray(truth["y"], float)
    tdiff = np.asarray(truth["diff_flux"], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        zp = np.asarray(truth["mag"], float) + 2.5 * np.log10(np.asarray(truth["flux"], float))
        zp_ok = np.isfinite(zp)
        tmag = np.nanmedian(zp[zp_ok]) if zp_ok.any() else np.nan
        dmag = np.where(zp_ok, zp, tmag) - 2.5 * np.log10(np.abs(tdiff))
    tsnr = np.asarray(truth["snr_expected"], float)
    tsnr_diff = np.asarray(truth.get("snr_diff", np.full(len(names), np.nan)), float)
    tmasked = np.asarray(truth.get("masked", np.zeros(len(names), bool)), bool)
    if tsnr_diff.shape != names.shape or tmasked.shape != names.shape:
        raise ValueError("truth columns snr_diff and masked must have one entry per row")
    T: dict[str, list] = {k: [] for k in ("image", "filter", "snr_expected", "snr_diff",
                                          "masked", "mag", "diff_flux", "found", "flux",
                                          "flux_err", "snr", "score", "distance")}
    C: dict[str, list] = {k: [] for k in ("image", "filter", "sign", "score", "false")}
    filters = []
    for k, (name, filt, cat) in enumerate(catalogs):
        filters.append(filt)
        n = len(cat["x"])
        cxy = np.column_stack([np.asarray(cat["x"], float), np.asarray(cat["y"], float)]) \
            if n else np.zeros((0, 2))
        sign = np.asarray(cat["sign"], int) if n else np.zeros(0, int)
        flux = np.asarray(cat["flux"], float) if n else np.zeros(0)
        ferr = np.asarray(cat["flux_err"], float) if n else np.zeros(0)
        score = _score(cat) if n else np.zeros(0)
        in_image = (names == name) & np.isin(kinds_all, ("transient", "variable"))
        allxy = np.column_stack([tx[in_image], ty[in_image]])
        # false positive: nothing varying of this image within the radius, either sign
        if n and len(allxy):
            from scipy.spatial import cKDTree

            d, _ = cKDTree(allxy).query(cxy, k=1)
            false = d > radius
        else:
            false = np.ones(n, dtype=bool)
        C["image"].append(np.full(n, k)); C["filter"].append(np.full(n, filt, dtype=object))
        C["sign"].append(sign); C["score"].append(score); C["false"].append(false)
        sel = np.flatnonzero(in_image & np.isin(kinds_all, kinds) & (tdiff != 0)
                             & np.isfinite(tdiff))
        found = np.zeros(len(sel), dtype=bool)
        mflux, merr, msnr, mscore, mdist = (np.full(len(sel), np.nan) for _ in range(5))
        for s in (1, -1):
            part = np.flatnonzero(np.sign(tdiff[sel]) == s)
            pick = np.flatnonzero(sign == s)
            idx, dist = match_one_to_one(np.column_stack([tx[sel][part], ty[sel][part]]),
                                         cxy[pick], radius)
            ok = idx >= 0
            j = pick[idx[ok]]
            found[part[ok]] = True
            mflux[part[ok]] = s * flux[j]
            merr[part[ok]] = ferr[j]
            with np.errstate(divide="ignore", invalid="ignore"):
                msnr[part[ok]] = flux[j] / ferr[j]
            mscore[part[ok]] = score[j]
            mdist[part[ok]] = dist[ok]
        T["image"].append(np.full(len(sel), k)); T["filter"].append(np.full(len(sel), filt,
                                                                             dtype=object))
        T["snr_expected"].append(tsnr[sel]); T["snr_diff"].append(tsnr_diff[sel])
        T["masked"].append(tmasked[sel]); T["mag"].append(dmag[sel])
        T["diff_flux"].append(tdiff[sel]); T["found"].append(found); T["flux"].append(mflux)
        T["flux_err"].append(merr); T["snr"].append(msnr); T["score"].append(mscore)
        T["distance"].append(mdist)
    cat_ = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in T.items()}
    cc = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in C.items()}
    cat_["found"] = cat_["found"].astype(bool)
    cat_["masked"] = cat_["masked"].astype(bool)
    cc["false"] = cc["false"].astype(bool)
    return Matched(truth=cat_, cands=cc, images=np.asarray(filters, dtype=object))


def _fraction(hit: np.ndarray) -> float | None:
    return float(hit.mean()) if hit.size else None


def _robust(values: np.ndarray) -> tuple[float | None, float | None]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None, None
    med = float(np.median(v))
    return med, float(1.4826 * np.median(np.abs(v - med)))


def _completeness(found: np.ndarray, snr: np.ndarray) -> dict:
    """Completeness at S/N >= 10, 5 <= S/N < 7, S/N >= 5, in SNR_BINS and as a fitted curve
    (NaN S/N: left out)."""
    bins = []
    for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:]):
        s = (snr >= lo) & (snr < hi)
        bins.append({"snr_lo": lo, "snr_hi": hi if hi < 1e8 else None, "n": int(s.sum()),
                     "completeness": _fraction(found[s])})
    return {"completeness_snr10": _fraction(found[snr >= 10]),
            "completeness_snr5": _fraction(found[(snr >= 5) & (snr < 7)]),
            "completeness_snr5_up": _fraction(found[snr >= 5]),
            "completeness_vs_snr": bins,
            "completeness_fit": fit_completeness(snr, found, at=5.0)}


def _summary(m: Matched, tsel: np.ndarray, csel: np.ndarray, nimages: int, *,
             pixel_scale: float, max_fp_per_image: float) -> dict:
    t = {k: v[tsel] for k, v in m.truth.items()}
    found = t["found"]
    out: dict = {"images": nimages, "objects": int(tsel.sum()), "found": int(found.sum()),
                 "candidates": int(csel.sum())}
    # the difference-image S/N is the headline; objects on masked areas have none
    out["snr"] = "difference-image S/N"
    out["masked"] = int(t["masked"].sum())
    out["snr_diff_unknown"] = int((~t["masked"] & ~np.isfinite(t["snr_diff"])).sum())
    out.update(_completeness(found, t["snr_diff"]))
    out["exposure_snr"] = {"snr": "exposure S/N (noiseless reference)",
                           **_completeness(found, t["snr_expected"])}
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = t["snr_diff"] / t["snr_expected"]
    ratio = ratio[np.isfinite(ratio) & (t["snr_expected"] > 0)]
    out["snr_diff_over_expected_median"] = float(np.median(ratio)) if ratio.size else None
    nfp = int(m.cands["false"][csel].sum())
    out["false_positives"] = nfp
    out["fp_per_image"] = nfp / nimages if nimages else None
    with np.errstate(divide="ignore", invalid="ignore"):
        pull = (t["flux"] - t["diff_flux"]) / t["flux_err"]
        rel = (t["flux"] - t["diff_flux"]) / np.abs(t["diff_flux"])
    ok = found & np.isfinite(pull)
    med, rstd = _robust(pull[ok])
    out["pull_median"], out["pull_robust_std"] = med, rstd
    out["pull_std"] = float(np.std(pull[ok])) if ok.sum() > 1 else None
    # Near the threshold only upward fluctuations are found, which biases pulls up; where
    # nearly everything is found (S/N >= 10) the pulls measure the photometry alone.
    complete = ok & (np.nan_to_num(t["snr_diff"]) >= COMPLETE_SNR)
    med10, rstd10 = _robust(pull[complete])
    out["pull_snr10"] = {"objects": int(complete.sum()), "median": med10, "robust_std": rstd10,
                         "std": float(np.std(pull[complete])) if complete.sum() > 1 else None}
    out["flux_bias_median"] = _robust(rel[ok])[0]
    dist = t["distance"][found]
    out["astrometry_median_px"] = float(np.median(dist)) if dist.size else None
    out["astrometry_rms_arcsec"] = (float(np.sqrt(np.mean(dist**2))) * pixel_scale
                                    if dist.size else None)
    cut = fp_limited_cut(m.cands["score"][csel], m.cands["false"][csel], nimages,
                         max_fp_per_image=max_fp_per_image)
    # objects on masked areas (no reference there, a saturated star) cannot be found by any
    # detector; they are left out of the figure of merit as out of the completeness figures
    seen = ~t["masked"]
    out["fom"] = figure_of_merit(t["mag"][seen],
                                 (found & (np.nan_to_num(t["score"]) >= cut))[seen],
                                 measured_flux=t["flux"][seen], flux_err=t["flux_err"][seen],
                                 true_flux=t["diff_flux"][seen], score_cut=cut)
    return out


def summarize(m: Matched, *, pixel_scale: float = 0.11, max_fp_per_image: float = 10.0) -> dict:
    """Completeness, false positives, photometry, astrometry and FoM, per filter and overall.

    Parameters
    ----------
    m : Matched
        From :func:`match_catalogs`.
    pixel_scale : float, optional
        Arcsec per pixel for the astrometric error (0.11, Roman WFI).
    max_fp_per_image : float, optional
        False positives per image allowed when the figure of merit is computed (10).

    Returns
    -------
    dict
        ``{"overall": {...}, "filters": {filter: {...}}}``; each holds images, objects, found,
        candidates; snr ("difference-image S/N": what the completeness figures are measured
        against), masked (objects left out of them: PSF core on a masked area),
        snr_diff_unknown (objects without a difference-image S/N for another reason, also left
        out), completeness_snr10 (difference-image S/N >= 10), completeness_snr5
        (5 <= S/N < 7), completeness_snr5_up (S/N >= 5), completeness_vs_snr (bins of
        SNR_BINS), completeness_fit (see :func:`rapid.evaluation.completeness_fit.
        fit_completeness`: the S/N of 50% completeness and the fitted completeness at S/N 5,
        with errors; None when too few objects are found or missed); exposure_snr (the same
        completeness figures against the simulator's
        exposure S/N with a noiseless reference, ``snr_expected``, all objects counted);
        snr_diff_over_expected_median; false_positives, fp_per_image, pull_median,
        pull_robust_std, pull_std, pull_snr10 (the pulls of objects at difference-image S/N
        >= 10: objects, median, robust_std, std), flux_bias_median, astrometry_median_px,
        astrometry_rms_arcsec and fom (see :func:`rapid.evaluation.fom.figure_of_merit`, over
        the objects not on masked areas; it does not depend on either S/N).
    """
    result = {"overall": _summary(m, np.ones(len(m.truth["found"]), bool),
                                  np.ones(len(m.cands["false"]), bool), len(m.images),
                                  pixel_scale=pixel_scale, max_fp_per_image=max_fp_per_image),
              "filters": {}}
    for filt in sorted(set(m.images.tolist())):
        result["filters"][filt] = _summary(
            m, m.truth["filter"] == filt, m.cands["filter"] == filt,
            int(np.sum(m.images == filt)), pixel_scale=pixel_scale,
            max_fp_per_image=max_fp_per_image)
    return result
