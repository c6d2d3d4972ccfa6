"""Read Roman WFI L2 images (ASDF files of a roman_datamodels ImageModel) into a :class:`Frame`.

What RAPID takes from an L2 ImageModel:

- ``data`` in DN/s: romancal's and romanisim's L2 slope images are count rates already, so they
  are *not* divided by the exposure time again. Should the ``flux`` calibration step have run
  (``meta.cal_step.flux == "COMPLETE"``), the data are in MJy/sr and are divided by
  ``meta.photometry.conversion_megajanskys`` to come back to DN/s.
- ``err`` (1-sigma, same units) as the uncertainty, ``dq`` (nonzero = bad) as the mask.
- ``meta.wcs`` (a GWCS) approximated by FITS TAN-SIP (:mod:`rapid.io.gwcs_sip`).
- ``meta.exposure.start_time`` and ``exposure_time``, ``meta.instrument.detector`` (``WFI01`` is
  SCA 1) and ``optical_element`` (``F158``, RAPID's ``H158``).
- The zero point, from the photometric calibration: ``conversion_megajanskys`` C is the surface
  brightness in MJy/sr of 1 DN/s in a pixel, ``pixel_area`` Ω its area in sr, so a source of
  1 DN/s has a flux of C·Ω·10⁶ Jy and its AB magnitude is

      ZPTMAG = -2.5 log10(C · Ω · 10⁶ / 3631)

  (RAPID's convention: magnitude = ZPTMAG - 2.5 log10(flux in DN/s)). Signs are dropped: the
  area romanisim records is negative for a mirror-imaged pixel grid.
"""

from __future__ import annotations

import math
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from rapid.io.celestial import in_icrs
from rapid.io.gwcs_sip import SipFit, fit_sip
from rapid.science.image import Frame

AB_ZERO_JY = 3631.0


@dataclass(frozen=True)
class RomanL2Meta:
    """The facts of a Roman L2 ImageModel that RAPID uses (no pixels).

    Attributes
    ----------
    start_time : datetime
        Exposure start, UTC.
    mjd : float
        The same as MJD (UTC).
    exptime : float
        ``meta.exposure.exposure_time`` in seconds.
    optical_element : str
        As recorded (``F158``).
    sca : int
        Detector number 1..18.
    shape : tuple of int
        (ny, nx) of the science array.
    zptmag : float or None
        AB zero point for DN/s (see the module text); None without a usable calibration.
    units : str
        ``DN/s`` or ``MJy/sr`` (after the flux step).
    conversion_mjy_sr : float or None
        MJy/sr per DN/s.
    sip : SipFit
        TAN-SIP approximation of ``meta.wcs`` and its fit error in pixels.
    gwcs : gwcs.wcs.WCS
        ``meta.wcs`` itself (0-based pixels to ICRS degrees).
    """

    start_time: datetime
    mjd: float
    exptime: float
    optical_element: str
    sca: int
    shape: tuple[int, int]
    zptmag: float | None
    units: str
    conversion_mjy_sr: float | None
    sip: SipFit
    gwcs: Any


