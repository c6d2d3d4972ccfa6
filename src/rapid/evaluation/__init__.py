"""Registered candidates measured against a simulator's truth."""
