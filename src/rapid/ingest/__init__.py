"""Ingest: L2 images on disk or in a store become exposures, l2files and l2filemeta rows."""
