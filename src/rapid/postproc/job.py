"""The post-processing job (ppid 17) for one science job.

Stamps the registered IDs and versions (pid, rfid, rid, expid, field, fid, versions) into the FITS
headers of the difference and reference images, rewrites them in place, and reports their new
checksums in its manifest. Stamping is idempotent: the same keywords give the same bytes.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone

from astropy.io import fits

from rapid import exitcodes, store
from rapid.jobs.spec import Manifest, PostprocSpec, Product


def stamp_fits(data: bytes, keywords: dict) -> bytes:
    """``data`` (a FITS file) with ``keywords`` set in its primary header."""
    with fits.open(io.BytesIO(data), memmap=False) as hdul:
        for key, value in keywords.items():
            hdul[0].header[key] = value
        sink = io.BytesIO()
        hdul.writeto(sink, output_verify="silentfix")
    return sink.getvalue()


def run_postproc(spec: PostprocSpec) -> Manifest:
    """Stamp every target of ``spec``; returns the manifest (not yet written)."""
    started = datetime.now(timezone.utc)
    products: list[Product] = []
    exitcode, message = exitcodes.OK, ""
    try:
        for target in spec.targets:
            try:
                original = store.read_bytes(target.uri)
            except FileNotFoundError:
                raise FileNotFoundError(f"product {target.uri} is missing") from None
            stamped = stamp_fits(original, target.keywords)
            if stamped != original:
                store.write_bytes(target.uri, stamped)
            products.append(Product(name=target.kind, uri=target.uri, size=len(stamped),
                                    checksum=store.md5_bytes(stamped)))
    except FileNotFoundError as exc:
        exitcode, message = exitcodes.BAD_INPUT, str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure becomes an error exit code in the manifest
        exitcode, message = exitcodes.ERROR, f"{type(exc).__name__}: {exc}"
    return Manifest(kind="postproc", jid=spec.jid, exitcode=exitcode, message=message,
                    started=started, ended=datetime.now(timezone.utc), products=products)
