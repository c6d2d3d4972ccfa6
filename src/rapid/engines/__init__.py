"""Batch engines behind one interface: submit, poll, cancel. Engines never touch the database."""

from rapid.engines.base import Engine, EngineJob, EngineState, Submission, make_engine

__all__ = ["Engine", "EngineJob", "EngineState", "Submission", "make_engine"]
