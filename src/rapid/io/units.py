"""What an image's BUNIT says about its pixels: counts, a count rate, or neither.

RAPID's L2 images are in DN (no BUNIT needed) and are divided by their exposure time when read;
romancal's are already in DN/s, HST's and others' in electrons or electrons/s, calibrated
archives' in MJy/sr or nanomaggies. Dividing a rate by the exposure time again makes every
flux EXPTIME times too small and, through the Poisson noise model, every threshold wrong, so
the reader divides only what is counts.
"""

from __future__ import annotations

from dataclasses import dataclass

_COUNTS = {"dn", "adu", "count", "counts", "ct", "cts", "datanumber", "datanumbers"}
_ELECTRONS = {"e", "e-", "electron", "electrons", "photoelectron", "photoelectrons"}
_PER_SECOND = ("/s", "/sec", "/second", "s-1", "s**-1", "s^-1", "s^(-1)", "s**(-1)")


@dataclass(frozen=True)
class CountUnit:
    """A unit of counts: per second or per exposure, of electrons or of DN (ADU)."""

    per_second: bool
    electrons: bool


def count_unit(bunit: str | None) -> CountUnit | None:
    """The count unit that ``bunit`` names; None for one that is not counts (MJy/sr, ...).

    No BUNIT (None or blank) is RAPID's convention, DN per exposure.
    """
    text = "".join(str(bunit or "").split()).lower()
    if not text:
        return CountUnit(per_second=False, electrons=False)
    per_second = False
    for suffix in _PER_SECOND:
        if text.endswith(suffix):
            text, per_second = text[: -len(suffix)].rstrip("*.·"), True
            break
    if text in _COUNTS:
        return CountUnit(per_second=per_second, electrons=False)
    if text in _ELECTRONS:
        return CountUnit(per_second=per_second, electrons=True)
    return None
