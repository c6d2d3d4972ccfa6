"""Read any FITS image with a celestial WCS into a :class:`Frame`; write float32 products.

Besides generic images, the reader understands RAPID's L2 layout: HDU 1 named 'SCI' in DN with
EXPTIME, 'ERR' (1-sigma uncertainty) and 'DQ' (nonzero = bad) extensions, a PSFFILE keyword
naming a PSF file in the same directory (native sampling, any side: an even-sided stamp is
centred as :func:`read_psfs` says; an extension with OVERSAMP >= 2 gives the same PSF sampled
finer) and SATURATE (DN).

Zero point convention: ZPTMAG in the header is taken to be the zero point of the image in DN/s
(RAPID's convention). When the frame is read per second it is kept; when the data stay in DN it
becomes ZPTMAG + 2.5 log10(EXPTIME), so that ``zptmag - 2.5 log10(flux)`` gives the same
magnitude either way. BUNIT says what the pixels are (:mod:`rapid.io.units`; none is DN): only
counts per exposure are divided by EXPTIME; a rate (DN/s, electrons/s) or a calibrated unit
(MJy/sr) is read as it is, with ZPTMAG as given. In electrons, the gain is 1.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from rapid.io.celestial import in_icrs
from rapid.io.frame import HduSpec, split_extension
from rapid.io.obstime import observation_mjd
from rapid.io.psfex import psfex_psfs, psfex_table
from rapid.io.units import count_unit
from rapid.science.badpixels import plateau_mask
from rapid.science.image import FinePsf, Frame

# Extensions read as per-pixel variance when there is no ERR (1-sigma) extension
VARIANCE_EXTENSIONS = ("VARIANCE", "VAR")


def _wcs_of(header: fits.Header) -> WCS | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            w = WCS(header, relax=True)
        except Exception:
            return None
    if not w.has_celestial or w.naxis < 2:
        return None
    cel = w.celestial if w.naxis > 2 else w
    return cel


def is_image_hdu(hdu) -> bool:
    """A 2-D image (or one with extra axes of length 1), told from the header alone."""
    if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        return False
    header = hdu.header
    dims = [int(header.get(f"NAXIS{i}", 0) or 0) for i in range(1, int(header.get("NAXIS", 0)) + 1)]
    return bool(dims) and min(dims) >= 1 and sum(d > 1 for d in dims) == 2


def find_science_hdu(hdul: fits.HDUList) -> tuple[fits.hdu.base._BaseHDU | None, WCS | None]:
    """The HDU that holds a FITS file's science image, and its celestial WCS.

    The HDU named SCI, else the first 2-D image HDU whose own header has a celestial WCS;
    ``(None, None)`` when no image HDU has one. Decided from the headers alone (no pixels read).
    """
    named = _find(hdul, "SCI")
    for hdu in ([named] if named is not None else []) + list(hdul):
        if is_image_hdu(hdu):
            wcs = _wcs_of(hdu.header)
            if wcs is not None:
                return hdu, wcs
    return None, None


def _image_data(hdu) -> np.ndarray:
    """The HDU's image as native float32, converted in the HDU's own buffer where it can be.

    FITS stores big-endian; swapping the bytes of astropy's freshly read array in place saves a
    full-size copy per image. The HDU's data must not be used again afterwards.
    """
    data = np.squeeze(hdu.data)
    if (data.dtype.kind == "f" and data.dtype.itemsize == 4 and not data.dtype.isnative
            and data.flags.writeable and data.flags.c_contiguous):
        return data.byteswap(inplace=True).view(data.dtype.newbyteorder("="))
    return np.asarray(data, dtype=np.float32)


def _flagged(path: Path, index: int) -> np.ndarray:
    """Where the data-quality HDU ``index`` of ``path`` is not 0, read off its stored integers.

    Unsigned DQ planes are stored as signed integers with BZERO = 2**31; astropy's scaled
    reading makes a widened copy of the plane first, at several times the cost of the test
    done on the stored values (physical 0 is the stored -BZERO / BSCALE).
    """
    with fits.open(path, memmap=False, do_not_scale_image_data=True) as hdul:
        hdu = hdul[index]
        raw = np.squeeze(hdu.data)
        bscale = float(hdu.header.get("BSCALE", 1.0))
        bzero = float(hdu.header.get("BZERO", 0.0))
    if raw.dtype.kind in "iu" and bscale == 1.0 and bzero.is_integer():
        zero = -int(bzero)
        info = np.iinfo(raw.dtype)
        if not info.min <= zero <= info.max:  # no stored value is physical 0
            return np.ones(raw.shape, dtype=bool)
        return raw != raw.dtype.type(zero)
    return (raw * bscale + bzero) != 0


def _find(hdul: fits.HDUList, name: str, version: int = 1):
    """The image HDU of that EXTNAME and EXTVER (the CCD of a multi-extension file), else
    None."""
    try:
        hdu = hdul[(name, version)]
    except KeyError:
        return None
    return hdu if is_image_hdu(hdu) else None


def _uncertainty_from_variance(hdul: fits.HDUList, img) -> np.ndarray | None:
    """1-sigma uncertainty from a VARIANCE (or VAR) extension, the layout of LSST-style
    exposures, when the file has no ERR; None when it has neither."""
    for name in VARIANCE_EXTENSIONS:
        var = _find(hdul, name, img.ver)
        if var is not None and var is not img:
            v = _image_data(var)
            with np.errstate(invalid="ignore"):
                return np.sqrt(np.where(v > 0, v, np.nan)).astype(np.float32)
    return None


def _chosen_hdus(hdul: fits.HDUList, hdu: HduSpec | None, path, what: str) -> list:
    """The image HDUs of a file, or the one HDU its path names (``file.fits[2]``)."""
    if hdu is None:
        return [h for h in hdul if is_image_hdu(h)]
    try:
        chosen = hdul[hdu]
    except (KeyError, IndexError):
        raise ValueError(f"{what} file {path}: no HDU {hdu!r}") from None
    if not is_image_hdu(chosen):
        raise ValueError(f"{what} file {path}: HDU {hdu!r} holds no 2-D image")
    return [chosen]


def _read_aux_image(path: str | os.PathLike, what: str, shape=None) -> np.ndarray:
    """The first image HDU of an uncertainty (or other per-pixel) file, or the one its path
    names."""
    path, hdu = split_extension(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            images = _chosen_hdus(hdul, hdu, path, what)
            if not images:
                raise ValueError(f"{what} file {path}: no image HDU")
            data = _image_data(images[0])
    except OSError as exc:
        raise ValueError(f"{what} file {path}: unreadable ({exc})") from exc
    if shape is not None and data.shape != shape:
        raise ValueError(f"{what} file {path}: shape {data.shape}, image has {shape}")
    return data


def _oversampling(hdu) -> int:
    try:
        return int(hdu.header.get("OVERSAMP", 1) or 1)
    except (TypeError, ValueError):
        return 1


def _psf_hdus(path: str | os.PathLike | io.IOBase,
              ) -> tuple[list[tuple[np.ndarray, int]], tuple[np.ndarray, FinePsf | None] | None]:
    """Every image HDU of a PSF file (a path or a file object), or the one its path names,
    with its OVERSAMP factor (1 when absent); or, for a PSFEx model (no image HDU), the
    native and fine PSFs it gives (:mod:`rapid.io.psfex`)."""
    hdu = None
    if not isinstance(path, io.IOBase):
        path, hdu = split_extension(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            found = [(_image_data(h).astype(np.float64), _oversampling(h))
                     for h in _chosen_hdus(hdul, hdu, path, "PSF")]
            table = psfex_table(hdul) if not found and hdu is None else None
            if table is not None:
                return [], psfex_psfs(table, str(path))
    except OSError as exc:
        raise ValueError(f"PSF file {path}: unreadable ({exc})") from exc
    if not found:
        raise ValueError(f"PSF file {path}: no image HDU and no PSFEx model")
    return found, None


def _native_psf(hdus: list[tuple[np.ndarray, int]], path) -> np.ndarray:
    """The file's PSF at native sampling as stored (any side), summing to 1."""
    psf = next((data for data, factor in hdus if factor <= 1), hdus[0][0])
    if psf.ndim != 2 or min(psf.shape) < 3:
        raise ValueError(f"PSF file {path}: stamp must be 2-D and at least 3 x 3, got "
                         f"{psf.shape}")
    psf = np.where(np.isfinite(psf), psf, 0.0)
    if not psf.sum() > 0:
        raise ValueError(f"PSF file {path}: stamp does not have a positive sum")
    return psf / psf.sum()


