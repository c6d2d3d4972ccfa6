"""Finding a registered difference image's noise products, and the truth's S/N in it."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from rapid import store
from rapid.evaluation.evaluate import DiffProducts, _noise_uris, truth_difference_snr
from rapid.jobs.products import fits_bytes
from rapid.jobs.spec import DiffImageResult, Manifest, Product


def _manifest(prefix: str) -> Manifest:
    now = datetime(2028, 10, 8, tzinfo=timezone.utc)
    names = {"d": "d.fits", "u": "noise.fits", "p": "kernel.fits", "s": "s.fits", "c": "c.parquet"}
    products = [Product(name=k, uri=f"{prefix}/{v}", size=1, checksum="0" * 32)
                for k, v in names.items()]
    diff = DiffImageResult(rid=1, rfid=None, mjdobs=0.0, image="d", uncertainty="u", psf="p",
                           scorr="s", catalog="c", ra_corners=[0.0] * 4, dec_corners=[0.0] * 4,
                           ra0=0.0, dec0=0.0, meta={})
    return Manifest(kind="science", jid=3, exitcode=0, started=now, ended=now,
                    products=products, diffimage=diff)


def test_noise_products_come_from_the_manifest_else_beside_the_image(tmp_path):
    prefix = store.normalize_url(tmp_path)
    manifest_uri = f"{prefix}/manifest.json"
    store.write_bytes(manifest_uri, _manifest(prefix).model_dump_json().encode())
    assert _noise_uris(f"{prefix}/d.fits", manifest_uri) == (f"{prefix}/noise.fits",
                                                             f"{prefix}/kernel.fits")
    expected = (f"{prefix}/diffimage_uncert_masked.fits", f"{prefix}/diffpsf.fits")
    assert _noise_uris(f"{prefix}/d.fits", None) == expected
    assert _noise_uris(f"{prefix}/d.fits", f"{prefix}/missing.json") == expected


def test_truth_gets_its_snr_in_the_difference_image_and_masked_rows_are_flagged(tmp_path):
    prefix = store.normalize_url(tmp_path)
    unc = np.full((40, 40), 2.0, dtype=np.float32)
    unc[30, 30] = np.nan
    psf = np.zeros((5, 5))
    psf[2, 2], psf[2, 1], psf[2, 3], psf[1, 2], psf[3, 2] = 4.0, 1.0, 1.0, 1.0, 1.0  # sum 8
    store.write_bytes(f"{prefix}/u.fits", fits_bytes(unc))
    store.write_bytes(f"{prefix}/p.fits", fits_bytes(psf))
    prod = DiffProducts(l2name="a.fits", filter="H158", catalog="", image=f"{prefix}/d.fits",
                        uncertainty=f"{prefix}/u.fits", psf=f"{prefix}/p.fits")
    truth = {"filename": np.array(["a.fits", "a.fits", "b.fits"]),
             "x": np.array([10.2, 30.0, 10.0]), "y": np.array([12.0, 30.0, 10.0]),
             "diff_flux": np.array([-30.0, 30.0, 30.0])}
    snr, masked = truth_difference_snr(truth, [prod])
    sum_p2 = (0.5**2 + 4 * 0.125**2)
    assert snr[0] == pytest.approx(30.0 / np.sqrt(4.0 / sum_p2), rel=1e-6)
    assert np.isnan(snr[1]) and np.isnan(snr[2])  # on a masked pixel; no difference image
    assert masked.tolist() == [False, True, False]


def test_a_psf_product_with_a_fine_sampling_gives_the_snr_at_the_sub_pixel_position(tmp_path):
    from scipy.special import ndtr

    from rapid.io.fits_frame import psf_fits_bytes
    from rapid.science.fine_psf import centre_samples
    from rapid.science.image import FinePsf

    def pixel_gaussian(offsets, sigma=0.45):
        return ndtr((offsets + 0.5) / sigma) - ndtr((offsets - 0.5) / sigma)

    factor, half = 4, 6
    f1 = pixel_gaussian(np.arange(-half * factor, half * factor + 1) / factor)
    fine = FinePsf.normalised(np.outer(f1, f1), factor)
    native = centre_samples(fine.data, factor, (2 * half + 1, 2 * half + 1))
    prefix = store.normalize_url(tmp_path)
    store.write_bytes(f"{prefix}/u.fits", fits_bytes(np.ones((40, 40), dtype=np.float32)))
    store.write_bytes(f"{prefix}/p.fits", psf_fits_bytes(native / native.sum(), fine))
    store.write_bytes(f"{prefix}/n.fits", psf_fits_bytes(native / native.sum()))
    truth = {"filename": np.array(["a.fits"] * 2), "x": np.array([20.0, 20.5]),
             "y": np.array([20.0, 20.5]), "diff_flux": np.array([10.0, 10.0])}
    snr = {}
    for name in ("p", "n"):
        prod = DiffProducts(l2name="a.fits", filter="H158", catalog="", image=f"{prefix}/d.fits",
                            uncertainty=f"{prefix}/u.fits", psf=f"{prefix}/{name}.fits")
        snr[name] = truth_difference_snr(truth, [prod])[0]
    # the centred source is the same either way; the one on a pixel corner spreads its light
    # over four pixels, which only the fine PSF knows
    assert snr["p"][0] == pytest.approx(snr["n"][0], rel=1e-3)
    p1 = pixel_gaussian(np.arange(-half, half + 1.0) - 0.5)
    corner = np.outer(p1, p1) / np.outer(p1, p1).sum()
    assert snr["p"][1] == pytest.approx(10.0 * np.sqrt(np.sum(corner**2)), rel=0.01)
    assert snr["p"][1] < 0.85 * snr["n"][1]
