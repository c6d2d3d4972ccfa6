"""Register L2 files in the operations database: exposures, l2files, l2filemeta, fields.

Idempotent: a file already registered with the same checksum adds nothing; a changed file becomes a
new version of its (exposure, SCA). A file that cannot be read is reported on one line naming the
file and the problem, and the other files are still ingested.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from rapid import store
from rapid.db import operations as dbops
from rapid.db.records import Footprint, L2FileRecord
from rapid.ingest.l2fits import L2Error, L2Header, read_l2_header
from rapid.sky import field_of, hp6, hp9, tile

FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts")
ASDF_SUFFIXES = (".asdf",)
L2_SUFFIXES = FITS_SUFFIXES + ASDF_SUFFIXES


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)  # new rows (first version or a new version)
    unchanged: list[str] = field(default_factory=list)  # already registered with this checksum
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, problem)

    @property
    def ok(self) -> bool:
        return not self.errors


def find_l2_files(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """The L2 files named by ``paths``: files as given, folders searched recursively (sorted).

    PSF files beside the images (``*_psf*`` or under a ``psfs`` folder) are not L2 images and are
    skipped when a folder is searched.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                name = child.name.lower()
                if (child.is_file() and name.endswith(L2_SUFFIXES) and "psf" not in name
                        and "psfs" not in child.parts):
                    yield child
        else:
            yield path


def read_l2_file_header(path: Path) -> L2Header:
    """The :class:`L2Header` of an L2 file: ``*.asdf`` as a Roman ImageModel, otherwise FITS.

    Parameters
    ----------
    path : Path
        The L2 file.

    Returns
    -------
    L2Header

    Raises
    ------
    L2Error
        A file that cannot be ingested; the message names the problem.
    """
    if path.name.lower().endswith(ASDF_SUFFIXES):
        from rapid.ingest.l2asdf import read_l2_asdf_header

        return read_l2_asdf_header(path)
    return read_l2_header(path)


def _record(path: Path, hdr: L2Header, checksum: str, expid: int, fid: int, fld: int) -> L2FileRecord:
    meta = Footprint.from_corners(ra0=hdr.ra0, dec0=hdr.dec0, ra_corners=hdr.ra_corners,
                                  dec_corners=hdr.dec_corners, hp6=int(hp6(hdr.ra0, hdr.dec0)),
                                  hp9=int(hp9(hdr.ra0, hdr.dec0)))
    sip = {k: float(v) for k, v in hdr.sip.items()}
    return L2FileRecord(
        expid=expid, sca=hdr.sca, fid=fid, field=fld, filename=path.resolve().as_uri(),
        checksum=checksum, dateobs=hdr.dateobs, mjdobs=hdr.mjdobs, exptime=hdr.exptime,
        naxis1=hdr.naxis1, naxis2=hdr.naxis2, meta=meta, sip=sip, zptmag=hdr.zptmag,
        a_order=int(sip.get("A_ORDER", 0)), b_order=int(sip.get("B_ORDER", 0)),
        ap_order=int(sip.get("AP_ORDER", 0)), bp_order=int(sip.get("BP_ORDER", 0)),
        psffile=Path(hdr.psffile).as_uri() if hdr.psffile else None, **hdr.wcs)


def ingest_file(engine: sa.Engine, path: Path) -> bool:
    """Register one L2 file; returns True when a row was added. Raises L2Error for a bad file."""
    if not path.is_file():
        raise L2Error("no such file")
    hdr = read_l2_file_header(path)
    checksum = store.md5(str(path.resolve()))
    fld = int(field_of(hdr.ra0, hdr.dec0))
    t = tile(fld)
    with engine.begin() as conn:
        fid = dbops.fid_of(conn, hdr.filter)
        dbops.ensure_field(conn, field=fld, ra0=t.ra0, dec0=t.dec0,
                           ra_corners=tuple(c[0] for c in t.corners),
                           dec_corners=tuple(c[1] for c in t.corners), hp6=int(hp6(t.ra0, t.dec0)),
                           hp9=int(hp9(t.ra0, t.dec0)))
        expid = dbops.add_exposure(conn, dateobs=hdr.dateobs, mjdobs=hdr.mjdobs,
                                   exptime=hdr.exptime, fid=fid, field=fld,
                                   hp6=int(hp6(hdr.ra0, hdr.dec0)), hp9=int(hp9(hdr.ra0, hdr.dec0)))
        _, added = dbops.add_l2file(conn, _record(path, hdr, checksum, expid, fid, fld))
    return added


def ingest_paths(engine: sa.Engine, paths: Iterable[str | os.PathLike], *,
                 on_file: Callable[[Path, str], None] | None = None) -> IngestReport:
    """Register every L2 file named by ``paths``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The operations database.
    paths : iterable of path
        Files and folders (searched recursively for ``*.fits`` and Roman ``*.asdf``).
    on_file : callable, optional
        Called as ``on_file(path, outcome)`` with outcome ``added``, ``unchanged`` or an error text.

    Returns
    -------
    IngestReport
    """
    report = IngestReport()
    for path in find_l2_files(paths):
        try:
            added = ingest_file(engine, path)
        except L2Error as exc:
            report.errors.append((str(path), str(exc)))
            outcome = f"error: {exc}"
        else:
            (report.added if added else report.unchanged).append(str(path))
            outcome = "added" if added else "unchanged"
        if on_file is not None:
            on_file(path, outcome)
    return report
