"""keep_freed_memory: large blocks come from the heap, and freed ones stay for reuse."""

import json
import subprocess
import sys

import pytest

# Run in a child process: the setting is the whole process's, for good.
_PROBE = """
import ctypes, json
import numpy as np
from rapid.process_memory import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks",
                                               "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
size = 96 * 2**20
a = np.ones(size // 8)
mapped_before = libc.mallinfo2().hblkhd
del a
took = keep_freed_memory()
a = np.ones(size // 8)
info = libc.mallinfo2()
mapped_after, heap_in_use = info.hblkhd, info.arena
del a
print(json.dumps({"took": took, "mapped_before": mapped_before, "mapped_after": mapped_after,
                  "heap_in_use": heap_in_use, "heap_after_free": libc.mallinfo2().arena}))
"""


def test_large_blocks_come_from_the_heap_and_stay():
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's allocator only")
    run = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=False)
    if "mallinfo2" in run.stderr:
        pytest.skip("no glibc mallinfo2 to look with")
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    size = 96 * 2**20
    assert got["took"] is True
    # by default glibc maps a 96 MB block apart and unmaps it when freed
    assert got["mapped_before"] >= size
    # afterwards it is carved from the heap, which keeps it once freed
    assert got["mapped_after"] < size
    assert got["heap_in_use"] >= size
    assert got["heap_after_free"] == got["heap_in_use"]
