"""`rapid` verbs of the ops area, registered on the main app."""

from __future__ import annotations

from rapid.cli import app, err, out, UserError, _settings, _ops  # noqa: F401
