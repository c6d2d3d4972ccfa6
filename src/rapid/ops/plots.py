"""Operators' plots: how long a day's jobs waited in the queue and ran."""

from __future__ import annotations

from pathlib import Path

from rapid.db.lookups import job_times
from rapid.ops.context import OpsContext
from rapid.ops.status import PIPELINES
from rapid.ops.times import procdate_as_date


def plot_times(ctx: OpsContext, procdate: str, path: str | Path, *, bins: int = 30) -> int:
    """Write histograms of run time and queue wait of the jobs of ``procdate`` to a PNG file.

    Parameters
    ----------
    ctx : OpsContext
    procdate : str
        Processing date ``YYYYMMDD``.
    path : path
        PNG file to write (its folder is created).
    bins : int, optional
        Histogram bins. Default 30.

    Returns
    -------
    int
        Number of job attempts with a recorded run time (nothing is written when 0).
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    with ctx.db.begin() as conn:
        rows = job_times(conn, procdate_as_date(procdate))
    timed = [r for r in rows if r.elapsed is not None]
    if not timed:
        return 0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_run, ax_wait) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ppid in sorted({r.ppid for r in rows}):
        name = PIPELINES.get(ppid, str(ppid))
        run = [r.elapsed for r in timed if r.ppid == ppid]
        wait = [r.qwait for r in rows if r.ppid == ppid and r.qwait is not None]
        if run:
            ax_run.hist(run, bins=bins, alpha=0.6, label=f"{name} ({len(run)})")
        if wait:
            ax_wait.hist(wait, bins=bins, alpha=0.6, label=f"{name} ({len(wait)})")
    ax_run.set(xlabel="run time (s)", ylabel="jobs", title=f"run time, procdate {procdate}")
    ax_wait.set(xlabel="queue wait (s)", ylabel="jobs", title=f"queue wait, procdate {procdate}")
    for ax in (ax_run, ax_wait):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return len(timed)
