"""Read an image of any supported kind into a :class:`Frame`, choosing the reader by suffix."""

from __future__ import annotations

import os
import re
from pathlib import Path

from rapid.science.image import Frame

FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts", ".fits.fz")
ASDF_SUFFIXES = (".asdf",)

# cfitsio's extension suffix: image.fits[1], image.fits[SCI], image.fits[SCI,2]
_EXTENSION = re.compile(r"^(?P<file>.+)\[(?P<ext>[^\[\]]+)\]$")

HduSpec = int | str | tuple[str, int]


def split_extension(path: str | os.PathLike) -> tuple[Path, HduSpec | None]:
    """A path with cfitsio's extension suffix split into the file and the HDU it names.

    ``image.fits[2]`` names HDU 2 (0 is the primary), ``image.fits[SCI]`` the HDU of that
    EXTNAME and ``image.fits[SCI,2]`` the one with EXTNAME SCI and EXTVER 2: the way one CCD
    of a multi-extension file is chosen. A path that names an existing file is taken as it
    is, brackets and all, and has no HDU.
    """
    path = Path(path)
    match = _EXTENSION.match(str(path))
    if match is None or path.is_file():
        return path, None
    ext = match["ext"].strip()
    name, _, version = (part.strip() for part in ext.partition(","))
    if version:
        if not version.isdigit():
            raise ValueError(f"{path}: extension version {version!r} is not a whole number")
        return Path(match["file"]), (name, int(version))
    return Path(match["file"]), int(ext) if ext.isdigit() else ext


def read_frame(path: str | os.PathLike, **kwargs) -> Frame:
    """Read an image: ``*.asdf`` as a Roman L2 ImageModel, anything else as FITS.

    Parameters
    ----------
    path : str or path-like
        The image file; a FITS file may name its image's HDU as ``file.fits[1]``,
        ``file.fits[SCI]`` or ``file.fits[SCI,2]`` (:func:`split_extension`).
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
    file, hdu = split_extension(path)
    if hdu is not None and is_asdf(file):
        raise ValueError(f"{file}: an ASDF file has no extensions to choose ([{hdu}])")
    if is_asdf(path):
        from rapid.io.asdf_frame import read_asdf_frame

        return read_asdf_frame(path, **kwargs)
    from rapid.io.fits_frame import read_fits_frame

    return read_fits_frame(path, **kwargs)


def is_asdf(path: str | os.PathLike) -> bool:
    """True for a file name ending in ``.asdf`` (any case)."""
    return Path(path).name.lower().endswith(ASDF_SUFFIXES)
