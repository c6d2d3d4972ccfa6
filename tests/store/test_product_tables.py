"""Parquet products written by a job read back whole and unchanged."""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from rapid.jobs.products import ProductWriter, read_table


def test_table_product_round_trip(tmp_path):
    writer = ProductWriter(prefix=tmp_path.resolve().as_uri())
    table = Table({"x": np.array([1.5, 2.25, 3.0]), "sign": np.array([1, -1, 1], np.int16)})
    product = writer.put_table("candidates", "candidates.parquet", table)
    back = read_table(product.uri)
    assert back.column_names == ["x", "sign"]
    assert np.array_equal(np.asarray(back["x"]), [1.5, 2.25, 3.0])
    assert np.asarray(back["sign"]).dtype == np.int16
    assert product.size == (tmp_path / "candidates.parquet").stat().st_size
