"""``simulate_survey``: a Roman-like synthetic survey of L2 images, PSF files and truth."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field as _field
from pathlib import Path

import galsim
import galsim.roman as roman
import numpy as np

from rapid.sim import files, photometry, pointing, scene
from rapid.sim.exposure_image import simulate_image
from rapid.sim.field_objects import place_field_objects
from rapid.sim.psf import PIXEL_SCALE, build_psf, psf_filename, write_psf

FULL = roman.n_pix  # 4088 science pixels per side


@dataclass
class SurveySummary:
    """What ``simulate_survey`` wrote."""

    out_dir: Path
    images: list[Path] = _field(default_factory=list)
    psfs: list[Path] = _field(default_factory=list)
    truth: Path | None = None
    survey_json: Path | None = None
    fields: list[int] = _field(default_factory=list)
    n_exposures: int = 0
    n_images: int = 0
    n_transients: int = 0
    n_variables: int = 0
    n_truth_rows: int = 0


def _parse_start(start) -> _dt.datetime:
    if isinstance(start, _dt.datetime):
        when = start
    else:
        try:
            when = _dt.datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"start must be an ISO 8601 time, got {start!r}") from exc
    if when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return when


def _validate(fields, filters, epochs, scas, size, cadence_days, exptime, quiet_epochs):
    if int(fields) < 1:
        raise ValueError(f"fields must be >= 1, got {fields!r}")
    if not filters:
        raise ValueError("filters must name at least one filter")
    for f in filters:
        photometry.check_filter(f)
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs!r}")
    if not scas or any(int(s) != s or not 1 <= s <= 18 for s in scas):
        raise ValueError(f"scas must be SCA numbers 1..18, got {scas!r}")
    if not 16 <= int(size) <= FULL:
        raise ValueError(f"size must be within 16..{FULL}, got {size!r}")
    if cadence_days <= 0:
        raise ValueError(f"cadence_days must be positive, got {cadence_days!r}")
    if exptime <= 0:
        raise ValueError(f"exptime must be positive, got {exptime!r}")
    if quiet_epochs < 0:
        raise ValueError(f"quiet_epochs must be >= 0, got {quiet_epochs!r}")


def simulate_survey(out_dir, *, fields: int = 2, filters=("H158",), epochs: int = 6,
                    scas=(1,), size: int = FULL, seed: int = 1, ra: float = 9.6,
                    dec: float = -44.0, start="2028-09-07T00:00:00", cadence_days: float = 5.0,
                    transients_per_image: int = 10, variables_per_image: int = 3,
                    saturated_stars_per_image: int = 2, stars_per_sca: float = 2000.0,
                    galaxies_per_sca: float = 1000.0, quiet_epochs: int = 3,
                    peak_snr: tuple[float, float] = (60.0, 4.0),
                    exptime: float = roman.exptime, read_noise: float = 8.5, gain: float = 1.0,
                    saturation: float = 1.0e5, dither_fraction: float = 0.03,
                    roll_step_deg: tuple[float, float] = (3.0, 20.0), psf_size: int = 25,
                    psf_oversamp: int = 4, cosmic_rays_per_sca: float = 200.0,
                    hot_pixels_per_sca: float = 100.0, nan_pixels_per_sca: float = 50.0
                    ) -> SurveySummary:
    """Write a synthetic Roman survey: L2 images, PSF files, truth table and survey.json.

    Parameters
    ----------
    out_dir : str or Path
        Output directory (created).
    fields : int, optional
        Number of sky tiles: the tile holding (ra, dec) and its ring neighbours. Default 2.
    filters : tuple of str, optional
        Roman filters. Default ('H158',).
    epochs : int, optional
        Visits per field, ``cadence_days`` apart. Default 6.
    scas : tuple of int, optional
        SCAs written per exposure; the first one's image centre is aimed at the tile centre
        (plus dither), the others fall where the focal plane puts them. Default (1,).
    size : int, optional
        Side of the central cutout of each SCA, pixels (4088 = full SCA). Default 4088.
    seed : int, optional
        Seed of everything random. Default 1.
    ra, dec : float, optional
        Where the survey is, degrees. Default (9.6, -44.0).
    start : str or datetime, optional
        DATE-OBS of the first exposure, UTC. Default '2028-09-07T00:00:00'.
    cadence_days : float, optional
        Days between epochs. Default 5.
    transients_per_image : int, optional
        Transients per field, inside the footprint common to all its epochs. Default 10.
    variables_per_image : int, optional
        Sinusoidal variable stars per field. Default 3.
    saturated_stars_per_image : int, optional
        Bright (saturating) stars per field. Default 2.
    stars_per_sca, galaxies_per_sca : float, optional
        Static source densities, per full SCA area. Defaults 2000 and 1000.
    quiet_epochs : int, optional
        Leading epochs in which no transient has started. Default 3.
    peak_snr : tuple of float, optional
        Expected peak S/N of the brightest and faintest transient of a field (first filter);
        the others are spaced geometrically between. Default (60, 4).
    exptime : float, optional
        Exposure time, seconds. Default ``galsim.roman.exptime`` (139.8).
    read_noise : float, optional
        Electrons. Default 8.5.
    gain : float, optional
        Electrons per DN. Default 1.0.
    saturation : float, optional
        Saturation level, DN. Default 1e5.
    dither_fraction : float, optional
        Dither radius as a fraction of ``size``. Default 0.03.
    roll_step_deg : tuple of float, optional
        Range of the random roll change between consecutive epochs, degrees. Default (3, 20).
    psf_size : int, optional
        Odd side of the native PSF stamp. Default 25.
    psf_oversamp : int, optional
        Oversampling of the PSF file's HDU 'OVERSAMP'. Default 4.
    cosmic_rays_per_sca, hot_pixels_per_sca, nan_pixels_per_sca : float, optional
        Artefacts per full SCA, scaled by area (at least 2 of each per image). Defaults
        200, 100, 50.

    Returns
    -------
    SurveySummary
        Paths written and counts.

    Notes
    -----
    Layout: ``images/<FILTER>/Roman_sim_<FILTER>_<expid:05d>_<sca:02d>.fits`` (expid counts
    exposures, one per (field, epoch, filter), in time order), ``psfs/<FILTER>/
    Roman_sim_psf_<FILTER>_<sca:02d>.fits``, ``truth.parquet`` and ``survey.json``.
    DATE-OBS follows ``start`` and the cadence; GalSim's WCS is computed for the nearest day on
    which Roman may observe the target (header WCSDATE), with the roll given explicitly, so
    the geometry does not depend on that date. The sky level comes from
    ``galsim.roman.getSkyLevel`` on that day plus the thermal background. Point sources use
    the PSF truncated to the ``psf_size`` stamp, so their image fluxes equal the truth fluxes
    that a fit with the PSF file recovers. Static stars and galaxies are kept 2 arcsec away
    from transients and variables (no host galaxies are modelled).
    """
    filters = tuple(filters)
    scas = tuple(int(s) for s in scas)
    _validate(fields, filters, epochs, scas, size, cadence_days, exptime, quiet_epochs)
    if psf_size < 3 or psf_size % 2 == 0:
        raise ValueError(f"psf_size must be odd and >= 3, got {psf_size!r}")
    out = Path(out_dir)
    t_start = _parse_start(start)
    field_ids = pointing.choose_fields(ra, dec, int(fields))
    dither_arcsec = dither_fraction * size * PIXEL_SCALE
    exposures = pointing.plan_exposures(
        field_ids, filters, int(epochs), start=t_start, cadence_days=cadence_days,
        dither_arcsec=dither_arcsec, roll_step_deg=tuple(roll_step_deg), seed=seed)

    summary = SurveySummary(out_dir=out, fields=field_ids, n_exposures=len(exposures))
    psfs = {}
    for sca in scas:
        for filt in filters:
            psfs[(sca, filt)] = build_psf(sca, filt, size=psf_size, oversamp=psf_oversamp)
            path = out / "psfs" / filt / psf_filename(filt, sca)
            write_psf(path, psfs[(sca, filt)], filter_name=filt, sca=sca)
            summary.psfs.append(path)

    # Geometry: the pointing is shared by the filters of one (field, epoch).
    offset = (FULL - size) // 2
    aim = (offset + (size + 1) / 2.0, offset + (size + 1) / 2.0)
    wcs_cache = {}
    for exp in exposures:
        for sca in scas:
            key = (exp.field_index, exp.epoch, sca)
            if key not in wcs_cache:
                wcs_cache[key] = pointing.sca_wcs(
                    exp.target_ra, exp.target_dec, sca=sca, pa_fpa_deg=exp.pa_fpa_deg,
                    wcs_date=exp.wcs_date, aim_sca=scas[0], aim_pixel=aim)

    varying, bright = place_field_objects(field_ids, exposures, filters, scas, psfs, size=size,
                                     dither_arcsec=dither_arcsec, seed=seed, exptime=exptime,
                                     read_noise=read_noise, n_transients=transients_per_image,
                                     n_variables=variables_per_image,
                                     n_bright=saturated_stars_per_image,
                                     quiet_epochs=quiet_epochs, peak_snr=peak_snr)
    summary.n_transients = sum(v.kind == "transient" for v in varying)
    summary.n_variables = sum(v.kind == "variable" for v in varying)

    # One static sky for the whole survey, wide enough for every image.
    ra0, dec0 = pointing.field_center(field_ids[0])
    half_diag = size * PIXEL_SCALE * np.sqrt(2) / 2 * 1.05 + 5.0
    radius = 0.0
    for wcs in wcs_cache.values():
        c = wcs.toWorld(galsim.PositionD(*aim))
        xi, eta = scene.project(ra0, dec0, c.ra.deg, c.dec.deg)
        radius = max(radius, float(np.hypot(xi, eta)) + half_diag)
    static = scene.make_static_catalog(
        ra0, dec0, radius, stars_per_sca=stars_per_sca, galaxies_per_sca=galaxies_per_sca,
        seed=seed, avoid=[(v.ra, v.dec, 2.0) for v in varying])

    truth_rows = []
    npix_frac = size * size / float(FULL * FULL)
    for exp in exposures:
        for sca in scas:
            wcs = wcs_cache[(exp.field_index, exp.epoch, sca)]
            name = files.image_filename(exp.filter, exp.expid, sca)
            rows = simulate_image(
                out / "images" / exp.filter / name, exp, sca, wcs, psfs[(sca, exp.filter)],
                static, bright, varying, size=size, offset=offset, seed=seed, exptime=exptime,
                read_noise=read_noise, gain=gain, saturation=saturation,
                artefacts=tuple(max(2, int(round(r * npix_frac))) for r in
                                (cosmic_rays_per_sca, hot_pixels_per_sca, nan_pixels_per_sca)))
            truth_rows.extend(rows)
            summary.images.append(out / "images" / exp.filter / name)
    summary.n_images = len(summary.images)
    summary.truth = out / "truth.parquet"
    files.write_truth(summary.truth, truth_rows)
    summary.n_truth_rows = len(truth_rows)
    summary.survey_json = out / "survey.json"
    arguments = dict(fields=int(fields), filters=list(filters), epochs=int(epochs), scas=list(scas),
                     size=int(size), seed=int(seed), ra=ra, dec=dec, start=t_start.isoformat(),
                     cadence_days=cadence_days, transients_per_image=transients_per_image,
                     variables_per_image=variables_per_image,
                     saturated_stars_per_image=saturated_stars_per_image,
                     stars_per_sca=stars_per_sca, galaxies_per_sca=galaxies_per_sca,
                     quiet_epochs=quiet_epochs, peak_snr=list(peak_snr), exptime=exptime,
                     read_noise=read_noise, gain=gain, saturation=saturation,
                     dither_fraction=dither_fraction, roll_step_deg=list(roll_step_deg),
                     psf_size=psf_size, psf_oversamp=psf_oversamp,
                     cosmic_rays_per_sca=cosmic_rays_per_sca,
                     hot_pixels_per_sca=hot_pixels_per_sca,
                     nan_pixels_per_sca=nan_pixels_per_sca)
    counts = {k: v for k, v in asdict(summary).items() if k.startswith("n_")}
    files.write_json(summary.survey_json, {
        "arguments": arguments, "counts": counts, "fields": field_ids,
        "images": [str(p.relative_to(out)) for p in summary.images],
        "psfs": [str(p.relative_to(out)) for p in summary.psfs], "truth": "truth.parquet"})
    return summary

