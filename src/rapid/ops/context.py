"""Everything the four steps share: settings, the operations database, the engine, the store layout."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sqlalchemy as sa

from rapid.config import Settings
from rapid.engines.base import Engine, make_engine
from rapid.ops.layout import Layout


@dataclass
class OpsContext:
    """Settings plus the database, engine and store layout they name, opened on first use."""

    settings: Settings

    @classmethod
    def with_engine(cls, settings: Settings, engine: Engine) -> "OpsContext":
        """A context that uses ``engine`` instead of the one the settings name."""
        ctx = cls(settings)
        ctx.__dict__["engine"] = engine  # takes the place of the cached property
        return ctx

    @cached_property
    def db(self) -> sa.Engine:
        from rapid.db.connect import open_database

        return open_database(self.settings.database_url)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings)

    @cached_property
    def layout(self) -> Layout:
        return Layout.from_settings(self.settings)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
