"""Registered candidate catalogs (operations database and store) against a truth table.

Besides the candidate catalog, each registered difference image is read back for its
uncertainty (``diffimage_unc``) and PSF (``diffpsf``) products, so that every truth transient
gets its true S/N in that difference image (:mod:`rapid.evaluation.diffsnr`; at the transient's
sub-pixel position when the PSF product carries a finer sampling). The products are
found through the manifest of the job that registered the difference image (``jobs.manifest_uri``
of ``diffimages.jid``); without a readable manifest, beside ``diffimages.filename`` under the
names the science job writes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from rapid import store
from rapid.evaluation.diffsnr import difference_snr
from rapid.evaluation.quality import Matched, match_catalogs, summarize
from rapid.evaluation.recovery import _basename
from rapid.io.fits_frame import read_psfs
from rapid.jobs.products import read_table

TRUTH_COLUMNS = ("filename", "filter", "kind", "x", "y", "flux", "diff_flux", "mag",
                 "snr_expected")

#: File names of the science job's products, used when no manifest names them.
UNC_FILENAME = "diffimage_uncert_masked.fits"
PSF_FILENAME = "diffpsf.fits"


@dataclass(frozen=True)
class DiffProducts:
    """Where one registered difference image and its noise products are stored."""

    l2name: str  # basename of the science L2 file
    filter: str
    catalog: str
    image: str
    uncertainty: str
    psf: str


def read_truth(path: str) -> dict[str, np.ndarray]:
    """The truth-table columns the evaluation needs (see :mod:`rapid.sim.files`)."""
    table = read_table(str(path))
    missing = [c for c in TRUTH_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"truth table {path} lacks columns {missing}")
    return {c: np.asarray(table[c].to_numpy(zero_copy_only=False)) for c in TRUTH_COLUMNS}


def _sibling(uri: str, filename: str) -> str:
    return uri.rsplit("/", 1)[0] + "/" + filename


def _noise_uris(image_uri: str, manifest_uri: str | None) -> tuple[str, str]:
    """(diffimage_unc, diffpsf) URIs: from the job's manifest, else beside the image."""
    from rapid.jobs.spec import Manifest

    if manifest_uri:
        try:
            manifest = Manifest.from_json(store.read_bytes(manifest_uri))
            diff = manifest.diffimage
            if diff is not None:
                return manifest.product(diff.uncertainty).uri, manifest.product(diff.psf).uri
        except (OSError, KeyError, ValueError):
            pass  # an unreadable or older manifest: the products' usual names still apply
    return _sibling(image_uri, UNC_FILENAME), _sibling(image_uri, PSF_FILENAME)


def registered_products(db, procdate=None) -> list[DiffProducts]:  # noqa: ANN001
    """Product locations of every best registered difference image.

    Parameters
    ----------
    db : sqlalchemy.Engine
        The operations database.
    procdate : datetime.date, optional
        Only difference images made by jobs of this processing date.

    Returns
    -------
    list of DiffProducts
        In the order of :func:`rapid.db.lookups.diffimages_with_catalogs` (by pid).
    """
    from rapid.db.lookups import diffimages_with_catalogs
    from rapid.ingest.filters import RAPID_FILTERS

    with db.begin() as conn:
        rows = diffimages_with_catalogs(conn, procdate)
    out = []
    for row in rows:
        unc, psf = _noise_uris(row.filename, row.manifest_uri)
        out.append(DiffProducts(l2name=_basename(row.l2filename),
                                filter=RAPID_FILTERS[row.fid - 1], catalog=row.catfilename,
                                image=row.filename, uncertainty=unc, psf=psf))
    return out


def _read_catalog(uri: str) -> dict[str, np.ndarray]:
    table = read_table(uri)
    cols = {c: np.asarray(table[c]) for c in table.column_names}
    cols.setdefault("x", np.zeros(0))
    for c in ("y", "flux", "flux_err"):
        cols.setdefault(c, np.zeros(0))
    cols.setdefault("sign", np.zeros(0, int))
    return cols


def _read_fits(uri: str) -> np.ndarray:
    from astropy.io import fits

    with fits.open(io.BytesIO(store.read_bytes(uri))) as hdul:
        return np.asarray(hdul[0].data, dtype=float)


def truth_difference_snr(truth: dict[str, np.ndarray],
                         products: list[DiffProducts]) -> tuple[np.ndarray, np.ndarray]:
    """True S/N in its difference image of every truth row, and which rows sit on masks.

    Parameters
    ----------
    truth : dict of ndarray
        Truth-table columns (filename, x, y, diff_flux).
    products : list of DiffProducts
        The registered difference images.

    Returns
    -------
    snr_diff : ndarray
        ``|diff_flux| / sigma_f`` (see :func:`rapid.evaluation.diffsnr.psf_flux_sigma`); NaN
        for rows of images without a difference image and for masked rows.
    masked : ndarray of bool
        Rows of a differenced image whose PSF core touches a masked pixel or the image edge.
    """
    names = np.asarray(truth["filename"]).astype(str)
    x, y = np.asarray(truth["x"], float), np.asarray(truth["y"], float)
    diff = np.asarray(truth["diff_flux"], float)
    snr = np.full(len(names), np.nan)
    masked = np.zeros(len(names), dtype=bool)
    for p in products:
        rows = np.flatnonzero(names == p.l2name)
        if rows.size == 0:
            continue
        unc = _read_fits(p.uncertainty)
        psf, fine = read_psfs(io.BytesIO(store.read_bytes(p.psf)))
        s = difference_snr(diff[rows], unc, psf, x[rows], y[rows], fine=fine)
        snr[rows] = s
        masked[rows] = np.isnan(s) & np.isfinite(diff[rows])
    return snr, masked


def evaluate_registered(db, truth_path: str, *, procdate=None, radius: float = 2.0,  # noqa: ANN001
                        max_fp_per_image: float = 10.0) -> tuple[dict, Matched]:
    """Measure the registered candidates of ``procdate`` against a simulator's truth table.

    Parameters
    ----------
    db : sqlalchemy.Engine
        The operations database.
    truth_path : str
        ``truth.parquet`` written by :func:`rapid.sim.simulate_survey`.
    procdate : datetime.date, optional
        Processing date of the science jobs (default: all).
    radius : float, optional
        Matching radius, pixels (2.0).
    max_fp_per_image : float, optional
        False positives per image allowed for the figure of merit (10).

    Returns
    -------
    summary : dict
        See :func:`rapid.evaluation.quality.summarize`.
    matched : Matched
        The matched truth objects and candidates (for plots).
    """
    truth = read_truth(truth_path)
    products = registered_products(db, procdate)
    truth["snr_diff"], truth["masked"] = truth_difference_snr(truth, products)
    catalogs = [(p.l2name, p.filter, _read_catalog(p.catalog)) for p in products]
    matched = match_catalogs(truth, catalogs, radius=radius)
    return summarize(matched, max_fp_per_image=max_fp_per_image), matched
