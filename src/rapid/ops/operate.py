"""The long-running operator: take new data as it arrives and run the four steps on it, unattended.

Each cycle optionally ingests a watched folder (ingest is idempotent, so files seen before are
skipped), finds the best L2 images that no science job has taken yet, and runs the bulk run on them
under today's processing date (America/Los_Angeles, as RAPID): launch, wait, register, post-process,
register. It then sleeps and starts again. A stop request (SIGTERM, SIGINT) is honoured between
polls and while sleeping; every step is idempotent, so what was in flight is finished by the next
start.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from rapid.db import bulk
from rapid.ops.context import OpsContext
from rapid.ops.retry import in_transaction
from rapid.ops.run import RunReport, run_range
from rapid.ops.times import procdate_as_date, procdate_today

Log = Callable[[str], None]


class Stopped(Exception):
    """The operator was asked to stop."""


@dataclass
class CycleReport:
    procdate: str
    ingested: int = 0
    run: RunReport | None = None  # None when there was nothing new


@dataclass
class Operator:
    """Runs cycles until asked to stop.

    Parameters
    ----------
    ctx : OpsContext
    watch : path, optional
        Folder of L2 files to ingest at the start of every cycle.
    interval : float, optional
        Seconds to sleep between cycles. Default 60.
    log : callable, optional
        Receives one line per event.
    """

    ctx: OpsContext
    watch: Path | None = None
    interval: float = 60.0
    log: Log = print
    stop_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise ValueError(f"interval must be >= 0, got {self.interval}")
        if self.watch is not None and not Path(self.watch).is_dir():
            raise ValueError(f"watch: {self.watch} is not a folder")

    def stop(self, *_args: object) -> None:
        """Ask the operator to stop (also the SIGTERM handler)."""
        self.stop_event.set()

    def _sleep(self, seconds: float) -> None:
        if self.stop_event.wait(seconds):
            raise Stopped()

    def cycle(self, now: datetime | None = None) -> CycleReport:
        """One cycle: ingest, then run the four steps on the images no science job has taken."""
        procdate = procdate_today(now)
        report = CycleReport(procdate)
        if self.watch is not None:
            from rapid.ingest.register import ingest_paths

            ingested = ingest_paths(self.ctx.db, [Path(self.watch)])
            report.ingested = len(ingested.added)
            if ingested.added or ingested.errors:
                self.log(f"ingested {len(ingested.added)} new files from {self.watch}, "
                         f"{len(ingested.errors)} failed")
        pdate = procdate_as_date(procdate)
        span = in_transaction(self.ctx.db, lambda conn: bulk.unprocessed_range(
            conn, procdate=pdate))
        if span is None:
            return report
        start, end = span[0], span[1] + timedelta(microseconds=1)
        self.log(f"procdate {procdate}: images observed {start:%Y-%m-%d %H:%M:%S} .. "
                 f"{span[1]:%Y-%m-%d %H:%M:%S} to process")
        report.run = run_range(self.ctx, start, end, procdate, log=self.log, only_new=True,
                               sleep=self._sleep)
        return report

    def run(self, *, once: bool = False) -> list[CycleReport]:
        """Cycle until stopped (or once); returns the reports of the cycles that completed."""
        done: list[CycleReport] = []
        try:
            while not self.stop_event.is_set():
                done.append(self.cycle())
                if once:
                    break
                self._sleep(self.interval)
        except Stopped:
            self.log("stopping: asked to stop; jobs in flight are finished by the next start")
        return done

    def install_signal_handlers(self) -> None:
        """Stop cleanly on SIGTERM and SIGINT (main thread only)."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
