"""ZOGY proper image subtraction (Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27).

Notation follows the paper: new image N and reference R on the same grid, background
subtracted, with PSFs Pn, Pr (sum 1), background noise sigma_n, sigma_r and flux zero points
Fn, Fr. Hats are Fourier transforms. With

    den = sigma_n^2 Fr^2 |Pr^|^2 + sigma_r^2 Fn^2 |Pn^|^2

the proper difference D^ = (Fr Pr^ N^ - Fn Pn^ R^) / sqrt(den) has white noise of unit
variance (for uniform noise), its PSF is Pd^ = Fr Fn Pr^ Pn^ / (Fd sqrt(den)) with flux zero
point Fd = Fr Fn / sqrt(sigma_n^2 Fr^2 + sigma_r^2 Fn^2), and S = Fd D (x) Pd-flipped is the
matched-filter image. Scorr divides S by the square root of its per-pixel variance, from the
per-pixel variances of N and R (source noise included) and the registration noise
(sigma_x, sigma_y), eqs. 25-31 of the paper. A transient of science-image flux f appears in
D with flux f Fd / Fn.

FFTs are real (rfft2) on sizes padded to fast lengths and run in single precision
(complex64), which keeps D and Scorr accurate to ~1e-6 relative, far below the noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft

from rapid.science.box_filters import box_maximum
from rapid.science.psf import normalise_psf, pad_psf

# Largest share of Scorr's noise variance that the flux-noise and registration terms may add
# at a pixel counted in ``ZogyResult.noise_only``: Scorr there is within 2.5% of S over its
# noise alone.
NOISE_ONLY_SHARE = 0.05


@dataclass
class ZogyResult:
    """Products of :func:`zogy`.

    Attributes
    ----------
    D : ndarray
        Proper difference image (float32), unit-variance normalisation of the paper.
    Pd : ndarray
        PSF of D, odd-sized stamp, centred, summing to 1.
    pd_inside : float
        The share of D's PSF that the ``Pd`` stamp holds (1 when it holds it all). A flux fitted
        with ``Pd`` is the source's light within the stamp's reach, ``pd_inside`` of the whole:
        a broad PSF's wings beyond a 25-pixel stamp hold 1-2% of it.
    S : ndarray
        Matched-filter image (float32).
    Scorr : ndarray
        S divided by its per-pixel standard deviation (float32); std 1 on pure noise.
    Fd : float
        Flux zero point of D.
    D_var : ndarray
        Per-pixel variance of D from the input variance maps (float32).
    Fn, Fr : float
        Flux zero points used.
    kernel_n, kernel_r : ndarray
        Real-space kernels with D = kernel_n (x) N - kernel_r (x) R (convolution), cropped to
        odd stamps centred on offset 0; they propagate per-pixel noise of N and R into any
        linear measurement on D (see :mod:`rapid.science.photometry`).
    Scorr_hi, Scorr_lo : ndarray
        Highest and lowest Scorr over the pixel centre and the sub-pixel phases asked for
        (``phase_psfs``); the same array as ``Scorr`` when none were. Detection of brightening
        sources runs on ``Scorr_hi``, of fading ones on ``-Scorr_lo``.
    skew : float
        Skewness of Scorr's noise from the third cumulant of N's noise (``kappa3_n``), at the
        median variance of the pixels with data in both images: Poisson noise of a faint sky
        is skewed, and a matched filter that an undersampled PSF makes nearly a one-pixel
        filter passes most of that on.
    noise_only : ndarray of bool or None
        Where the flux-noise and registration terms add at most ``NOISE_ONLY_SHARE`` to
        Scorr's noise variance, so that Scorr there is the noise's alone (None: neither term
        was asked for, every pixel is). Those terms shrink Scorr about every static source on
        purpose; a scatter measured over them is too small (0.86 on a 1024^2 Roman image with
        6000 stars) and would lower a relative threshold below the noise's.
    """

    D: np.ndarray
    Pd: np.ndarray
    S: np.ndarray
    Scorr: np.ndarray
    Fd: float
    D_var: np.ndarray
    Fn: float
    Fr: float
    kernel_n: np.ndarray | None = None
    kernel_r: np.ndarray | None = None
    Scorr_hi: np.ndarray | None = None
    Scorr_lo: np.ndarray | None = None
    skew: float = 0.0
    noise_only: np.ndarray | None = None
    pd_inside: float = 1.0

    def __post_init__(self) -> None:
        if self.Scorr_hi is None:
            self.Scorr_hi = self.Scorr
        if self.Scorr_lo is None:
            self.Scorr_lo = self.Scorr

    def flux_scale(self) -> float:
        """Factor turning D into science-image units (``D * Fn / Fd``)."""
        return self.Fn / self.Fd


def cupy_available() -> bool:
    """True when CuPy imports and sees a GPU."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _backend(device: str, workers: int | None):
    """Return (xp, rfft2, irfft2, to_host) for the chosen device."""
    if device not in ("cpu", "gpu", "auto"):
        raise ValueError(f"device must be 'cpu', 'gpu' or 'auto', got {device!r}")
    if device == "gpu" or (device == "auto" and cupy_available()):
        try:
            import cupy
            import cupyx.scipy.fft as cfft
        except ImportError as exc:
            raise ValueError("device='gpu' needs cupy, which is not importable") from exc
        return (cupy, lambda a: cfft.rfft2(a), lambda a, s: cfft.irfft2(a, s=s),
                cupy.asnumpy)
    return (np, lambda a: scipy.fft.rfft2(a, workers=workers),
            lambda a, s: scipy.fft.irfft2(a, s=s, workers=workers), np.asarray)


