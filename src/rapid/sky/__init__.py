"""Sky geometry: the Roman tessellation (fields), footprints on it, and HEALPix indices.

Pure functions on numbers; nothing here touches a database or a file.
"""

from rapid.sky.footprint import (
    MAX_FOOTPRINT_RADIUS_DEG,
    angular_separation_deg,
    fields_overlapping,
    unit_vector,
)
from rapid.sky.healpix import hp6, hp9, hp_index
from rapid.sky.rings import (
    NDECBINS,
    NRINGS,
    ring_dec,
    ring_edges,
    ring_first_field,
    ring_ntiles,
    ring_of,
)
from rapid.sky.tiles import (
    NFIELDS,
    NORTH_CAP_FIELD,
    NSIDE,
    SOUTH_CAP_FIELD,
    Tile,
    field_of,
    field_ring_index,
    tile,
    tile_bounds,
    tile_center,
    tile_corners,
)

__all__ = [
    "MAX_FOOTPRINT_RADIUS_DEG",
    "NDECBINS",
    "NFIELDS",
    "NORTH_CAP_FIELD",
    "NRINGS",
    "NSIDE",
    "SOUTH_CAP_FIELD",
    "Tile",
    "angular_separation_deg",
    "field_of",
    "field_ring_index",
    "fields_overlapping",
    "hp6",
    "hp9",
    "hp_index",
    "ring_dec",
    "ring_edges",
    "ring_first_field",
    "ring_ntiles",
    "ring_of",
    "tile",
    "tile_bounds",
    "tile_center",
    "tile_corners",
    "unit_vector",
]
