"""Reading and writing images: FITS frames from any telescope, Roman L2 ASDF, float32 products."""

from rapid.io.fits_frame import read_fits_frame, write_fits_image
from rapid.io.frame import read_frame


def read_asdf_frame(path, **kwargs):
    """Read a Roman L2 ASDF image; see :func:`rapid.io.asdf_frame.read_asdf_frame`."""
    from rapid.io.asdf_frame import read_asdf_frame as _read

    return _read(path, **kwargs)


__all__ = ["read_asdf_frame", "read_fits_frame", "read_frame", "write_fits_image"]
