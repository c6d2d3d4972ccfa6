"""Reading and writing images: FITS frames from any telescope, float32 products with WCS."""

from rapid.io.fits_frame import read_fits_frame, write_fits_image

__all__ = ["read_fits_frame", "write_fits_image"]
