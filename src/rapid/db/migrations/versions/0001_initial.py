"""Initial operations database: RAPID's tables, keys and indices.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand and self-contained: it must keep describing revision 0001 even after
``rapid.db.schema`` moves on, so it does not import the schema module.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
ZERO = sa.text("0")
ONE = sa.text("1")


def _ts(name: str, *, nullable: bool = True, **kw) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, **kw)


def _created() -> sa.Column:
    return _ts("created", nullable=False, server_default=NOW)


def _corners() -> list[sa.Column]:
    names = ["ra0", "dec0"] + [f"{axis}{i}" for i in range(1, 5) for axis in ("ra", "dec")]
    return [sa.Column(name, sa.Double(), nullable=False) for name in names]


def _versioned(table: str) -> list:
    return [
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("vbest", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False, server_default=ONE),
        sa.CheckConstraint("vbest IN (0, 1, 2)", name=f"ck_{table}_vbest"),
    ]


def _fk(column: str, table: str, ref: str) -> sa.ForeignKeyConstraint:
    """Foreign key named ``fk_<table>_<column>_<referred table>``; ref is ``table.column``."""
    return sa.ForeignKeyConstraint([column], [ref], name=f"fk_{table}_{column}_{ref.split('.')[0]}")


def upgrade() -> None:
    op.create_table(
        "filters",
        sa.Column("fid", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("filter", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("fid", name="pk_filters"),
        sa.UniqueConstraint("filter", name="uq_filters_filter"),
    )
    op.create_table(
        "scas",
        sa.Column("sca", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("sca", name="pk_scas"),
    )
    op.create_table(
        "fields",
        sa.Column("field", sa.BigInteger(), autoincrement=False, nullable=False),
        *_corners(),
        sa.Column("hp6", sa.Integer(), nullable=False),
        sa.Column("hp9", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("field", name="pk_fields"),
    )
    op.create_table(
        "pipelines",
        sa.Column("ppid", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("ppid", name="pk_pipelines"),
    )
    op.create_table(
        "swversions",
        sa.Column("svid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("githash", sa.String(40), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("svid", name="pk_swversions"),
        sa.UniqueConstraint("version", "githash", name="uq_swversions_version_githash"),
    )
    op.create_table(
        "exposures",
        sa.Column("expid", sa.Integer(), nullable=False),
        _ts("dateobs", nullable=False),
        sa.Column("mjdobs", sa.Double(), nullable=False),
        sa.Column("exptime", sa.Double(), nullable=False),
        sa.Column("fid", sa.SmallInteger(), nullable=False),
        sa.Column("field", sa.BigInteger(), nullable=False),
        sa.Column("hp6", sa.Integer(), nullable=False),
        sa.Column("hp9", sa.Integer(), nullable=False),
        sa.Column("infobits", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("status", sa.SmallInteger(), nullable=False, server_default=ONE),
        _created(),
        sa.PrimaryKeyConstraint("expid", name="pk_exposures"),
        sa.UniqueConstraint("dateobs", name="uq_exposures_dateobs"),
        _fk("fid", "exposures", "filters.fid"),
        _fk("field", "exposures", "fields.field"),
    )
    op.create_table(
        "l2files",
        sa.Column("rid", sa.Integer(), nullable=False),
        sa.Column("expid", sa.Integer(), nullable=False),
        sa.Column("sca", sa.SmallInteger(), nullable=False),
        sa.Column("fid", sa.SmallInteger(), nullable=False),
        sa.Column("field", sa.BigInteger(), nullable=False),
        *_versioned("l2files"),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(32), nullable=False),
        _ts("dateobs", nullable=False),
        sa.Column("mjdobs", sa.Double(), nullable=False),
        sa.Column("exptime", sa.Double(), nullable=False),
        sa.Column("naxis1", sa.Integer(), nullable=False),
        sa.Column("naxis2", sa.Integer(), nullable=False),
        *[sa.Column(name, sa.Double(), nullable=False) for name in
          ("crval1", "crval2", "crpix1", "crpix2", "cd1_1", "cd1_2", "cd2_1", "cd2_2")],
        sa.Column("ctype1", sa.String(16), nullable=False),
        sa.Column("ctype2", sa.String(16), nullable=False),
        *[sa.Column(name, sa.SmallInteger(), nullable=False, server_default=ZERO) for name in
          ("a_order", "b_order", "ap_order", "bp_order")],
        sa.Column("sip", sa.Text(), nullable=True),
        sa.Column("zptmag", sa.Double(), nullable=True),
        sa.Column("psffile", sa.Text(), nullable=True),
        sa.Column("infobits", sa.Integer(), nullable=False, server_default=ZERO),
        _created(),
        sa.PrimaryKeyConstraint("rid", name="pk_l2files"),
        sa.UniqueConstraint("expid", "sca", "version", name="uq_l2files_expid_sca_version"),
        _fk("expid", "l2files", "exposures.expid"),
        _fk("sca", "l2files", "scas.sca"),
        _fk("fid", "l2files", "filters.fid"),
        _fk("field", "l2files", "fields.field"),
    )
    op.create_index("ix_l2files_dateobs", "l2files", ["dateobs"])
    op.create_index("ix_l2files_fid_dateobs", "l2files", ["fid", "dateobs"])
    op.create_table(
        "l2filemeta",
        sa.Column("rid", sa.Integer(), autoincrement=False, nullable=False),
        *_corners(),
        sa.Column("x", sa.Double(), nullable=False),
        sa.Column("y", sa.Double(), nullable=False),
        sa.Column("z", sa.Double(), nullable=False),
        sa.Column("hp6", sa.Integer(), nullable=False),
        sa.Column("hp9", sa.Integer(), nullable=False),
        sa.Column("field", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("rid", name="pk_l2filemeta"),
        _fk("rid", "l2filemeta", "l2files.rid"),
        _fk("field", "l2filemeta", "fields.field"),
    )
    op.create_index("ix_l2filemeta_field", "l2filemeta", ["field"])
    op.create_index("ix_l2filemeta_hp6", "l2filemeta", ["hp6"])
    op.create_table(
        "jobs",
        sa.Column("jid", sa.Integer(), nullable=False),
        sa.Column("ppid", sa.SmallInteger(), nullable=False),
        sa.Column("rid", sa.Integer(), nullable=True),
        sa.Column("parent_jid", sa.Integer(), nullable=True),
        sa.Column("fid", sa.SmallInteger(), nullable=True),
        sa.Column("expid", sa.Integer(), nullable=True),
        sa.Column("sca", sa.SmallInteger(), nullable=True),
        sa.Column("field", sa.BigInteger(), nullable=True),
        sa.Column("procdate", sa.Date(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default=ONE),
        sa.Column("state", sa.String(16), nullable=False, server_default=sa.text("'open'")),
        sa.Column("engine", sa.String(32), nullable=True),
        sa.Column("engine_job_id", sa.String(128), nullable=True),
        sa.Column("spec_uri", sa.Text(), nullable=True),
        sa.Column("manifest_uri", sa.Text(), nullable=True),
        _ts("launched"),
        _ts("submitted"),
        _ts("started"),
        _ts("ended"),
        sa.Column("qwait", sa.Double(), nullable=True),
        sa.Column("elapsed", sa.Double(), nullable=True),
        sa.Column("exitcode", sa.Integer(), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False, server_default=ZERO),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("svid", sa.Integer(), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("jid", name="pk_jobs"),
        sa.UniqueConstraint("ppid", "rid", "procdate", "attempt",
                            name="uq_jobs_ppid_rid_procdate_attempt"),
        sa.CheckConstraint("state IN ('open', 'submitted', 'running', 'done')",
                           name="ck_jobs_state"),
        _fk("ppid", "jobs", "pipelines.ppid"),
        _fk("rid", "jobs", "l2files.rid"),
        _fk("parent_jid", "jobs", "jobs.jid"),
        _fk("svid", "jobs", "swversions.svid"),
    )
    op.create_index("ix_jobs_procdate_ppid", "jobs", ["procdate", "ppid"])
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_index("ix_jobs_parent_jid", "jobs", ["parent_jid"])
    op.create_table(
        "refimages",
        sa.Column("rfid", sa.Integer(), nullable=False),
        sa.Column("field", sa.BigInteger(), nullable=False),
        sa.Column("fid", sa.SmallInteger(), nullable=False),
        sa.Column("ppid", sa.SmallInteger(), nullable=False),
        *_versioned("refimages"),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(32), nullable=False),
        sa.Column("covfile", sa.Text(), nullable=True),
        sa.Column("uncfile", sa.Text(), nullable=True),
        sa.Column("psffile", sa.Text(), nullable=True),
        sa.Column("infobits", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("jid", sa.Integer(), nullable=True),
        sa.Column("svid", sa.Integer(), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("rfid", name="pk_refimages"),
        sa.UniqueConstraint("field", "fid", "ppid", "version",
                            name="uq_refimages_field_fid_ppid_version"),
        _fk("field", "refimages", "fields.field"),
        _fk("fid", "refimages", "filters.fid"),
        _fk("ppid", "refimages", "pipelines.ppid"),
        _fk("jid", "refimages", "jobs.jid"),
        _fk("svid", "refimages", "swversions.svid"),
    )
    op.create_index("ix_refimages_jid", "refimages", ["jid"])
    op.create_table(
        "refimmeta",
        sa.Column("rfid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("nframes", sa.Integer(), nullable=True),
        sa.Column("mjdobsmin", sa.Double(), nullable=True),
        sa.Column("mjdobsmax", sa.Double(), nullable=True),
        sa.Column("npixsat", sa.Integer(), nullable=True),
        sa.Column("npixnan", sa.Integer(), nullable=True),
        sa.Column("clmean", sa.Double(), nullable=True),
        sa.Column("clstddev", sa.Double(), nullable=True),
        sa.Column("clnoutliers", sa.Integer(), nullable=True),
        *[sa.Column(name, sa.Double(), nullable=True) for name in
          ("gmedian", "gmin", "gmax", "cov5percent", "medncov", "medpixunc", "fwhmmed",
           "fwhmmin", "fwhmmax")],
        sa.Column("nsexcatsources", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("rfid", name="pk_refimmeta"),
        _fk("rfid", "refimmeta", "refimages.rfid"),
    )
    op.create_table(
        "refimimages",
        sa.Column("rfid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rid", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("rfid", "rid", name="pk_refimimages"),
        _fk("rfid", "refimimages", "refimages.rfid"),
        _fk("rid", "refimimages", "l2files.rid"),
    )
    op.create_index("ix_refimimages_rid", "refimimages", ["rid"])
    op.create_table(
        "refimcatalogs",
        sa.Column("rfcatid", sa.Integer(), nullable=False),
        sa.Column("rfid", sa.Integer(), nullable=False),
        sa.Column("ppid", sa.SmallInteger(), nullable=False),
        sa.Column("cattype", sa.SmallInteger(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(32), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False, server_default=ONE),
        sa.Column("svid", sa.Integer(), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("rfcatid", name="pk_refimcatalogs"),
        sa.UniqueConstraint("rfid", "ppid", "cattype", name="uq_refimcatalogs_rfid_ppid_cattype"),
        sa.CheckConstraint("cattype IN (1, 2)", name="ck_refimcatalogs_cattype"),
        _fk("rfid", "refimcatalogs", "refimages.rfid"),
        _fk("ppid", "refimcatalogs", "pipelines.ppid"),
        _fk("svid", "refimcatalogs", "swversions.svid"),
    )
    op.create_table(
        "diffimages",
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("rid", sa.Integer(), nullable=False),
        sa.Column("rfid", sa.Integer(), nullable=True),
        sa.Column("ppid", sa.SmallInteger(), nullable=False),
        *_versioned("diffimages"),
        sa.Column("expid", sa.Integer(), nullable=False),
        sa.Column("sca", sa.SmallInteger(), nullable=False),
        sa.Column("fid", sa.SmallInteger(), nullable=False),
        sa.Column("field", sa.BigInteger(), nullable=False),
        sa.Column("mjdobs", sa.Double(), nullable=False),
        *_corners(),
        sa.Column("infobitssci", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("infobitsref", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(32), nullable=False),
        sa.Column("nalertpackets", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("jid", sa.Integer(), nullable=True),
        sa.Column("svid", sa.Integer(), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("pid", name="pk_diffimages"),
        sa.UniqueConstraint("rid", "ppid", "version", name="uq_diffimages_rid_ppid_version"),
        _fk("rid", "diffimages", "l2files.rid"),
        _fk("rfid", "diffimages", "refimages.rfid"),
        _fk("ppid", "diffimages", "pipelines.ppid"),
        _fk("expid", "diffimages", "exposures.expid"),
        _fk("sca", "diffimages", "scas.sca"),
        _fk("fid", "diffimages", "filters.fid"),
        _fk("field", "diffimages", "fields.field"),
        _fk("jid", "diffimages", "jobs.jid"),
        _fk("svid", "diffimages", "swversions.svid"),
    )
    op.create_index("ix_diffimages_jid", "diffimages", ["jid"])
    op.create_table(
        "diffimmeta",
        sa.Column("pid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ncandidates", sa.Integer(), nullable=True),
        sa.Column("npositive", sa.Integer(), nullable=True),
        sa.Column("nnegative", sa.Integer(), nullable=True),
        sa.Column("catfilename", sa.Text(), nullable=True),
        sa.Column("catchecksum", sa.String(32), nullable=True),
        *[sa.Column(name, sa.Double(), nullable=True) for name in
          ("scalefacref", "dxrmsfin", "dyrmsfin", "dxmedianfin", "dymedianfin")],
        sa.Column("nmatched", sa.Integer(), nullable=True),
        sa.Column("scorrstd", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("pid", name="pk_diffimmeta"),
        _fk("pid", "diffimmeta", "diffimages.pid"),
    )
    op.create_table(
        "psfs",
        sa.Column("psfid", sa.Integer(), nullable=False),
        sa.Column("fid", sa.SmallInteger(), nullable=False),
        sa.Column("sca", sa.SmallInteger(), nullable=False),
        *_versioned("psfs"),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(32), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("psfid", name="pk_psfs"),
        sa.UniqueConstraint("fid", "sca", "version", name="uq_psfs_fid_sca_version"),
        _fk("fid", "psfs", "filters.fid"),
        _fk("sca", "psfs", "scas.sca"),
    )


def downgrade() -> None:
    # Children before parents, so foreign keys never dangle.
    for table in ("psfs", "diffimmeta", "diffimages", "refimcatalogs", "refimimages",
                  "refimmeta", "refimages", "jobs", "l2filemeta", "l2files", "exposures",
                  "swversions", "pipelines", "fields", "scas", "filters"):
        op.drop_table(table)
