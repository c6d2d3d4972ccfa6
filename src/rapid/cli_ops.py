"""`rapid` verbs of the ops area, registered on the main app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rapid.cli import app, db_app, err, out, UserError, _settings, _ops  # noqa: F401
from rapid.cli_science import bench_app


@bench_app.command("ops")
def bench_ops_cmd(jobs: int = typer.Option(10000, "--jobs", help="No-op jobs to launch and "
                                                                  "register."),
                  database: Optional[str] = typer.Option(
                      None, "--database", help="PostgreSQL URL to measure on (a fresh schema "
                                               "is made and dropped); default a new SQLite file."),
                  ) -> None:
    """Launch and register N no-op jobs; print one JSON line with jobs/s of each step."""
    from rapid.ops.bench import bench_ops

    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    print(json.dumps(bench_ops(jobs, database_url=database)))


@app.command()
def operate(ctx: typer.Context,
            watch: Optional[Path] = typer.Option(None, "--watch", help="Folder of L2 files to "
                                                                       "ingest every cycle."),
            interval: float = typer.Option(60.0, "--interval", help="Seconds between cycles."),
            once: bool = typer.Option(False, "--once", help="Run one cycle and exit."),
            ) -> None:
    """Run unattended: ingest new data, run the four steps on it, sleep, repeat (stop: SIGTERM)."""
    from rapid.ops.operate import Operator

    try:
        operator = Operator(_ops(ctx), watch=watch, interval=interval,
                            log=lambda m: err.print(m, markup=False, highlight=False))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    operator.install_signal_handlers()
    cycles = operator.run(once=once)
    runs = [c.run for c in cycles if c.run is not None]
    out.print(f"{len(cycles)} cycles, {sum(r.science_launched for r in runs)} science jobs, "
              f"{sum(r.diffimages for r in runs)} difference images")


def _secs(value) -> str:  # noqa: ANN001
    return "-" if value is None else f"{value:.1f}"


def print_times(data: dict) -> None:
    """Tables of queue-wait and run-time statistics, the slowest and the failed jobs."""
    from rich.table import Table

    if data.get("times"):
        table = Table(title="times (s)")
        for col in ("pipeline", "jobs", "queue wait median", "p90", "max", "run time median",
                    "p90", "max"):
            table.add_column(col)
        for row in data["times"]:
            q, e = row["qwait"], row["elapsed"]
            table.add_row(row["pipeline"], str(e["count"]), _secs(q["median"]), _secs(q["p90"]),
                          _secs(q["max"]), _secs(e["median"]), _secs(e["p90"]), _secs(e["max"]))
        out.print(table)
    if data.get("slowest"):
        out.print("slowest: " + ", ".join(f"jid {r['jid']} ({r['pipeline']}, rid {r['rid']}) "
                                          f"{r['elapsed']:.1f} s" for r in data["slowest"]))
    if data.get("failed"):
        out.print(f"{len(data['failed'])} failed job attempts (rapid jobs --failed)")


@app.command()
def jobs(ctx: typer.Context,
         procdate: Optional[str] = typer.Argument(None, help="Processing date YYYYMMDD "
                                                             "(default: all)."),
         failed: bool = typer.Option(False, "--failed", help="Only the job attempts that "
                                                             "failed (exit code 64 and above)."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List job attempts that failed, and why (with --failed)."""
    from rich.table import Table

    from rapid.ops.status import failures
    from rapid.ops.times import parse_procdate

    if not failed:
        raise UserError("say which jobs: --failed (use `rapid status` for counts)")
    rows = failures(_ops(ctx), parse_procdate(procdate) if procdate else None)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"failed jobs{' of ' + procdate if procdate else ''}")
    for col in ("jid", "pipeline", "rid", "procdate", "attempt", "exit code", "meaning", "why"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["jid"]), r["pipeline"], str(r["rid"]), r["procdate"],
                      str(r["attempt"]), str(r["exitcode"]), r["meaning"], r["message"])
    out.print(table)
    out.print(f"{len(rows)} failed job attempts")


plot_app = typer.Typer(help="Operators' plots (PNG).", no_args_is_help=True)
app.add_typer(plot_app, name="plot")


@plot_app.command("times")
def plot_times_cmd(ctx: typer.Context,
                   procdate: str = typer.Argument(..., help="Processing date YYYYMMDD."),
                   out_file: Optional[Path] = typer.Option(
                       None, "--out", help="PNG file (default: times_PROCDATE.png)."),
                   ) -> None:
    """Histograms of run time and queue wait of the jobs of PROCDATE (PNG)."""
    from rapid.ops.plots import plot_times
    from rapid.ops.times import parse_procdate

    pdate = parse_procdate(procdate)
    path = out_file or Path(f"times_{pdate}.png")
    n = plot_times(_ops(ctx), pdate, path)
    if n == 0:
        raise UserError(f"no finished jobs with recorded times on {pdate}")
    out.print(f"{n} jobs plotted in {path}")


@db_app.command("roles")
def db_roles(ctx: typer.Context,
             prefix: str = typer.Option("rapid", help="Role-name prefix: PREFIX_admin, "
                                                      "PREFIX_operator, PREFIX_readonly."),
             password_file: list[str] = typer.Option(
                 [], "--password-file", help="KIND=FILE: let the role of KIND (admin, operator, "
                                             "readonly) log in with the password in FILE's "
                                             "first line. Repeatable."),
             ) -> None:
    """Create RAPID's three PostgreSQL roles (admin, operator without DELETE, read-only)."""
    from rapid.config import mask_url
    from rapid.db.connect import open_database
    from rapid.db.roles import create_roles

    passwords = {}
    for item in password_file:
        kind, sep, path = item.partition("=")
        if not sep or not path:
            raise UserError(f"--password-file must be KIND=FILE, got {item!r}")
        try:
            passwords[kind] = Path(path).read_text().splitlines()[0].strip()
        except (OSError, IndexError):
            raise UserError(f"--password-file {kind}: cannot read a password from {path}") from None
    url = _settings(ctx).database_url
    engine = open_database(url)
    try:
        if engine.dialect.name != "postgresql":
            raise UserError(f"{mask_url(url)} is not PostgreSQL; roles exist on PostgreSQL only")
        with engine.begin() as conn:
            names = create_roles(conn, prefix=prefix, passwords=passwords)
    finally:
        engine.dispose()
    for kind, role in names.items():
        login = "logs in (password set)" if kind in passwords else "group role (NOLOGIN)"
        out.print(f"{role}: {kind}, {login}")
