"""Roman WFI filter names: RAPID's (``H158``) and the optical-element names (``F158``)."""

from __future__ import annotations

# RAPID's filter names in fid order (fid = index + 1).
RAPID_FILTERS = ("F184", "H158", "J129", "K213", "R062", "Y106", "Z087", "W146")

_ALIASES = {name: name for name in RAPID_FILTERS}
_ALIASES.update({f"F{name[1:]}": name for name in RAPID_FILTERS})  # F158 -> H158, F062 -> R062 ...


def canonical_filter(value: object) -> str:
    """RAPID's name for a filter given either way (``H158``, ``F158``, ``f158``)."""
    key = str(value).strip().upper()
    try:
        return _ALIASES[key]
    except KeyError:
        raise ValueError(f"unknown Roman filter {value!r} (expected one of "
                         f"{', '.join(RAPID_FILTERS)})") from None


def fid_of(value: object) -> int:
    """RAPID's filter id (1..8) for a filter name."""
    return RAPID_FILTERS.index(canonical_filter(value)) + 1
