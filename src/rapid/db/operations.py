"""The named operations on the operations database, in one namespace.

Each takes a ``Connection``; the caller owns the transaction (``with engine.begin() as conn:``).
They live in :mod:`rapid.db.images`, :mod:`rapid.db.jobs`, :mod:`rapid.db.products` and
:mod:`rapid.db.registration`; SQL is always parameterised.
"""

from __future__ import annotations

from rapid.db.images import (add_exposure, add_l2file, best_l2files_between, ensure_field, fid_of,
                             filter_name, prior_l2files_for_tile)
from rapid.db.jobs import (close_job, get_job, jobs_for_procdate, latest_job, mark_running,
                           mark_submitted, normal_exit, open_job, reference_in_progress)
from rapid.db.products import (add_diffimage, add_psf, add_refimage, best_refimage,
                               diffimage_of_job, product_key_by_filename, refimage_by_rfid,
                               set_product_checksum)
from rapid.db.registration import counts, products_of_job, register_science_result
from rapid.db.seed import current_svid
from rapid.db.versioning import insert_version, set_best

__all__ = [
    "ensure_field", "add_exposure", "fid_of", "filter_name", "add_l2file", "best_l2files_between",
    "prior_l2files_for_tile", "best_refimage", "open_job", "mark_submitted", "mark_running",
    "close_job", "get_job", "jobs_for_procdate", "latest_job", "normal_exit", "add_refimage",
    "add_diffimage", "register_science_result", "products_of_job", "set_product_checksum",
    "counts", "add_psf", "current_svid", "insert_version", "set_best", "reference_in_progress",
    "refimage_by_rfid", "diffimage_of_job", "product_key_by_filename",
]
