"""The operations database: tables, migrations and the named operations.

Open it with :func:`open_database` (migrates to head and seeds on first use), then run the
operations of :mod:`rapid.db.operations` inside ``with engine.begin() as conn:``.
"""

from rapid.db.connect import (SchemaOutOfDateError, current_revision, downgrade, head_revision,
                              make_engine, open_database, upgrade)
from rapid.db.operations import *  # noqa: F403 - the named operations are the package's API
from rapid.db.operations import __all__ as _operations
from rapid.db.records import (DiffImageMeta, DiffImageRecord, Footprint, L2FileRecord,
                              RefImageCatalog, RefImageMeta, RefImageRecord, unit_vector)

__all__ = [
    "SchemaOutOfDateError", "current_revision", "downgrade", "head_revision", "make_engine",
    "open_database", "upgrade", "DiffImageMeta", "DiffImageRecord", "Footprint", "L2FileRecord",
    "RefImageCatalog", "RefImageMeta", "RefImageRecord", "unit_vector", *_operations,
]
