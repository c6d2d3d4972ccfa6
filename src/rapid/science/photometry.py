"""PSF-fit and aperture photometry, and shape measures, of difference-image candidates."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS
from photutils.aperture import CircularAperture, aperture_photometry
from photutils.psf import ImagePSF, PSFPhotometry
from scipy.signal import fftconvolve

from rapid.science.image import FinePsf

# bits of the ``flags`` column
FLAG_FIT = 1  # photutils reported a fit problem (see its flags)
FLAG_MASKED = 2  # masked pixels inside the fit box
FLAG_EDGE = 4  # fit box truncated by the image border
FLAG_BAD_ERR = 8  # flux error not finite or not positive
FLAG_MOVED = 16  # fit position hit the allowed shift limit


@dataclass(frozen=True)
class DifferenceNoise:
    """Noise of the inputs of a linear difference image D = kernel_n (x) N - kernel_r (x) R.

    Per-pixel uncertainties of D miss the correlations that the ZOGY kernels give to noise
    that is not uniform in N or R (the Poisson noise of a bright transient or star), so a PSF
    fit weighting pixels as independent underestimates its flux error there. With this model
    the error of the fitted flux, a weighted sum of D pixels, is propagated exactly:
    Var = sum_j var_n(j) (w (x) kernel_n)(j)^2 + the same for R.

    The PSF models' mismatch is part of the model too, as in Scorr's variance
    (:func:`rapid.science.zogy.zogy`): a static source under the fit leaves ``flux_noise``
    times its own fitted flux in it, the common part of the two images' contributions
    ``min(|w . kernel_n (x) N|, |w . kernel_r (x) R|)``, so that a transient on a galaxy core
    carries that core's subtraction error and one on empty sky none.

    Attributes
    ----------
    kernel_n, kernel_r : ndarray
        Odd-sized real-space kernels centred on offset 0, in the units of D.
    var_n, var_r : ndarray
        Per-pixel variances of N and R on D's grid (0 where masked).
    image_n, image_r : ndarray, optional
        N and R themselves (background-subtracted, 0 where masked), for the mismatch term.
    flux_noise : float, optional
        Fractional PSF-model mismatch of static sources (0: no such term).
    """

    kernel_n: np.ndarray
    kernel_r: np.ndarray
    var_n: np.ndarray
    var_r: np.ndarray
    image_n: np.ndarray | None = None
    image_r: np.ndarray | None = None
    flux_noise: float = 0.0

    def weighted_sum_variance(self, weights: np.ndarray, y0: int, x0: int) -> float:
        """Variance of ``sum(weights * D[y0:y0 + wy, x0:x0 + wx])``."""
        total = 0.0
        mismatch = self.flux_noise > 0 and self.image_n is not None and self.image_r is not None
        static = []
        for kern, var, img in ((self.kernel_n, self.var_n, self.image_n),
                               (self.kernel_r, self.var_r, self.image_r)):
            # sum(weights * (kern (x) X)) = sum(X * c) over X's pixels
            c = fftconvolve(weights, kern[::-1, ::-1], mode="full")
            hy, hx = kern.shape[0] // 2, kern.shape[1] // 2
            jy, jx = y0 - hy, x0 - hx
            ny, nx = var.shape
            ys, xs = max(jy, 0), max(jx, 0)
            ye, xe = min(jy + c.shape[0], ny), min(jx + c.shape[1], nx)
            if ye > ys and xe > xs:
                cc = c[ys - jy:ye - jy, xs - jx:xe - jx]
                total += float(np.sum(var[ys:ye, xs:xe] * cc**2))
                if mismatch:
                    static.append(abs(float(np.sum(img[ys:ye, xs:xe] * cc))))
        if mismatch and len(static) == 2:
            total += (self.flux_noise * min(static)) ** 2
        return total


def _psf_model(psf: np.ndarray, fine: FinePsf | None) -> ImagePSF:
    """The fitting model: the fine PSF when there is one, else the native stamp."""
    if fine is not None:
        return ImagePSF(fine.data, oversampling=fine.factor)
    return ImagePSF(psf)


def _propagated_errors(noise: DifferenceNoise | None, model: ImagePSF, err: np.ndarray,
                       bad: np.ndarray, x: np.ndarray, y: np.ndarray, fit_shape) -> np.ndarray:
    """Flux errors of the (unweighted) PSF fits at (x, y): from the full noise model when
    given, else from the per-pixel errors ``err`` taken as independent."""
    hy, hx = fit_shape[0] // 2, fit_shape[1] // 2
    ny, nx = err.shape
    out = np.full(len(x), np.nan)
    for k in range(len(x)):
        if not (np.isfinite(x[k]) and np.isfinite(y[k])):
            continue
        ix, iy = int(round(x[k])), int(round(y[k]))
        y0, y1 = max(iy - hy, 0), min(iy + hy + 1, ny)
        x0, x1 = max(ix - hx, 0), min(ix + hx + 1, nx)
        if y1 <= y0 or x1 <= x0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        p = np.where(bad[y0:y1, x0:x1], 0.0, model.evaluate(xx, yy, 1.0, x[k], y[k]))
        norm = np.sum(p * p)
        if not norm > 0:
            continue
        w = p / norm  # the linear estimator of the flux at fixed position
        if noise is not None:
            out[k] = np.sqrt(noise.weighted_sum_variance(w, y0, x0))
        else:
            out[k] = np.sqrt(np.sum(w * w * err[y0:y1, x0:x1] ** 2))
    return out


def position_bias_corrected(flux: np.ndarray, flux_err: np.ndarray) -> np.ndarray:
    """PSF-fit fluxes with the bias of fitting the position removed.

    A fit that also chooses the position puts the PSF where the noise adds most to it: to
    second order in the noise, the flux so found is the flux at the true position plus
    ``flux_err**2 / flux`` (half of it for each coordinate), a bias of one over the S/N in
    units of the error (+0.14 sigma at S/N 7, +0.05 at S/N 20). Subtracting
    ``flux_err**2 / flux`` gives the flux a fit at the true position would give; fluxes within
    one error of 0, where the expansion fails, become 0.

    Parameters
    ----------
    flux, flux_err : ndarray
        Fitted fluxes (>= 0) and their 1-sigma errors.

    Returns
    -------
    ndarray
        Corrected fluxes, >= 0; the input flux where the error is not finite or not positive.
    """
    flux = np.asarray(flux, dtype=float)
    err = np.asarray(flux_err, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = np.where(flux > err, flux - err**2 / flux, 0.0)
    return np.where(np.isfinite(flux) & np.isfinite(err) & (err > 0), corrected, flux)


def _aper_name(r: float) -> str:
    return f"{r:g}".replace(".", "p")


def _shape_measures(img: np.ndarray, bad: np.ndarray, x: float, y: float, peak_model: float,
                    half: int = 3, sign: int = 1):
    """Moments-based FWHM, elongation and roundness; DAOFIND-like sharpness, of sign * img."""
    ny, nx = img.shape
    ix, iy = int(round(x)), int(round(y))
    y0, y1 = max(0, iy - half), min(ny, iy + half + 1)
    x0, x1 = max(0, ix - half), min(nx, ix + half + 1)
    cut = np.where(bad[y0:y1, x0:x1], 0.0, sign * img[y0:y1, x0:x1])
    w = np.clip(cut, 0.0, None)
    tot = w.sum()
    nan4 = (np.nan,) * 4
    if not tot > 0:
        return nan4
    yy, xx = np.mgrid[y0:y1, x0:x1]
    mx, my = (w * xx).sum() / tot, (w * yy).sum() / tot
    mxx = (w * (xx - mx) ** 2).sum() / tot
    myy = (w * (yy - my) ** 2).sum() / tot
    mxy = (w * (xx - mx) * (yy - my)).sum() / tot
    tr, det = mxx + myy, mxx * myy - mxy**2
    disc = np.sqrt(max(tr**2 / 4 - det, 0.0))
    a2, b2 = tr / 2 + disc, max(tr / 2 - disc, 1e-12)
    fwhm = 2.3548200450309493 * np.sqrt((a2 + b2) / 2)
    elong = np.sqrt(a2 / b2)
    sx, sy = np.sqrt(max(mxx, 0)), np.sqrt(max(myy, 0))
    roundness = 2 * (sx - sy) / (sx + sy) if sx + sy > 0 else np.nan
    c = (iy - y0, ix - x0)
    if 0 < c[0] < cut.shape[0] - 1 and 0 < c[1] < cut.shape[1] - 1 and peak_model > 0:
        ring = cut[c[0] - 1:c[0] + 2, c[1] - 1:c[1] + 2]
        sharp = (cut[c] - (ring.sum() - cut[c]) / 8.0) / peak_model
    else:
        sharp = np.nan
    return fwhm, elong, sharp, roundness


def measure_candidates(
    D: np.ndarray, D_unc: np.ndarray, Pd: np.ndarray, table: Table, wcs: WCS | None = None, *,
    mask: np.ndarray | None = None, fit_shape: tuple[int, int] = (11, 11),
    aperture_radii: tuple[float, ...] = (2.0, 4.0), max_shift: float = 1.0,
    noise: DifferenceNoise | None = None, psf_fine: FinePsf | None = None,
) -> Table:
    """PSF-fit and aperture photometry of candidates on the difference image.

    Fading candidates (``sign == -1``) are fitted on -D, so every flux is >= 0 and a fading
    source's flux is how much it faded.

    Parameters
    ----------
    D, D_unc : ndarray
        Difference image in science-image units and its 1-sigma uncertainty.
    Pd : ndarray
        PSF of D, odd-sized, centred, summing to 1.
    table : astropy.table.Table
        Candidates with columns x, y (zero-based), sign, and optionally scorr_peak.
    wcs : astropy.wcs.WCS, optional
        Science WCS for the ra, dec columns (NaN when None).
    mask : ndarray, optional
        Boolean, True for pixels to ignore; non-finite D or D_unc are always ignored.
    fit_shape : tuple of int, optional
        Odd fit box (11, 11).
    aperture_radii : tuple of float, optional
        Aperture radii in pixels (2, 4); columns aper_flux_r<r> and aper_fluxerr_r<r>.
    max_shift : float, optional
        Largest move of the fitted position from the input, pixels (1.0); 0 fixes positions.
        With free positions, ``flux`` is corrected for the fit's choice of position (see
        :func:`position_bias_corrected`).
    noise : DifferenceNoise, optional
        Noise model of D; when given, ``flux_err`` is propagated from the per-pixel variances
        of the inputs through the difference kernels (exact for the linear fit at the fitted
        position) instead of from ``D_unc`` with D's pixels taken as independent. The fits
        themselves weigh the pixels of the box equally. Aperture errors always treat pixels
        as independent.
    psf_fine : FinePsf, optional
        Pd sampled finer than the pixels; when given the fits use it instead of interpolating
        the native ``Pd`` (which biases fluxes of undersampled PSFs low by up to ~1%).

    Returns
    -------
    astropy.table.Table
        One row per candidate: x, y, ra, dec, flux, flux_err, snr, sign, scorr_peak,
        aper_flux_r*, aper_fluxerr_r*, fwhm, elongation, sharpness, roundness, qfit,
        flags (bits: 1 fit, 2 masked pixels, 4 edge, 8 bad error, 16 position at limit).
    """
    D = np.asarray(D, dtype=np.float64)
    D_unc = np.asarray(D_unc, dtype=np.float64)
    if D.ndim != 2 or D_unc.shape != D.shape:
        raise ValueError(f"D and D_unc must be 2-D of equal shape, got {D.shape}, {D_unc.shape}")
    if len(fit_shape) != 2 or any(s < 3 or s % 2 == 0 for s in fit_shape):
        raise ValueError(f"fit_shape must be two odd sizes >= 3, got {fit_shape}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    for col in ("x", "y", "sign"):
        if col not in table.colnames:
            raise ValueError(f"table lacks column {col!r}")
    bad = ~np.isfinite(D) | ~np.isfinite(D_unc) | (D_unc <= 0)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)
    Dz = np.where(bad, 0.0, D)
    err = np.where(bad, 1.0, D_unc)
    n = len(table)
    radii = tuple(float(r) for r in aperture_radii)
    cols: dict[str, np.ndarray] = {
        "x": np.array(table["x"], dtype=float), "y": np.array(table["y"], dtype=float),
        "flux": np.full(n, np.nan), "flux_err": np.full(n, np.nan), "qfit": np.full(n, np.nan),
        "flags": np.zeros(n, dtype=np.int32),
    }
    sign = np.array(table["sign"], dtype=np.int16)
    psf = Pd / Pd.sum()
    hy, hx = fit_shape[0] // 2, fit_shape[1] // 2
    ny, nx = D.shape
    for s in (1, -1):
        sel = np.flatnonzero(sign == s)
        if sel.size == 0:
            continue
        img = s * Dz
        model = _psf_model(psf, psf_fine)
        model.flux.bounds = (0.0, None)
        if max_shift == 0:
            model.x_0.fixed = True
            model.y_0.fixed = True
        phot = PSFPhotometry(model, fit_shape, xy_bounds=max_shift if max_shift > 0 else None)
        xin, yin = cols["x"][sel], cols["y"][sel]
        ap0 = CircularAperture(np.column_stack([xin, yin]), r=2.0)
        f0 = np.clip(np.asarray(ap0.do_photometry(img, mask=bad)[0]), 1e-3, None) / 0.5
        init = Table({"x": xin, "y": yin, "flux": f0})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fit warnings end up in the flags column
            # Unweighted: D's uncertainty holds the source's own Poisson noise, and weights
            # from it leave a bright source's core to its wings, where any PSF-model error
            # then sets the flux (Roman PSF estimated from stars: 13% low at S/N 230, 2%
            # unweighted). In the sky-limited regime the two fits are the same.
            res = phot(img, mask=bad, init_params=init)
        res.sort("id")
        xf, yf = np.asarray(res["x_fit"], dtype=float), np.asarray(res["y_fit"], dtype=float)
        # a box nearly all masked gives no fit at all (NaN): the detection's position stands,
        # without a flux
        failed = ~(np.isfinite(xf) & np.isfinite(yf))
        cols["x"][sel] = np.where(failed, xin, xf)
        cols["y"][sel] = np.where(failed, yin, yf)
        cols["flux"][sel] = np.where(failed, np.nan, np.asarray(res["flux_fit"], dtype=float))
        cols["flux_err"][sel] = np.asarray(res["flux_err"], dtype=float)
        cols["qfit"][sel] = np.asarray(res["qfit"], dtype=float)
        cols["flags"][sel] |= np.where((np.asarray(res["flags"]) != 0) | failed, FLAG_FIT, 0)
        moved = np.hypot(cols["x"][sel] - xin, cols["y"][sel] - yin)
        if max_shift > 0:
            cols["flags"][sel] |= np.where(moved > 0.99 * max_shift, FLAG_MOVED, 0)
    x, y = cols["x"], cols["y"]
    if n:
        cols["flux_err"] = _propagated_errors(noise, _psf_model(psf, psf_fine), err, bad, x, y,
                                              fit_shape)
    ix, iy = np.round(x).astype(int), np.round(y).astype(int)
    for k in range(n):
        y0, y1, x0, x1 = iy[k] - hy, iy[k] + hy + 1, ix[k] - hx, ix[k] + hx + 1
        if y0 < 0 or x0 < 0 or y1 > ny or x1 > nx:
            cols["flags"][k] |= FLAG_EDGE
        if bad[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)].any():
            cols["flags"][k] |= FLAG_MASKED
    fe = cols["flux_err"]
    if max_shift > 0:
        cols["flux"] = position_bias_corrected(cols["flux"], fe)
    cols["flags"] |= np.where(~np.isfinite(fe) | (fe <= 0), FLAG_BAD_ERR, 0).astype(np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = cols["flux"] / fe
    out = Table()
    out["x"], out["y"] = x, y
    if wcs is not None and n:
        ra, dec = wcs.pixel_to_world_values(x, y)
        out["ra"], out["dec"] = np.asarray(ra, float) % 360.0, np.asarray(dec, float)
    else:
        out["ra"], out["dec"] = np.full(n, np.nan), np.full(n, np.nan)
    out["flux"], out["flux_err"], out["snr"] = cols["flux"], fe, snr
    out["sign"] = sign
    out["scorr_peak"] = (np.array(table["scorr_peak"], dtype=np.float32)
                         if "scorr_peak" in table.colnames else np.full(n, np.nan, np.float32))
    pos = np.column_stack([x, y]) if n else np.zeros((0, 2))
    for r in radii:
        name = _aper_name(r)
        af = np.full(n, np.nan)
        ae = np.full(n, np.nan)
        if n:
            # sums are linear: measure D once and turn fading candidates' sums by their sign
            t = aperture_photometry(Dz, CircularAperture(pos, r=r), error=err, mask=bad)
            af = sign * np.asarray(t["aperture_sum"], dtype=float)
            ae = np.asarray(t["aperture_sum_err"], dtype=float)
        out[f"aper_flux_r{name}"] = af
        out[f"aper_fluxerr_r{name}"] = ae
    shapes = np.array([_shape_measures(Dz, bad, x[k], y[k], cols["flux"][k] * psf.max(),
                                       sign=int(sign[k])) for k in range(n)]
                      ).reshape(n, 4)
    out["fwhm"], out["elongation"] = shapes[:, 0], shapes[:, 1]
    out["sharpness"], out["roundness"] = shapes[:, 2], shapes[:, 3]
    out["qfit"] = cols["qfit"]
    out["flags"] = cols["flags"]
    return out
