"""The unattended bulk run: the four steps in order, each batch waited for, until nothing is left.

Science jobs are launched in rounds: the first round launches every image that has a reference and,
per (field, filter) without one, the single earliest image that builds it; later rounds launch the
images deferred until those references were registered, and relaunch failed jobs while attempts
remain. Post-processing follows the same pattern. Every step is idempotent, so a run that was stopped
at any moment is finished by running it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from rapid.ops.context import OpsContext
from rapid.ops.launch_science import LaunchReport, launch_science
from rapid.ops.postproc import launch_postproc, register_postproc
from rapid.ops.register_science import register_science
from rapid.ops.wait import wait_for_jobs

PPID_SCIENCE = 15
PPID_POSTPROC = 17

# stage name, finished, total
StageProgress = Callable[[str, int, int], None]
Log = Callable[[str], None]


@dataclass
class RunReport:
    rounds: int = 0
    science_launched: int = 0
    no_reference: int = 0
    refimages: int = 0
    diffimages: int = 0
    postproc_launched: int = 0
    stamped: int = 0
    problems: dict[int, str] = field(default_factory=dict)


def run_range(ctx: OpsContext, start: datetime, end: datetime, procdate: str, *,
              progress: StageProgress | None = None, log: Log | None = None,
              max_rounds: int = 20, only_new: bool = False,
              sleep: Callable[[float], None] = time.sleep) -> RunReport:
    """Run the four steps for observations in ``start``..``end`` under ``procdate``.

    Parameters
    ----------
    ctx : OpsContext
    start, end : datetime
        Observation range (inclusive, timezone-aware).
    procdate : str
        Processing date ``YYYYMMDD``.
    progress : callable, optional
        ``progress(stage, finished, total)`` after every poll.
    log : callable, optional
        Receives one line per round.
    max_rounds : int, optional
        Launch rounds per pipeline at most. Default 20.
    only_new : bool, optional
        Leave out images processed under another processing date. Default False.
    sleep : callable, optional
        Pause between polls (an operator that is asked to stop raises from it). Default
        ``time.sleep``.

    Returns
    -------
    RunReport
    """
    say = log or (lambda _msg: None)
    report = RunReport()

    def waiter(stage: str, ppid: int) -> None:
        wait_for_jobs(ctx, procdate, ppid, sleep=sleep,
                      progress=(lambda done, total: progress(stage, done, total)) if progress else None)

    # Jobs of an earlier, interrupted run are waited for and registered before anything new.
    waiter("science", PPID_SCIENCE)
    reg = register_science(ctx, procdate)
    report.problems.update(reg.problems)
    for round_no in range(1, max_rounds + 1):
        launched: LaunchReport = launch_science(ctx, start, end, procdate, only_new=only_new)
        report.rounds = round_no
        report.science_launched += len(launched.launched)
        report.no_reference += len(launched.no_reference)
        say(f"science round {round_no}: {len(launched.launched)} launched "
            f"({len(launched.building_reference)} building references), "
            f"{len(launched.no_reference)} without reference (exit 33), "
            f"{launched.deferred} deferred, {launched.skipped} already done or in flight")
        if not launched.launched:
            break
        waiter("science", PPID_SCIENCE)
        reg = register_science(ctx, procdate)
        report.refimages += len(reg.refimages)
        report.diffimages += len(reg.diffimages)
        report.problems.update(reg.problems)
        say(f"registered {len(reg.closed)} science jobs: {len(reg.refimages)} reference images, "
            f"{len(reg.diffimages)} difference images")

    waiter("post-processing", PPID_POSTPROC)
    register_postproc(ctx, procdate)
    for _ in range(max_rounds):
        post = launch_postproc(ctx, procdate)
        report.postproc_launched += len(post.launched)
        say(f"post-processing: {len(post.launched)} launched, {post.skipped} already done")
        if not post.launched:
            break
        waiter("post-processing", PPID_POSTPROC)
        preg = register_postproc(ctx, procdate)
        report.stamped += preg.stamped
        report.problems.update(preg.problems)
        say(f"registered {len(preg.closed)} post-processing jobs, {preg.stamped} products stamped")
    return report
