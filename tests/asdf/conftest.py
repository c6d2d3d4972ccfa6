"""A small Roman L2 ASDF survey made once per session: one pointing of SCA 1 in F158, four epochs
five days apart, the same stars in each, a transient only in the last."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("romanisim")

from tests.asdf.romanl2 import Pointing, cutout_wcs, make_l2_asdf, star_table  # noqa: E402

START_TIMES = ("2026-01-01T00:00:00", "2026-01-06T00:00:00", "2026-01-11T00:00:00",
               "2026-01-16T03:00:00")
TRANSIENT_XY = (131.0, 57.0)
TRANSIENT_MAG = 19.0
BAD_PIXELS = ((5, 6), (150, 120))


@dataclass
class Survey:
    pointing: Pointing
    paths: list[Path]  # in time order; the last holds the transient
    stars: object
    transient: object
    cutout: object  # gwcs of the cut-out


@pytest.fixture(scope="session")
def roman_survey(tmp_path_factory) -> Survey:
    from astropy.table import vstack

    folder = tmp_path_factory.mktemp("roman_l2")
    pointing = Pointing()
    _, cut = cutout_wcs(pointing, START_TIMES[0])
    stars = star_table(cut, pointing, n=40, seed=7)
    # Keep the transient clear of the stars so that its candidate is unambiguous.
    transient = star_table(cut, pointing, n=1, seed=99)
    transient["x"], transient["y"] = [TRANSIENT_XY[0]], [TRANSIENT_XY[1]]
    ra, dec = cut(*TRANSIENT_XY)
    transient["ra"], transient["dec"] = [ra], [dec]
    transient[pointing.optical_element] = [10 ** (-0.4 * TRANSIENT_MAG)]
    transient["mag"] = [TRANSIENT_MAG]
    paths = []
    for index, start in enumerate(START_TIMES):
        last = index == len(START_TIMES) - 1
        path = folder / f"r0000101001001001001_{index + 1:04d}_wfi01_cal.asdf"
        make_l2_asdf(path, pointing=pointing, start_time=start,
                     stars=vstack([stars, transient]) if last else stars, seed=11 + index,
                     bad_pixels=BAD_PIXELS)
        paths.append(path)
    return Survey(pointing=pointing, paths=paths, stars=stars, transient=transient, cutout=cut)
