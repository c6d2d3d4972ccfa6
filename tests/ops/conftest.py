"""A small simulated survey, shared by the operations tests (simulated once per session)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rapid.config import OperatorSettings, Settings


@pytest.fixture(scope="session")
def small_survey(tmp_path_factory) -> Path:
    """2 fields x 6 epochs of 256² H158 images of one SCA, with transients after epoch 3."""
    from rapid.sim import simulate_survey

    out = tmp_path_factory.mktemp("survey")
    simulate_survey(out, fields=2, filters=("H158",), epochs=6, scas=(1,), size=256, seed=7)
    return out


def ops_settings(workdir: Path, db_url: str) -> Settings:
    """Embedded settings under ``workdir`` with a quick poll, on the given database."""
    base = Settings(workdir=str(workdir))
    return replace(base, database=replace(base.database, url=db_url),
                   operator=OperatorSettings(poll_seconds=0.2, queue_timeout_seconds=600,
                                             run_timeout_seconds=600, max_attempts=2))
