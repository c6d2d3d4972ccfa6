"""``rapid bench science``: the science job's wall time and peak memory on one simulated image.

The benchmark simulates (once, cached) a one-field survey of ``frames + 1`` epochs with
:func:`rapid.sim.simulate_survey`, then runs :func:`rapid.science.job.run_science` in-process on
the last epoch, either against a reference built beforehand from the first ``frames`` epochs
(``reference="existing"``; the build itself is not timed) or building that reference inside the
job (``reference="build"``). Each measured job runs in a fresh child process, so its peak
resident memory (``ru_maxrss``) is that of the job alone, not of the simulation; the child is
held to one CPU (affinity, and one thread per numerical library), so the figures are those of one
core whatever the machine.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

REFERENCE_MODES = ("existing", "build")


def _survey(cache: Path, size: int, frames: int, seed: int) -> Path:
    """The cached survey folder (simulated when absent or incomplete)."""
    from rapid.sim import simulate_survey

    folder = cache / f"survey-{size}-{frames + 1}-s{seed}"
    if not (folder / "survey.json").exists():
        # quiet_epochs >= frames keeps transients out of the reference inputs, as in operations
        simulate_survey(folder, fields=1, filters=("H158",), epochs=frames + 1, scas=(1,),
                        size=size, seed=seed, quiet_epochs=frames)
    return folder


def _image_input(path: Path, psf: Path, rid: int):  # noqa: ANN202
    from astropy.io import fits

    from rapid.jobs.spec import ImageInput
    from rapid.sky import field_of

    with fits.open(path) as hdul:
        hdr = hdul[0].header
        sci = hdul["SCI"]
        from astropy.wcs import WCS

        ny, nx = sci.shape
        ra, dec = WCS(sci.header).all_pix2world([(nx - 1) / 2], [(ny - 1) / 2], 0)
        return ImageInput(rid=rid, uri=path.resolve().as_uri(), checksum="", expid=rid, sca=1,
                          fid=1, filter="H158", field=int(field_of(float(ra[0]), float(dec[0]))),
                          mjdobs=float(hdr["MJD-OBS"]), exptime=float(hdr["EXPTIME"]),
                          psf_uri=psf.resolve().as_uri())


def _spec(folder: Path, frames: int, prefix: Path, reference=None):  # noqa: ANN001, ANN202
    from rapid.jobs.spec import ScienceSpec, TileGrid
    from rapid.sky import tile

    images = sorted((folder / "images" / "H158").glob("*.fits"))
    psf = next((folder / "psfs" / "H158").glob("*.fits"))
    inputs = [_image_input(p, psf, rid) for rid, p in enumerate(images, start=1)]
    sci, priors = inputs[-1], inputs[:-1][:frames]
    t = tile(sci.field)
    return ScienceSpec(jid=1, procdate="20280101", science=sci,
                       tile=TileGrid(field=sci.field, ra0=t.ra0, dec0=t.dec0),
                       reference=reference, reference_inputs=[] if reference else priors,
                       product_prefix=prefix.resolve().as_uri(),
                       log_uri=(prefix / "job.log").resolve().as_uri())


#: Thread pools held to one thread in the measured job (the child reads them at start-up).
_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def _run_job(spec_json: str) -> dict:
    """Child-process body: run one science job on one core, return its timings and peak memory."""
    if hasattr(os, "sched_setaffinity"):
        # one CPU, so that no library's threads make the wall time that of several cores
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from rapid.process_memory import keep_freed_memory

    keep_freed_memory()  # as ``rapid job run`` does
    t0 = time.perf_counter()
    from rapid.jobs.spec import ScienceSpec
    from rapid.science import difference, photometry, reference  # noqa: F401 - timed apart
    from rapid.science.job import run_science

    imports = time.perf_counter() - t0
    spec = ScienceSpec.from_json(spec_json)
    t0 = time.perf_counter()
    manifest = run_science(spec)
    total = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss_kb = usage.ru_maxrss
    if sys.platform == "darwin":  # bytes there, kilobytes on Linux
        rss_kb /= 1024
    ncand = (manifest.diffimage.meta.get("ncandidates") if manifest.diffimage else None)
    return {"exitcode": manifest.exitcode, "message": manifest.message,
            "steps": {k: round(v, 3) for k, v in manifest.timings.items()},
            "unaccounted_s": round(total - sum(manifest.timings.values()), 3),
            "total_s": round(total, 3), "imports_s": round(imports, 3),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "peak_rss_gb": round(rss_kb / 1024**2, 3),
            "ncandidates": ncand,
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "products": {p.name: p.uri for p in manifest.products}}


def _in_child(spec_json: str) -> dict:
    saved = {name: os.environ.get(name) for name in _ONE_THREAD}
    os.environ.update(_ONE_THREAD)
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            return pool.submit(_run_job, spec_json).result()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_benchmark(*, size: int = 4088, reference: str = "existing", frames: int = 25,
                  cache_dir: str | Path | None = None, seed: int = 1) -> dict:
    """Time the science job on a simulated image.

    Parameters
    ----------
    size : int, optional
        Image side in pixels (4088, a full SCA).
    reference : {"existing", "build"}, optional
        Difference against a reference built beforehand ("existing", default) or build the
        reference from ``frames`` prior images inside the timed job ("build").
    frames : int, optional
        Prior images coadded into the reference (25; 3..25 as in RAPID).
    cache_dir : str or Path, optional
        Where the simulated survey and the pre-built reference are kept between runs
        (default: ``<tmp>/rapid-bench``).
    seed : int, optional
        Simulation seed (1).

    Returns
    -------
    dict
        size, reference, frames, exitcode, message, steps (wall seconds per step),
        unaccounted_s (wall time outside the steps), total_s (wall seconds of the job),
        imports_s, cpu_s (CPU seconds of the job's process, imports included: on a busy
        machine the honest measure of one core's work), peak_rss_gb (peak resident memory of
        the job's process), ncandidates and cpus (the CPUs the job could run on: 1).
    """
    if not 64 <= int(size) <= 4088:
        raise ValueError(f"size must be within 64..4088, got {size!r}")
    if reference not in REFERENCE_MODES:
        raise ValueError(f"reference must be one of {REFERENCE_MODES}, got {reference!r}")
    if not 3 <= int(frames) <= 25:
        raise ValueError(f"frames must be within 3..25, got {frames!r}")
    cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "rapid-bench"
    cache.mkdir(parents=True, exist_ok=True)
    folder = _survey(cache, int(size), int(frames), int(seed))
    ref_input = None
    if reference == "existing":
        ref_input = _existing_reference(folder, int(frames))
    spec = _spec(folder, int(frames), folder / f"run-{reference}", reference=ref_input)
    result = _in_child(spec.to_json().decode() if isinstance(spec.to_json(), bytes)
                       else spec.to_json())
    result.pop("products", None)
    return {"size": int(size), "reference": reference, "frames": int(frames), **result}


def _existing_reference(folder: Path, frames: int):  # noqa: ANN202
    """The reference built (untimed, once) from the survey's first ``frames`` epochs."""
    from rapid.jobs.spec import ReferenceInput

    prefix = folder / "reference"
    names = {"refimage": "refimage.fits", "refimage_cov": "refimage_cov.fits",
             "refimage_unc": "refimage_unc.fits", "refimage_psf": "refimage_psf.fits"}
    if not all((prefix / n).exists() for n in names.values()):
        spec = _spec(folder, frames, prefix)
        built = _in_child(spec.to_json().decode() if isinstance(spec.to_json(), bytes)
                          else spec.to_json())
        if built["exitcode"] != 0:
            raise RuntimeError(f"building the benchmark reference failed: {built['message']}")
    uri = {k: (prefix / v).resolve().as_uri() for k, v in names.items()}
    return ReferenceInput(rfid=1, version=1, uri=uri["refimage"], coverage_uri=uri["refimage_cov"],
                          uncertainty_uri=uri["refimage_unc"], psf_uri=uri["refimage_psf"])


def benchmark_json(result: dict) -> str:
    """The benchmark result as one JSON line."""
    return json.dumps(result, sort_keys=False)
