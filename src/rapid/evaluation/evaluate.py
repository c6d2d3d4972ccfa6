"""Registered candidate catalogs (operations database and store) against a truth table."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq

from rapid import store
from rapid.evaluation.quality import Matched, match_catalogs, summarize
from rapid.evaluation.recovery import _basename

TRUTH_COLUMNS = ("filename", "filter", "kind", "x", "y", "flux", "diff_flux", "mag",
                 "snr_expected")


def read_truth(path: str) -> dict[str, np.ndarray]:
    """The truth-table columns the evaluation needs (see :mod:`rapid.sim.files`)."""
    table = pq.read_table(path)
    missing = [c for c in TRUTH_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"truth table {path} lacks columns {missing}")
    return {c: np.asarray(table[c].to_numpy(zero_copy_only=False)) for c in TRUTH_COLUMNS}


def registered_catalogs(db, procdate=None) -> list[tuple[str, str, dict]]:  # noqa: ANN001
    """(L2 basename, filter, candidate columns) of every best registered difference image.

    Parameters
    ----------
    db : sqlalchemy.Engine
        The operations database.
    procdate : datetime.date, optional
        Only difference images made by jobs of this processing date.
    """
    from rapid.db.lookups import diffimages_with_catalogs
    from rapid.ingest.filters import RAPID_FILTERS

    with db.begin() as conn:
        rows = diffimages_with_catalogs(conn, procdate)
    out = []
    for row in rows:
        table = pq.read_table(io.BytesIO(store.read_bytes(row.catfilename)))
        cols = {c: np.asarray(table[c]) for c in table.column_names}
        cols.setdefault("x", np.zeros(0))
        for c in ("y", "flux", "flux_err"):
            cols.setdefault(c, np.zeros(0))
        cols.setdefault("sign", np.zeros(0, int))
        out.append((_basename(row.l2filename), RAPID_FILTERS[row.fid - 1], cols))
    return out


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
    matched = match_catalogs(truth, registered_catalogs(db, procdate), radius=radius)
    return summarize(matched, max_fp_per_image=max_fp_per_image), matched
