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
|diff_flux|``. Magnitudes are those of the flux change, ``zp - 2.5 log10 |diff_flux|``, with the
image's zero point taken from the truth table (``mag + 2.5 log10 flux``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rapid.evaluation.fom import figure_of_merit, fp_limited_cut
from rapid.evaluation.recovery import match_one_to_one

SNR_BINS = (0.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 1e9)


@dataclass
class Matched:
    """Truth rows and candidates of the evaluated images, matched.

    Attributes
    ----------
    truth : dict of ndarray
        One entry per truth object to find: image (index), filter, snr_expected, mag (of the
        flux change), diff_flux, found (bool), flux (signed measured flux, NaN when not found),
        flux_err, snr (measured), score (the candidate's |scorr_peak|), distance (pixels).
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
        snr_expected).
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
    T: dict[str, list] = {k: [] for k in ("image", "filter", "snr_expected", "mag", "diff_flux",
                                          "found", "flux", "flux_err", "snr", "score",
                                          "distance")}
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
        T["snr_expected"].append(tsnr[sel]); T["mag"].append(dmag[sel])
        T["diff_flux"].append(tdiff[sel]); T["found"].append(found); T["flux"].append(mflux)
        T["flux_err"].append(merr); T["snr"].append(msnr); T["score"].append(mscore)
        T["distance"].append(mdist)
    cat_ = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in T.items()}
    cc = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in C.items()}
    cat_["found"] = cat_["found"].astype(bool)
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


def _summary(m: Matched, tsel: np.ndarray, csel: np.ndarray, nimages: int, *,
             pixel_scale: float, max_fp_per_image: float) -> dict:
    t = {k: v[tsel] for k, v in m.truth.items()}
    found, snr_exp = t["found"], t["snr_expected"]
    out: dict = {"images": nimages, "objects": int(tsel.sum()), "found": int(found.sum()),
                 "candidates": int(csel.sum())}
    out["completeness_snr10"] = _fraction(found[snr_exp >= 10])
    out["completeness_snr5"] = _fraction(found[(snr_exp >= 5) & (snr_exp < 7)])
    out["completeness_snr5_up"] = _fraction(found[snr_exp >= 5])
    nfp = int(m.cands["false"][csel].sum())
    out["false_positives"] = nfp
    out["fp_per_image"] = nfp / nimages if nimages else None
    bins = []
    for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:]):
        s = (snr_exp >= lo) & (snr_exp < hi)
        bins.append({"snr_lo": lo, "snr_hi": hi if hi < 1e8 else None, "n": int(s.sum()),
                     "completeness": _fraction(found[s])})
    out["completeness_vs_snr"] = bins
    with np.errstate(divide="ignore", invalid="ignore"):
        pull = (t["flux"] - t["diff_flux"]) / t["flux_err"]
        rel = (t["flux"] - t["diff_flux"]) / np.abs(t["diff_flux"])
    ok = found & np.isfinite(pull)
    med, rstd = _robust(pull[ok])
    out["pull_median"], out["pull_robust_std"] = med, rstd
    out["pull_std"] = float(np.std(pull[ok])) if ok.sum() > 1 else None
    out["flux_bias_median"] = _robust(rel[ok])[0]
    dist = t["distance"][found]
    out["astrometry_median_px"] = float(np.median(dist)) if dist.size else None
    out["astrometry_rms_arcsec"] = (float(np.sqrt(np.mean(dist**2))) * pixel_scale
                                    if dist.size else None)
    cut = fp_limited_cut(m.cands["score"][csel], m.cands["false"][csel], nimages,
                         max_fp_per_image=max_fp_per_image)
    out["fom"] = figure_of_merit(t["mag"], found & (np.nan_to_num(t["score"]) >= cut),
                                 measured_flux=t["flux"], flux_err=t["flux_err"],
                                 true_flux=t["diff_flux"], score_cut=cut)
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
        candidates, completeness_snr10 (expected S/N >= 10), completeness_snr5 (5 <= S/N < 7),
        completeness_snr5_up (S/N >= 5), false_positives, fp_per_image, completeness_vs_snr,
        pull_median, pull_robust_std, pull_std, flux_bias_median, astrometry_median_px,
        astrometry_rms_arcsec and fom (see :func:`rapid.evaluation.fom.figure_of_merit`).
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
