"""Where a day's work lives in the store, as RAPID's operators know it.

- job specs:  ``<store>/<pipeline root>/<procdate>/jid<jid>.json``
- products:   ``<store>/<product root>/<procdate>/jid<jid>/`` (the manifest last, ``manifest.json``)
- logs:       ``<store>/<log root>/<procdate>/jid<jid>.log``
"""

from __future__ import annotations

from dataclasses import dataclass

from rapid import store
from rapid.config import Settings

MANIFEST_NAME = "manifest.json"


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

    def log_uri(self, procdate: str, jid: int) -> str:
        return store.join(self.base, self.log_root, procdate, f"jid{jid}.log")
