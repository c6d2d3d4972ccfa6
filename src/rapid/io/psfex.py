"""PSFEx PSF models (``*.psf``): the PSF at the centre of the stars they were fitted to.

PSFEx writes its model as a binary table (EXTNAME PSF_DATA) with one column, PSF_MASK, holding
one image per term of a polynomial in the image coordinates (``(x - POLZERO1) / POLSCAL1``
and likewise in y, terms of x^i y^j with i + j <= POLDEG1, y's power in the outer loop). The
images sample the pixel-convolved PSF every PSF_SAMP pixels (usually finer than the pixels
for a sharp PSF), centred on sample ``n // 2`` of each axis.

At POLZERO, the mean position of the stars the model was fitted to, every term but the
constant one vanishes, so that term is the PSF read here: the image's typical PSF, as one PSF
file gives it. Its finer sampling becomes a :class:`rapid.science.image.FinePsf` of the next
whole factor, interpolated by a cubic spline where PSF_SAMP is not one over a whole number.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from scipy import ndimage

from rapid.science.fine_psf import native_from_fine
from rapid.science.image import FinePsf

PSFEX_COLUMN = "PSF_MASK"

# 1 / PSF_SAMP within this of a whole number is that number (PSFEx writes PSF_SAMP to ~7
# significant digits)
_WHOLE = 1e-4


def psfex_table(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    """The file's PSFEx model table, or None when it has none."""
    for hdu in hdul:
        if isinstance(hdu, fits.BinTableHDU) and PSFEX_COLUMN in hdu.columns.names:
            return hdu
    return None


def _sample_at(model: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The model read at ``offsets`` (in samples) from its centre along each axis, by a cubic
    spline; 0 beyond its edge."""
    cy, cx = (n // 2 for n in model.shape)
    yy, xx = np.meshgrid(cy + offsets, cx + offsets, indexing="ij")
    return ndimage.map_coordinates(model, [yy, xx], order=3, mode="constant", cval=0.0)


def psfex_psfs(table: fits.BinTableHDU, where: str) -> tuple[np.ndarray, FinePsf | None]:
    """The native stamp (odd, summing to 1) and, for a model sampled finer than the pixels,
    the fine PSF, of a PSFEx model at the stars' mean position.

    Raises
    ------
    ValueError
        Naming ``where`` and the problem: no model, a bad sampling step, an empty PSF.
    """
    masks = np.asarray(table.data[PSFEX_COLUMN], dtype=np.float64)
    if masks.ndim == 4:  # one row, as PSFEx writes it
        masks = masks[0]
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or min(masks.shape[1:]) < 3:
        raise ValueError(f"PSF file {where}: PSFEx PSF_MASK of shape {masks.shape} holds no "
                         "PSF images")
    model = np.where(np.isfinite(masks[0]), masks[0], 0.0)
    if not model.sum() > 0:
        raise ValueError(f"PSF file {where}: PSFEx model has no light")
    step = float(table.header.get("PSF_SAMP", 1.0))  # pixels per sample
    if not 0.05 <= step <= 20:
        raise ValueError(f"PSF file {where}: PSF_SAMP {step} is not a sampling step")
    # samples within the model's extent along the shorter axis, in pixels
    reach = (min(model.shape) // 2) * step
    half = max(1, int(reach))
    per_pixel = 1.0 / step
    factor = int(round(per_pixel)) if abs(per_pixel - round(per_pixel)) < _WHOLE \
        else int(np.ceil(per_pixel))
    if factor < 2:  # sampled at the pixels or coarser
        native = _sample_at(model, np.arange(-half, half + 1) / step)
        return native / native.sum(), None
    fine_half = int(reach * factor)
    fine = FinePsf.normalised(
        _sample_at(model, np.arange(-fine_half, fine_half + 1) / (factor * step)), factor)
    return native_from_fine(fine, (2 * half + 1, 2 * half + 1)), fine
