"""RAPID's figure of merit: one magnitude that summarises depth, completeness and photometry.

Definitions (magnitudes of the flux change, see :mod:`rapid.evaluation.quality`):

- completeness curve C(m): fraction of truth objects recovered in magnitude bins of width
  ``bin_width``, from bright to faint, counting only candidates above the score cut that keeps
  at most ``max_fp_per_image`` false positives per image (:func:`fp_limited_cut`);
- ``m80`` / ``m20``: the magnitudes where C(m) first falls below 0.8 / 0.2 going faint,
  linearly interpolated between bin centres;
- ``m_th``, the threshold magnitude: where C(m) first falls below 0.5, the magnitude detected
  half of the time;
- ``m5sigma``: where the measured S/N (flux / flux_err) of recovered objects is 5, from a
  least-squares line of log10(S/N) against magnitude;
- ``m_ph10``: where the robust scatter (1.4826 MAD) of the relative flux error
  ``(measured - true) / |true|`` of recovered objects, in magnitude bins, first reaches 0.10;
- FoM: the weighted mean ``(1.0 m_th + 0.8 m80 + 0.6 m20 + 0.3 m5sigma + 0.2 m_ph10) / 2.9``
  (over the terms that could be measured, with their weights renormalised).
"""

from __future__ import annotations

import numpy as np

WEIGHTS = {"m_th": 1.0, "m80": 0.8, "m20": 0.6, "m5sigma": 0.3, "m_ph10": 0.2}


def fp_limited_cut(score: np.ndarray, false: np.ndarray, nimages: int, *,
                   max_fp_per_image: float = 10.0) -> float:
    """The lowest candidate score cut that leaves at most ``max_fp_per_image`` false positives.

    Parameters
    ----------
    score : ndarray
        Candidate significance (|Scorr peak|).
    false : ndarray
        True for false-positive candidates.
    nimages : int
        Images the candidates come from.
    max_fp_per_image : float, optional
        Allowed false positives per image (10).

    Returns
    -------
    float
        Keep candidates with ``score >= cut``; 0 when no cut is needed.
    """
    score = np.nan_to_num(np.asarray(score, float))
    false = np.asarray(false, bool)
    if score.shape != false.shape:
        raise ValueError("score and false must have the same shape")
    allowed = int(np.floor(max_fp_per_image * max(nimages, 0)))
    fp = np.sort(score[false])[::-1]
    if fp.size <= allowed:
        return 0.0
    # keep the `allowed` highest-scoring false positives: cut just above the next one
    return float(np.nextafter(fp[allowed], np.inf))


def _crossing(centres: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """First magnitude (going faint) where ``values`` falls below ``level``, interpolated."""
    for k in range(len(values)):
        if values[k] < level:
            if k == 0:
                return float(centres[0])
            x0, x1, y0, y1 = centres[k - 1], centres[k], values[k - 1], values[k]
            return float(x0 + (y0 - level) * (x1 - x0) / (y0 - y1))
    return None


def completeness_curve(mag: np.ndarray, found: np.ndarray, *, bin_width: float = 0.25,
                       min_per_bin: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Completeness in magnitude bins.

    Parameters
    ----------
    mag, found : ndarray
        Magnitude of each truth object and whether it was recovered.
    bin_width : float, optional
        Bin width in magnitudes (0.25).
    min_per_bin : int, optional
        Bins with fewer objects are left out (3).

    Returns
    -------
    centres, completeness, counts : ndarray
    """
    mag = np.asarray(mag, float)
    found = np.asarray(found, bool)
    ok = np.isfinite(mag)
    if not ok.any():
        return np.zeros(0), np.zeros(0), np.zeros(0, int)
    lo = np.floor(mag[ok].min() / bin_width) * bin_width
    edges = np.arange(lo, mag[ok].max() + bin_width * 1.001, bin_width)
    counts, _ = np.histogram(mag[ok], edges)
    hits, _ = np.histogram(mag[ok & found], edges)
    keep = counts >= min_per_bin
    centres = 0.5 * (edges[:-1] + edges[1:])
    with np.errstate(invalid="ignore"):
        return centres[keep], hits[keep] / counts[keep], counts[keep]


def figure_of_merit(mag: np.ndarray, found: np.ndarray, *, measured_flux: np.ndarray,
                    flux_err: np.ndarray, true_flux: np.ndarray, score_cut: float = 0.0,
                    bin_width: float = 0.25) -> dict:
    """The figure of merit and its terms (definitions in the module docstring).

    Parameters
    ----------
    mag : ndarray
        Magnitude of the flux change of each truth object.
    found : ndarray
        Whether it was recovered by a candidate above the false-positive-limited cut.
    measured_flux, flux_err, true_flux : ndarray
        Signed measured flux change, its error, and the true change (NaN when not found).
    score_cut : float, optional
        The cut applied (reported only).
    bin_width : float, optional
        Magnitude bin width (0.25).

    Returns
    -------
    dict
        m_th, m80, m20, m5sigma, m_ph10 (None when not measurable), fom, score_cut.
    """
    mag = np.asarray(mag, float)
    found = np.asarray(found, bool)
    centres, comp, _ = completeness_curve(mag, found, bin_width=bin_width)
    terms: dict[str, float | None] = {
        "m_th": _crossing(centres, comp, 0.5), "m80": _crossing(centres, comp, 0.8),
        "m20": _crossing(centres, comp, 0.2)}
    mf, fe, tf = (np.asarray(a, float) for a in (measured_flux, flux_err, true_flux))
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = mf / fe
        rel = (mf - tf) / np.abs(tf)
    ok = found & np.isfinite(snr) & (snr > 0) & np.isfinite(mag)
    terms["m5sigma"] = None
    if ok.sum() >= 3 and np.ptp(mag[ok]) > 0:
        slope, icpt = np.polyfit(mag[ok], np.log10(snr[ok]), 1)
        if slope < 0:
            terms["m5sigma"] = float((np.log10(5.0) - icpt) / slope)
    terms["m_ph10"] = None
    ok = found & np.isfinite(rel) & np.isfinite(mag)
    if ok.sum() >= 3:
        edges = np.arange(np.floor(mag[ok].min() / bin_width) * bin_width,
                          mag[ok].max() + bin_width * 1.001, bin_width)
        cs, scat = [], []
        for a, b in zip(edges[:-1], edges[1:]):
            v = rel[ok & (mag >= a) & (mag < b)]
            if v.size >= 3:
                cs.append(0.5 * (a + b))
                scat.append(1.4826 * np.median(np.abs(v - np.median(v))))
        terms["m_ph10"] = _crossing(np.asarray(cs), -np.asarray(scat), -0.10)
    used = {k: v for k, v in terms.items() if v is not None}
    fom = (sum(WEIGHTS[k] * v for k, v in used.items()) / sum(WEIGHTS[k] for k in used)
           if used else None)
    return {**terms, "fom": fom, "score_cut": float(score_cut)}
