"""The difference-imaging pipeline: reference onto the science grid, ZOGY, candidates.

:func:`difference_images` chains the steps of :mod:`rapid.science` on two in-memory frames and
returns a :class:`DifferenceResult` with the products, the metadata RAPID records in
``diffimmeta`` and the wall time of every step.

Units: the difference image ``diff.data`` is ZOGY's D scaled to science-image units
(``D * Fn / Fd``), so a PSF fit with ``diff.psf`` gives fluxes in the science image's units;
``diff.unc`` is its 1-sigma uncertainty, propagated exactly through the (linear) ZOGY kernels
from the per-pixel variances of the science image and the flux-scaled reference. The
resampled reference's per-pixel variance ignores the correlation that interpolation creates,
so D_unc is approximate where the reference noise matters; Scorr's scale is checked by the
measured ``scorrstd``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from astropy.table import Table, vstack
from astropy.wcs import WCS

from rapid.io.units import count_unit
from rapid.science.aperture_correction import (ApertureCorrection, combine_ratios,
                                               star_flux_ratios)
from rapid.science.artifacts import pixel_scores
from rapid.science.background import estimate_background, match_level
from rapid.science.bright_mask import mask_bright_halos, wing_profile
from rapid.science.config import DifferenceConfig
from rapid.science.cosmic_rays import cosmic_ray_mask
from rapid.science.detect import detect_candidates
from rapid.science.effective_psf import fit_effective_psf
from rapid.science.fine_psf import fine_difference_psf
from rapid.science.gainmatch import GainMatch, gain_match
from rapid.science.image import FinePsf, Frame
from rapid.science.moffat_wings import few_source_psf, moffat_within_noise, with_moffat_wings
from rapid.science.phases import (HALF_PIXEL_PHASES, false_alarm_threshold,
                                  gradient_variance, psf_at_phase)
from rapid.science.photometry import DifferenceNoise, measure_candidates
from rapid.science.psf import (MAX_PSF_STARS, PsfStars, estimate_psf, find_psf_stars,
                               fit_psf_fwhm, gaussian_psf, point_like, span_size, star_stamps)
from rapid.science.psf_cells import CellGrid, PsfCells, psf_cells
from rapid.science.psf_mismatch import psf_mismatch
from rapid.science.psf_transform import local_jacobian
from rapid.science.registration import fit_registration
from rapid.science.star_residuals import residual_levels
from rapid.science.streaks import find_streaks, on_streaks, streak_mask
from rapid.science.zogy_cells import zogy_cells


# Largest move of the detection thresholds, in sigma, that the skewness correction may make
MAX_SKEW_SHIFT = 0.5
# Fewest pixels of noise alone that measure Scorr's scatter for a relative threshold: Scorr is
# correlated over a PSF, so this many give its robust std to a few per cent
MIN_NOISE_PIXELS = 5000
# Stars an aperture correction is measured on, shared among the PSF cells
MAX_APCORR_STARS = 60
# Reach of a bright difference source's side lobes, in FWHM of D's PSF (Roman: ~6 pixels)
SATELLITE_FWHMS = 4.0


class NoOverlapError(ValueError):
    """The science and reference images have no valid pixel in common (RAPID exit 33)."""


@dataclass
class DifferenceResult:
    """Products of :func:`difference_images`.

    Attributes
    ----------
    diff : Frame
        Difference image D in science units, with ``unc`` (D_unc), ``psf`` (Pd), ``psf_fine``
        (Pd sampled finer, when the science PSF came with a fine version), ``mask`` and the
        science WCS.
    scorr : ndarray
        Scorr image (0 where masked).
    ref_resampled : Frame
        Reference on the science grid (not background-subtracted).
    candidates : astropy.table.Table
        Measured candidates (see :func:`rapid.science.photometry.measure_candidates`).
    meta : dict
        scalefacref, scalefacref_err, gainmatch_method, dxrmsfin, dyrmsfin, dxmedianfin,
        dymedianfin, nmatched, scorrstd (robust std of Scorr where it is noise alone),
        scorr_noise_pixels (how many pixels that is; below 5000 the threshold is absolute),
        ncandidates, npositive, nnegative, fd, sci_bkg_rms,
        ref_bkg_rms, sci_fwhm, ref_fwhm (on the science grid), ref_fwhm_own (the reference's
        FWHM in its own pixels), diff_fwhm, sci_psf_source, ref_psf_source ("frame":
        given with the image; "estimated" from its stars; with too few stars, the other
        image's, "reference" or "science", else "few sources", a profile fitted to one of its
        brightest sources, else "fallback", a Gaussian), nmasked,
        detect_threshold, detect_threshold_fading, scorr_skew, false_alarm_threshold (the
        level that ``config.detect.false_alarm_rate`` asks for; NaN when not used),
        nartifacts (detections dropped as one or two bright pixels of one image, see
        :mod:`rapid.science.artifacts`), ncosmic, ncosmic_ref (pixels of the science image
        and of the resampled reference masked as cosmic rays, see
        :mod:`rapid.science.cosmic_rays`), nresidual (candidates dropped as spots of a bright
        static star's PSF-model error, see :mod:`rapid.science.star_residuals`), flux_noise
        (the PSF-model mismatch weighed into Scorr, see :mod:`rapid.science.psf_mismatch`),
        psf_cells (cells the difference ran in), psf_variation_sci, psf_variation_ref
        (largest relative L2 difference of a cell's PSF from the image's; 0 for a PSF that
        came with its image),
        reg_sigma_x, reg_sigma_y (the registration noise weighed into Scorr, pixels),
        register_dx, register_dy (the registration correction applied at the image centre,
        pixels, science minus reference; 0 when none), register_max (its largest value at a
        corner), register_nstars (stars it was fitted to), apcorr_sci, apcorr_ref (and their
        errors: the aperture corrections measured on each image's stars, NaN where not),
        pd_inside (the share of D's PSF within the Pd stamp, which divides the fluxes of a
        sign without a measured aperture correction).
    timings : dict
        Wall seconds per step.
    gain : GainMatch
        The gain-match outcome (after the registration correction, when one was made).
    cells : CellGrid
        The cells the difference ran in (one, unless an estimated PSF varies across the image;
        see :mod:`rapid.science.psf_cells`).
    cell_psfs : tuple of ndarray
        D's PSF in each cell, in the grid's order (``diff.psf`` is the central cell's).
    """

    diff: Frame
    scorr: np.ndarray
    ref_resampled: Frame
    candidates: Table
    meta: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    gain: GainMatch | None = None
    cells: CellGrid | None = None
    cell_psfs: tuple[np.ndarray, ...] = ()

    def psf_cells_product(self):
        """(stamps, y_edges, x_edges) of D's PSF per cell for the PSF product, or None when
        the difference ran in one cell (see :func:`rapid.io.fits_frame.psf_fits_bytes`)."""
        if self.cells is None or self.cells.ncells == 1:
            return None
        return self.cell_psfs, self.cells.y_edges, self.cells.x_edges


def same_grid(a: WCS, shape_a, b: WCS, shape_b) -> bool:
    """True when two WCS describe the same pixel grid (same shape, header and SIP)."""
    if tuple(shape_a) != tuple(shape_b):
        return False
    if a.wcs.compare(b.wcs, tolerance=1e-10) is False:
        return False
    sa, sb = a.sip, b.sip
    if (sa is None) != (sb is None):
        return False
    if sa is not None:
        return all(np.array_equal(getattr(sa, k), getattr(sb, k)) for k in ("a", "b"))
    return True


def _check_footprints(sci: Frame, ref: Frame) -> None:
    """Raise NoOverlapError when no sampled science pixel falls inside the reference."""
    ny, nx = sci.shape
    gy, gx = np.meshgrid(np.linspace(0, ny - 1, 24), np.linspace(0, nx - 1, 24), indexing="ij")
    ra, dec = sci.wcs.all_pix2world(gx.ravel(), gy.ravel(), 0)
    with np.errstate(all="ignore"):
        try:
            rx, ry = ref.wcs.all_world2pix(ra, dec, 0, quiet=True, maxiter=30)
        except Exception:
            rx, ry = ref.wcs.wcs_world2pix(ra, dec, 0)
    # a margin of one sampling step: the sparse grid can miss a thin overlap
    mx, my = nx / 23.0 + 2, ny / 23.0 + 2
    ry_n, rx_n = ref.shape
    inside = (rx > -mx) & (rx < rx_n - 1 + mx) & (ry > -my) & (ry < ry_n - 1 + my)
    if not np.any(inside & np.isfinite(rx) & np.isfinite(ry)):
        raise NoOverlapError("science and reference images do not overlap on the sky")


def _reference_on_science_grid(sci: Frame, ref: Frame, cfg: DifferenceConfig, *,
                               dst_offsets=None) -> Frame:
    """The reference on the science grid (as it is when already there and not re-registered),
    masked where its coverage is below ``cfg.min_ref_coverage``."""
    if dst_offsets is None and same_grid(sci.wcs, sci.shape, ref.wcs, ref.shape):
        return ref
    from rapid.science.resample import resample, resample_frame

    _check_footprints(sci, ref)
    try:
        ref_rs = resample_frame(ref, sci.wcs, sci.shape, order=cfg.resample_order,
                                dst_offsets=dst_offsets)
    except ValueError as exc:
        raise NoOverlapError(f"cannot map the reference onto the science grid: {exc}") from exc
    cov = ref.meta.get("coverage")
    if isinstance(cov, np.ndarray) and cov.shape == ref.shape:
        cov_rs = resample(cov, ref.wcs, sci.wcs, sci.shape, order=1, fill=0.0,
                          dst_offsets=dst_offsets)
        low = ~(cov_rs >= cfg.min_ref_coverage)
        ref_rs = replace(ref_rs, mask=low if ref_rs.mask is None else (ref_rs.mask | low))
    return ref_rs


def _common_bad(sci: Frame, ref_rs: Frame, cfg: DifferenceConfig) -> np.ndarray:
    """Pixels bad in either image; NoOverlapError when too few good ones are left."""
    bad = sci.bad() | ref_rs.bad()
    good = int((~bad).sum())
    if good < cfg.min_overlap_pixels:
        raise NoOverlapError(f"science and reference share {good} valid pixels, "
                             f"fewer than {cfg.min_overlap_pixels}")
    return bad


def _psf_for(frame: Frame, cfg, var: np.ndarray,
             ) -> tuple[np.ndarray, FinePsf | None, str, PsfStars | None]:
    """The frame's PSF (and its fine sampling, when known), else one estimated from its stars
    (on a stamp of at least ``cfg.stamp_fwhms`` FWHM; with a Moffat's wings when it is well
    sampled, on a finer grid too when it is undersampled), else one fitted to its brightest
    sources (:func:`_few_source_psf`), else a Gaussian of ``cfg.fallback_fwhm``; with the
    source and the stars an estimate came from, which also say whether it varies across the
    image."""
    if frame.psf is not None:
        return frame.psf, frame.psf_fine, "frame", None
    stars = None
    try:
        stars = find_psf_stars(frame)
        psf = estimate_psf(frame, size=cfg.size, min_stars=cfg.min_stars,
                           span_fwhm=cfg.stamp_fwhms, max_size=cfg.max_size, stars=stars)
    except ValueError:
        few = _few_source_psf(stars, cfg)
        if few is not None:
            return few, None, "few sources", None
        return gaussian_psf(cfg.fallback_fwhm, size=cfg.size), None, "fallback", None
    fwhm = fit_psf_fwhm(psf)
    if 0 < cfg.moffat_wings_from_fwhm <= fwhm:
        # few stars: the Moffat whole, on the widened stamp; enough to see its errors: the
        # stack's core with the Moffat's wings
        smooth = moffat_within_noise(star_stamps(stars, cfg.size, MAX_PSF_STARS),
                                     span_size(fwhm, cfg.stamp_fwhms, cfg.max_size),
                                     min_stars=cfg.min_stars)
        psf = smooth if smooth is not None else with_moffat_wings(psf, fwhm)
    if fwhm < cfg.fine_below_fwhm:
        try:
            native, fine = fit_effective_psf(stars, var, psf, fwhm=fwhm,
                                             factor=cfg.fine_factor,
                                             min_stars=cfg.fine_min_stars)
            return native, fine, "estimated", stars
        except ValueError:  # too few stars for every sub-pixel phase: the stack stands
            pass
    return psf, None, "estimated", stars


def _few_source_psf(stars: PsfStars | None, cfg) -> np.ndarray | None:
    """The PSF :func:`rapid.science.moffat_wings.few_source_psf` fits to the brightest of a
    frame's detections (too few stars for a stack; None: no source at all), or None."""
    if stars is None or not cfg.few_source_snr > 0:
        return None
    return few_source_psf(stars.at_snr(cfg.few_source_snr), cfg.size,
                          span_fwhm=cfg.stamp_fwhms, max_size=cfg.max_size)


# How well a PSF is known by where it came from: one with too few stars of its own takes the
# other image's when that one is known better
_PSF_RANK = {"frame": 3, "estimated": 3, "few sources": 1, "fallback": 0}


def _stand_in(psf: np.ndarray, fine: FinePsf | None, source: str, other: np.ndarray,
              other_source: str, other_name: str,
              ) -> tuple[np.ndarray, FinePsf | None, str]:
    """A PSF that came from too few stars (a profile fitted to one source, or the default
    Gaussian) takes the other image's instead when that is known better, named by
    ``other_name`` as its source: on the same grid and of the same sky, a stack of stars is
    nearer the truth than one source, and any measured PSF nearer than a guessed width, which
    sets every flux (a 2-pixel Gaussian for a 3-pixel PSF left fluxes a third low)."""
    if _PSF_RANK.get(other_source, 0) > _PSF_RANK.get(source, 3):
        return other, None, other_name
    return psf, fine, source


def drop_converged(table: Table, radius: float = 0.5) -> Table:
    """Candidates without the ones whose fit converged onto a more significant one of their sign.

    Two detections a pixel apart (a source split by the deblender, or two phases of one
    residual) can be fitted to the same position; the catalog keeps one source there, the one
    with the largest ``|scorr_peak|``.

    Parameters
    ----------
    table : astropy.table.Table
        Measured candidates with x, y, sign and scorr_peak.
    radius : float, optional
        Fitted positions closer than this (pixels) are one source (0.5).

    Returns
    -------
    astropy.table.Table
        The kept rows, in their original order.
    """
    sign = np.asarray(table["sign"])
    score = np.nan_to_num(np.abs(np.asarray(table["scorr_peak"], float)))
    keep = np.ones(len(table), dtype=bool)
    for i, j in _close_pairs(table, radius):
        if sign[i] == sign[j] and keep[i] and keep[j]:
            keep[j if score[i] >= score[j] else i] = False
    return table[keep]


def _close_pairs(table: Table, radius: float) -> list[tuple[int, int]]:
    """Row pairs (i < j) of ``table`` whose finite x, y lie within ``radius``, sorted."""
    if len(table) < 2:
        return []
    from scipy.spatial import cKDTree

    xy = np.column_stack([np.asarray(table["x"], float), np.asarray(table["y"], float)])
    rows = np.flatnonzero(np.isfinite(xy).all(axis=1))
    return sorted((int(rows[a]), int(rows[b]))
                  for a, b in cKDTree(xy[rows]).query_pairs(radius))


def drop_satellites(table: Table, radius: float, ratio: float = 20.0) -> Table:
    """Candidates without those that are side lobes of a far brighter one next to them.

    A bright source that changed (a variable star) lies in D with its flux change, and Scorr
    there is weighed down by the PSF mismatch of the star under it; a few PSF widths out, the
    side lobes of the matched filter and the rings of what the PSF models miss carry a few per
    cent of that flux where no star's mismatch weighs them: on Roman's images, rings of
    Scorr 5-8 candidates 5 pixels around variables at Scorr 6-7 themselves. A candidate within
    ``radius`` pixels of one whose flux is ``ratio`` times its own (or more), of either sign,
    is taken for such a lobe and dropped; a transient that faint that close to a source that
    bright is lost with them.

    Parameters
    ----------
    table : astropy.table.Table
        Measured candidates with x, y and flux (>= 0).
    radius : float
        Reach of the lobes, pixels.
    ratio : float, optional
        How much brighter the neighbour must be (20).

    Returns
    -------
    astropy.table.Table
        The kept rows, in their original order.
    """
    flux = np.nan_to_num(np.abs(np.asarray(table["flux"], float)))
    keep = np.ones(len(table), dtype=bool)
    for i, j in _close_pairs(table, radius):
        if flux[i] >= ratio * flux[j]:
            keep[j] = False
        elif flux[j] >= ratio * flux[i]:
            keep[i] = False
    return table[keep]


def _variance(frame: Frame, rms: np.ndarray) -> np.ndarray:
    """Per-pixel variance: the frame's uncertainty, else background noise plus Poisson term.

    The Poisson term needs ``meta["gain"]`` (e-/DN), and ``meta["exptime"]`` when the data
    are a count rate (``meta["units"]`` such as "DN/s", :mod:`rapid.io.units`); without a
    gain, or in units other than counts, source noise is left out and residuals of bright
    stars look more significant than they are.
    """
    if frame.unc is not None:
        var = np.square(frame.unc, dtype=np.float32)
    else:
        var = np.square(rms, dtype=np.float32)
        electrons_per_unit = _electrons_per_unit(frame)
        if electrons_per_unit:
            var = var + np.clip(np.nan_to_num(frame.data), 0, None) / electrons_per_unit
    return np.where(np.isfinite(var), var, 0.0).astype(np.float32)


def _electrons_per_unit(frame: Frame) -> float | None:
    """Photo-electrons per unit of ``frame.data``, or None without a gain (or exposure time)."""
    gain = frame.meta.get("gain")
    exptime = frame.meta.get("exptime")
    kind = count_unit(frame.meta.get("units", "DN/s"))
    if kind is None:  # a calibrated unit: no count behind it to weigh
        return None
    if gain and (exptime or not kind.per_second):
        return float(gain) * (float(exptime) if kind.per_second else 1.0)
    return None


def _third_cumulant(frame: Frame, bad: np.ndarray) -> float:
    """Third cumulant of the typical pixel's Poisson noise, in data units cubed (0 if unknown).

    Counts ``n = data * e`` (``e`` electrons per unit, sky included: ``frame`` is not
    background-subtracted) have third cumulant ``n``; in data units that is ``data / e**2``.
    """
    e = _electrons_per_unit(frame)
    if not e:
        return 0.0
    # the typical level is the sky's: every 8th pixel each way pins its median well enough
    good = frame.data[::8, ::8][~bad[::8, ::8]]
    level = float(np.median(good)) if good.size else 0.0
    return max(level, 0.0) / (e * e)


def _rows_by_cell(grid: CellGrid, x, y):
    """(cell, row indices) for each cell that holds some of the positions."""
    where = grid.index(np.asarray(x, float), np.asarray(y, float))
    for c in np.unique(where):
        yield int(c), np.flatnonzero(where == c)


def _aperture_correction(image, var, bad, gm: GainMatch, grid: CellGrid, psfs, kernels, pds,
                         pd_fines, measure, *, units: float,
                         min_stars: int) -> ApertureCorrection | None:
    """One image's aperture correction on the gain match's stars of their cell's PSF's size
    (:func:`rapid.science.psf.point_like`; galaxies are matched as well), each put through
    its own cell's kernel."""
    ratios, errors = [], []
    x, y = gm.star_x, gm.star_y
    for c, rows in _rows_by_cell(grid, x, y):
        rows = rows[point_like(image, bad, x[rows], y[rows], psfs[c])]
        r, e = star_flux_ratios(image, var, bad, x[rows], y[rows], stamp=psfs[c].shape[0],
                                kernel=kernels[c], pd=pds[c], pd_fine=pd_fines[c],
                                measure=measure, units=units,
                                max_stars=max(8, MAX_APCORR_STARS // grid.ncells),
                                neighbours=(gm.source_x, gm.source_y, gm.source_flux),
                                psf=psfs[c])
        ratios.append(r)
        errors.append(e)
    if not ratios:
        return None
    return combine_ratios(np.concatenate(ratios), np.concatenate(errors), min_stars=min_stars)


def _robust_std(values: np.ndarray) -> float:
    if values.size == 0:
        return float("nan")
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def difference_images(sci: Frame, ref: Frame, *,
                      config: DifferenceConfig | None = None) -> DifferenceResult:
    """Difference a science frame against a reference frame and measure the candidates.

    Parameters
    ----------
    sci : Frame
        Science image.
    ref : Frame
        Reference image on any grid overlapping the science image; resampled onto the science
        grid when its WCS or shape differ. ``ref.meta["coverage"]`` (on the reference grid),
        when present, masks pixels covered by fewer than ``config.min_ref_coverage`` frames.
    config : DifferenceConfig, optional
        Step settings; defaults documented in :mod:`rapid.science.config`.

    Returns
    -------
    DifferenceResult

    Raises
    ------
    NoOverlapError
        When science and reference share fewer than ``config.min_overlap_pixels`` valid pixels.
    """
    if not isinstance(sci, Frame):
        raise ValueError(f"sci must be a Frame, got {type(sci).__name__}")
    if not isinstance(ref, Frame):
        raise ValueError(f"ref must be a Frame, got {type(ref).__name__}")
    cfg = config if config is not None else DifferenceConfig()
    if not isinstance(cfg, DifferenceConfig):
        raise ValueError(f"config must be a DifferenceConfig, got {type(cfg).__name__}")
    timings: dict[str, float] = {}

    @contextmanager
    def timed(step: str):
        t0 = time.perf_counter()
        yield
        timings[step] = timings.get(step, 0.0) + time.perf_counter() - t0

    with timed("resample"):
        ref_rs = _reference_on_science_grid(sci, ref, cfg)
        bad = _common_bad(sci, ref_rs, cfg)

    bc = cfg.background

    def background(frame: Frame) -> tuple[Frame, np.ndarray]:
        b = estimate_background(frame, box=bc.box, filter_size=bc.filter_size,
                                mask_sources=bc.mask_sources, source_thresh=bc.source_thresh)
        return b.frame, b.rms

    with timed("background"):
        sci_b, sci_rms = background(sci)
        ref_b, ref_rms = background(ref_rs)

    with timed("variance"):
        var_n = _variance(sci_b, sci_rms)
        var_r = _variance(ref_b, ref_rms)

    with timed("psf"):
        psf_n, fine_n, src_n, stars_n = _psf_for(sci_b, cfg.psf, var_n)
        psf_r, _, src_r, stars_r = _psf_for(ref_b, cfg.psf, var_r)
        psf_n, fine_n, src_n = _stand_in(psf_n, fine_n, src_n, psf_r, src_r, "reference")
        psf_r, _, src_r = _stand_in(psf_r, None, src_r, psf_n, src_n, "science")
        sci_b = replace(sci_b, psf=psf_n, psf_fine=fine_n)
        ref_b = replace(ref_b, psf=psf_r)

    gc = cfg.gainmatch

    def matched() -> GainMatch:
        return gain_match(sci_b, ref_b, sci_rms=np.where(bad, sci_rms, np.sqrt(var_n)),
                          ref_rms=np.where(bad, ref_rms, np.sqrt(var_r)),
                          detect_thresh=gc.detect_thresh, match_radius=gc.match_radius,
                          min_snr=gc.min_snr, min_stars=gc.min_stars, clip_sigma=gc.clip_sigma,
                          aperture_radius=gc.aperture_radius,
                          saturation_fraction=gc.saturation_fraction, max_offset=gc.max_offset)

    with timed("gainmatch"):
        gm = matched()

    rc = cfg.registration
    registration = None
    if rc.correct and gm.star_x.size:
        with timed("register"):
            fit = fit_registration(gm.star_x, gm.star_y, gm.star_dx, gm.star_dy, sci.shape)
            if fit is not None and fit.significant(sci.shape, min_shift=rc.min_shift,
                                                   nsigma=rc.nsigma):
                # the same steps for the reference, through the corrected mapping
                registration = fit
                ref_rs = _reference_on_science_grid(sci, ref, cfg, dst_offsets=fit.offsets)
                bad = _common_bad(sci, ref_rs, cfg)
                ref_b, ref_rms = background(ref_rs)
                var_r = _variance(ref_b, ref_rms)
                psf_r, _, src_r, stars_r = _psf_for(ref_b, cfg.psf, var_r)
                psf_r, _, src_r = _stand_in(psf_r, None, src_r, psf_n, src_n, "science")
                ref_b = replace(ref_b, psf=psf_r)
                gm = matched()
    # cosmic rays of either image (a single exposure's reference has them too; a coadd has
    # rejected its frames'), found on the final resampling, as ZOGY will see them; the other
    # image tells them from stars
    cc = cfg.cosmic_rays

    fwhm_n, fwhm_r = fit_psf_fwhm(psf_n), fit_psf_fwhm(psf_r)
    # the reference's PSF in its own pixels: a ray is sharp there, and an undersampled image
    # brought onto a finer grid has stars as sharp as its rays however wide they look now (a
    # reference of 1.4 pixels FWHM at twice the science's scale lost the cores of 80% of its
    # bright stars to L.A.Cosmic)
    jac = local_jacobian(ref.wcs, sci.wcs, tuple((np.asarray(ref.shape) - 1) / 2.0))
    fwhm_r_own = fwhm_r / np.sqrt(abs(np.linalg.det(jac)))

    def cosmic_rays(frame: Frame, var: np.ndarray, fwhm: float, other: Frame,
                    scale: float, own_fwhm: float) -> np.ndarray | None:
        """The frame's cosmic-ray pixels when its PSF (``fwhm`` wide here, ``own_fwhm`` in its
        own pixels) can tell them (None when it cannot, or none is found); ``other`` times
        ``scale`` is the other image in the frame's units."""
        if own_fwhm < cc.min_fwhm:
            return None
        with timed("cosmic_rays"):
            cr = cosmic_ray_mask(frame.data, var, bad, fwhm=fwhm,
                                 other=other.data * np.float32(scale), psf=frame.psf,
                                 sigclip=cc.sigclip,
                                 sigfrac=cc.sigfrac, objlim=cc.objlim, niter=cc.niter)
        return cr if cr.any() else None

    def without(frame: Frame, cr: np.ndarray) -> Frame:
        return replace(frame, mask=frame.bad() | cr,
                       data=np.where(cr, np.float32(np.nan), frame.data))

    cr_n = cosmic_rays(sci_b, var_n, fwhm_n, ref_b, gm.flux_ratio, fwhm_n)
    cr_r = cosmic_rays(ref_b, var_r, fwhm_r, sci_b, 1.0 / gm.flux_ratio, fwhm_r_own)
    ncosmic = ncosmic_ref = 0
    if cr_n is not None:
        sci_b, ncosmic, bad = without(sci_b, cr_n), int(cr_n.sum()), bad | cr_n
    if cr_r is not None:
        ref_b, ncosmic_ref, bad = without(ref_b, cr_r), int(cr_r.sum()), bad | cr_r
    if bc.level_scale > 0:
        with timed("background"):
            sci_b, _ = match_level(sci_b, ref_b, gm.flux_ratio, bad, psf_n, psf_r,
                                   scale=bc.level_scale)
    var_n[bad] = 0.0
    var_r[bad] = 0.0
    pcfg = cfg.psf
    with timed("psf"):
        # after the registration: the cells' reference PSFs come from the final resampling
        cells = (psf_cells(stars_n, stars_r, psf_n, psf_r, sci.shape, cell_size=pcfg.cell_size,
                           stars_per_term=pcfg.cell_stars_per_term, nsigma=pcfg.cell_nsigma,
                           min_variation=pcfg.cell_min_variation)
                 if pcfg.cell_size > 0 else PsfCells(CellGrid.whole(sci.shape), (psf_n,), (psf_r,)))
    grid = cells.grid

    dc = cfg.detect
    if not (np.isfinite(dc.false_alarm_rate) and dc.false_alarm_rate >= 0):
        raise ValueError(f"false_alarm_rate must be >= 0, got {dc.false_alarm_rate!r}")
    if grid.ncells > 1:  # the fine PSF is the whole image's; the cells have their own
        fine_n = None
    zc = cfg.zogy
    with timed("zogy"):
        # Only a fine PSF shifts exactly: a Fourier-shifted undersampled stamp rings, and its
        # side lobes pick up the residual rings of static stars
        phase_psfs = [psf_at_phase(psf_n, fine_n, dx, dy) for dx, dy in HALF_PIXEL_PHASES] \
            if dc.subpixel_phases and fine_n is not None else []
        sigma_n = float(np.median(sci_rms[~bad]))
        sigma_r = float(np.median(ref_rms[~bad]))
        N = np.where(bad, 0.0, sci_b.data).astype(np.float32)
        R = np.where(bad, 0.0, ref_b.data).astype(np.float32)
        # Fn = 1 keeps D in science units; the reference's zero point relative to it is 1/ratio
        sx, sy = (gm.reg_sigma_x, gm.reg_sigma_y) if zc.astrometric_noise else (0.0, 0.0)
        flux_noise = zc.flux_noise
        sampled = min(fwhm_n, fwhm_r) >= zc.flux_noise_min_fwhm
        if zc.flux_noise_from_stars and sampled and zc.flux_noise > 0 and gm.star_x.size:
            # each star differenced with its own cell's PSFs
            measured = psf_mismatch(N, R, var_n, var_r, cells.psfs_n, cells.psfs_r, gm.star_x,
                                    gm.star_y, gm.flux_ratio, cells=grid)
            if measured is not None:
                flux_noise = min(max(measured, zc.flux_noise_min), zc.flux_noise_max)
        cz = zogy_cells(N, R, grid, cells.psfs_n, cells.psfs_r, sigma_n=sigma_n,
                        sigma_r=sigma_r, Fn=1.0, Fr=1.0 / gm.flux_ratio, var_n=var_n,
                        var_r=var_r, sigma_x=sx, sigma_y=sy, flux_noise=flux_noise,
                        kappa3_n=_third_cumulant(sci, bad), phase_psfs=phase_psfs,
                        pd_size=zc.pd_size, device=zc.device, workers=zc.workers)
        zr = cz.whole
        scale = zr.flux_scale()
        pd_fines = [fine_difference_psf(k.kernel_n, fine_n, zc.pd_size)
                    if fine_n is not None else None for k in cz.cells]
        noises = [DifferenceNoise(kernel_n=k.kernel_n * scale, kernel_r=k.kernel_r * scale,
                                  var_n=var_n, var_r=var_r, image_n=N, image_r=R,
                                  flux_noise=flux_noise) for k in cz.cells]
        del N, R

        def brightness_at(where: np.ndarray) -> np.ndarray:
            """The brighter of science and scaled reference at the ``where`` pixels."""
            return np.fmax(np.nan_to_num(sci_b.data[where]),
                           np.nan_to_num(ref_b.data[where] * gm.flux_ratio))

        # the kernels spread a masked pixel over about a PSF width
        grow = max(cfg.mask_grow, int(np.ceil(max(fwhm_n, fwhm_r))))
        mask = mask_bright_halos(bad, brightness_at, grow=grow, sigma=sigma_n,
                                 bright_snr=cfg.bright_mask_snr,
                                 profile=wing_profile(psf_n, psf_r))
        D = (zr.D * np.float32(scale)).astype(np.float32)
        D_unc = (np.sqrt(zr.D_var) * np.float32(scale)).astype(np.float32)
        D[mask] = np.nan
        D_unc[mask] = np.nan
        scorr = zr.Scorr
        # without phases the extremes are Scorr itself: mask each array once
        for image in {id(a): a for a in (scorr, zr.Scorr_hi, zr.Scorr_lo)}.values():
            image[mask] = 0.0

    with timed("detect"):
        diff_fwhm = fit_psf_fwhm(zr.Pd)
        streaks = find_streaks(scorr, mask, fwhm=diff_fwhm) if dc.streaks else []
        # a streak's band is not noise: left out of the scatter that sets the threshold
        quiet = ~mask & ~streak_mask(streaks, mask.shape) if streaks else ~mask
        if zr.noise_only is not None:
            quiet &= zr.noise_only
        nquiet = int(quiet.sum())
        scorrstd = _robust_std(scorr[quiet])
        del quiet
        # Too few pixels of noise alone (a crowded field, a small cutout): the variance maps
        # are trusted rather than a scatter that the static sources' terms pull down
        relative = dc.relative and nquiet >= MIN_NOISE_PIXELS
        unit = scorrstd if relative and np.isfinite(scorrstd) and scorrstd > 0 else 1.0
        level = dc.threshold
        fa_level = float("nan")
        if dc.false_alarm_rate > 0:
            # the cell whose D PSF is sharpest has the most noise peaks: its level holds for all
            fa_level = max(false_alarm_threshold(
                gradient_variance(pf.data, pf.factor) if pf is not None
                else gradient_variance(k.Pd), dc.false_alarm_rate)
                for k, pf in zip(cz.cells, pd_fines))
            level = max(level, fa_level)
        # Cornish-Fisher: the quantile of a skewed law at the Gaussian's tail probability.
        # The expansion holds for a slight skew (sky-limited Poisson noise moves the levels
        # by ~0.1 sigma); a larger shift would say more about the estimate than the noise.
        shift = (zr.skew if dc.skew_correction else 0.0) * (level**2 - 1.0) / 6.0
        shift = float(np.clip(shift, -MAX_SKEW_SHIFT, MAX_SKEW_SHIFT))
        thresh = unit * (level + shift)
        thresh_fading = unit * (level - shift)
        cands = detect_candidates(zr.Scorr_hi, D, D_unc, mask=mask, threshold=thresh,
                                  threshold_fading=thresh_fading, scorr_fading=zr.Scorr_lo,
                                  minarea=dc.minarea, both_signs=dc.both_signs, edge=dc.edge,
                                  deblend_nthresh=dc.deblend_nthresh,
                                  deblend_cont=dc.deblend_cont,
                                  centroid_sigma=max(0.5, diff_fwhm / 2.3548))
        scores = np.zeros(len(cands))
        for c, rows in _rows_by_cell(grid, cands["xpeak"], cands["ypeak"]):
            k = cz.cells[c]
            scores[rows] = pixel_scores(D, D_unc, k.Pd, k.kernel_n, k.kernel_r,
                                        cands["xpeak"][rows], cands["ypeak"][rows],
                                        cands["sign"][rows])
        # cosmic rays and hot pixels: one or two bright pixels of one image, not a source
        artifact = scores > dc.pixel_score_max
        cands, scores = cands[~artifact], scores[~artifact]

    pc = cfg.photometry
    nresidual = nstreaked = 0
    with timed("photometry"):
        parts, order = [], []
        for c, rows in _rows_by_cell(grid, cands["x"], cands["y"]):
            parts.append(measure_candidates(D, D_unc, cz.cells[c].Pd, cands[rows], sci.wcs,
                                            mask=mask, fit_shape=pc.fit_shape,
                                            aperture_radii=pc.aperture_radii,
                                            max_shift=pc.max_shift, noise=noises[c],
                                            psf_fine=pd_fines[c]))
            order.append(rows)
        if len(parts) > 1:
            table = vstack(parts)[np.argsort(np.concatenate(order), kind="stable")]
        else:
            table = parts[0] if parts else measure_candidates(
                D, D_unc, zr.Pd, cands, sci.wcs, mask=mask, fit_shape=pc.fit_shape,
                aperture_radii=pc.aperture_radii, max_shift=pc.max_shift)
        table["pixel_score"] = scores.astype(np.float32)
        if len(table):
            # a fit may drift (<= max_shift) onto a masked pixel, or find too few pixels
            # unmasked to fit at all: such candidates are dropped
            iy = np.clip(np.round(np.asarray(table["y"])).astype(int), 0, mask.shape[0] - 1)
            ix = np.clip(np.round(np.asarray(table["x"])).astype(int), 0, mask.shape[1] - 1)
            table = table[~mask[iy, ix] & np.isfinite(np.asarray(table["flux"], dtype=float))]
            table = drop_converged(table)
            table = drop_satellites(table, SATELLITE_FWHMS * diff_fwhm)
        if len(table) and dc.star_residuals and gm.source_x.size:
            # the spots a bright static star's PSF-model error leaves a few PSF widths out
            levels = residual_levels(table, scorr, mask,
                                     (gm.source_x, gm.source_y, gm.source_flux), fwhm=diff_fwhm,
                                     image=sci_b.data, psf=psf_n, psf_fwhm=fwhm_n)
            need = np.where(np.asarray(table["sign"]) > 0, thresh, thresh_fading) * levels
            residual = np.abs(np.asarray(table["scorr_peak"], dtype=float)) < need
            table, nresidual = table[~residual], int(residual.sum())
        if len(table) and streaks:
            # a satellite's or an aircraft's trail, and the ringing about it, are not sources
            streaked = on_streaks(streaks, table["x"], table["y"])
            table, nstreaked = table[~streaked], int(streaked.sum())

    with timed("apcorr"):
        # positive candidates are sources of N, fading ones of R: each image's own correction,
        # where its PSF was estimated
        apcorr: dict[int, ApertureCorrection | None] = {1: None, -1: None}
        if gm.method == "stars" and pc.aperture_correction:
            def fit_fluxes(img, unc, pd, rows, fine):
                return measure_candidates(img, unc, pd, rows, fit_shape=pc.fit_shape,
                                          aperture_radii=(), max_shift=pc.max_shift,
                                          psf_fine=fine)

            # a file's PSF sets the flux scale, unless the fits interpolate it between pixel
            # centres where it is undersampled, which biases them alike for every source
            interpolated = (pd_fines[0] is None
                            and diff_fwhm < pc.aperture_correction_below_fwhm)
            for s, source, image, var, psfs, kernels, units in (
                    (1, src_n, sci_b.data, var_n, cells.psfs_n,
                     [k.kernel_n for k in cz.cells], 1.0),
                    (-1, src_r, ref_b.data, var_r, cells.psfs_r,
                     [k.kernel_r for k in cz.cells], gm.flux_ratio)):
                if source == "frame" and not interpolated:
                    continue
                apcorr[s] = _aperture_correction(
                    image, var, bad, gm, grid, psfs,
                    [k * scale for k in kernels], [k.Pd for k in cz.cells], pd_fines,
                    fit_fluxes, units=units, min_stars=pc.aperture_correction_min_stars)
        for s, ac in apcorr.items():
            # without a measured correction, the one the models give: the fit holds the light
            # within the difference PSF's stamp (a broad PSF's wings beyond 25 pixels left its
            # fluxes 1-2% low on cutouts too small for the measured one)
            factor = ac.factor if ac is not None else zr.pd_inside
            if len(table):
                rows = np.asarray(table["sign"]) == s
                table["flux"][rows] /= factor
                table["flux_err"][rows] /= factor

    npos = int(np.sum(table["sign"] > 0)) if len(table) else 0
    reg_dx = reg_dy = reg_max = 0.0
    if registration is not None:
        cy, cx = (np.asarray(sci.shape) - 1) / 2.0
        reg_dx, reg_dy = (float(v) for v in registration.offsets(cx, cy))
        reg_max = registration.largest(sci.shape)
    meta = {
        "scalefacref": gm.flux_ratio, "scalefacref_err": gm.flux_ratio_err,
        "gainmatch_method": gm.method, "dxrmsfin": gm.dx_rms, "dyrmsfin": gm.dy_rms,
        "reg_sigma_x": gm.reg_sigma_x, "reg_sigma_y": gm.reg_sigma_y,
        "dxmedianfin": gm.dx_median, "dymedianfin": gm.dy_median, "nmatched": gm.nmatched,
        "scorrstd": scorrstd, "ncandidates": len(table), "npositive": npos,
        "nnegative": len(table) - npos, "fd": zr.Fd, "sci_bkg_rms": sigma_n,
        "ref_bkg_rms": sigma_r, "sci_fwhm": fwhm_n, "ref_fwhm": fwhm_r,
        "ref_fwhm_own": fwhm_r_own, "diff_fwhm": diff_fwhm, "sci_psf_source": src_n,
        "ref_psf_source": src_r,
        "nmasked": int(mask.sum()), "scorr_noise_pixels": nquiet,
        "detect_threshold": float(thresh),
        "detect_threshold_fading": float(thresh_fading), "scorr_skew": zr.skew,
        "false_alarm_threshold": fa_level, "nartifacts": int(artifact.sum()),
        "ncosmic": ncosmic, "ncosmic_ref": ncosmic_ref, "nresidual": nresidual,
        "nstreaks": len(streaks), "nstreaked": nstreaked,
        "flux_noise": flux_noise, "psf_cells": grid.ncells, "psf_variation_sci": cells.variation_n,
        "psf_variation_ref": cells.variation_r,
        "register_dx": reg_dx, "register_dy": reg_dy, "register_max": reg_max,
        "register_nstars": registration.nstars if registration is not None else 0,
        "apcorr_sci": apcorr[1].factor if apcorr[1] else float("nan"),
        "apcorr_sci_err": apcorr[1].error if apcorr[1] else float("nan"),
        "apcorr_ref": apcorr[-1].factor if apcorr[-1] else float("nan"),
        "apcorr_ref_err": apcorr[-1].error if apcorr[-1] else float("nan"),
        "pd_inside": zr.pd_inside,
    }
    diff = Frame(data=D, wcs=sci.wcs, psf=zr.Pd, unc=D_unc, mask=mask,
                 psf_fine=pd_fines[grid.central()],
                 meta={k: sci.meta[k] for k in ("filter", "mjdobs", "zptmag") if k in sci.meta})
    return DifferenceResult(diff=diff, scorr=scorr, ref_resampled=ref_rs, candidates=table,
                            meta=meta, timings=timings, gain=gm, cells=grid,
                            cell_psfs=tuple(k.Pd for k in cz.cells))
