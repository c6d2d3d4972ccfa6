"""RAPID's PostgreSQL roles: the operator cannot DELETE, the read-only role cannot INSERT."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from rapid.db.connect import open_database
from rapid.db.roles import create_roles, role_names


def _as(conn: sa.Connection, role: str, statement: str) -> None:
    with conn.begin_nested():
        conn.exec_driver_sql(f'SET LOCAL ROLE "{role}"')
        conn.exec_driver_sql(statement)


@pytest.mark.postgres
def test_roles_have_exactly_their_rights(postgres_url):
    prefix = f"rapid_t{uuid.uuid4().hex[:8]}"
    engine = open_database(postgres_url)
    try:
        with engine.begin() as conn:
            names = create_roles(conn, prefix=prefix, passwords={"operator": "s3cr'et"})
            again = create_roles(conn, prefix=prefix)  # idempotent
        assert names == again == role_names(prefix)
        with engine.connect() as conn, conn.begin():
            can_login = dict(conn.execute(sa.text(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE :p"),
                {"p": f"{prefix}_%"}).all())
            assert can_login == {names["admin"]: False, names["operator"]: True,
                                 names["readonly"]: False}
            _as(conn, names["operator"],
                "INSERT INTO pipelines (ppid, name) VALUES (99, 'test')")
            _as(conn, names["operator"], "UPDATE pipelines SET name = 'x' WHERE ppid = 99")
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                _as(conn, names["operator"], "DELETE FROM pipelines WHERE ppid = 99")
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                _as(conn, names["readonly"],
                    "INSERT INTO pipelines (ppid, name) VALUES (98, 'no')")
            _as(conn, names["readonly"], "SELECT count(*) FROM jobs")
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                _as(conn, names["operator"], "UPDATE alembic_version SET version_num = 'x'")
            _as(conn, names["admin"], "DELETE FROM pipelines WHERE ppid = 99")
            conn.rollback()
    finally:
        with engine.begin() as conn:
            for role in role_names(prefix).values():
                conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        engine.dispose()


def test_roles_need_postgresql_and_a_clean_prefix(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.begin() as conn, pytest.raises(ValueError, match="PostgreSQL"):
        create_roles(conn)
    engine.dispose()
    with pytest.raises(ValueError, match="prefix"):
        role_names("Rapid; DROP")
