"""Difference two FITS images from any telescope and write the products (``rapid diff``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rapid.io.frame import is_asdf, read_frame
from rapid.science.config import DifferenceConfig
from rapid.science.difference import DifferenceResult, difference_images
from rapid.science.image import Frame

PRODUCT_NAMES = ("diff.fits", "diff_unc.fits", "scorr.fits", "diff_psf.fits",
                 "candidates.parquet")


def _scalar_meta(meta: dict) -> dict:
    """FITS keywords (HIERARCH for long names, scalars only) from a meta dict."""
    out = {}
    for key, value in meta.items():
        if isinstance(value, (bool, int, float, str, np.integer, np.floating)):
            if isinstance(value, (float, np.floating)) and not np.isfinite(value):
                continue
            name = key.upper() if len(key) <= 8 else f"HIERARCH {key.upper()}"
            out[name] = value.item() if hasattr(value, "item") else value
    return out


def _read(path, psf_path, unc_path) -> Frame:
    """A FITS image as stored, or a Roman L2 ASDF image in DN/s."""
    if is_asdf(path):
        if unc_path is not None:
            raise ValueError(f"{path}: a Roman L2 ASDF image carries its own uncertainty "
                             "('err'); an uncertainty file applies to FITS images only")
        return read_frame(path, psf_path=psf_path)
    return read_frame(path, psf_path=psf_path, unc_path=unc_path)


def run_diff(
    sci_path: str | os.PathLike, ref_path: str | os.PathLike, out_dir: str | os.PathLike, *,
    sci_psf: str | os.PathLike | None = None, ref_psf: str | os.PathLike | None = None,
    sci_unc: str | os.PathLike | None = None, ref_unc: str | os.PathLike | None = None,
    config: DifferenceConfig | None = None,
) -> DifferenceResult:
    """Run the difference-imaging steps on two images and write the products.

    Both images are read in their own units (FITS as stored, Roman L2 ASDF in DN/s); the gain
    match scales the reference to the science image, so fluxes come out in science-image units.

    Parameters
    ----------
    sci_path, ref_path : str or path-like
        Science and reference images: FITS with a celestial WCS, or Roman L2 ASDF
        (``*.asdf``, whose GWCS is approximated by TAN-SIP and whose ``err`` and ``dq`` give
        the uncertainty and the bad pixels).
    out_dir : str or path-like
        Output directory (created). Receives diff.fits (D, science units), diff_unc.fits,
        scorr.fits, diff_psf.fits (Pd, with its finer sampling in HDU 'OVERSAMP' when the
        science PSF had one, and each cell's Pd in HDU 'CELLS' when the PSF varies across
        the image) and candidates.parquet (x, y zero-based science
        pixels, ra, dec, flux, flux_err >= 0 in science units, snr, sign +1 brightening /
        -1 fading, and the other columns of the candidate table).
    sci_psf, ref_psf : str or path-like, optional
        PSF stamp files; else PSFFILE keywords, else estimated from stars.
    sci_unc, ref_unc : str or path-like, optional
        Uncertainty images of FITS inputs; else ERR (or VARIANCE) extensions, else from the
        background noise.
    config : DifferenceConfig, optional
        Step settings.

    Returns
    -------
    DifferenceResult
    """
    from rapid.io.fits_frame import psf_fits_bytes, write_fits_image

    out = Path(out_dir)
    if out.exists() and not out.is_dir():  # said before the images are read
        raise ValueError(f"{out}: cannot make the output folder (a file is there)")
    sci = _read(sci_path, sci_psf, sci_unc)
    ref = _read(ref_path, ref_psf, ref_unc)
    try:  # only once both inputs are good: a refused run leaves nothing behind
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{out}: cannot make the output folder ({exc.strerror or exc})") from exc
    result = difference_images(sci, ref, config=config)
    keys = _scalar_meta(result.meta)
    write_fits_image(out / "diff.fits", result.diff.data, sci.wcs,
                     header_extra={**keys, "BUNIT": sci.meta.get("units", "")})
    write_fits_image(out / "diff_unc.fits", result.diff.unc, sci.wcs)
    write_fits_image(out / "scorr.fits", result.scorr, sci.wcs)
    (out / "diff_psf.fits").write_bytes(psf_fits_bytes(result.diff.psf, result.diff.psf_fine,
                                                       cells=result.psf_cells_product()))
    table = result.candidates.copy()
    table.meta = {}
    table.write(out / "candidates.parquet", format="parquet", overwrite=True)
    return result
