"""Every compiled science kernel is compiled by the install-time warm-up."""

from __future__ import annotations

import numba
import pytest

from rapid.science import coadd, sampling, stack
from rapid.science.warmup import compile_kernels


def _kernels():
    for module in (coadd, sampling, stack):
        for name, obj in vars(module).items():
            # helpers inlined into their callers are never compiled on their own
            if (isinstance(obj, numba.core.registry.CPUDispatcher)
                    and obj.targetoptions.get("inline") != "always"):
                yield f"{module.__name__}.{name}", obj


def test_warmup_compiles_every_kernel():
    kernels = dict(_kernels())
    assert len(kernels) >= 7
    assert compile_kernels() > 0
    missing = [name for name, kernel in kernels.items() if not kernel.signatures]
    assert not missing, f"not compiled by the warm-up: {missing}"


@pytest.mark.parametrize("name", ["_sample", "_medians", "_prefilter_axis0"])
def test_kernels_of_the_hot_paths_are_found(name):
    assert any(k.endswith("." + name) for k, _ in _kernels())
