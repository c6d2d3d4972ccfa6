"""`rapid` verbs of the science area, registered on the main app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rapid.cli import app, err, out, UserError, _settings, _ops  # noqa: F401

bench_app = typer.Typer(help="Measure the pipeline's speed and memory.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _pct(value) -> str:  # noqa: ANN001
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value, fmt: str = ".2f") -> str:  # noqa: ANN001
    return "n/a" if value is None else format(value, fmt)


@app.command()
def evaluate(ctx: typer.Context,
             truth: Path = typer.Option(..., help="truth.parquet of the simulated survey."),
             procdate: Optional[str] = typer.Option(None, help="Processing date YYYYMMDD of the "
                                                              "science jobs (default: all)."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON."),
             plots: Optional[Path] = typer.Option(None, help="Folder for PNG plots: "
                                                  "completeness vs the difference-image S/N "
                                                  "and vs magnitude, false positives."),
             radius: float = typer.Option(2.0, help="Matching radius, pixels."),
             ) -> None:
    """Measure registered candidates against a simulator's truth: completeness, false positives,
    photometric pulls, astrometry and the figure of merit, per filter and overall. Completeness
    is measured against the difference-image S/N: the true flux change over the
    uncertainty of an optimal PSF fit at the transient's position in the registered difference
    image (from its diffimage_unc and diffpsf products), reference noise included; besides bins,
    a fitted curve gives the S/N of 50% completeness and the completeness at S/N 5. Transients
    whose PSF core lies on a masked area are left out of it and of the figure of merit, and
    counted. Completeness against the simulator's exposure S/N (snr_expected, noiseless
    reference) is reported beside it under exposure_snr."""
    from rapid.evaluation.evaluate import evaluate_registered

    if not truth.exists():
        raise UserError(f"{truth}: no such file")
    pdate = None
    if procdate:
        from rapid.ops.times import parse_procdate, procdate_as_date

        pdate = procdate_as_date(parse_procdate(procdate))
    summary, matched = evaluate_registered(_ops(ctx).db, str(truth), procdate=pdate,
                                           radius=radius)
    if summary["overall"]["images"] == 0:
        raise UserError(f"no registered difference images{' of ' + procdate if procdate else ''}")
    if plots is not None:
        from rapid.evaluation.plots import write_plots

        write_plots(matched, plots)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    for name, s in [("overall", summary["overall"]), *summary["filters"].items()]:
        fom = s["fom"]
        exp = s["exposure_snr"]
        out.print(f"{name}: {s['images']} images, {s['objects']} objects, {s['found']} found; "
                  f"completeness vs difference-image S/N: >=10 {_pct(s['completeness_snr10'])}, "
                  f"5-7 {_pct(s['completeness_snr5'])}{_fitted(s['completeness_fit'])} "
                  f"({s['masked']} on masked areas left out); completeness vs exposure S/N "
                  f"(noiseless reference): >=10 "
                  f"{_pct(exp['completeness_snr10'])}, 5-7 {_pct(exp['completeness_snr5'])}; "
                  f"false positives/image "
                  f"{_num(s['fp_per_image'])}; pull median {_num(s['pull_median'])} robust std "
                  f"{_num(s['pull_robust_std'])} (at S/N >= 10: median "
                  f"{_num(s['pull_snr10']['median'])}, robust std "
                  f"{_num(s['pull_snr10']['robust_std'])}); astrometry rms "
                  f"{_num(s['astrometry_rms_arcsec'], '.3f')}\"; FoM {_num(fom['fom'])} "
                  f"(m_th {_num(fom['m_th'])}, m80 {_num(fom['m80'])}, m20 {_num(fom['m20'])}, "
                  f"m5sigma {_num(fom['m5sigma'])}, m_ph10 {_num(fom['m_ph10'])})",
                  highlight=False)


def _fitted(fit: dict | None) -> str:
    """The fitted completeness curve in words ('' when it could not be fitted)."""
    if fit is None:
        return ""
    return (f", 50% at S/N {fit['snr50']:.2f}+-{fit['snr50_err']:.2f} and "
            f"{_pct(fit['completeness_at'])}+-{100 * fit['completeness_at_err']:.0f}% at S/N "
            f"{fit['at']:g} (fitted)")


@bench_app.command("science")
def bench_science(size: int = typer.Option(4088, help="Image side, pixels."),
                  reference: str = typer.Option("existing", help="'existing' (built beforehand, "
                                                                  "untimed) or 'build'."),
                  frames: int = typer.Option(25, help="Prior images in the reference (3..25)."),
                  cache: Optional[Path] = typer.Option(None, help="Folder caching the simulated "
                                                                  "inputs (default: a temp folder)."),
                  ) -> None:
    """Time the science job on a simulated image; prints one JSON line (seconds per step, total,
    peak memory)."""
    from rapid.science.bench import benchmark_json, run_benchmark

    print(benchmark_json(run_benchmark(size=size, reference=reference, frames=frames,
                                       cache_dir=cache)))
