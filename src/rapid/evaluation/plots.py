"""PNG plots of an evaluation: completeness curves and false positives against the threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import ndtr

from rapid.evaluation.completeness_fit import fit_completeness
from rapid.evaluation.fom import completeness_curve
from rapid.evaluation.quality import Matched


def write_plots(matched: Matched, out_dir: str | Path) -> list[Path]:
    """Write completeness_snr.png, completeness_mag.png and false_positives.png.

    completeness_snr.png shows completeness against the difference-image S/N (``snr_diff``,
    see :mod:`rapid.evaluation.diffsnr`), with the fitted curve of
    :func:`rapid.evaluation.completeness_fit.fit_completeness`; objects without one (masked)
    are left out.

    Parameters
    ----------
    matched : Matched
        From :func:`rapid.evaluation.quality.match_catalogs`.
    out_dir : str or Path
        Folder (created).

    Returns
    -------
    list of Path
        The files written.
    """
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t, c = matched.truth, matched.cands
    filters = sorted(set(matched.images.tolist()))
    written = []

    fig, ax = plt.subplots(figsize=(6, 4))
    edges = np.array([0, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 50, 100])
    for f in filters:
        sel = (t["filter"] == f) & np.isfinite(t["snr_diff"])
        counts, _ = np.histogram(t["snr_diff"][sel], edges)
        hits, _ = np.histogram(t["snr_diff"][sel & t["found"]], edges)
        with np.errstate(invalid="ignore"):
            line, = ax.step(edges[:-1], hits / np.maximum(counts, 1), where="post", label=f)
        fit = fit_completeness(t["snr_diff"][sel], t["found"][sel])
        if fit is not None:
            s = np.geomspace(1.0, 100.0, 300)
            ax.plot(s, ndtr((s - fit["snr50"]) / fit["width"]), ls="--", c=line.get_color(),
                    label=f"{f} fit: 50% at S/N {fit['snr50']:.2f}, width {fit['width']:.2f}")
    ax.axvline(5, ls=":", c="gray")
    ax.axvline(10, ls=":", c="gray")
    ax.set(xscale="log", xlabel="difference-image S/N", ylabel="completeness", ylim=(0, 1.05))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend()
    written.append(out / "completeness_snr.png")
    fig.savefig(written[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for f in filters:
        sel = t["filter"] == f
        centres, comp, _ = completeness_curve(t["mag"][sel], t["found"][sel])
        ax.plot(centres, comp, marker="o", label=f)
    ax.set(xlabel="magnitude of the flux change", ylabel="completeness", ylim=(0, 1.05))
    ax.legend()
    written.append(out / "completeness_mag.png")
    fig.savefig(written[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    levels = np.linspace(3, 20, 69)
    for f in filters:
        n_img = max(int(np.sum(matched.images == f)), 1)
        score = np.nan_to_num(c["score"][(c["filter"] == f) & c["false"]])
        ax.plot(levels, [(score >= s).sum() / n_img for s in levels], label=f)
    ax.axhline(10, ls=":", c="gray")
    ax.set(xlabel="|Scorr| threshold", ylabel="false positives per image", yscale="symlog")
    ax.legend()
    written.append(out / "false_positives.png")
    fig.savefig(written[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return written
