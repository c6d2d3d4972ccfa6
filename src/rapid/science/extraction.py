"""Source extraction with sep, its buffers grown to what a crowded image needs.

sep holds the pixels of the objects it is building in a stack of fixed size (300,000 by
default) and splits a blend into at most 1024 sub-objects. A crowded field (a Galactic bulge, a
cluster, 25,000 stars on a 1024x1024 image) or a large bright region overflows them, and sep
gives up on the whole image. Every extraction goes through :func:`extract`, which starts with a
stack for a quarter of the image's pixels and, should that overflow, retries once with one for
every pixel: sep reserves the stack as address space and touches only what it uses, so an
image that does not need it costs nothing, and an overflow, which wastes a whole pass, stays
rare.
"""

from __future__ import annotations

import numpy as np
import sep

# Sub-objects allowed per blend on the retry
SUB_OBJECT_LIMIT = 4096
# The messages of sep's two buffer overflows (its errors carry no type of their own)
_OVERFLOWS = ("pixel buffer full", "deblending overflow")


def extract(data: np.ndarray, thresh: float, **kwargs):
    """``sep.extract(data, thresh, **kwargs)``, retried with larger buffers on an overflow.

    Parameters
    ----------
    data : ndarray
        Background-subtracted image, C-contiguous native float32
        (:func:`rapid.science.background.sep_ready`).
    thresh : float
        Detection threshold (absolute, or in units of ``err`` when given).
    **kwargs
        Passed to :func:`sep.extract`.

    Returns
    -------
    What :func:`sep.extract` returns.

    Raises
    ------
    Exception
        sep's own, for anything but an overflow, or an overflow that the larger buffers did
        not cure.
    """
    sep.set_extract_pixstack(max(sep.get_extract_pixstack(), int(data.size) // 4))
    try:
        return sep.extract(data, thresh, **kwargs)
    except Exception as exc:
        if not any(text in str(exc) for text in _OVERFLOWS):
            raise
    sep.set_extract_pixstack(max(sep.get_extract_pixstack(), int(data.size)))
    sep.set_sub_object_limit(max(sep.get_sub_object_limit(), SUB_OBJECT_LIMIT))
    return sep.extract(data, thresh, **kwargs)
