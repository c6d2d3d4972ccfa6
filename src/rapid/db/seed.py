"""Rows every operations database starts with: filters, SCAs, pipelines, software version."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import sqlalchemy as sa

import rapid
from rapid.db import schema
from rapid.db.inserts import insert_missing

__all__ = ["FILTERS", "NSCA", "PIPELINES", "seed", "current_svid", "software_version"]

#: Roman WFI filters; the position in this tuple (from 1) is RAPID's fid.
FILTERS = ("F184", "H158", "J129", "K213", "R062", "Y106", "Z087", "W146")
#: Number of sensor chip assemblies (detectors) of the WFI.
NSCA = 18
#: RAPID's pipeline ids, names and descriptions.
PIPELINES = {
    12: ("reference image", "Stand-alone reference image: coadd of prior images of a sky tile "
                            "and filter"),
    15: ("science", "Science pipeline for one L2 image: reference, ZOGY difference image, "
                    "candidates"),
    17: ("post-processing", "Post-processing of a normally ended science job"),
}

_SHA = re.compile(r"^[0-9a-f]{40}$")


def seed(conn: sa.Connection) -> None:
    """Insert the fixed rows that are missing; running it again changes nothing.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction, on a database migrated to head.
    """
    insert_missing(conn, schema.filters,
                   [{"fid": i, "filter": name} for i, name in enumerate(FILTERS, start=1)],
                   index_elements=["fid"])
    insert_missing(conn, schema.scas,
                   [{"sca": i, "name": f"WFI{i:02d}"} for i in range(1, NSCA + 1)],
                   index_elements=["sca"])
    insert_missing(conn, schema.pipelines,
                   [{"ppid": ppid, "name": name, "description": text}
                    for ppid, (name, text) in PIPELINES.items()],
                   index_elements=["ppid"])
    current_svid(conn)


def _git_head(start: Path) -> str | None:
    """Commit hash of the checkout holding ``start``, read from .git without running git."""
    for parent in start.parents:
        git = parent / ".git"
        if git.is_dir():
            break
    else:
        return None
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head if _SHA.match(head) else None
        ref = head[len("ref: "):]
        loose = git / ref
        if loose.is_file():
            sha = loose.read_text().strip()
            return sha if _SHA.match(sha) else None
        packed = git / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref and _SHA.match(parts[0]):
                    return parts[0]
    except OSError:
        return None
    return None


@functools.lru_cache(maxsize=1)
def software_version() -> tuple[str, str | None]:
    """The running software: ``(rapid.__version__, git commit hash or None)``.

    The hash is read from the checkout's ``.git`` folder when the package runs from one
    (cheap, no subprocess); an installed package gives None.

    Returns
    -------
    tuple of (str, str or None)
        Version string and 40-hex-digit commit hash.
    """
    return rapid.__version__, _git_head(Path(__file__).resolve())


def current_svid(conn: sa.Connection) -> int:
    """svid of the running software version, inserting the swversions row on first use.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.

    Returns
    -------
    int
        The svid.
    """
    version, githash = software_version()
    sv = schema.swversions
    # NULLs are distinct in unique constraints, so "no hash" must be matched with IS NULL.
    query = sa.select(sv.c.svid).where(sv.c.version == version,
                                       sv.c.githash.is_not_distinct_from(githash))
    svid = conn.execute(query).scalar()
    if svid is None:
        svid = conn.execute(sv.insert().values(version=version, githash=githash)
                            .returning(sv.c.svid)).scalar_one()
    return int(svid)
