"""Read an image of any supported kind into a :class:`Frame`, choosing the reader by suffix."""

from __future__ import annotations

import os
from pathlib import Path

from rapid.science.image import Frame

FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts", ".fits.fz")
ASDF_SUFFIXES = (".asdf",)


def read_frame(path: str | os.PathLike, **kwargs) -> Frame:
    """Read an image: ``*.asdf`` as a Roman L2 ImageModel, anything else as FITS.

    Parameters
    ----------
    path : str or path-like
        The image file.
    **kwargs
        Passed to :func:`rapid.io.asdf_frame.read_asdf_frame` (``per_second``, ``psf_path``,
        ``dq_ignore``, ``max_sip_error``) or :func:`rapid.io.fits_frame.read_fits_frame`
        (``per_second``, ``psf_path``, ``unc_path``, ``hdu``). Note the ``per_second`` defaults
        differ: L2 ASDF data are DN/s already (True), FITS reads in DN unless asked (False).

    Returns
    -------
    Frame

    Raises
    ------
    ValueError
        From the reader, naming the file and the problem.
    """
    if is_asdf(path):
        from rapid.io.asdf_frame import read_asdf_frame

        return read_asdf_frame(path, **kwargs)
    from rapid.io.fits_frame import read_fits_frame

    return read_fits_frame(path, **kwargs)


def is_asdf(path: str | os.PathLike) -> bool:
    """True for a file name ending in ``.asdf`` (any case)."""
    return Path(path).name.lower().endswith(ASDF_SUFFIXES)