@contextmanager
def open_l2_model(path: str | os.PathLike):
    """Open a Roman L2 ASDF file and yield its ImageModel.

    Parameters
    ----------
    path : str or path-like
        The ASDF file.

    Yields
    ------
    roman_datamodels.datamodels.ImageModel

    Raises
    ------
    ValueError
        Unreadable or truncated file, or not an L2 ImageModel (the message names which).
    """
    import asdf
    import roman_datamodels.datamodels as rdd

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # asdf first: its errors name the damage (a truncated tree, a bad block).
            af = asdf.open(str(path), lazy_load=True, memmap=False)
    except Exception as exc:  # asdf and yaml raise many kinds
        raise ValueError(f"not a readable ASDF file ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None
    try:
        if "roman" not in af.tree:
            raise ValueError("not a Roman file: the ASDF tree has no 'roman' node")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = rdd.open(af)
        except Exception as exc:
            raise ValueError(f"not a readable Roman datamodel ({type(exc).__name__}: "
                             f"{_first_line(exc)})") from None
        try:
            if not isinstance(model, rdd.ImageModel):
                raise ValueError(f"not a Roman L2 image: holds a {type(model).__name__}, "
                                 f"expected an ImageModel")
            yield model
        finally:
            model.close()
    finally:
        af.close()


def check_arrays(model, shape: tuple[int, int]) -> None:
    """Read ``data``, ``err`` and ``dq`` once to prove the file is complete, one at a time.

    Parameters
    ----------
    model : roman_datamodels.datamodels.ImageModel
        From :func:`open_l2_model`.
    shape : tuple of int
        Expected (ny, nx).

    Raises
    ------
    ValueError
        A truncated or damaged array block, a missing ``data``, or a shape mismatch.
    """
    for name in ("data", "err", "dq"):
        value = _optional(model, name)
        if value is None:
            if name == "data":
                raise ValueError("no science array (data)")
            continue
        del value
        _array(_optional(model, name), name, shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def _get(node, *names: str):
    """meta.a.b... or None when any level is missing."""
    for name in names:
        try:
            node = node[name]
        except (KeyError, AttributeError, TypeError):
            node = getattr(node, name, None)
        if node is None:
            return None
    return node


def _sca(detector: object) -> int:
    text = str(detector or "").strip().upper()
    digits = text[3:] if text.startswith("WFI") else text
    if not digits.isdigit() or not 1 <= int(digits) <= 18:
        raise ValueError(f"meta.instrument.detector = {detector!r} is not WFI01..WFI18")
    return int(digits)


def _start_time(value) -> tuple[datetime, float]:
    from astropy.time import Time

    if value is None:
        raise ValueError("missing meta.exposure.start_time")
    try:
        t = value if isinstance(value, Time) else Time(str(value), scale="utc")
        t = t.utc
    except ValueError:
        raise ValueError(f"meta.exposure.start_time {value!r} is not a time") from None
    return t.to_datetime(timezone=timezone.utc), float(t.mjd)


def _number(value) -> float | None:
    value = getattr(value, "value", value)  # older datamodels store Quantities
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def zero_point(conversion_mjy_sr: float | None, pixel_area_sr: float | None) -> float | None:
    """AB zero point for DN/s: ``-2.5 log10(|C| |Ω| 10⁶ / 3631)``; None when either is unusable.

    Parameters
    ----------
    conversion_mjy_sr : float or None
        MJy/sr per DN/s (``meta.photometry.conversion_megajanskys``).
    pixel_area_sr : float or None
        Pixel area in steradians (``meta.photometry.pixel_area``).

    Returns
    -------
    float or None
    """
    if not conversion_mjy_sr or not pixel_area_sr:
        return None
    flux_jy = abs(conversion_mjy_sr) * abs(pixel_area_sr) * 1e6
    return float(-2.5 * math.log10(flux_jy / AB_ZERO_JY))


def read_l2_meta(model, *, max_sip_error: float = 0.01) -> RomanL2Meta:
    """The facts RAPID needs from an open L2 ImageModel, without reading its pixels.

    Parameters
    ----------
    model : roman_datamodels.datamodels.ImageModel
        From :func:`open_l2_model`.
    max_sip_error : float, optional
        Target TAN-SIP accuracy in pixels (0.01).

    Returns
    -------
    RomanL2Meta

    Raises
    ------
    ValueError
        Naming the missing or unusable item (WCS, start time, exposure time, detector, filter).
    """
    meta = model.meta
    gwcs_obj = _get(meta, "wcs")
    if gwcs_obj is None:
        raise ValueError("missing WCS (meta.wcs is empty)")
    start_time, mjd = _start_time(_get(meta, "exposure", "start_time"))
    exptime = _number(_get(meta, "exposure", "exposure_time"))
    if exptime is None or exptime <= 0:
        raise ValueError(f"meta.exposure.exposure_time must be positive, got {exptime}")
    element = _get(meta, "instrument", "optical_element")
    if not element:
        raise ValueError("missing meta.instrument.optical_element")
    sca = _sca(_get(meta, "instrument", "detector"))
    try:
        shape = tuple(int(n) for n in model.data.shape)
    except Exception as exc:
        raise ValueError(f"no science array ({type(exc).__name__})") from None
    if len(shape) != 2:
        raise ValueError(f"science array must be 2-D, got shape {shape}")
    conversion = _number(_get(meta, "photometry", "conversion_megajanskys"))
    area = _number(_get(meta, "photometry", "pixel_area"))
    if area is None:
        area = _number(_get(meta, "photometry", "pixelarea_steradians"))
    flux_step = str(_get(meta, "cal_step", "flux") or "").upper()
    units = "MJy/sr" if flux_step == "COMPLETE" else "DN/s"
    sip = fit_sip(gwcs_obj, shape, max_pix_error=max_sip_error)  # type: ignore[arg-type]
    return RomanL2Meta(start_time=start_time, mjd=mjd, exptime=exptime,
                       optical_element=str(element), sca=sca, shape=shape,  # type: ignore[arg-type]
                       zptmag=zero_point(conversion, area), units=units,
                       conversion_mjy_sr=conversion, sip=sip, gwcs=gwcs_obj)


def _array(value, what: str, shape) -> np.ndarray:
    try:
        arr = np.asarray(getattr(value, "value", value))
    except Exception as exc:  # a truncated file fails only when its blocks are read
        raise ValueError(f"truncated or damaged {what} array ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None
    if arr.shape != tuple(shape):
        raise ValueError(f"{what} has shape {arr.shape}, data has {tuple(shape)}")
    return arr


def _optional(model, name: str):
    try:
        return getattr(model, name)
    except (AttributeError, KeyError):
        return None


def read_asdf_frame(path: str | os.PathLike, *, per_second: bool = True,
                    psf_path: str | os.PathLike | None = None, dq_ignore: int = 0,
                    max_sip_error: float = 0.01) -> Frame:
    """Read a Roman L2 ASDF image into a :class:`Frame`.

    Parameters
    ----------
    path : str or path-like
        ASDF file holding a roman_datamodels ImageModel.
    per_second : bool, optional
        Keep the data in DN/s (True, as L2 data already are); False multiplies data and
        uncertainty by the exposure time to give DN and raises the zero point by
        2.5 log10(exptime), as :func:`rapid.io.read_fits_frame` does.
    psf_path : str or path-like, optional
        FITS PSF stamp; default none (the science steps then estimate the PSF from stars).
    dq_ignore : int, optional
        DQ bits that do not make a pixel bad (0: every nonzero DQ masks).
    max_sip_error : float, optional
        Target accuracy in pixels of the TAN-SIP approximation of the GWCS (0.01).

    Returns
    -------
    Frame
        float32 data (bad pixels NaN), astropy TAN-SIP WCS, unc from ``err``, mask from ``dq``
        and non-finite data, meta: filter (RAPID's name), mjdobs, exptime, zptmag, gain (None),
        saturation (None), path, units, sca, sip_error_pix.

    Raises
    ------
    ValueError
        Naming the file and the problem.
    """
    from rapid.ingest.filters import canonical_filter
    from rapid.io.fits_frame import read_psfs

    if dq_ignore < 0:
        raise ValueError(f"dq_ignore must be a non-negative bit mask, got {dq_ignore}")
    path = Path(path)
    try:
        with open_l2_model(path) as model:
            facts = read_l2_meta(model, max_sip_error=max_sip_error)
            data = _array(model.data, "data", facts.shape).astype(np.float32)
            err, dq = _optional(model, "err"), _optional(model, "dq")
            unc = _array(err, "err", facts.shape).astype(np.float32) if err is not None else None
            dq = _array(dq, "dq", facts.shape) if dq is not None else None
        filt = canonical_filter(facts.optical_element)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if facts.units == "MJy/sr":
        if not facts.conversion_mjy_sr:
            raise ValueError(f"{path}: data in MJy/sr but no meta.photometry."
                             f"conversion_megajanskys to return to DN/s")
        data = data / np.float32(facts.conversion_mjy_sr)
        if unc is not None:
            unc = unc / np.float32(abs(facts.conversion_mjy_sr))
    mask = ~np.isfinite(data)
    if dq is not None:
        mask |= (dq.astype(np.int64) & ~np.int64(dq_ignore)) != 0
    if unc is not None:
        mask |= ~np.isfinite(unc)
    zpt, units = facts.zptmag, "DN/s"
    if not per_second:
        data = data * np.float32(facts.exptime)
        if unc is not None:
            unc = unc * np.float32(facts.exptime)
        if zpt is not None:
            zpt = zpt + 2.5 * math.log10(facts.exptime)
        units = "DN"
    data[mask] = np.nan
    psf, psf_fine = read_psfs(psf_path) if psf_path is not None else (None, None)
    meta: dict[str, Any] = {
        "filter": filt, "mjdobs": facts.mjd, "exptime": facts.exptime, "zptmag": zpt,
        "gain": None, "saturation": None, "path": str(path), "hdu": None, "units": units,
        "sca": facts.sca, "sip_error_pix": facts.sip.max_error_pix,
    }
    return Frame(data=data, wcs=in_icrs(facts.sip.wcs), psf=psf, unc=unc, mask=mask, meta=meta,
                 psf_fine=psf_fine)
