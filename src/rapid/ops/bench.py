"""``rapid bench ops``: launch and register N no-op jobs and time both steps.

The database gets N synthetic L2 image rows (:mod:`rapid.ops.synthetic`), each tile with a
registered reference, so the launcher takes the path of a routine day: one job per image against
an existing reference. Jobs run on the no-op engine (:mod:`rapid.engines.noop`), which writes an
empty manifest per job in between the two timed steps, untimed. "launch" is :func:`launch_science`
(decide, open the job rows, write the specs to the store, submit, mark submitted); "register" is
:func:`register_science` (poll, read every manifest, close every job). A SQLite database is made
in a temporary folder; on PostgreSQL a fresh schema is made and dropped afterwards. The store is a
temporary local folder.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from rapid.config import Settings
from rapid.db.connect import open_database
from rapid.engines.noop import NoopEngine
from rapid.ops.context import OpsContext
from rapid.ops.launch_science import launch_science
from rapid.ops.register_science import register_science
from rapid.ops.synthetic import CADENCE, NSCA, START, add_synthetic_images

PROCDATE = "20280908"


def _postgres_schema(url: str) -> tuple[str, str, sa.Engine]:
    """(URL whose search_path is a fresh schema, schema name, admin engine)."""
    base = sa.make_url(url)
    schema = f"rapid_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), schema, admin


def bench_ops(n: int, *, database_url: str | None = None, nfields: int = 50) -> dict:
    """Launch and register ``n`` no-op jobs; returns the figures as a dict (one JSON line).

    Parameters
    ----------
    n : int
        Jobs (one per synthetic image).
    database_url : str, optional
        A PostgreSQL URL to measure on (a fresh schema is used and dropped). Default: a new
        SQLite file in a temporary folder.
    nfields : int, optional
        Sky tiles the images are spread over. Default 50.

    Returns
    -------
    dict
        ``bench``, ``backend``, ``jobs``, ``launched``, ``registered``, ``launch_s``,
        ``launch_jobs_per_s``, ``register_s``, ``register_jobs_per_s``, ``setup_s``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    with tempfile.TemporaryDirectory(prefix="rapid-bench-") as tmp:
        admin = schema = None
        url = database_url or f"sqlite:///{Path(tmp) / 'rapid.db'}"
        if sa.make_url(url).get_backend_name() == "postgresql":
            url, schema, admin = _postgres_schema(url)
        base = Settings(workdir=tmp)
        settings = replace(base, database=replace(base.database, url=url))
        ctx = OpsContext.with_engine(settings, NoopEngine())
        try:
            t0 = time.perf_counter()
            ctx.__dict__["db"] = open_database(url)
            add_synthetic_images(ctx.db, n, nfields=nfields)
            setup = time.perf_counter() - t0
            end = START + (n // NSCA + 1) * CADENCE + timedelta(seconds=1)
            t0 = time.perf_counter()
            launched = launch_science(ctx, START, end, PROCDATE)
            launch_s = time.perf_counter() - t0
            ctx.engine.run_pending()
            t0 = time.perf_counter()
            registered = register_science(ctx, PROCDATE)
            register_s = time.perf_counter() - t0
        finally:
            ctx.close()
            if admin is not None:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                admin.dispose()
    nl, nr = len(launched.launched), len(registered.closed)
    return {"bench": "ops", "backend": sa.make_url(url).get_backend_name(), "jobs": n,
            "launched": nl, "registered": nr, "problems": len(registered.problems),
            "setup_s": round(setup, 3), "launch_s": round(launch_s, 3),
            "launch_jobs_per_s": round(nl / launch_s, 1) if launch_s else None,
            "register_s": round(register_s, 3),
            "register_jobs_per_s": round(nr / register_s, 1) if register_s else None}
