"""Growth of the difference-image mask around bad pixels and bright, saturated cores."""

from __future__ import annotations

import numpy as np

from rapid.science.difference import _grow_mask


def _snr_map(shape, peaks):
    snr = np.zeros(shape)
    for (y, x), value in peaks.items():
        snr[y, x] = value
    return lambda where: snr[where]


def test_faint_bad_pixel_grows_by_grow_only():
    bad = np.zeros((80, 80), bool)
    bad[40, 40] = True
    out = _grow_mask(bad, _snr_map(bad.shape, {}), grow=2, bright_snr=50.0, fwhm=2.0)
    # iterations=2 of the cross structure: a diamond of radius 2 (13 pixels)
    assert out.sum() == 13 and out[40, 42] and not out[41, 42]


def test_bright_rim_grows_by_fwhm_log_snr_inside_its_own_box():
    bad = np.zeros((200, 200), bool)
    bad[50:53, 50:53] = True  # saturated core next to an S/N 1000 pixel
    bad[150, 150] = True  # a faint bad pixel elsewhere
    snr_at = _snr_map(bad.shape, {(53, 51): 1000.0, (151, 150): 10.0})
    out = _grow_mask(bad, snr_at, grow=2, bright_snr=50.0, fwhm=2.0)
    r = int(np.ceil(2.0 * np.log10(1000.0)))  # 6 pixels beyond the grown core
    assert out[51, 51 + 1 + 2 + r] and not out[51, 51 + 1 + 2 + r + 1]
    assert out[51 - 1 - 2 - r, 51] and not out[51 - 1 - 2 - r - 1, 51]
    # the faint one keeps its 13-pixel diamond
    assert out[140:160, 140:160].sum() == 13


def test_bright_area_at_the_image_edge():
    bad = np.zeros((60, 60), bool)
    bad[0:2, 0:2] = True
    out = _grow_mask(bad, _snr_map(bad.shape, {(2, 0): 500.0}), grow=1, bright_snr=50.0,
                     fwhm=3.0)
    r = int(np.ceil(3.0 * np.log10(500.0)))
    assert out[0, 1 + 1 + r] and not out[0, 1 + 1 + r + 1]
