"""The science job (ppid 15) on one L2 image: read the spec, run the steps, write products and manifest.

Build the reference when the spec asks for it, difference the science image against the reference,
detect and measure candidates, and write every product before the manifest. The job reads only its
spec and the objects the spec names, and never touches the database.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from datetime import datetime, timezone

import numpy as np
from astropy.io import fits

from rapid import exitcodes, store
from rapid.jobs.products import ProductWriter
from rapid.jobs.spec import DiffImageResult, ImageInput, Manifest, RefImageResult, ScienceSpec
from rapid.science.image import Frame

log = logging.getLogger("rapid.science.job")

# Reference pixels covered by fewer input frames than this are masked: with one frame there is
# nothing to reject a cosmic ray or a transient against.
MIN_REFERENCE_COVERAGE = 2


class InputError(RuntimeError):
    """An input named by the spec cannot be read."""


def _load_image(stack: ExitStack, item: ImageInput) -> Frame:
    from rapid.io.frame import read_frame

    try:
        path = stack.enter_context(store.local_copy(item.uri))
        psf = stack.enter_context(store.local_copy(item.psf_uri)) if item.psf_uri else None
        frame = read_frame(path, per_second=True, psf_path=psf)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {item.uri}: {exc}") from exc
    frame.meta.setdefault("mjdobs", item.mjdobs)
    frame.meta["rid"] = item.rid
    return frame


def _read_primary(stack: ExitStack, uri: str) -> tuple[np.ndarray, fits.Header]:
    path = stack.enter_context(store.local_copy(uri))
    with fits.open(path, memmap=False) as hdul:
        return np.asarray(hdul[0].data), hdul[0].header


def _load_reference(stack: ExitStack, spec: ScienceSpec) -> Frame:
    from astropy.wcs import WCS

    ref = spec.reference
    assert ref is not None
    try:
        data, header = _read_primary(stack, ref.uri)
        coverage, _ = _read_primary(stack, ref.coverage_uri)
        unc, _ = _read_primary(stack, ref.uncertainty_uri)
        psf = _read_primary(stack, ref.psf_uri)[0] if ref.psf_uri else None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read reference rfid {ref.rfid}: {exc}") from exc
    return Frame(data=data.astype(np.float32), wcs=WCS(header), psf=psf,
                 unc=unc.astype(np.float32), mask=coverage < MIN_REFERENCE_COVERAGE,
                 meta={"zptmag": spec.reference_zero_point, "rfid": ref.rfid})


def _build_reference(stack: ExitStack, spec: ScienceSpec, out: ProductWriter,
                     timings: dict[str, float]) -> tuple[Frame, RefImageResult]:
    from rapid.science.config import ReferenceConfig
    from rapid.science.reference import build_reference, reference_catalog

    config = ReferenceConfig()
    read_s = [0.0]

    def loader(item: ImageInput):  # noqa: ANN202
        # Frames are read one at a time inside build_reference and dropped once resampled, so
        # only one input image is in memory at once; their reading time is kept apart.
        def load() -> Frame:
            t = time.perf_counter()
            with ExitStack() as copies:
                frame = _load_image(copies, item)
            read_s[0] += time.perf_counter() - t
            return frame
        return load

    t0 = time.perf_counter()
    built = build_reference([loader(item) for item in spec.reference_inputs], ra0=spec.tile.ra0,
                            dec0=spec.tile.dec0, size=spec.tile.size,
                            scale_arcsec=spec.tile.scale_arcsec,
                            zero_point=spec.reference_zero_point, order=config.order,
                            block_rows=config.block_rows)
    timings["read_reference_inputs"] = read_s[0]
    timings["build_reference"] = time.perf_counter() - t0 - read_s[0]
    t0 = time.perf_counter()
    ref = built.frame
    header = {"FIELD": spec.tile.field, "FILTER": spec.science.filter, "NFRAMES": built.nframes,
              "ZPTMAG": spec.reference_zero_point, "BUNIT": "DN/s"}
    out.put_image("refimage", "refimage.fits", ref.data, ref.wcs, header=header)
    out.put_image("refimage_cov", "refimage_cov.fits", built.coverage.astype(np.float32), ref.wcs)
    out.put_image("refimage_unc", "refimage_unc.fits", ref.unc, ref.wcs, header={"BUNIT": "DN/s"})
    psf_name = None
    if ref.psf is not None:
        out.put_psf("refimage_psf", "refimage_psf.fits", ref.psf, ref.psf_fine)
        psf_name = "refimage_psf"
    catalog = reference_catalog(built)
    out.put_table("refimage_cat", "refimage_cat.parquet", catalog)
    timings["write_reference"] = time.perf_counter() - t0
    meta = {key: (None if value is None else (float(value) if isinstance(value, float) else value))
            for key, value in built.meta.items()}
    result = RefImageResult(
        field=spec.tile.field, fid=spec.science.fid, image="refimage", coverage="refimage_cov",
        uncertainty="refimage_unc", psf=psf_name, catalog="refimage_cat",
        input_rids=[item.rid for item in spec.reference_inputs], meta=_plain(meta))
    mask = built.coverage < MIN_REFERENCE_COVERAGE
    return Frame(data=ref.data, wcs=ref.wcs, psf=ref.psf, unc=ref.unc, mask=mask,
                 meta={**ref.meta, "zptmag": spec.reference_zero_point}), result


def _plain(meta: dict) -> dict[str, float | int | None]:
    """Numbers only (numpy scalars made plain; NaN becomes None) so the manifest is valid JSON."""
    out: dict[str, float | int | None] = {}
    for key, value in meta.items():
        if value is None or isinstance(value, (str, bytes)):
            continue
        value = value.item() if hasattr(value, "item") else value
        if isinstance(value, float) and not np.isfinite(value):
            out[key] = None
        elif isinstance(value, (int, float)):
            out[key] = value
    return out


def run_science(spec: ScienceSpec) -> Manifest:
    """Run the science steps for ``spec``; returns the manifest (not yet written)."""
    from rapid.science.cautions import difference_cautions
    from rapid.science.config import DifferenceConfig
    from rapid.science.difference import NoOverlapError, difference_images

    started = datetime.now(timezone.utc)
    out = ProductWriter(spec.product_prefix)
    timings: dict[str, float] = {}
    refimage: RefImageResult | None = None
    diffimage: DiffImageResult | None = None
    exitcode, message = exitcodes.OK, ""
    try:
        with ExitStack() as stack:
            t0 = time.perf_counter()
            sci = _load_image(stack, spec.science)
            timings["read_science"] = time.perf_counter() - t0
            if spec.reference is not None:
                t0 = time.perf_counter()
                ref = _load_reference(stack, spec)
                timings["read_reference"] = time.perf_counter() - t0
            elif spec.reference_inputs:
                ref, refimage = _build_reference(stack, spec, out, timings)
            else:
                raise NoOverlapError("the spec names no reference and no images to build one")
            config = DifferenceConfig()
            config = _with_detection(config, spec)
            result = difference_images(sci, ref, config=config)
            timings.update({f"diff.{k}": v for k, v in result.timings.items()})
            cautions = difference_cautions(result.meta)
            for note in cautions:
                log.warning("science job %s: %s", spec.jid, note)
            message = "; ".join(cautions)  # recorded with the job: its fluxes rest on a guess
            t0 = time.perf_counter()
            diffimage = _write_difference(spec, sci, result, out)
            timings["write_products"] = time.perf_counter() - t0
    except NoOverlapError as exc:
        exitcode, message = exitcodes.NO_REFERENCE, f"no reference possible: {exc}"
    except InputError as exc:
        exitcode, message = exitcodes.BAD_INPUT, str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure becomes an error exit code in the manifest
        log.exception("science job %s failed", spec.jid)
        exitcode, message = exitcodes.ERROR, f"{type(exc).__name__}: {exc}"
    return Manifest(kind="science", jid=spec.jid, exitcode=exitcode, message=message,
                    started=started, ended=datetime.now(timezone.utc), products=out.products,
                    refimage=refimage, diffimage=diffimage, timings=timings,
                    software_version=spec.software_version)


def _with_detection(config, spec: ScienceSpec):  # noqa: ANN001, ANN202
    """The difference config with the spec's detection threshold and minimum area."""
    from dataclasses import fields, is_dataclass, replace

    for f in fields(config):
        sub = getattr(config, f.name)
        if is_dataclass(sub) and hasattr(sub, "threshold") and hasattr(sub, "minarea"):
            return replace(config, **{f.name: replace(sub, threshold=spec.detection_threshold,
                                                       minarea=spec.detection_minarea)})
    return config


