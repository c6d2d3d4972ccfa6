"""RAPID's three PostgreSQL roles and their grants on the operations database's tables.

- ``<prefix>_admin``: everything on the tables and sequences, and may create in the schema;
- ``<prefix>_operator``: what the pipeline operator needs (select, insert, update) and no DELETE,
  so that a faulty or compromised operator can add and correct rows but never erase history;
- ``<prefix>_readonly``: select only, for people and dashboards.

Roles are made without LOGIN (group roles granted to real users) unless a password is given for
one; a password is read from a file by the caller, passed to the server as a quoted literal and
never logged or printed. Running it again changes nothing but the grants of new tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sqlalchemy as sa

__all__ = ["ROLE_KINDS", "role_names", "create_roles"]

ROLE_KINDS = ("admin", "operator", "readonly")
_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")

_TABLE_GRANTS = {"admin": "ALL PRIVILEGES", "operator": "SELECT, INSERT, UPDATE",
                 "readonly": "SELECT"}
_SEQUENCE_GRANTS = {"admin": "ALL PRIVILEGES", "operator": "USAGE, SELECT",
                    "readonly": "SELECT"}


def role_names(prefix: str = "rapid") -> dict[str, str]:
    """The role name of each kind for ``prefix``.

    Parameters
    ----------
    prefix : str, optional
        Lower-case letters, digits and underscores. Default "rapid".

    Returns
    -------
    dict
        kind -> role name, e.g. {"admin": "rapid_admin", ...}.
    """
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ValueError(f"prefix must be lower-case letters, digits and underscores, got "
                         f"{prefix!r}")
    return {kind: f"{prefix}_{kind}" for kind in ROLE_KINDS}


def create_roles(conn: sa.Connection, *, prefix: str = "rapid",
                 passwords: Mapping[str, str] | None = None) -> dict[str, str]:
    """Create (if missing) the three roles and grant them their rights on the current schema.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        A PostgreSQL connection of a user allowed to create roles, in a transaction; the
        schema granted on is the connection's ``current_schema()``.
    prefix : str, optional
        Role-name prefix. Default "rapid".
    passwords : mapping, optional
        kind -> password for the roles that log in themselves. Default: none log in.

    Returns
    -------
    dict
        kind -> role name.
    """
    if conn.dialect.name != "postgresql":
        raise ValueError("conn: database roles exist on PostgreSQL only")
    names = role_names(prefix)
    passwords = dict(passwords or {})
    unknown = set(passwords) - set(ROLE_KINDS)
    if unknown:
        raise ValueError(f"passwords: unknown role kinds {sorted(unknown)}; use {ROLE_KINDS}")
    from psycopg import sql

    schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        for kind, role in names.items():
            exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                  {"r": role}).first()
            ident = sql.Identifier(role)
            if exists is None:
                cursor.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident))
            if kind in passwords:
                # Utility statements take no bind parameters; Literal quotes the secret safely.
                cursor.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                    ident, sql.Literal(passwords[kind])))
            target = sql.Identifier(schema)
            schema_right = "USAGE, CREATE" if kind == "admin" else "USAGE"
            for stmt in (
                f"GRANT {schema_right} ON SCHEMA {{s}} TO {{r}}",
                f"GRANT {_TABLE_GRANTS[kind]} ON ALL TABLES IN SCHEMA {{s}} TO {{r}}",
                f"GRANT {_SEQUENCE_GRANTS[kind]} ON ALL SEQUENCES IN SCHEMA {{s}} TO {{r}}",
                # Tables that later migrations create get the same rights.
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {{s}} GRANT {_TABLE_GRANTS[kind]} "
                f"ON TABLES TO {{r}}",
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {{s}} GRANT {_SEQUENCE_GRANTS[kind]} "
                f"ON SEQUENCES TO {{r}}",
            ):
                cursor.execute(sql.SQL(stmt).format(s=target, r=ident))
            if kind != "admin":
                # Only the administrator migrates the schema.
                cursor.execute(sql.SQL("REVOKE INSERT, UPDATE ON {s}.alembic_version FROM {r}")
                               .format(s=target, r=ident))
    finally:
        cursor.close()
    return names