def _scalar_sigma(sigma, name: str) -> float:
    s = np.asarray(sigma, dtype=np.float64)
    val = float(np.nanmedian(s)) if s.ndim else float(s)
    if not (np.isfinite(val) and val > 0):
        raise ValueError(f"{name} must be positive and finite, got {val}")
    return val


def zogy(
    N: np.ndarray, R: np.ndarray, Pn: np.ndarray, Pr: np.ndarray, *,
    sigma_n: float | np.ndarray, sigma_r: float | np.ndarray, Fn: float = 1.0, Fr: float = 1.0,
    var_n: np.ndarray | None = None, var_r: np.ndarray | None = None,
    sigma_x: float = 0.0, sigma_y: float = 0.0, flux_noise: float = 0.0, pd_size: int = 25,
    kernel_size: int = 31, kappa3_n: float = 0.0, phase_psfs: Sequence[np.ndarray] = (),
    device: str = "cpu", workers: int | None = None,
) -> ZogyResult:
    """Proper image subtraction of R from N.

    Parameters
    ----------
    N, R : ndarray
        New (science) and reference images on the same grid, background subtracted. Non-finite
        pixels are treated as 0 (the caller masks them in the outputs).
    Pn, Pr : ndarray
        Odd-sized PSF stamps of N and R, centred (normalised here).
    sigma_n, sigma_r : float or ndarray
        Background noise of N and R; a map enters the Fourier part through its median.
    Fn, Fr : float, optional
        Flux zero points (1.0); only Fr / Fn matters for D up to scale. With Fn = 1 and
        Fr = 1 / flux_ratio, fluxes come out in science-image units.
    var_n, var_r : ndarray, optional
        Per-pixel variance of N and R (source noise included) for Scorr and D_var; default
        uniform sigma_n**2, sigma_r**2.
    sigma_x, sigma_y : float, optional
        Registration noise in pixels (0); adds the paper's V_ast to Scorr's variance,
        ``sigma_x**2 (dS_n/dx**2 + dS_r/dx**2)`` and the same in y, for the sources present in
        both images: twice the smaller of the two images' terms (each spread to its 5 x 5 local
        maximum), at most their sum, so that a transient (in N only) or a faded source (in R
        only) is not penalised by its own gradient.
    flux_noise : float, optional
        Fractional mismatch of the two images' PSF models (0): adds
        ``flux_noise**2 min(S_n**2, S_r**2)`` to Scorr's variance, where S_n and S_r are the
        matched-filter images of N and R alone, so that only sources present in both images
        count. Like V_ast it weighs the residuals of bright static sources against their
        expected size, here for PSF-model errors that a shift does not describe (e.g. PSF
        models rotated on undersampled grids); a transient on empty sky keeps its Scorr.
    pd_size : int, optional
        Side of the returned Pd stamp, odd (25).
    kernel_size : int, optional
        Side of the returned D kernels ``kernel_n``, ``kernel_r``, odd (31).
    kappa3_n : float, optional
        Third cumulant of N's per-pixel noise (0, Gaussian); for Poisson counts it is the
        count rate over (gain x exposure time)**2, in N's units cubed. Gives ``skew``.
    phase_psfs : sequence of ndarray, optional
        PSFs of N for a source at sub-pixel offsets from a pixel centre (see
        :func:`rapid.science.phases.psf_at_phase`); S is also computed with the filter matched
        to each, and ``Scorr_hi`` / ``Scorr_lo`` keep the extremes. Scorr's variance at a phase
        is the largest of the centre's over the 3 x 3 neighbourhood, scaled by the ratio of
        the filters' noise powers (exact for uniform noise).
    device : {"cpu", "gpu", "auto"}, optional
        Where the FFTs run ("cpu"); "gpu" needs CuPy, "auto" uses it when present.
    workers : int, optional
        scipy.fft worker threads on the CPU (None).

    Returns
    -------
    ZogyResult
    """
    N = np.asarray(N)
    R = np.asarray(R)
    if N.ndim != 2 or N.shape != R.shape:
        raise ValueError(f"N and R must be 2-D of equal shape, got {N.shape} and {R.shape}")
    for name, v in (("var_n", var_n), ("var_r", var_r)):
        if v is not None and np.shape(v) != N.shape:
            raise ValueError(f"{name} has shape {np.shape(v)}, N has {N.shape}")
    if pd_size < 3 or pd_size % 2 == 0:
        raise ValueError(f"pd_size must be odd and >= 3, got {pd_size}")
    if not (Fn > 0 and Fr > 0):
        raise ValueError(f"Fn and Fr must be > 0, got {Fn}, {Fr}")
    if sigma_x < 0 or sigma_y < 0:
        raise ValueError(f"sigma_x, sigma_y must be >= 0, got {sigma_x}, {sigma_y}")
    if not (np.isfinite(flux_noise) and flux_noise >= 0):
        raise ValueError(f"flux_noise must be >= 0, got {flux_noise}")
    sn = _scalar_sigma(sigma_n, "sigma_n")
    sr = _scalar_sigma(sigma_r, "sigma_r")
    xp, rfft2, irfft2, to_host = _backend(device, workers)

    ny, nx = N.shape
    shape = (scipy.fft.next_fast_len(ny, real=True), scipy.fft.next_fast_len(nx, real=True))

    def padded(img: np.ndarray | None, default: float) -> object:
        out = np.zeros(shape, dtype=np.float32)
        view = out[:ny, :nx]
        if img is None:
            view[...] = default
        else:
            view[...] = img
            view[~np.isfinite(view)] = 0.0
        return xp.asarray(out)

    def crop(a) -> np.ndarray:
        return np.ascontiguousarray(to_host(a[:ny, :nx]), dtype=np.float32)

    Pn_hat = rfft2(xp.asarray(pad_psf(normalise_psf(Pn), shape).astype(np.float32)))
    Pr_hat = rfft2(xp.asarray(pad_psf(normalise_psf(Pr), shape).astype(np.float32)))
    absPn2 = (Pn_hat.real**2 + Pn_hat.imag**2).astype(xp.float32)
    absPr2 = (Pr_hat.real**2 + Pr_hat.imag**2).astype(xp.float32)
    den = (sn**2 * Fr**2) * absPr2 + (sr**2 * Fn**2) * absPn2
    # Where both PSFs carry < 1e-6 of their power there is no signal; the floor keeps float32
    # divisions finite there (D_var below accounts for the slightly non-white noise it leaves).
    den = xp.maximum(den, xp.float32(1e-12) * den.max()).astype(xp.float32)
    sqrt_den = xp.sqrt(den)
    Fd = Fr * Fn / np.sqrt(sn**2 * Fr**2 + sr**2 * Fn**2)

    # D and its variance
    N_hat = rfft2(padded(N, 0.0))
    R_hat = rfft2(padded(R, 0.0))
    dn_hat = (Fr * Pr_hat / sqrt_den).astype(xp.complex64, copy=False)
    dr_hat = (Fn * Pn_hat / sqrt_den).astype(xp.complex64, copy=False)
    D_hat = dn_hat * N_hat - dr_hat * R_hat
    D = crop(irfft2(D_hat, shape))
    # S at any phase is conj(Pn_phase^) Q^ with Q^ = Fr Fn conj(Pr^) D^ / sqrt(den)
    Q_hat = ((Fr * Fn) * xp.conj(Pr_hat) / sqrt_den * D_hat).astype(xp.complex64) \
        if len(phase_psfs) else None
    del D_hat
    Vn_hat = rfft2(padded(var_n, sn**2))
    Vr_hat = rfft2(padded(var_r, sr**2))

    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
    stamps: dict[str, np.ndarray] = {}
    cubes: dict[str, float] = {}

    def stamp(full, size):
        """The central size x size part of a kernel whose origin is pixel (0, 0)."""
        h = min(size // 2, shape[0] // 2 - 1, shape[1] // 2 - 1)
        rows = xp.asarray(np.arange(-h, h + 1) % shape[0])
        cols = xp.asarray(np.arange(-h, h + 1) % shape[1])
        return np.asarray(to_host(full[rows][:, cols]), dtype=np.float64)

    def squared_hat(kernel_hat, name=None, cube=None):
        k = irfft2(kernel_hat, shape)
        if name:  # the D kernels' stamps come from the same inverse transform
            stamps[name] = stamp(k, kernel_size)
        k2 = (k * k).astype(xp.float32, copy=False)
        if cube:  # sum of the kernel's cubes, for the third cumulant it passes on
            cubes[cube] = float(xp.sum(k2 * k, dtype=xp.float64))
        return rfft2(k2)

    def var_through(kernel_a, V_a, kernel_b, V_b, names=(None, None), cube=None):
        """Variance of a * N - b * R: both kernels squared, one inverse transform."""
        total = squared_hat(kernel_a, names[0], cube)
        total *= V_a
        part = squared_hat(kernel_b, names[1])
        part *= V_b
        total += part
        del part
        return irfft2(total, shape)

    D_var = crop(var_through(dn_hat, Vn_hat, dr_hat, Vr_hat, names=("n", "r")))
    kernel_n, kernel_r = stamps["n"], stamps["r"]
    del dn_hat, dr_hat

    # Pd stamp
    Pd_hat = Fr * Fn * Pr_hat * Pn_hat / (Fd * sqrt_den)
    Pd_full = irfft2(Pd_hat.astype(xp.complex64), shape)
    Pd_stamp = stamp(Pd_full, pd_size)
    pd_inside = float(np.sum(Pd_stamp) / float(xp.sum(Pd_full, dtype=xp.float64)))
    Pd = normalise_psf(Pd_stamp)
    del Pd_full
    del Pd_hat

    # S and Scorr
    kn_hat = (Fn * Fr**2 * xp.conj(Pn_hat) * absPr2 / den).astype(xp.complex64, copy=False)
    kr_hat = (Fr * Fn**2 * xp.conj(Pr_hat) * absPn2 / den).astype(xp.complex64, copy=False)
    Sn_hat = kn_hat * N_hat
    Sr_hat = kr_hat * R_hat
    del N_hat, R_hat
    V = var_through(kn_hat, Vn_hat, kr_hat, Vr_hat, cube="n" if kappa3_n else None)
    flux_term = None
    if flux_noise > 0:
        Sn_dev = irfft2(Sn_hat, shape)
        Sr_dev = irfft2(Sr_hat, shape)
        S_dev = Sn_dev - Sr_dev
        # the part common to both images: a static source counts, a transient (in N only) or
        # a source that has faded away (in R only) does not; in place, since every new
        # image-sized array costs fresh memory
        flux_term = xp.square(Sn_dev, out=Sn_dev)
        xp.minimum(flux_term, xp.square(Sr_dev, out=Sr_dev), out=flux_term)
        flux_term *= np.float32(flux_noise**2)
        del Sn_dev, Sr_dev
    else:
        S_dev = irfft2(Sn_hat - Sr_hat, shape)
    del kn_hat, kr_hat, Vn_hat, Vr_hat
    ast = None
    if sigma_x > 0 or sigma_y > 0:
        # The paper's V_ast = sig_x^2 (dS_n/dx^2 + dS_r/dx^2) + (the same in y), for the
        # sources in both images only: a misregistration leaves a residual where a source is in
        # both, and a transient (in N only) or a faded source (in R only) weighed against its
        # own gradient would lose Scorr the more, the brighter it is and the farther from a
        # pixel centre. The common part is twice the smaller of the two images' terms, each
        # spread to its 5 x 5 maximum first (the gradients of one static source in two images
        # need not vanish at the same pixels), and never more than the paper's sum.
        fy = xp.asarray(np.fft.fftfreq(shape[0]).astype(np.float32))[:, None]
        fx = xp.asarray(np.fft.rfftfreq(shape[1]).astype(np.float32))[None, :]
        terms = []
        for S_hat in (Sn_hat, Sr_hat):
            total = None
            for sig, freq in ((sigma_x, fx), (sigma_y, fy)):
                if sig > 0:
                    g = irfft2(S_hat * (2j * np.pi * freq).astype(xp.complex64), shape)
                    term = np.float32(sig**2) * g * g
                    total = term if total is None else total + term
            terms.append(crop(total))
            del total, g, term
        common = np.minimum(*(box_maximum(t, 5) for t in terms))
        ast = np.minimum(terms[0] + terms[1], np.float32(2.0) * common)
        del terms, common
    del Sn_hat, Sr_hat
    S = crop(S_dev)
    V = crop(V)
    extra = crop(flux_term) if flux_term is not None else None
    del flux_term
    if ast is not None:
        extra = ast if extra is None else extra + ast
    noise_only = None
    if extra is not None:
        noise_only = extra <= np.float32(NOISE_ONLY_SHARE) * V
        V += extra
        del extra, ast
    # The typical variance is that of pixels with data in both images: where a mask or a
    # partial reference leaves none, only the kernels' spill from the edges is left, and a
    # median taken over those too falls with the masked fraction.
    with_data = V > 0
    for var in (var_n, var_r):
        if var is not None:
            with_data &= np.asarray(var) > 0  # NaN compares False
    if not with_data.any():
        with_data = V > 0
    typical = float(np.median(V[with_data])) if with_data.any() else 1.0
    # FFT round-off leaves tiny negative variances where the inputs carry none (padding)
    tiny = np.float32(1e-6 * typical)
    Scorr = np.zeros_like(S)
    ok = V > tiny
    Scorr[ok] = S[ok] / np.sqrt(V[ok])
    D_var = np.clip(D_var, 0.0, None)
    skew = 0.0
    if kappa3_n and ok.any():
        skew = float(kappa3_n * cubes["n"] / typical**1.5)
    hi = lo = None
    if Q_hat is not None:
        # the noise power of the phase-p filter relative to the centre's, for uniform noise:
        # sum |Pn_p^|^2 |Pr^|^2 / den over the full (Hermitian) spectrum
        weight = xp.full(absPr2.shape[1], 2.0, dtype=xp.float32)
        weight[0] = 1.0
        if shape[1] % 2 == 0:
            weight[-1] = 1.0
        power = absPr2 / den * weight[None, :]
        base = float(xp.sum(power * absPn2, dtype=xp.float64))
        # Scorr's variance at a phase is taken as the largest of the centre's over the 3 x 3
        # pixels around: the filter sits between pixels, and next to a bright source (steep
        # source-noise and registration terms) the larger neighbour keeps it conservative
        sd = np.sqrt(box_maximum(np.clip(V, 0.0, None), 3))
        hi, lo = Scorr.copy(), Scorr.copy()
        for psf in phase_psfs:
            P_hat = rfft2(xp.asarray(pad_psf(normalise_psf(psf), shape).astype(np.float32)))
            ratio = float(xp.sum(power * (P_hat.real**2 + P_hat.imag**2), dtype=xp.float64)) / base
            S_p = crop(irfft2(xp.conj(P_hat) * Q_hat, shape))
            S_p[ok] /= sd[ok] * np.float32(np.sqrt(ratio))
            S_p[~ok] = 0.0
            np.maximum(hi, S_p, out=hi)
            np.minimum(lo, S_p, out=lo)
            del P_hat, S_p
        del Q_hat, sd
    return ZogyResult(D=D, Pd=Pd, S=S, Scorr=Scorr, Fd=float(Fd), D_var=D_var, Fn=float(Fn),
                      Fr=float(Fr), kernel_n=kernel_n, kernel_r=kernel_r, Scorr_hi=hi,
                      Scorr_lo=lo, skew=skew, noise_only=noise_only, pd_inside=pd_inside)