def _write_difference(spec: ScienceSpec, sci: Frame, result, out: ProductWriter) -> DiffImageResult:  # noqa: ANN001
    diff = result.diff
    header = {"RID": spec.science.rid, "EXPID": spec.science.expid, "SCA": spec.science.sca,
              "FILTER": spec.science.filter, "FIELD": spec.tile.field, "BUNIT": "DN/s",
              "MJD-OBS": spec.science.mjdobs}
    out.put_image("diffimage", "diffimage_masked.fits", diff.data, diff.wcs, header=header)
    out.put_image("diffimage_unc", "diffimage_uncert_masked.fits", diff.unc, diff.wcs,
                  header={"BUNIT": "DN/s"})
    out.put_psf("diffpsf", "diffpsf.fits", diff.psf, diff.psf_fine,
                cells=result.psf_cells_product())
    out.put_image("scorr", "scorrimage_masked.fits", result.scorr, diff.wcs)
    out.put_image("refimage_resampled", "refimage_resampled.fits", result.ref_resampled.data,
                  diff.wcs)
    out.put_table("candidates", "candidates.parquet", result.candidates)
    ny, nx = sci.shape
    ra, dec = sci.wcs.all_pix2world([(nx - 1) / 2, 0, nx - 1, nx - 1, 0],
                                    [(ny - 1) / 2, 0, 0, ny - 1, ny - 1], 0)
    ra = np.mod(ra, 360.0)
    return DiffImageResult(
        rid=spec.science.rid, rfid=spec.reference.rfid if spec.reference else None,
        mjdobs=spec.science.mjdobs,
        image="diffimage", uncertainty="diffimage_unc", psf="diffpsf", scorr="scorr",
        catalog="candidates", ra0=float(ra[0]), dec0=float(dec[0]),
        ra_corners=[float(v) for v in ra[1:]], dec_corners=[float(v) for v in dec[1:]],
        meta=_plain(result.meta))
