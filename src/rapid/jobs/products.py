"""A job's products in the store: written checksummed and listed for the manifest; tables read
back."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from rapid import store
from rapid.io.fits_frame import psf_fits_bytes
from rapid.jobs.spec import Product
from rapid.science.image import FinePsf


@dataclass
class ProductWriter:
    """Writes named products under one prefix and remembers what it wrote."""

    prefix: str
    products: list[Product] = field(default_factory=list)

    def uri(self, filename: str) -> str:
        return store.join(self.prefix, filename)

    def put(self, name: str, filename: str, data: bytes) -> Product:
        uri = self.uri(filename)
        store.write_bytes(uri, data)
        product = Product(name=name, uri=uri, size=len(data), checksum=store.md5_bytes(data))
        self.products = [p for p in self.products if p.name != name] + [product]
        return product

    def put_image(self, name: str, filename: str, data: np.ndarray, wcs: WCS | None = None, *,
                  header: dict | None = None) -> Product:
        """A 2-D image as a FITS primary HDU (float32 unless integer), with its WCS."""
        return self.put(name, filename, fits_bytes(data, wcs, header=header))

    def put_psf(self, name: str, filename: str, psf: np.ndarray,
                fine: FinePsf | None = None, cells=None) -> Product:
        """A PSF file: the stamp at pixel centres and, when given, its finer sampling and the
        PSFs of the cells of an image whose PSF varies (see
        :func:`rapid.io.fits_frame.psf_fits_bytes`)."""
        return self.put(name, filename, psf_fits_bytes(psf, fine, cells=cells))

    def put_table(self, name: str, filename: str, table) -> Product:  # astropy Table
        """A table as Parquet."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {col: np.asarray(table[col]) for col in table.colnames}
        sink = io.BytesIO()
        pq.write_table(pa.table(columns), sink, compression="zstd")
        return self.put(name, filename, sink.getvalue())


def read_table(uri: str):  # -> pyarrow.Table
    """A Parquet product of the store (or any local path or URL), read whole.

    The bytes are read into memory first and decoded by one file reader on this thread, with
    neither Arrow's read-ahead cache nor its thread pools: a worker of those pools still alive
    when the interpreter exits aborts the process ("terminate called without an active
    exception"; apache/arrow#34314). Reading the 11 catalogs of a survey and its truth, 7 of 60
    runs aborted with ``pq.read_table``'s threads; ``read_table(use_threads=False)`` still
    starts an IO worker, and the simulated surveys' runs aborted after 3 of 9. Products are
    small; threads gain nothing here.
    """
    import pyarrow.parquet as pq

    source = io.BytesIO(store.read_bytes(uri))
    return pq.ParquetFile(source, pre_buffer=False).read(use_threads=False)


def fits_bytes(data: np.ndarray, wcs: WCS | None = None, *, header: dict | None = None) -> bytes:
    """A FITS file holding ``data`` (and its WCS and extra keywords) in the primary HDU."""
    hdr = wcs.to_header(relax=True) if wcs is not None else fits.Header()
    for key, value in (header or {}).items():
        hdr[key] = value
    if not np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32, copy=False)
    sink = io.BytesIO()
    fits.PrimaryHDU(data=data, header=hdr).writeto(sink, output_verify="silentfix")
    return sink.getvalue()
