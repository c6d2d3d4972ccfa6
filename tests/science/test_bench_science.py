"""`rapid bench science`: the science job timed in a child process held to one CPU."""

from __future__ import annotations

import os

from rapid.science.bench import _ONE_THREAD, run_benchmark


def test_small_build_benchmark_reports_steps_on_one_cpu(tmp_path):
    before = {name: os.environ.get(name) for name in _ONE_THREAD}
    result = run_benchmark(size=256, reference="build", frames=3, cache_dir=tmp_path)
    assert result["exitcode"] == 0, result["message"]
    assert result["cpus"] == 1
    steps = result["steps"]
    assert {"read_reference_inputs", "build_reference", "diff.zogy"} <= set(steps)
    assert 0 < sum(steps.values()) <= result["total_s"]
    assert 0 < result["peak_rss_gb"] < 4
    # the parent's environment is left as it was
    assert {name: os.environ.get(name) for name in _ONE_THREAD} == before
