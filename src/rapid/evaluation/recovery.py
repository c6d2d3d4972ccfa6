"""Which injected transients the registered candidates recovered.

A truth transient (in an image that has a registered difference image) is recovered when a
brightening candidate lies within ``radius`` pixels of its true position in that image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlparse

import numpy as np
from scipy.spatial import cKDTree

from rapid.db.lookups import diffimages_with_catalogs
from rapid.jobs.products import read_table


@dataclass(frozen=True)
class Recovery:
    images: int  # difference images compared with truth
    transients: int  # truth transients with positive flux in those images
    recovered: int
    bright: int  # of those, expected S/N >= bright_snr
    bright_recovered: int
    bright_snr: float
    candidates: int

    @property
    def fraction(self) -> float:
        return self.recovered / self.transients if self.transients else float("nan")

    @property
    def bright_fraction(self) -> float:
        return self.bright_recovered / self.bright if self.bright else float("nan")


def _basename(uri: str) -> str:
    return PurePosixPath(urlparse(uri).path).name


def match_positions(truth_xy: np.ndarray, cand_xy: np.ndarray, radius: float) -> np.ndarray:
    """For each truth position, whether a candidate lies within ``radius`` pixels."""
    if len(truth_xy) == 0:
        return np.zeros(0, dtype=bool)
    if len(cand_xy) == 0:
        return np.zeros(len(truth_xy), dtype=bool)
    dist, _ = cKDTree(cand_xy).query(truth_xy, k=1)
    return dist <= radius


def match_one_to_one(truth_xy: np.ndarray, cand_xy: np.ndarray,
                     radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Pair truth positions with candidates, each candidate used at most once.

    Pairs closer than ``radius`` pixels are taken in order of increasing distance, so two
    truth objects near one candidate do not both count it.

    Parameters
    ----------
    truth_xy, cand_xy : ndarray
        (n, 2) and (m, 2) pixel positions.
    radius : float
        Largest matching distance, pixels.

    Returns
    -------
    index : ndarray
        For each truth position, the index of its candidate, or -1.
    distance : ndarray
        The matching distance (NaN when unmatched).
    """
    truth_xy = np.asarray(truth_xy, dtype=float).reshape(-1, 2)
    cand_xy = np.asarray(cand_xy, dtype=float).reshape(-1, 2)
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    index = np.full(len(truth_xy), -1, dtype=np.int64)
    distance = np.full(len(truth_xy), np.nan)
    if len(truth_xy) == 0 or len(cand_xy) == 0:
        return index, distance
    pairs = cKDTree(truth_xy).sparse_distance_matrix(cKDTree(cand_xy), radius,
                                                       output_type="ndarray")
    used = np.zeros(len(cand_xy), dtype=bool)
    for i, j, d in sorted(pairs.tolist(), key=lambda p: p[2]):
        i, j = int(i), int(j)
        if index[i] < 0 and not used[j]:
            index[i], distance[i], used[j] = j, d, True
    return index, distance


def transient_recovery(db, truth_path: str, *, procdate=None, radius: float = 2.0,  # noqa: ANN001
                       bright_snr: float = 10.0) -> Recovery:
    """Compare the registered candidate catalogs with the truth table of a simulated survey."""
    truth = read_table(str(truth_path))
    cols = {name: np.asarray(truth[name]) for name in
            ("filename", "kind", "x", "y", "diff_flux", "snr_expected")}
    with db.begin() as conn:
        rows = diffimages_with_catalogs(conn, procdate)
    n_tr = n_rec = n_bright = n_bright_rec = n_cand = 0
    for row in rows:
        name = _basename(row.l2filename)
        sel = (cols["filename"] == name) & (cols["kind"] == "transient") & (cols["diff_flux"] > 0)
        cand = read_table(row.catfilename)
        sign = np.asarray(cand["sign"]) if len(cand) else np.zeros(0)
        xy = np.column_stack([np.asarray(cand["x"]), np.asarray(cand["y"])]) if len(cand) else \
            np.zeros((0, 2))
        n_cand += len(cand)
        hit = match_positions(np.column_stack([cols["x"][sel], cols["y"][sel]]), xy[sign > 0],
                              radius)
        bright = cols["snr_expected"][sel] >= bright_snr
        n_tr += int(sel.sum())
        n_rec += int(hit.sum())
        n_bright += int(bright.sum())
        n_bright_rec += int((hit & bright).sum())
    return Recovery(images=len(rows), transients=n_tr, recovered=n_rec, bright=n_bright,
                    bright_recovered=n_bright_rec, bright_snr=bright_snr, candidates=n_cand)
