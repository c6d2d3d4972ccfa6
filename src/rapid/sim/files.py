"""Writing the survey's files: L2 FITS images, the truth table and the survey summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits

from rapid.sim.render import DQ_COSMIC_HOT, DQ_NAN, DQ_SATURATED

#: Truth-table columns and their Arrow types, in order.
TRUTH_SCHEMA = pa.schema([
    ("filename", pa.string()), ("expid", pa.int64()), ("sca", pa.int64()),
    ("filter", pa.string()), ("field", pa.int64()), ("dateobs", pa.string()),
    ("mjd", pa.float64()), ("kind", pa.string()), ("object_id", pa.int64()),
    ("ra", pa.float64()), ("dec", pa.float64()), ("x", pa.float64()), ("y", pa.float64()),
    ("flux", pa.float64()), ("baseline_flux", pa.float64()), ("diff_flux", pa.float64()),
    ("mag", pa.float64()), ("snr_expected", pa.float64()),
])


def image_filename(filter_name: str, expid: int, sca: int) -> str:
    """Basename of one L2 image."""
    return f"Roman_sim_{filter_name}_{int(expid):05d}_{int(sca):02d}.fits"


def write_l2_image(path: Path, sci: np.ndarray, err: np.ndarray, dq: np.ndarray,
                   observation: dict, wcs_header: fits.Header) -> None:
    """Write an L2 image: primary header, then SCI (DN), ERR (DN) and DQ extensions.

    Parameters
    ----------
    path : Path
        Output path.
    sci, err : ndarray
        float32 image and 1-sigma uncertainty, DN.
    dq : ndarray
        uint32 quality flags.
    observation : dict
        Observation keywords (DATE-OBS, MJD-OBS, EXPTIME, ...), written to HDU 0 and HDU 1.
    wcs_header : astropy.io.fits.Header
        Celestial TAN-SIP WCS, written to all three image extensions.
    """
    primary = fits.PrimaryHDU()
    for key, value in observation.items():
        primary.header[key] = value
    hdus = [primary]
    for name, data in (("SCI", sci), ("ERR", err), ("DQ", dq)):
        hdr = fits.Header()
        if name == "SCI":
            for key, value in observation.items():
                hdr[key] = value
        else:
            hdr["BUNIT"] = "DN" if name == "ERR" else ""
        if name == "DQ":
            hdr["DQ_SAT"] = (DQ_SATURATED, "DQ bit: saturated")
            hdr["DQ_CR"] = (DQ_COSMIC_HOT, "DQ bit: cosmic ray or hot pixel")
            hdr["DQ_NAN"] = (DQ_NAN, "DQ bit: NaN or dead pixel")
        for card in wcs_header.cards:
            hdr[card.keyword] = (card.value, card.comment)
        hdus.append(fits.ImageHDU(data, header=hdr, name=name))
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def write_truth(path: Path, rows: list[dict]) -> None:
    """Write the truth table (one row per image and transient or variable) as Parquet."""
    columns = {name: [row[name] for row in rows] for name in TRUTH_SCHEMA.names}
    table = pa.table(columns, schema=TRUTH_SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_json(path: Path, payload: dict) -> None:
    """Write a JSON document with sorted keys (stable bytes for the same content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
