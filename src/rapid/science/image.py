"""The in-memory image that every science step takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.wcs import WCS


@dataclass(frozen=True)
class FinePsf:
    """A PSF sampled ``factor`` times finer than the image pixels.

    A PSF sampled only at pixel centres cannot be shifted exactly when it is undersampled
    (as Roman's are in the bluer filters): interpolating those samples to a source's sub-pixel
    position misplaces flux and biases PSF-fit fluxes by up to ~1%. A finely sampled PSF of the
    pixel-convolved profile has no such error.

    Attributes
    ----------
    data : ndarray
        2-D stamp centred on its central point (``(n - 1) / 2``; odd sizes put a sample
        there), normalised so that its samples sum to ``factor**2``: sampled at native
        pixel steps it then sums to 1, which is the flux convention of
        :class:`photutils.psf.ImagePSF`.
    factor : int
        Samples per image pixel along each axis, >= 2.
    """

    data: np.ndarray
    factor: int

    def __post_init__(self) -> None:
        if self.data.ndim != 2:
            raise ValueError(f"fine PSF must be 2-D, got shape {self.data.shape}")
        if int(self.factor) != self.factor or self.factor < 2:
            raise ValueError(f"fine PSF factor must be an integer >= 2, got {self.factor!r}")

    @classmethod
    def normalised(cls, data: np.ndarray, factor: int) -> FinePsf:
        """A FinePsf from any positive-sum stamp, scaled to the flux convention above."""
        data = np.where(np.isfinite(data), np.asarray(data, dtype=np.float64), 0.0)
        total = data.sum()
        if not total > 0:
            raise ValueError("fine PSF does not have a positive sum")
        return cls(data=data * (factor * factor / total), factor=int(factor))


@dataclass
class Frame:
    """One image on its own pixel grid, in units of DN/s.

    Attributes
    ----------
    data : ndarray
        2-D float32 image in DN/s (L2 DN divided by exposure time). Bad pixels are NaN.
    wcs : astropy.wcs.WCS
        Celestial WCS of ``data`` (may carry SIP distortion).
    psf : ndarray or None
        PSF at native pixel sampling, odd-sized, centred on the central pixel, summing to 1.
        None when unknown (the steps then estimate it from isolated stars).
    psf_fine : FinePsf or None
        The same PSF sampled finer than the pixels, when the PSF file has it; used for the
        difference image's PSF, whose fits then need no interpolation of an undersampled PSF.
    unc : ndarray or None
        1-sigma uncertainty of ``data`` per pixel, same units. None when unknown (the steps
        then estimate it from the background noise and the source counts).
    mask : ndarray or None
        Boolean, True where a pixel must not be used (data-quality flags, saturation).
    meta : dict
        Free-form facts about the image: ``filter``, ``mjdobs``, ``exptime``, ``zptmag``,
        ``gain``, ``saturation`` (DN/s) and whatever the reader found.
    """

    data: np.ndarray
    wcs: WCS
    psf: np.ndarray | None = None
    unc: np.ndarray | None = None
    mask: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    psf_fine: FinePsf | None = None

    def __post_init__(self) -> None:
        if self.data.ndim != 2:
            raise ValueError(f"data must be a 2-D image, got shape {self.data.shape}")
        for name in ("unc", "mask"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != self.data.shape:
                raise ValueError(f"{name} has shape {arr.shape}, data has {self.data.shape}")
        if self.psf is not None:
            if self.psf.ndim != 2 or self.psf.shape[0] % 2 == 0 or self.psf.shape[1] % 2 == 0:
                raise ValueError(f"psf must be a 2-D odd-sized stamp, got shape {self.psf.shape}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape  # type: ignore[return-value]

    def bad(self) -> np.ndarray:
        """Boolean map of pixels not to be used: the mask or non-finite data."""
        bad = ~np.isfinite(self.data)
        if self.mask is not None:
            bad |= self.mask
        return bad
