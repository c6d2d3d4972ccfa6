"""The ``rapid`` command: argument parsing and printing, one short function per verb."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from rapid import __version__
from rapid.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="rapid: the Roman WFI transient pipeline. Ingest L2 images, build reference images, "
         "difference, detect and measure candidates, and run RAPID's four-step bulk run "
         "(launch science, register, launch post-processing, register) unattended.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Operations database administration.", no_args_is_help=True)
sky_app = typer.Typer(help="Sky tiles (the Roman tessellation, NSIDE 512).", no_args_is_help=True)
launch_app = typer.Typer(help="Launch pipelines (steps 1 and 3 of a bulk run).", no_args_is_help=True)
register_app = typer.Typer(help="Register finished jobs (steps 2 and 4).", no_args_is_help=True)
job_app = typer.Typer(help="Run one job (what every engine executes).", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(sky_app, name="sky")
app.add_typer(launch_app, name="launch")
app.add_typer(register_app, name="register")
app.add_typer(job_app, name="job")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj["settings"]


def _ops(ctx: typer.Context):  # noqa: ANN202
    from rapid.ops.context import OpsContext

    return OpsContext(_settings(ctx))


@app.callback()
def _root(ctx: typer.Context,
          config: Optional[Path] = typer.Option(None, "--config", "-c",
                                                help="TOML settings file (default: $RAPID_CONFIG "
                                                     "or ./rapid.toml)."),
          version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        out.print(f"rapid {__version__}")
        raise typer.Exit()
    try:
        ctx.obj = {"settings": load_settings(config)}
    except ConfigError as exc:
        raise UserError(str(exc)) from None


# --- config, db, sky -------------------------------------------------------------------------------
@config_app.command("show")
def config_show(ctx: typer.Context,
                as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the effective configuration (passwords masked)."""
    data = _settings(ctx).to_dict()
    if as_json:
        print(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                out.print(f"{key}.{sub} = {subvalue!r}")
        else:
            out.print(f"{key} = {value!r}")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the operations database to the newest schema (and seed it)."""
    from rapid.config import mask_url
    from rapid.db.connect import current_revision, open_database

    engine = open_database(_settings(ctx).database_url)
    with engine.connect() as conn:
        out.print(f"{mask_url(_settings(ctx).database_url)} at revision {current_revision(conn)}")


@sky_app.command("field", context_settings={"ignore_unknown_options": True})
def sky_field(ra: float = typer.Argument(..., help="Right ascension, degrees."),
              dec: float = typer.Argument(..., help="Declination, degrees."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the sky tile (field) holding RA, DEC, with its centre and bounds."""
    from rapid.sky import field_of, hp6, hp9, tile

    t = tile(int(field_of(ra, dec)))
    info = {"field": t.field, "ra0": t.ra0, "dec0": t.dec0, "ra_min": t.bounds[0],
            "ra_max": t.bounds[1], "dec_min": t.bounds[2], "dec_max": t.bounds[3],
            "hp6": int(hp6(t.ra0, t.dec0)), "hp9": int(hp9(t.ra0, t.dec0))}
    if as_json:
        print(json.dumps(info))
        return
    out.print(f"field {t.field}: centre ({t.ra0:.6f}, {t.dec0:.6f}), "
              f"RA {t.bounds[0]:.6f} .. {t.bounds[1]:.6f}, Dec {t.bounds[2]:.6f} .. {t.bounds[3]:.6f}, "
              f"hp6 {info['hp6']}, hp9 {info['hp9']}")


# --- ingest and simulate -------------------------------------------------------------------------
@app.command()
def ingest(ctx: typer.Context,
           paths: list[Path] = typer.Argument(
               ..., help="L2 files (FITS or Roman ASDF) or folders (searched recursively). A FITS "
                         "image (HDU SCI, else the first 2-D extension) needs DATE-OBS or MJD-OBS, "
                         "EXPTIME, FILTER (F158 or H158, ...), SCA (1-18) and a celestial WCS; "
                         "ZPTMAG and PSFFILE (its PSF file) are read when there.")) -> None:
    """Register L2 images in the operations database (idempotent); a file that cannot be used
    is reported on one line and the others go on."""
    from rapid.db.connect import open_database
    from rapid.ingest.register import ingest_paths

    for path in paths:
        if not path.exists():
            raise UserError(f"{path}: no such file or folder")
    engine = open_database(_settings(ctx).database_url)

    def show(path: Path, outcome: str) -> None:
        if outcome.startswith("error"):
            err.print(f"rapid: {path}: {outcome[len('error: '):]}", highlight=False, markup=False)

    report = ingest_paths(engine, paths, on_file=show)
    out.print(f"ingested {len(report.added)} new, {len(report.unchanged)} unchanged, "
              f"{len(report.errors)} failed")
    if report.errors:
        raise typer.Exit(1)


@app.command()
def simulate(out_dir: Path = typer.Option(..., "--out", help="Folder to write the survey into."),
             fields: int = typer.Option(2, help="Number of sky tiles."),
             filters: str = typer.Option("H158", help="Comma-separated filters, e.g. H158,F184."),
             epochs: int = typer.Option(6, help="Epochs per field and filter."),
             scas: str = typer.Option("1", help="Comma-separated SCAs (1..18)."),
             size: int = typer.Option(4088, help="Image size in pixels (a central cutout of the "
                                                 "SCA when below 4088)."),
             seed: int = typer.Option(1, help="Random seed: the same seed writes the same bytes."),
             ) -> None:
    """Write a synthetic Roman survey: L2 images, PSF files and a truth table."""
    from rapid.sim import simulate_survey

    try:
        sca_list = tuple(int(s) for s in scas.split(",") if s.strip())
    except ValueError:
        raise UserError(f"--scas must be comma-separated integers, got {scas!r}") from None
    filter_list = tuple(f.strip() for f in filters.split(",") if f.strip())
    summary = simulate_survey(out_dir, fields=fields, filters=filter_list, epochs=epochs,
                              scas=sca_list, size=size, seed=seed)
    out.print(f"wrote {len(summary.images)} images, {len(summary.psfs)} PSF files and "
              f"{summary.truth} under {out_dir}")


# --- the four steps ------------------------------------------------------------------------------
def _procdate(value: str | None) -> str:
    from rapid.ops.times import parse_procdate, procdate_today

    return parse_procdate(value) if value else procdate_today()


@launch_app.command("science")
def launch_science_cmd(ctx: typer.Context,
                       start: str = typer.Option(..., help="Observation start, UTC, e.g. "
                                                           "'2028-09-07 00:00:00'."),
                       end: str = typer.Option(..., help="Observation end, UTC."),
                       procdate: Optional[str] = typer.Option(None, help="Processing date YYYYMMDD "
                                                              "(default: today, Pacific time)."),
                       ) -> None:
    """Step 1: launch one science job (ppid 15) per best L2 image observed in the range."""
    from rapid.ops.launch_science import launch_science
    from rapid.ops.times import parse_range

    t0, t1 = parse_range(start, end)
    pdate = _procdate(procdate)
    report = launch_science(_ops(ctx), t0, t1, pdate)
    if report.total_images == 0:
        raise UserError(f"no L2 images observed between {start} and {end}")
    out.print(f"procdate {pdate}: {len(report.launched)} science jobs launched "
              f"({len(report.building_reference)} building references), "
              f"{len(report.no_reference)} closed with exit 33 (no reference possible), "
              f"{report.deferred} deferred until their reference is registered, "
              f"{report.skipped} already done or in flight")


@register_app.command("science")
def register_science_cmd(ctx: typer.Context,
                         procdate: str = typer.Argument(..., help="Processing date YYYYMMDD.")) -> None:
    """Step 2: register the finished science jobs of PROCDATE and their products."""
    from rapid.ops.register_science import register_science

    report = register_science(_ops(ctx), _procdate(procdate))
    out.print(f"{len(report.closed)} jobs closed, {len(report.refimages)} reference images, "
              f"{len(report.diffimages)} difference images registered, {report.pending} still running")
    for jid, problem in report.problems.items():
        err.print(f"jid {jid}: {problem}", markup=False, highlight=False)


@launch_app.command("postproc")
def launch_postproc_cmd(ctx: typer.Context,
                        procdate: str = typer.Argument(..., help="Processing date YYYYMMDD.")) -> None:
    """Step 3: launch post-processing (ppid 17) for the normally-ended science jobs of PROCDATE."""
    from rapid.ops.postproc import launch_postproc

    report = launch_postproc(_ops(ctx), _procdate(procdate))
    out.print(f"{len(report.launched)} post-processing jobs launched, {report.skipped} already done "
              f"or in flight")


@register_app.command("postproc")
def register_postproc_cmd(ctx: typer.Context,
                          procdate: str = typer.Argument(..., help="Processing date YYYYMMDD.")) -> None:
    """Step 4: register the finished post-processing jobs of PROCDATE."""
    from rapid.ops.postproc import register_postproc

    report = register_postproc(_ops(ctx), _procdate(procdate))
    out.print(f"{len(report.closed)} jobs closed, {report.stamped} products stamped, "
              f"{report.pending} still running")


@app.command()
def run(ctx: typer.Context,
        start: str = typer.Option(..., help="Observation start, UTC."),
        end: str = typer.Option(..., help="Observation end, UTC."),
        procdate: Optional[str] = typer.Option(None, help="Processing date YYYYMMDD (default: "
                                                          "today, Pacific time)."),
        ) -> None:
    """Run the four steps in order, waiting for each batch of jobs, until nothing is left."""
    from rapid.ops.times import parse_range

    t0, t1 = parse_range(start, end)
    _run_and_report(ctx, t0, t1, _procdate(procdate))


def _run_and_report(ctx: typer.Context, t0, t1, pdate: str):  # noqa: ANN001, ANN202
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rapid.ops.run import run_range

    ops = _ops(ctx)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False,
                  disable=not err.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = run_range(ops, t0, t1, pdate, progress=progress, log=lambda m: err.print(m))
    out.print(f"procdate {pdate}: {report.science_launched} science jobs in {report.rounds} rounds, "
              f"{report.no_reference} without reference, {report.refimages} reference images, "
              f"{report.diffimages} difference images, {report.postproc_launched} post-processing "
              f"jobs, {report.stamped} products stamped")
    for jid, problem in report.problems.items():
        err.print(f"jid {jid}: {problem}", markup=False, highlight=False)
    return ops, report


@app.command()
def status(ctx: typer.Context,
           procdate: Optional[str] = typer.Argument(None, help="Processing date YYYYMMDD "
                                                               "(default: all)."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Jobs by pipeline, state and exit code, and the products registered."""
    from rapid.ops.status import summary

    data = summary(_ops(ctx), _procdate(procdate) if procdate else None)
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    table = Table(title=f"jobs{' of ' + data['procdate'] if data['procdate'] else ''}")
    for col in ("pipeline", "state", "exit code", "meaning", "jobs"):
        table.add_column(col)
    for row in data["jobs"]:
        table.add_row(row["pipeline"], row["state"], str(row["exitcode"]), row["meaning"],
                      str(row["count"]))
    out.print(table)
    out.print(f"reference images {data['refimages']}, difference images {data['diffimages']}, "
              f"candidates {data['candidates']}")
    from rapid.cli_ops import print_times

    print_times(data)


# --- jobs and stand-alone science ----------------------------------------------------------------
@job_app.command("run")
def job_run(spec_uri: Optional[str] = typer.Argument(
        None, help="URI of the job spec (file://, s3://). Omitted in an AWS Batch array child: "
                   "taken from $RAPID_SPEC_INDEX at $AWS_BATCH_JOB_ARRAY_INDEX.")) -> None:
    """Run one job from its spec: write its products, then its manifest."""
    from rapid.engines.awsbatch import spec_uri_from_environment
    from rapid.jobs.run import run_job
    from rapid.process_memory import keep_freed_memory

    keep_freed_memory()  # the process runs this one job and exits
    uri = spec_uri or spec_uri_from_environment()
    if not uri:
        raise UserError("give SPEC_URI or set RAPID_SPEC_INDEX (AWS Batch array jobs)")
    raise typer.Exit(run_job(uri))


@app.command()
def diff(sci: Path = typer.Argument(..., help="Science image: FITS from any telescope with a "
                                               "celestial WCS, or Roman L2 ASDF (*.asdf). "
                                               "FILE[N], FILE[NAME] or FILE[NAME,VER] picks "
                                               "one HDU (a CCD of a mosaic) of any FITS "
                                               "file here."),
         ref: Path = typer.Argument(..., help="Reference image, FITS or Roman L2 ASDF."),
         out_dir: Path = typer.Option(..., "--out", help="Folder for diff.fits, scorr.fits, "
                                                         "diff_psf.fits, candidates.parquet."),
         sci_psf: Optional[Path] = typer.Option(None, help="PSF of the science image: a FITS "
                                                           "stamp (OVERSAMP = finer sampling) "
                                                           "or a PSFEx model (*.psf)."),
         ref_psf: Optional[Path] = typer.Option(None, help="PSF of the reference image, as "
                                                           "--sci-psf."),
         sci_unc: Optional[Path] = typer.Option(None, help="1-sigma uncertainty image of a FITS "
                                                           "science image (default: its ERR "
                                                           "extension, else the square root of "
                                                           "its VARIANCE one)."),
         ref_unc: Optional[Path] = typer.Option(None, help="Uncertainty image of a FITS "
                                                           "reference."),
         threshold: float = typer.Option(5.0, help="Lowest detection threshold on Scorr, sigma."),
         false_alarms: float = typer.Option(
             0.25, help="Noise false alarms per million pixels and sign the threshold admits; "
                        "raises the threshold for sharp PSFs (0: keep --threshold)."),
         psf_cells: int = typer.Option(
             512, help="Largest cells, pixels, in which a PSF estimated from the stars is "
                       "refitted when it varies across the image (0: one PSF for the image)."),
         ) -> None:
    """Difference two images stand-alone: resample, match, ZOGY, detect, measure."""
    from dataclasses import replace

    from rapid.process_memory import keep_freed_memory
    from rapid.science.cautions import difference_cautions
    from rapid.science.config import DifferenceConfig
    from rapid.science.standalone import run_diff

    from rapid.io.frame import split_extension

    for path in (sci, ref, sci_psf, ref_psf, sci_unc, ref_unc):
        file = split_extension(path)[0] if path is not None else None
        if file is not None and not file.is_file():
            raise UserError(f"{file}: no such file")
    if not threshold > 0:
        raise UserError(f"--threshold must be > 0, got {threshold}")
    if not false_alarms >= 0:
        raise UserError(f"--false-alarms must be >= 0, got {false_alarms}")
    if psf_cells < 0:
        raise UserError(f"--psf-cells must be >= 0, got {psf_cells}")
    keep_freed_memory()  # the process does this one difference and exits
    base = DifferenceConfig()
    config = replace(base, detect=replace(base.detect, threshold=threshold,
                                          false_alarm_rate=false_alarms),
                     psf=replace(base.psf, cell_size=psf_cells))
    result = run_diff(sci, ref, out_dir, sci_psf=sci_psf, ref_psf=ref_psf, sci_unc=sci_unc,
                      ref_unc=ref_unc, config=config)
    for note in difference_cautions(result.meta):
        err.print(f"rapid: warning: {note}", markup=False, highlight=False)
    cells, streaks = result.meta["psf_cells"], result.meta["nstreaks"]
    out.print(f"{len(result.candidates)} candidates above Scorr "
              f"{result.meta['detect_threshold']:.2f}"
              + (f" (PSF fitted in {cells} cells)" if cells > 1 else "")
              + (f"; {streaks} trail{'s' if streaks > 1 else ''} found, "
                 f"{result.meta['nstreaked']} candidates on them dropped" if streaks else "")
              + f"; products in {out_dir}")


@app.command()
def demo(ctx: typer.Context,
         size: int = typer.Option(512, help="Image size of the simulated survey, pixels."),
         epochs: int = typer.Option(6, help="Epochs per field."),
         seed: int = typer.Option(1, help="Random seed of the simulated survey."),
         transients: int = typer.Option(10, help="Transients injected per image.")) -> None:
    """Simulate a small survey (2 fields), ingest it, run it, and summarise what was found."""
    from rapid.demo import run_demo

    if transients < 0:
        raise UserError(f"--transients must be >= 0, got {transients}")
    run_demo(ctx.obj["settings"], size=size, epochs=epochs, seed=seed, transients=transients,
             console=out, progress_console=err)


# Verbs of other areas register themselves on ``app`` (each module imports it from here).
from rapid import cli_ops, cli_science  # noqa: E402,F401


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    from sqlalchemy.exc import OperationalError

    from rapid.store import StoreError

    try:
        # Outside standalone mode a command's typer.Exit comes back as its exit code.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except (UserError, ConfigError, ValueError, StoreError) as exc:
        err.print(f"rapid: error: {exc}", markup=False, highlight=False)
        sys.exit(2)
    except OperationalError as exc:
        err.print(f"rapid: error: database unavailable: {exc.orig}", markup=False, highlight=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        if hasattr(exc, "show"):
            exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
