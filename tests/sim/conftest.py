"""A small simulated survey shared by the sim tests (built once per session)."""

import pytest

from rapid.jobs.products import read_table
from rapid.sim import simulate_survey


@pytest.fixture(scope="session")
def survey(tmp_path_factory):
    """Two fields, six epochs, one filter, 128-pixel cutouts of SCA 1."""
    out = tmp_path_factory.mktemp("sim") / "survey"
    return simulate_survey(out, fields=2, epochs=6, size=128, seed=3)


@pytest.fixture(scope="session")
def truth(survey):
    """The survey's truth table as a list of row dicts."""
    return read_table(str(survey.truth)).to_pylist()
