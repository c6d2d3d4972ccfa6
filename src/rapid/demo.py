"""``rapid demo``: simulate a small survey, ingest it, run the four steps, summarise what was found."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

from rich.console import Console

from rapid.config import Settings


def run_demo(settings: Settings, *, size: int = 512, epochs: int = 6, seed: int = 1,
             transients: int = 10, console: Console, progress_console: Console) -> dict:
    """Run the demo under ``settings.workdir``; returns the summary it prints."""
    from rapid.db.connect import open_database
    from rapid.evaluation.recovery import transient_recovery
    from rapid.ingest.register import ingest_paths
    from rapid.ops.context import OpsContext
    from rapid.ops.run import run_range
    from rapid.ops.status import summary
    from rapid.sim import simulate_survey

    t_start = time.perf_counter()
    work = settings.workpath
    sim_dir = work / "demo-survey"
    console.print(f"[bold]rapid demo[/bold] in {work}")
    console.print(f"simulating 2 fields x {epochs} epochs of {size}x{size} H158 images ...")
    survey = simulate_survey(sim_dir, fields=2, filters=("H158",), epochs=epochs, scas=(1,),
                             size=size, seed=seed, transients_per_image=transients)
    engine = open_database(settings.database_url)
    report = ingest_paths(engine, [sim_dir / "images"])
    console.print(f"ingested {len(report.added)} images ({len(report.unchanged)} already there)")
    with engine.begin() as conn:
        from rapid.db import schema
        import sqlalchemy as sa

        lo, hi = conn.execute(sa.select(sa.func.min(schema.exposures.c.dateobs),
                                        sa.func.max(schema.exposures.c.dateobs))).one()
    procdate = hi.strftime("%Y%m%d")
    ctx = OpsContext(replace(settings))
    console.print(f"running the four steps for {lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M}, "
                  f"procdate {procdate} ...")
    run = run_range(ctx, lo - timedelta(seconds=1), hi + timedelta(seconds=1), procdate,
                    log=lambda msg: progress_console.print(f"  {msg}"))
    status = summary(ctx, procdate)
    rec = transient_recovery(ctx.db, str(survey.truth))
    elapsed = time.perf_counter() - t_start
    console.print("\n[bold]summary[/bold]")
    for row in status["jobs"]:
        console.print(f"  {row['pipeline']:>15} jobs, {row['state']:>9}, exit {row['exitcode']!s:>4} "
                      f"({row['meaning']}): {row['count']}")
    console.print(f"  reference images: {status['refimages']}")
    console.print(f"  difference images: {status['diffimages']}")
    console.print(f"  candidates: {status['candidates']}")
    console.print(f"  injected transients recovered: {rec.recovered} of {rec.transients} "
                  f"({100 * rec.fraction:.0f}%); with expected S/N >= {rec.bright_snr:g}: "
                  f"{rec.bright_recovered} of {rec.bright} ({100 * rec.bright_fraction:.0f}%)")
    console.print(f"  wall time: {elapsed:.0f} s")
    for jid, problem in run.problems.items():
        console.print(f"  jid {jid}: {problem}")
    return {"status": status, "recovery": rec, "elapsed": elapsed}