def _from_oversampled(data: np.ndarray, factor: int, path) -> tuple[np.ndarray, FinePsf]:
    """The native stamp and effective fine PSF of a file that holds only an oversampled PSF.

    Such a fine image is read as the optical PSF (stpsf's and webbpsf's OVERSAMP image, a PSF
    drawn on a finer grid), so the pixel's own blur is added to it; taken as it is, a PSF
    sampled four times finer would be read as one four times wider.
    """
    from rapid.science.fine_psf import native_from_fine, pixel_integrated

    data = np.where(np.isfinite(data), data, 0.0)
    if data.ndim != 2 or not data.sum() > 0:
        raise ValueError(f"PSF file {path}: oversampled stamp is empty")
    fine = FinePsf.normalised(pixel_integrated(data, factor), factor)
    shape = tuple(2 * ((n - 1) // 2 // factor) + 1 for n in fine.data.shape)
    if min(shape) < 3:
        raise ValueError(f"PSF file {path}: oversampled stamp {data.shape} spans less than "
                         f"3 x 3 pixels at OVERSAMP={factor}")
    return native_from_fine(fine, shape), fine


def _fine_psf(hdus: list[tuple[np.ndarray, int]], native: np.ndarray,
              centre: tuple[float, float] | None = None) -> FinePsf | None:
    from rapid.science.fine_psf import effective_fine_psf

    for data, factor in hdus:
        fine = effective_fine_psf(native, data, factor, centre) if factor >= 2 else None
        if fine is not None:
            return fine
    return None


def read_psf(path: str | os.PathLike) -> np.ndarray:
    """Read a PSF stamp at native sampling, on an odd grid, normalised to sum 1.

    The stamp is the first image HDU whose header does not say OVERSAMP > 1, else the first
    image HDU; an even-sided one is put on an odd grid as :func:`read_psfs` does.

    Parameters
    ----------
    path : str or path-like
        FITS file.

    Returns
    -------
    ndarray
        float64 stamp.
    """
    return read_psfs(path)[0]


def read_fine_psf(path: str | os.PathLike, native: np.ndarray) -> FinePsf | None:
    """The file's finely sampled PSF: the first image HDU with OVERSAMP >= 2 that matches.

    See :func:`rapid.science.fine_psf.effective_fine_psf`: the fine image is accepted as the
    pixel-convolved PSF, or as the optical PSF integrated over pixels, whichever agrees with
    ``native``; None when the file has none or neither reading agrees.
    """
    hdus, psfex = _psf_hdus(path)
    return psfex[1] if psfex is not None else _fine_psf(hdus, native)


def read_psfs(path: str | os.PathLike | io.IOBase) -> tuple[np.ndarray, FinePsf | None]:
    """The native stamp (:func:`read_psf`) and the fine PSF (:func:`read_fine_psf`) of one
    file (a path or a file object), reading it once.

    The native stamp is returned on an odd grid centred on its middle pixel. A file whose
    every image says OVERSAMP >= 2 gives both from its first, read as the optical PSF; a PSFEx
    model gives both at the mean position of its stars (:mod:`rapid.io.psfex`). An even-sided
    stamp (webbpsf's, stpsf's, GalSim's of even size) is centred where
    :func:`rapid.science.psf.stamp_centre` says; it is read off the fine PSF when the file has
    one that agrees with it (exact), else padded and, for a centre between pixels, shifted
    half a pixel (:func:`rapid.science.psf.odd_stamp`).
    """
    from rapid.science.fine_psf import native_from_fine
    from rapid.science.psf import odd_stamp, stamp_centre

    hdus, psfex = _psf_hdus(path)
    if psfex is not None:
        return psfex
    if all(factor >= 2 for _, factor in hdus):
        return _from_oversampled(*hdus[0], path)
    stored = _native_psf(hdus, path)
    if stored.shape[0] % 2 and stored.shape[1] % 2:
        return stored, _fine_psf(hdus, stored)
    centre = stamp_centre(stored)
    fine = _fine_psf(hdus, stored, centre)
    odd_shape = tuple(n | 1 for n in stored.shape)
    native = native_from_fine(fine, odd_shape) if fine is not None else odd_stamp(stored, centre)
    return native, fine


def psf_fits_bytes(native: np.ndarray, fine: FinePsf | None = None, *,
                   header: dict[str, Any] | None = None,
                   cells: tuple[Sequence[np.ndarray], Sequence[int], Sequence[int]] | None = None,
                   ) -> bytes:
    """A PSF file that :func:`read_psfs` reads back: the native stamp and the fine PSF.

    Parameters
    ----------
    native : ndarray
        Odd-sized PSF at pixel centres (primary HDU, float32).
    fine : FinePsf, optional
        The same PSF sampled finer, written to an HDU named 'OVERSAMP' whose OVERSAMP keyword
        gives its factor (normalised to sum 1). Without it a source's profile between pixel
        centres can only be interpolated, which an undersampled PSF does not allow.
    header : dict, optional
        Extra keywords for both HDUs (name -> value, or name -> (value, comment)); a
        PSFSCALE (sample spacing) is divided by the factor in the fine HDU.
    cells : tuple, optional
        (stamps, y_edges, x_edges) of a PSF that varies across the image: one stamp per cell
        of the grid the edges give (row-major), written as a cube to an HDU named 'CELLS'
        whose keywords YEDGEi and XEDGEi hold the edges (pixels, zero-based; cell (i, j) is
        rows YEDGEi .. YEDGE(i+1) - 1, columns XEDGEj .. XEDGE(j+1) - 1).

    Returns
    -------
    bytes
    """
    hdr = fits.Header()
    for key, value in (header or {}).items():
        hdr[key] = value
    hdus = [fits.PrimaryHDU(np.asarray(native, dtype=np.float32), header=hdr)]
    if fine is not None:
        fhdr = hdr.copy()
        fhdr["OVERSAMP"] = (int(fine.factor), "samples per native pixel")
        if "PSFSCALE" in fhdr:  # a sample spacing: finer by the factor
            fhdr["PSFSCALE"] = (float(fhdr["PSFSCALE"]) / fine.factor, fhdr.comments["PSFSCALE"])
        # normalised to sum 1 like the stamp: the usual convention of oversampled PSF files
        fdata = np.asarray(fine.data, dtype=np.float64)
        hdus.append(fits.ImageHDU((fdata / fdata.sum()).astype(np.float32), header=fhdr,
                                  name="OVERSAMP"))
    if cells is not None:
        stamps, y_edges, x_edges = cells
        chdr = fits.Header()
        for axis, edges in (("Y", y_edges), ("X", x_edges)):
            for i, edge in enumerate(edges):
                chdr[f"{axis}EDGE{i}"] = (int(edge), f"cell boundary along {axis.lower()}")
        hdus.append(fits.ImageHDU(np.asarray(np.stack(stamps), dtype=np.float32), header=chdr,
                                  name="CELLS"))
    sink = io.BytesIO()
    fits.HDUList(hdus).writeto(sink, output_verify="silentfix")
    return sink.getvalue()


def _get(headers: list[fits.Header], key: str):
    for h in headers:
        if key in h and h[key] is not None and not isinstance(h[key], fits.card.Undefined):
            return h[key]
    return None


def read_fits_frame(
    path: str | os.PathLike, *, hdu: HduSpec | None = None,
    psf_path: str | os.PathLike | None = None, unc_path: str | os.PathLike | None = None,
    per_second: bool = False,
) -> Frame:
    """Read a FITS image with a celestial WCS into a :class:`Frame`.

    Parameters
    ----------
    path : str or path-like
        FITS file; ``file.fits[N]``, ``[NAME]`` or ``[NAME,VER]`` names the image's HDU
        (:func:`rapid.io.frame.split_extension`).
    hdu : int, str or (str, int), optional
        HDU index, name or (name, version) of the image; default the one ``path`` names, else
        the 'SCI' extension when present, else the first image HDU with data and a celestial
        WCS.
    psf_path : str or path-like, optional
        PSF stamp file; default the file named by a PSFFILE keyword beside ``path``, if any.
    unc_path : str or path-like, optional
        1-sigma uncertainty image; default the 'ERR' extension, else the square root of a
        'VARIANCE' (or 'VAR') one, if any. Pixels without a positive uncertainty are masked.
    per_second : bool, optional
        Divide data, uncertainty and saturation by EXPTIME (False) when BUNIT says they are
        counts per exposure (or says nothing); needs EXPTIME then.

    Returns
    -------
    Frame
        float32 data (bad pixels NaN), WCS (SIP kept; in ICRS, :func:`in_icrs`), psf, unc,
        mask (DQ != 0, non-finite, at or above SATURATE, or inside a 5 x 5 square or a
        25-pixel row or column of one value: fill values,
        :func:`rapid.science.badpixels.plateau_mask`) and meta: filter,
        mjdobs, exptime, zptmag, gain, saturation, path, hdu, units ("DN/s" or the header's
        BUNIT / "DN").

    Raises
    ------
    ValueError
        Naming the file and the problem: unreadable, no image, no celestial WCS, bad PSF.
    """
    path, named = split_extension(path)
    if named is not None and hdu is not None and named != hdu:
        raise ValueError(f"{path}: HDU {named!r} named in the path, {hdu!r} asked for")
    hdu = named if hdu is None else hdu
    try:
        hdul = fits.open(path, memmap=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable FITS file ({exc})") from exc
    with hdul:
        if hdu is not None:
            try:
                img = hdul[hdu]
            except (KeyError, IndexError) as exc:
                raise ValueError(f"{path}: no HDU {hdu!r}") from exc
            if not is_image_hdu(img):
                raise ValueError(f"{path}: HDU {hdu!r} holds no 2-D image")
            wcs = _wcs_of(img.header)
            if wcs is None:
                raise ValueError(f"{path}: HDU {hdu!r} has no celestial WCS")
        else:
            if not any(is_image_hdu(h) for h in hdul):
                raise ValueError(f"{path}: no image HDU")
            img, wcs = find_science_hdu(hdul)
            if img is None:
                raise ValueError(f"{path}: no image HDU with a celestial WCS")
        try:
            wcs = in_icrs(wcs)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        data = _image_data(img)
        headers = [img.header, hdul[0].header]
        err = _find(hdul, "ERR", img.ver) if img.name != "ERR" else None
        dq = _find(hdul, "DQ", img.ver)
        unc = None
        if unc_path is None:
            unc = _image_data(err) if err is not None else _uncertainty_from_variance(hdul, img)
        dqmask = _flagged(path, hdul.index_of(dq)) if dq is not None else None
        hdu_name = img.name or str(hdul.index_of(img))
    if unc_path is not None:
        unc = _read_aux_image(unc_path, "uncertainty", data.shape)
    if unc is not None and unc.shape != data.shape:
        raise ValueError(f"{path}: the uncertainty (ERR or VARIANCE) has shape {unc.shape}, "
                         f"the image {data.shape}")
    if dqmask is not None and dqmask.shape != data.shape:
        raise ValueError(f"{path}: DQ has shape {dqmask.shape}, image has {data.shape}")

    if psf_path is None:
        psffile = _get(headers, "PSFFILE")
        if psffile:
            psf_path = path.parent / str(psffile).strip()
            if not psf_path.exists():
                raise ValueError(f"{path}: PSFFILE {psffile!r} not found beside it")
    psf, psf_fine = read_psfs(psf_path) if psf_path is not None else (None, None)

    exptime = _get(headers, "EXPTIME")
    exptime = float(exptime) if exptime is not None else None
    saturation = _get(headers, "SATURATE")
    saturation = float(saturation) if saturation is not None else None
    mask = ~np.isfinite(data)
    if unc is not None:  # a pixel without a usable uncertainty cannot be weighed
        mask |= ~(unc > 0)
    mask |= plateau_mask(data)  # zero-filled borders, chip gaps, dead columns, plateaus
    if dqmask is not None:
        mask |= dqmask
    if saturation is not None:
        mask |= data >= saturation
    zpt = _get(headers, "ZPTMAG")
    zpt = float(zpt) if zpt is not None else None
    bunit = str(_get(headers, "BUNIT") or "").strip()
    units = bunit or "DN"
    kind = count_unit(bunit)
    gain = _get(headers, "GAIN")
    gain = 1.0 if kind is not None and kind.electrons else (
        float(gain) if gain is not None else None)
    # only counts per exposure are divided (a rate or a calibrated unit is left as it is) and
    # only they need the exposure time in their zero point
    counts = kind is not None and not kind.per_second
    if per_second and counts:
        if not exptime or exptime <= 0:
            raise ValueError(f"{path}: per_second needs a positive EXPTIME, got {exptime}")
        data /= np.float32(exptime)
        if unc is not None:
            unc /= np.float32(exptime)
        if saturation is not None:
            saturation /= exptime
        units = f"{units}/s"
    elif counts and zpt is not None and exptime and exptime > 0:
        zpt = zpt + 2.5 * np.log10(exptime)
    data[mask] = np.nan
    mjdobs = observation_mjd(headers[0])
    mjdobs = observation_mjd(headers[1]) if mjdobs is None else mjdobs
    meta: dict[str, Any] = {
        "filter": (str(_get(headers, "FILTER")).strip() if _get(headers, "FILTER") is not None
                   else None),
        "mjdobs": mjdobs,
        "exptime": exptime, "zptmag": zpt,
        "gain": gain,
        "saturation": saturation, "path": str(path), "hdu": hdu_name, "units": units,
    }
    return Frame(data=data, wcs=wcs, psf=psf, unc=unc, mask=mask, meta=meta, psf_fine=psf_fine)


def write_fits_image(
    path_or_fileobj: str | os.PathLike | io.IOBase, data: np.ndarray, wcs: WCS | None, *,
    header_extra: dict[str, Any] | None = None, overwrite: bool = True,
) -> None:
    """Write a float32 image with its WCS (SIP kept) as the primary HDU of a FITS file.

    Parameters
    ----------
    path_or_fileobj : str, path-like or file object
        Destination.
    data : ndarray
        2-D image.
    wcs : astropy.wcs.WCS or None
        Celestial WCS written into the header (None for stamps such as PSFs).
    header_extra : dict, optional
        Extra keywords (name -> value, or name -> (value, comment)).
    overwrite : bool, optional
        Replace an existing file (True).
    """
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D, got shape {data.shape}")
    header = fits.Header()
    if wcs is not None:
        if not isinstance(wcs, WCS):
            raise ValueError(f"wcs must be an astropy.wcs.WCS, got {type(wcs).__name__}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header.update(wcs.to_header(relax=True))
    for key, value in (header_extra or {}).items():
        header[key] = value
    hdu = fits.PrimaryHDU(data=data.astype(np.float32), header=header)
    hdu.writeto(path_or_fileobj, overwrite=overwrite)
