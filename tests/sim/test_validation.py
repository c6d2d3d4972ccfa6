"""simulate_survey rejects bad arguments with a ValueError naming them."""

import pytest

from rapid.sim import simulate_survey


@pytest.mark.parametrize("kwargs, name", [
    ({"fields": 0}, "fields"), ({"epochs": 0}, "epochs"), ({"filters": ("V",)}, "filters"),
    ({"scas": (19,)}, "scas"), ({"size": 8}, "size"), ({"cadence_days": 0}, "cadence_days"),
    ({"start": "yesterday"}, "start"), ({"psf_size": 24}, "psf_size"),
])
def test_bad_arguments(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        simulate_survey(tmp_path, **kwargs)
