"""Where a day's work lives in the store, as RAPID's operators know it.

- job specs:  ``<store>/<pipeline root>/<procdate>/jid<jid>.json``
- products:   ``<store>/<product root>/<procdate>/jid<jid>/`` (the manifest last, ``manifest.json``)
- logs:       ``<store>/<log root>/<procdate>/jid<jid>.log``

Two more objects make the start handshake between a job and an operator that finds its row left
"open" (see :mod:`rapid.ops.wait`):

- started marker: ``<product prefix>/started.json``, written by the job before it does any work;
- withdrawn tombstone: ``<spec URI>.withdrawn``, written by the operator; a job that finds it does
  no work.

The job knows only its spec URI and the product prefix its spec names, so both are derived from
those (:func:`started_uri_for`, :func:`withdrawn_uri_for`); :class:`Layout` derives the same names
from a procdate and jid.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

from rapid import store
from rapid.config import Settings

MANIFEST_NAME = "manifest.json"
STARTED_NAME = "started.json"
WITHDRAWN_SUFFIX = ".withdrawn"


def started_uri_for(product_prefix: str) -> str:
    """URI of the "started" marker of the job whose products go under ``product_prefix``."""
    return store.join(product_prefix, STARTED_NAME)


def withdrawn_uri_for(spec_uri: str) -> str:
    """URI of the tombstone that withdraws the job whose spec is at ``spec_uri``."""
    return spec_uri + WITHDRAWN_SUFFIX


def handshake_record(jid: int) -> bytes:
    """Body of a started marker or a tombstone: the job, and which process wrote it when."""
    return json.dumps({"jid": jid, "host": socket.gethostname(), "pid": os.getpid(),
                       "time": datetime.now(timezone.utc).isoformat()}).encode()


@dataclass(frozen=True)
class Layout:
    base: str
    pipeline_root: str = "pipeline"
    product_root: str = "products"
    log_root: str = "logs"

    @classmethod
    def from_settings(cls, settings: Settings) -> "Layout":
        return cls(store.normalize_url(settings.store_url), settings.store.pipeline_root,
                   settings.store.product_root, settings.store.log_root)

    def spec_uri(self, procdate: str, jid: int) -> str:
        return store.join(self.base, self.pipeline_root, procdate, f"jid{jid}.json")

    def product_prefix(self, procdate: str, jid: int) -> str:
        return store.join(self.base, self.product_root, procdate, f"jid{jid}")

    def manifest_uri(self, procdate: str, jid: int) -> str:
        return store.join(self.product_prefix(procdate, jid), MANIFEST_NAME)

    def started_uri(self, procdate: str, jid: int) -> str:
        return started_uri_for(self.product_prefix(procdate, jid))

    def withdrawn_uri(self, procdate: str, jid: int) -> str:
        return withdrawn_uri_for(self.spec_uri(procdate, jid))

    def log_uri(self, procdate: str, jid: int) -> str:
        return store.join(self.base, self.log_root, procdate, f"jid{jid}.log")
