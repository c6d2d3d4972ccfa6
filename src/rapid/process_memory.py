"""The C heap of a job process: freed memory kept for reuse instead of handed back to the system.

A science job allocates and frees image-sized arrays (67 MB for a 4088^2 float32 image) hundreds
of times. glibc serves every block over 32 MB by ``mmap`` and returns it with ``munmap`` when it is
freed, so each new array costs the kernel a fresh page fault per 4 kB page, and on a virtual
machine whose host backs guest memory lazily (or takes freed pages back, as a memory balloon
does) such faults run at a tenth of the speed of writing memory that is already mapped. Serving
every block from the heap, and never trimming the heap's top, lets the next array reuse pages the
process already holds: the peak resident memory stays that of the largest moment of the job,
while the time spent faulting pages in goes.

Only the processes that run one job and exit call :func:`keep_freed_memory` (``rapid job run``,
``rapid diff``, the benchmark's job): in a long-lived process the heap would keep its largest
size for good.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["keep_freed_memory"]

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: The largest trim threshold mallopt takes (an int): more free memory than this at the heap's
#: top is still handed back.
_TRIM_THRESHOLD = 2**31 - 1


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed memory in the process (glibc only).

    Returns
    -------
    bool
        Whether the allocator took the setting: False on systems without glibc's ``mallopt``
        (macOS, musl), where the process is left as it was.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on a parameter it does not know
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
