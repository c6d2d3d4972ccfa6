"""The bulk run on Roman L2 ASDF inputs: ingest, launch, science jobs reading ASDF, registration."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
import sqlalchemy as sa

from rapid import exitcodes, store
from rapid.db import schema
from rapid.ingest.register import ingest_paths
from rapid.jobs.products import read_table
from rapid.ops.context import OpsContext
from rapid.ops.run import run_range
from tests.asdf.conftest import TRANSIENT_XY
from tests.ops.conftest import ops_settings

PROCDATE = "20260120"


@pytest.mark.slow
def test_run_differences_the_last_epoch(roman_survey, tmp_path):
    ctx = OpsContext(ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'r.db'}"))
    report = ingest_paths(ctx.db, roman_survey.paths)
    assert len(report.added) == 4 and not report.errors
    run = run_range(ctx, datetime(2026, 1, 1, tzinfo=timezone.utc),
                    datetime(2026, 1, 31, tzinfo=timezone.utc), PROCDATE)
    assert run.problems == {}
    j = schema.jobs
    with ctx.db.connect() as conn:
        science = conn.execute(sa.select(j).where(j.c.ppid == 15).order_by(j.c.rid)).all()
        assert [job.exitcode for job in science] == [exitcodes.NO_REFERENCE] * 3 + [0]
        diffs = conn.execute(sa.select(schema.diffimages)).all()
        assert [d.rid for d in diffs] == [science[-1].rid]
        meta = conn.execute(sa.select(schema.diffimmeta)).one()
        refs = conn.execute(sa.select(schema.refimages)).all()
        assert len(refs) == 1
        used = conn.execute(sa.select(schema.refimimages.c.rid)).scalars().all()
        assert sorted(used) == sorted(job.rid for job in science[:3])
    ctx.db.dispose()
    # Scorr of a star field: its pure-noise normalisation is pinned in tests/science; here the
    # flux-noise term damps it on the stars, so the whole-image spread sits a little below 1.
    assert meta.ncandidates >= 1 and 0.8 < meta.scorrstd < 1.2
    with store.local_copy(meta.catfilename) as path:
        cat = read_table(str(path)).to_pydict()
    near = [k for k in range(len(cat["x"])) if cat["sign"][k] == 1
            and np.hypot(cat["x"][k] - TRANSIENT_XY[0], cat["y"][k] - TRANSIENT_XY[1]) < 1.0]
    assert len(near) >= 1  # a bright transient may come out as two peaks under 1 pixel apart
