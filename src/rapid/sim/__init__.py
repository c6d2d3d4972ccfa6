"""Synthetic Roman WFI survey: L2 images with Roman PSFs and WCS, PSF files and a truth table.

The simulator depends only on GalSim, numpy/astropy/pyarrow and ``rapid.sky`` (tile centres),
never on the pipeline it feeds.
"""

from rapid.sim.survey import SurveySummary, simulate_survey

__all__ = ["SurveySummary", "simulate_survey"]
