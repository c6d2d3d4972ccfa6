"""The in-memory image that every science step takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.wcs import WCS


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
