"""Tables of the operations database, with RAPID's table and column names.

The tables are SQLAlchemy Core ``Table`` objects on one ``MetaData`` whose naming convention gives
every constraint and index a stable name, so the hand-written migrations can name them too.
Versioned products (l2files, refimages, diffimages, psfs) share the ``version``/``vbest``/``status``
columns; see :mod:`rapid.db.versioning`.
"""

from __future__ import annotations

import sqlalchemy as sa

from rapid.db.coltypes import JSONText, UTCDateTime

__all__ = [
    "metadata", "filters", "scas", "fields", "exposures", "l2files", "l2filemeta", "pipelines",
    "swversions", "jobs", "refimages", "refimmeta", "refimimages", "refimcatalogs", "diffimages",
    "diffimmeta", "psfs", "JOB_STATES",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

#: The life of a jobs row: opened before launch, submitted to an engine, running, done.
JOB_STATES = ("open", "submitted", "running", "done")

_NOW = sa.text("CURRENT_TIMESTAMP")
_ZERO = sa.text("0")
_ONE = sa.text("1")


def _created() -> sa.Column:
    return sa.Column("created", UTCDateTime(), nullable=False, server_default=_NOW)


def _corners() -> list[sa.Column]:
    """Centre and four corners on the sky, in degrees."""
    names = ["ra0", "dec0"] + [f"{axis}{i}" for i in range(1, 5) for axis in ("ra", "dec")]
    return [sa.Column(name, sa.Double(), nullable=False) for name in names]


def _versioned() -> list[sa.Column | sa.CheckConstraint]:
    """Columns shared by versioned products: version, vbest (0, 1, 2 locked) and status."""
    return [
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("vbest", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False, server_default=_ONE),
        sa.CheckConstraint("vbest IN (0, 1, 2)", name="vbest"),
    ]


filters = sa.Table(
    "filters", metadata,
    sa.Column("fid", sa.SmallInteger(), primary_key=True, autoincrement=False),
    sa.Column("filter", sa.String(8), nullable=False, unique=True),
)

scas = sa.Table(
    "scas", metadata,
    sa.Column("sca", sa.SmallInteger(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(16), nullable=False),
)

fields = sa.Table(
    "fields", metadata,
    sa.Column("field", sa.BigInteger(), primary_key=True, autoincrement=False),
    *_corners(),
    sa.Column("hp6", sa.Integer(), nullable=False),
    sa.Column("hp9", sa.Integer(), nullable=False),
)

exposures = sa.Table(
    "exposures", metadata,
    sa.Column("expid", sa.Integer(), primary_key=True),
    sa.Column("dateobs", UTCDateTime(), nullable=False, unique=True),
    sa.Column("mjdobs", sa.Double(), nullable=False),
    sa.Column("exptime", sa.Double(), nullable=False),
    sa.Column("fid", sa.SmallInteger(), sa.ForeignKey("filters.fid"), nullable=False),
    sa.Column("field", sa.BigInteger(), sa.ForeignKey("fields.field"), nullable=False),
    sa.Column("hp6", sa.Integer(), nullable=False),
    sa.Column("hp9", sa.Integer(), nullable=False),
    sa.Column("infobits", sa.Integer(), nullable=False, server_default=_ZERO),
    sa.Column("status", sa.SmallInteger(), nullable=False, server_default=_ONE),
    _created(),
)

l2files = sa.Table(
    "l2files", metadata,
    sa.Column("rid", sa.Integer(), primary_key=True),
    sa.Column("expid", sa.Integer(), sa.ForeignKey("exposures.expid"), nullable=False),
    sa.Column("sca", sa.SmallInteger(), sa.ForeignKey("scas.sca"), nullable=False),
    sa.Column("fid", sa.SmallInteger(), sa.ForeignKey("filters.fid"), nullable=False),
    sa.Column("field", sa.BigInteger(), sa.ForeignKey("fields.field"), nullable=False),
    *_versioned(),
    sa.Column("filename", sa.Text(), nullable=False),
    sa.Column("checksum", sa.String(32), nullable=False),
    sa.Column("dateobs", UTCDateTime(), nullable=False),
    sa.Column("mjdobs", sa.Double(), nullable=False),
    sa.Column("exptime", sa.Double(), nullable=False),
    sa.Column("naxis1", sa.Integer(), nullable=False),
    sa.Column("naxis2", sa.Integer(), nullable=False),
    *[sa.Column(name, sa.Double(), nullable=False) for name in
      ("crval1", "crval2", "crpix1", "crpix2", "cd1_1", "cd1_2", "cd2_1", "cd2_2")],
    sa.Column("ctype1", sa.String(16), nullable=False),
    sa.Column("ctype2", sa.String(16), nullable=False),
    *[sa.Column(name, sa.SmallInteger(), nullable=False, server_default=_ZERO) for name in
      ("a_order", "b_order", "ap_order", "bp_order")],
    sa.Column("sip", JSONText(), nullable=True),
    sa.Column("zptmag", sa.Double(), nullable=True),
    sa.Column("psffile", sa.Text(), nullable=True),
    sa.Column("infobits", sa.Integer(), nullable=False, server_default=_ZERO),
    _created(),
    sa.UniqueConstraint("expid", "sca", "version"),
    sa.Index(None, "dateobs"),
    sa.Index(None, "fid", "dateobs"),
)

l2filemeta = sa.Table(
    "l2filemeta", metadata,
    sa.Column("rid", sa.Integer(), sa.ForeignKey("l2files.rid"), primary_key=True,
              autoincrement=False),
    *_corners(),
    # Unit vector of the image centre: a cone search is a dot product, on any backend.
    sa.Column("x", sa.Double(), nullable=False),
    sa.Column("y", sa.Double(), nullable=False),
    sa.Column("z", sa.Double(), nullable=False),
    sa.Column("hp6", sa.Integer(), nullable=False),
    sa.Column("hp9", sa.Integer(), nullable=False),
    sa.Column("field", sa.BigInteger(), sa.ForeignKey("fields.field"), nullable=False),
    sa.Index(None, "field"),
    sa.Index(None, "hp6"),
)

pipelines = sa.Table(
    "pipelines", metadata,
    sa.Column("ppid", sa.SmallInteger(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
)

swversions = sa.Table(
    "swversions", metadata,
    sa.Column("svid", sa.Integer(), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("githash", sa.String(40), nullable=True),
    _created(),
    sa.UniqueConstraint("version", "githash"),
)

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("jid", sa.Integer(), primary_key=True),
    sa.Column("ppid", sa.SmallInteger(), sa.ForeignKey("pipelines.ppid"), nullable=False),
    sa.Column("rid", sa.Integer(), sa.ForeignKey("l2files.rid"), nullable=True),
    sa.Column("parent_jid", sa.Integer(), sa.ForeignKey("jobs.jid"), nullable=True),
    sa.Column("fid", sa.SmallInteger(), nullable=True),
    sa.Column("expid", sa.Integer(), nullable=True),
    sa.Column("sca", sa.SmallInteger(), nullable=True),
    sa.Column("field", sa.BigInteger(), nullable=True),
    sa.Column("procdate", sa.Date(), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False, server_default=_ONE),
    sa.Column("state", sa.String(16), nullable=False, server_default=sa.text("'open'")),
    sa.Column("engine", sa.String(32), nullable=True),
    sa.Column("engine_job_id", sa.String(128), nullable=True),
    sa.Column("spec_uri", sa.Text(), nullable=True),
    sa.Column("manifest_uri", sa.Text(), nullable=True),
    sa.Column("launched", UTCDateTime(), nullable=True),
    sa.Column("submitted", UTCDateTime(), nullable=True),
    sa.Column("started", UTCDateTime(), nullable=True),
    sa.Column("ended", UTCDateTime(), nullable=True),
    sa.Column("qwait", sa.Double(), nullable=True),
    sa.Column("elapsed", sa.Double(), nullable=True),
    sa.Column("exitcode", sa.Integer(), nullable=True),
    sa.Column("status", sa.SmallInteger(), nullable=False, server_default=_ZERO),
    sa.Column("message", sa.Text(), nullable=True),
    sa.Column("svid", sa.Integer(), sa.ForeignKey("swversions.svid"), nullable=True),
    _created(),
    sa.UniqueConstraint("ppid", "rid", "procdate", "attempt"),
    sa.CheckConstraint("state IN ('open', 'submitted', 'running', 'done')", name="state"),
    sa.Index(None, "procdate", "ppid"),
    sa.Index(None, "state"),
    sa.Index(None, "parent_jid"),
)

refimages = sa.Table(
    "refimages", metadata,
    sa.Column("rfid", sa.Integer(), primary_key=True),
    sa.Column("field", sa.BigInteger(), sa.ForeignKey("fields.field"), nullable=False),
    sa.Column("fid", sa.SmallInteger(), sa.ForeignKey("filters.fid"), nullable=False),
    sa.Column("ppid", sa.SmallInteger(), sa.ForeignKey("pipelines.ppid"), nullable=False),
    *_versioned(),
    sa.Column("filename", sa.Text(), nullable=False),
    sa.Column("checksum", sa.String(32), nullable=False),
    sa.Column("covfile", sa.Text(), nullable=True),
    sa.Column("uncfile", sa.Text(), nullable=True),
    sa.Column("psffile", sa.Text(), nullable=True),
    sa.Column("infobits", sa.Integer(), nullable=False, server_default=_ZERO),
    sa.Column("jid", sa.Integer(), sa.ForeignKey("jobs.jid"), nullable=True),
    sa.Column("svid", sa.Integer(), sa.ForeignKey("swversions.svid"), nullable=True),
    _created(),
    sa.UniqueConstraint("field", "fid", "ppid", "version"),
    sa.Index(None, "jid"),
)

refimmeta = sa.Table(
    "refimmeta", metadata,
    sa.Column("rfid", sa.Integer(), sa.ForeignKey("refimages.rfid"), primary_key=True,
              autoincrement=False),
    sa.Column("nframes", sa.Integer(), nullable=True),
    sa.Column("mjdobsmin", sa.Double(), nullable=True),
    sa.Column("mjdobsmax", sa.Double(), nullable=True),
    sa.Column("npixsat", sa.Integer(), nullable=True),
    sa.Column("npixnan", sa.Integer(), nullable=True),
    sa.Column("clmean", sa.Double(), nullable=True),
    sa.Column("clstddev", sa.Double(), nullable=True),
    sa.Column("clnoutliers", sa.Integer(), nullable=True),
    *[sa.Column(name, sa.Double(), nullable=True) for name in
      ("gmedian", "gmin", "gmax", "cov5percent", "medncov", "medpixunc", "fwhmmed", "fwhmmin",
       "fwhmmax")],
    sa.Column("nsexcatsources", sa.Integer(), nullable=True),
)

refimimages = sa.Table(
    "refimimages", metadata,
    sa.Column("rfid", sa.Integer(), sa.ForeignKey("refimages.rfid"), primary_key=True,
              autoincrement=False),
    sa.Column("rid", sa.Integer(), sa.ForeignKey("l2files.rid"), primary_key=True,
              autoincrement=False),
    sa.Index(None, "rid"),
)

refimcatalogs = sa.Table(
    "refimcatalogs", metadata,
    sa.Column("rfcatid", sa.Integer(), primary_key=True),
    sa.Column("rfid", sa.Integer(), sa.ForeignKey("refimages.rfid"), nullable=False),
    sa.Column("ppid", sa.SmallInteger(), sa.ForeignKey("pipelines.ppid"), nullable=False),
    sa.Column("cattype", sa.SmallInteger(), nullable=False),
    sa.Column("filename", sa.Text(), nullable=False),
    sa.Column("checksum", sa.String(32), nullable=False),
    sa.Column("status", sa.SmallInteger(), nullable=False, server_default=_ONE),
    sa.Column("svid", sa.Integer(), sa.ForeignKey("swversions.svid"), nullable=True),
    _created(),
    sa.UniqueConstraint("rfid", "ppid", "cattype"),
    sa.CheckConstraint("cattype IN (1, 2)", name="cattype"),
)

diffimages = sa.Table(
    "diffimages", metadata,
    sa.Column("pid", sa.Integer(), primary_key=True),
    sa.Column("rid", sa.Integer(), sa.ForeignKey("l2files.rid"), nullable=False),
    sa.Column("rfid", sa.Integer(), sa.ForeignKey("refimages.rfid"), nullable=True),
    sa.Column("ppid", sa.SmallInteger(), sa.ForeignKey("pipelines.ppid"), nullable=False),
    *_versioned(),
    sa.Column("expid", sa.Integer(), sa.ForeignKey("exposures.expid"), nullable=False),
    sa.Column("sca", sa.SmallInteger(), sa.ForeignKey("scas.sca"), nullable=False),
    sa.Column("fid", sa.SmallInteger(), sa.ForeignKey("filters.fid"), nullable=False),
    sa.Column("field", sa.BigInteger(), sa.ForeignKey("fields.field"), nullable=False),
    sa.Column("mjdobs", sa.Double(), nullable=False),
    *_corners(),
    sa.Column("infobitssci", sa.Integer(), nullable=False, server_default=_ZERO),
    sa.Column("infobitsref", sa.Integer(), nullable=False, server_default=_ZERO),
    sa.Column("filename", sa.Text(), nullable=False),
    sa.Column("checksum", sa.String(32), nullable=False),
    sa.Column("nalertpackets", sa.Integer(), nullable=False, server_default=_ZERO),
    sa.Column("jid", sa.Integer(), sa.ForeignKey("jobs.jid"), nullable=True),
    sa.Column("svid", sa.Integer(), sa.ForeignKey("swversions.svid"), nullable=True),
    _created(),
    sa.UniqueConstraint("rid", "ppid", "version"),
    sa.Index(None, "jid"),
)

diffimmeta = sa.Table(
    "diffimmeta", metadata,
    sa.Column("pid", sa.Integer(), sa.ForeignKey("diffimages.pid"), primary_key=True,
              autoincrement=False),
    sa.Column("ncandidates", sa.Integer(), nullable=True),
    sa.Column("npositive", sa.Integer(), nullable=True),
    sa.Column("nnegative", sa.Integer(), nullable=True),
    sa.Column("catfilename", sa.Text(), nullable=True),
    sa.Column("catchecksum", sa.String(32), nullable=True),
    *[sa.Column(name, sa.Double(), nullable=True) for name in
      ("scalefacref", "dxrmsfin", "dyrmsfin", "dxmedianfin", "dymedianfin")],
    sa.Column("nmatched", sa.Integer(), nullable=True),
    sa.Column("scorrstd", sa.Double(), nullable=True),
)

psfs = sa.Table(
    "psfs", metadata,
    sa.Column("psfid", sa.Integer(), primary_key=True),
    sa.Column("fid", sa.SmallInteger(), sa.ForeignKey("filters.fid"), nullable=False),
    sa.Column("sca", sa.SmallInteger(), sa.ForeignKey("scas.sca"), nullable=False),
    *_versioned(),
    sa.Column("filename", sa.Text(), nullable=False),
    sa.Column("checksum", sa.String(32), nullable=False),
    _created(),
    sa.UniqueConstraint("fid", "sca", "version"),
)
