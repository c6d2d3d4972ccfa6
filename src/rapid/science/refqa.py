"""Quality figures and the source catalog of a reference image (RAPID's refimmeta, cattype 1)."""

from __future__ import annotations

import numpy as np
import sep
from astropy.stats import sigma_clip
from astropy.table import Table
from astropy.wcs import WCS

from rapid.science.extraction import extract

__all__ = ["extract_sources", "source_table", "image_stats", "fwhm_stats"]

# Aperture radius (pixels) of the catalog fluxes: ~2.5 FWHM of Roman's 1.2-1.5 px PSF.
APERTURE_RADIUS = 3.0


def extract_sources(data: np.ndarray, unc: np.ndarray | None, mask: np.ndarray | None, *,
                    thresh: float = 3.0, minarea: int = 5):
    """Run sep on an image after subtracting a residual background.

    Parameters
    ----------
    data : ndarray
        2-D image; NaN pixels are masked.
    unc : ndarray or None
        Per-pixel 1-sigma uncertainty; None uses the background rms.
    mask : ndarray or None
        Boolean map of pixels to ignore.
    thresh : float, optional
        Detection threshold in units of the uncertainty (default 3).
    minarea : int, optional
        Minimum number of connected pixels (default 5).

    Returns
    -------
    objects, image, err, bad
        sep's structured array, the background-subtracted float32 image used, the error map and
        the bad-pixel mask.
    """
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D, got shape {data.shape}")
    bad = ~np.isfinite(data)
    if mask is not None:
        bad |= mask
    if unc is not None:
        with np.errstate(invalid="ignore"):
            bad |= ~(np.isfinite(unc) & (unc > 0))
    img = np.ascontiguousarray(np.where(bad, 0.0, data), dtype=np.float32)
    if bad.all():
        return np.zeros(0, dtype=[("x", "f8")]), img, None, bad
    bw = int(min(64, max(8, min(data.shape) // 4)))
    bkg = sep.Background(img, mask=bad, bw=bw, bh=bw)
    img -= bkg.back()
    if unc is None:
        err = np.ascontiguousarray(bkg.rms(), dtype=np.float32)
    else:
        fill = float(np.median(unc[~bad]))
        err = np.ascontiguousarray(np.where(bad, fill, unc), dtype=np.float32)
    img[bad] = 0.0
    objects = extract(img, thresh, err=err, mask=bad, minarea=minarea)
    return objects, img, err, bad


def source_table(objects, img, err, bad, wcs: WCS) -> Table:
    """Catalog columns x, y, ra, dec, flux, flux_err, fwhm, flags from sep objects.

    ``flux`` is the aperture sum within :data:`APERTURE_RADIUS` pixels; ``fwhm`` is twice the
    half-light radius (exact for a Gaussian); positions are zero-based pixels.
    """
    names = ("x", "y", "ra", "dec", "flux", "flux_err", "fwhm", "flags")
    if len(objects) == 0:
        t = Table(names=names, dtype=("f8", "f8", "f8", "f8", "f8", "f8", "f8", "i4"))
        t.meta["cattype"] = 1
        return t
    x, y = objects["x"], objects["y"]
    flux, flux_err, aflag = sep.sum_circle(img, x, y, APERTURE_RADIUS, err=err, mask=bad,
                                           subpix=5)
    rmax = np.clip(6.0 * np.sqrt(objects["a"] * objects["b"]), 3.0, 15.0)
    rhalf, rflag = sep.flux_radius(img, x, y, rmax, 0.5, subpix=5)
    ra, dec = wcs.all_pix2world(x, y, 0)
    t = Table(
        [x, y, ra, dec, flux, flux_err, 2.0 * rhalf,
         (objects["flag"] | aflag | rflag).astype(np.int32)],
        names=names,
    )
    t.meta["cattype"] = 1
    return t


def fwhm_stats(cat: Table, *, min_snr: float = 20.0, isolation: float = 8.0):
    """Median, min and max FWHM (pixels) of isolated, unflagged, well-measured stars.

    Sources brighter than the 98th flux percentile are left out as possibly saturated.
    Returns NaNs when no source qualifies.
    """
    if len(cat) == 0:
        return np.nan, np.nan, np.nan
    x, y = np.asarray(cat["x"]), np.asarray(cat["y"])
    flux, ferr = np.asarray(cat["flux"]), np.asarray(cat["flux_err"])
    d2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2 if len(cat) <= 5000 \
        else None
    if d2 is not None:
        np.fill_diagonal(d2, np.inf)
        isolated = d2.min(axis=1) > isolation**2
    else:
        isolated = np.ones(len(cat), bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = flux / ferr
    sel = (isolated & (np.asarray(cat["flags"]) == 0) & (snr > min_snr)
           & np.isfinite(cat["fwhm"]) & (np.asarray(cat["fwhm"]) > 0))
    if sel.sum() >= 10:
        sel &= flux <= np.percentile(flux[sel], 98)
    if not sel.any():
        return np.nan, np.nan, np.nan
    f = np.asarray(cat["fwhm"])[sel]
    return float(np.median(f)), float(f.min()), float(f.max())


def image_stats(data: np.ndarray, unc: np.ndarray, coverage: np.ndarray) -> dict:
    """refimmeta's image statistics of a coadd.

    Returns
    -------
    dict
        npixnan, clmean, clstddev, clnoutliers (3-sigma clipped about the median, 5 iterations
        on a subsample, the final bounds applied to all pixels), gmedian, gmin,
        gmax (finite pixels), cov5percent (percent of all pixels with coverage >= 5), medncov
        (median coverage of covered pixels), medpixunc (median finite uncertainty).
    """
    finite = np.isfinite(data)
    vals = data[finite]
    out = {"npixnan": int((~finite).sum())}
    if vals.size:
        # The clipping bounds are found on a regular subsample of at most ~1M pixels (a
        # 7000 x 7000 coadd has 49M) and then applied to every pixel.
        sample = vals[::max(1, vals.size // 1_000_000)]
        kept = sigma_clip(sample, sigma=3.0, maxiters=5, masked=True, copy=False).compressed()
        centre, spread = float(np.median(kept)), float(kept.std())
        inside = np.abs(vals - centre) <= 3.0 * spread
        kept = vals[inside]
        out.update(
            clmean=float(kept.mean()),
            clstddev=float(kept.std()),
            clnoutliers=int(vals.size - kept.size),
            gmedian=float(np.median(vals)),
            gmin=float(vals.min()),
            gmax=float(vals.max()),
        )
    else:
        out.update(clmean=np.nan, clstddev=np.nan, clnoutliers=0, gmedian=np.nan,
                   gmin=np.nan, gmax=np.nan)
    covered = coverage > 0
    out["cov5percent"] = float(100.0 * (coverage >= 5).sum() / coverage.size)
    out["medncov"] = float(np.median(coverage[covered])) if covered.any() else 0.0
    u = unc[np.isfinite(unc)]
    out["medpixunc"] = float(np.median(u)) if u.size else np.nan
    return out
