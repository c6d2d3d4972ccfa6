"""PSF stamps: estimate from isolated stars, measure the FWHM, pad, recentre and normalise."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import sep
from scipy import ndimage, optimize
from scipy.spatial import cKDTree

from rapid.science.background import sep_ready
from rapid.science.extraction import extract
from rapid.science.image import Frame

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
# Half-width, as a factor, of the stellar locus in half-light radius (:func:`stellar_locus`):
# wide enough for stars' noise and a wide-field camera's PSF changes, narrow enough to leave
# out most galaxies and every cosmic ray
LOCUS_WINDOW = 1.25
# Half-width, as a factor in both radii, of the vote that finds the locus: stars share their
# sizes closely, galaxies spread over many, and a narrow vote lets a few stars stand out
# among many galaxies
LOCUS_VOTE = 1.08
# Fewest sources a locus must share, as a fraction of the most shared sizes'
LOCUS_SHARE = 0.5
# Largest factor by which a locus member's radius of 80% of the light exceeds the locus's
LOCUS_OUTER = 1.5
# A source whose brightest pixel holds more than this fraction of its light (in a 3-pixel
# radius) is a cosmic ray or a hot pixel: an undersampled star's holds under half of it
HOT_PIXEL_FRACTION = 0.7
# A PSF stacked on a wider stamp (for its wings) replaces the first estimate only when its
# FWHM is within this fraction of the first's
WIDE_CORE_TOLERANCE = 0.1
# Most stars a PSF is stacked from, brightest first
MAX_PSF_STARS = 50


def gaussian_psf(fwhm: float, *, size: int = 25) -> np.ndarray:
    """Circular Gaussian PSF stamp, pixel-integrated, odd-sized, centred, summing to 1.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum in pixels (> 0).
    size : int, optional
        Side of the stamp, odd (25).

    Returns
    -------
    ndarray
        float64 stamp of shape (size, size).
    """
    if not fwhm > 0:
        raise ValueError(f"fwhm must be > 0, got {fwhm}")
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 3, got {size}")
    from scipy.special import erf

    sigma = fwhm / FWHM_PER_SIGMA
    edges = np.arange(size + 1) - size / 2.0
    cdf = 0.5 * (1.0 + erf(edges / (np.sqrt(2.0) * sigma)))
    prof = np.diff(cdf)  # integrate over each pixel: matters for undersampled PSFs
    psf = np.outer(prof, prof)
    return psf / psf.sum()


def normalise_psf(psf: np.ndarray) -> np.ndarray:
    """Return ``psf`` as float64 with non-finite values at 0, scaled to sum 1.

    Parameters
    ----------
    psf : ndarray
        2-D stamp.

    Returns
    -------
    ndarray
    """
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2:
        raise ValueError(f"psf must be 2-D, got shape {psf.shape}")
    psf = np.where(np.isfinite(psf), psf, 0.0)
    total = psf.sum()
    if not total > 0:
        raise ValueError("psf must have a positive sum")
    return psf / total


def resize_psf(psf: np.ndarray, size: int) -> np.ndarray:
    """Crop or zero-pad an odd-sized stamp about its central pixel to ``size`` x ``size``.

    Parameters
    ----------
    psf : ndarray
        Odd-sized 2-D stamp.
    size : int
        Odd output side.

    Returns
    -------
    ndarray
        Stamp renormalised to sum 1.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 1, got {size}")
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2 or psf.shape[0] % 2 == 0 or psf.shape[1] % 2 == 0:
        raise ValueError(f"psf must be a 2-D odd-sized stamp, got shape {psf.shape}")
    out = np.zeros((size, size))
    h = size // 2
    cy, cx = psf.shape[0] // 2, psf.shape[1] // 2
    ry, rx = min(h, cy), min(h, cx)
    out[h - ry:h + ry + 1, h - rx:h + rx + 1] = psf[cy - ry:cy + ry + 1, cx - rx:cx + rx + 1]
    return normalise_psf(out)


def stamp_centre(psf: np.ndarray) -> tuple[float, float]:
    """Where a PSF stamp's centre lies, zero-based pixels (y, x).

    The middle pixel of an odd side. An even side has two conventions: between its two middle
    pixels, at n/2 - 1/2 (webbpsf, stpsf, GalSim's default), or on pixel n/2 (numpy's FFT
    convention); the one nearer the light's centroid is taken (they are half a pixel apart).
    """
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2:
        raise ValueError(f"psf must be 2-D, got shape {psf.shape}")
    light = np.clip(np.where(np.isfinite(psf), psf, 0.0), 0.0, None)
    if not light.sum() > 0:
        raise ValueError("psf must have a positive sum")
    centre = []
    for n, c in zip(psf.shape, ndimage.center_of_mass(light)):
        if n % 2:
            centre.append((n - 1) / 2.0)
        else:
            centre.append(n / 2.0 if abs(c - n / 2.0) < abs(c - (n - 1) / 2.0)
                          else (n - 1) / 2.0)
    return centre[0], centre[1]


def odd_stamp(psf: np.ndarray, centre: tuple[float, float] | None = None) -> np.ndarray:
    """A PSF stamp on an odd grid, centred on its central pixel, summing to 1.

    An even side gets one zero sample at its end; when its centre (``centre``, default
    :func:`stamp_centre`) lies between the two middle pixels the stamp is also moved half a
    pixel, by a Fourier shift: exact for a PSF sampled at Nyquist or finer, an interpolation of
    an undersampled one (whose file should then carry a finely sampled PSF too, from which the
    stamp is taken exactly: :func:`rapid.science.fine_psf.native_from_fine`).
    """
    psf = normalise_psf(psf)
    even = [n % 2 == 0 for n in psf.shape]
    if not any(even):
        return psf
    centre = stamp_centre(psf) if centre is None else centre
    padded = np.pad(psf, [(0, int(e)) for e in even])
    move = [n / 2.0 - c if e else 0.0 for n, c, e in zip(psf.shape, centre, even)]
    if any(move):
        padded = fourier_shifted(padded, move)
    return normalise_psf(padded)


def fourier_shifted(stamp: np.ndarray, shift) -> np.ndarray:
    """``stamp`` moved by ``shift`` (dy, dx) pixels in Fourier space: the band-limited reading,
    exact for a PSF sampled at Nyquist or finer; the stamp wraps around its edges."""
    return np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(stamp), shift)).real


def recentre_psf(psf: np.ndarray) -> np.ndarray:
    """Shift a stamp (cubic spline) so that its centroid falls on the central pixel.

    Parameters
    ----------
    psf : ndarray
        Odd-sized 2-D stamp.

    Returns
    -------
    ndarray
        Recentred stamp, summing to 1.
    """
    psf = normalise_psf(psf)
    c = np.array(psf.shape) // 2
    for _ in range(3):  # a few iterations: the centroid of a truncated stamp moves slightly
        cy, cx = ndimage.center_of_mass(np.clip(psf, 0, None))
        d = c - np.array([cy, cx])
        if np.all(np.abs(d) < 1e-3):
            break
        psf = normalise_psf(ndimage.shift(psf, d, order=3, mode="constant"))
    return psf


def pad_psf(psf: np.ndarray, shape: tuple[int, int], dtype=np.float64) -> np.ndarray:
    """Place a centred odd-sized stamp into an array of ``shape`` with its centre at [0, 0].

    This is the layout an FFT convolution needs: the PSF centre at the origin, wrapped.

    Parameters
    ----------
    psf : ndarray
        Odd-sized stamp; cropped when larger than ``shape``.
    shape : tuple of int
        Output shape.
    dtype : numpy dtype, optional
        Of the output (float64).

    Returns
    -------
    ndarray
        Array summing to 1.
    """
    ny, nx = shape
    size = min(psf.shape[0], psf.shape[1], ny - (1 - ny % 2), nx - (1 - nx % 2))
    stamp = resize_psf(psf, size if size % 2 else size - 1)
    s = stamp.shape[0]
    # the stamp's rows and columns wrapped about the origin: only its s x s pixels are
    # written, never the whole (mostly zero) array
    rows, cols = (np.arange(s) - s // 2) % ny, (np.arange(s) - s // 2) % nx
    out = np.zeros(shape, dtype=dtype)
    out[np.ix_(rows, cols)] = stamp
    return out


def fit_psf_fwhm(psf: np.ndarray) -> float:
    """FWHM in pixels of a circular Gaussian fitted to a PSF stamp.

    Parameters
    ----------
    psf : ndarray
        2-D stamp.

    Returns
    -------
    float
        FWHM in pixels.
    """
    psf = normalise_psf(psf)
    ny, nx = psf.shape
    y, x = np.mgrid[:ny, :nx].astype(float)

    def model(p):
        amp, x0, y0, sig = p
        return amp * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sig**2))

    p0 = [psf.max(), (nx - 1) / 2, (ny - 1) / 2, 1.0]
    res = optimize.least_squares(lambda p: (model(p) - psf).ravel(), p0,
                                 bounds=([0, 0, 0, 0.1], [np.inf, nx, ny, max(nx, ny)]))
    return float(abs(res.x[3]) * FWHM_PER_SIGMA)


@dataclass
class PsfStars:
    """Stars an image's PSF can be estimated from (see :func:`find_psf_stars`).

    Attributes
    ----------
    image : ndarray
        The frame's data ready for sep (bad pixels at 0).
    bad : ndarray
        Its bad-pixel map.
    objects : ndarray
        sep's detections.
    flux : ndarray
        Their fluxes in a 3-pixel aperture.
    snr : ndarray
        The S/N of those fluxes.
    clean : ndarray
        Boolean: unflagged and unsaturated.
    usable : ndarray
        Boolean: clean and bright enough.
    """

    image: np.ndarray
    bad: np.ndarray
    objects: np.ndarray
    flux: np.ndarray
    snr: np.ndarray
    clean: np.ndarray
    usable: np.ndarray

    def at_snr(self, min_snr: float) -> PsfStars:
        """The same detections, usable from another S/N on."""
        return replace(self, usable=self.clean & (self.snr > min_snr))


def find_psf_stars(frame: Frame, *, min_snr: float = 50.0,
                   saturation_fraction: float = 0.8) -> PsfStars:
    """Detect the sources of a background-subtracted frame and mark the usable PSF stars.

    Parameters
    ----------
    frame : Frame
        Background-subtracted image.
    min_snr : float, optional
        Smallest S/N of a usable star (50).
    saturation_fraction : float, optional
        Stars peaking above this fraction of ``frame.meta["saturation"]`` are not usable (0.8).

    Returns
    -------
    PsfStars

    Raises
    ------
    ValueError
        When the frame has no noise estimate or no source is found.
    """
    bad = frame.bad()
    arr = sep_ready(frame.data, bad)
    rms = float(np.std(arr[~bad])) if (~bad).any() else 0.0
    good = arr[~bad]
    if good.size:
        mad = np.median(np.abs(good - np.median(good)))
        rms = 1.4826 * mad if mad > 0 else rms
    if not rms > 0:
        raise ValueError("frame has no noise estimate (empty or constant)")
    try:
        objs = extract(arr, 5.0, err=rms, mask=bad, minarea=5)
    except Exception as exc:
        raise ValueError(f"source extraction failed: {exc}") from exc
    if len(objs) == 0:
        raise ValueError("no stars found")
    flux, _, _ = sep.sum_circle(arr, objs["x"], objs["y"], 3.0, err=rms, mask=bad)
    snr = flux / (rms * np.sqrt(np.pi * 9.0))
    clean = objs["flag"] == 0
    sat = frame.meta.get("saturation")
    if sat:
        clean &= objs["peak"] < saturation_fraction * float(sat)
    return PsfStars(image=arr, bad=bad, objects=objs, flux=flux, snr=snr, clean=clean,
                    usable=clean & (snr > min_snr))


def estimate_psf(
    frame: Frame, *, size: int = 25, max_stars: int = MAX_PSF_STARS, min_stars: int = 3,
    min_snr: float = 50.0, saturation_fraction: float = 0.8, span_fwhm: float = 0.0,
    max_size: int = 61, stars: PsfStars | None = None,
) -> np.ndarray:
    """Estimate the PSF from isolated, unsaturated, bright stars.

    Stars are extracted with sep (on a background-subtracted frame), cut out, shifted to a
    common centre with cubic-spline interpolation, normalised and median-stacked.

    Parameters
    ----------
    frame : Frame
        Background-subtracted image.
    size : int, optional
        Side of the stamp, odd (25).
    max_stars : int, optional
        Use at most the brightest this many stars (50).
    min_stars : int, optional
        Fewest usable stars (3); fewer raises ValueError.
    min_snr : float, optional
        Smallest S/N of a usable star (50).
    saturation_fraction : float, optional
        Stars peaking above this fraction of ``frame.meta["saturation"]`` are skipped (0.8).
    span_fwhm : float, optional
        When > 0, the stamp is widened to span at least this many FWHM of the PSF estimated on
        ``size``, up to ``max_size`` (61), if enough stars are isolated over the wider stamp:
        a PSF model ends at its stamp, and a broad PSF's light beyond it is left in a
        difference as a square ring around every bright star.
    stars : PsfStars, optional
        The frame's stars as :func:`find_psf_stars` found them, when the caller has them
        (``min_snr`` and ``saturation_fraction`` then went into that search).

    Returns
    -------
    ndarray
        float64 stamp, centred, summing to 1: (size, size), or wider (see ``span_fwhm``).
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 3, got {size}")
    if stars is None:
        stars = find_psf_stars(frame, min_snr=min_snr, saturation_fraction=saturation_fraction)
    psf = stack_stars(star_stamps(stars, size, max_stars), min_stars)
    if span_fwhm > 0:
        fwhm = fit_psf_fwhm(psf)
        wide = span_size(fwhm, span_fwhm, max_size)
        if wide > size:
            try:
                wider = stack_stars(star_stamps(stars, wide, max_stars), min_stars)
            except ValueError:  # too few stars isolated over the wider stamp
                wider = None
            # the wider stamp is there for the wings; a core that disagrees with the one of
            # more stars comes from too few of them and is not taken: on a 192-pixel
            # ground-based image, the 3 sources on the locus over a 41-pixel stamp were two
            # galaxies and a blend, and their stack 1.8 times too wide
            if wider is not None and abs(fit_psf_fwhm(wider) / fwhm - 1) <= WIDE_CORE_TOLERANCE:
                psf = wider
    return psf


def span_size(fwhm: float, span_fwhm: float, max_size: int) -> int:
    """The odd stamp side spanning at least ``span_fwhm`` FWHM, at most ``max_size``."""
    return min(max_size, 2 * int(np.ceil(span_fwhm * fwhm / 2)) + 1)


def isolated_stars(stars: PsfStars, size: int, *, isolation: float | None = None,
                   clean: bool = True) -> np.ndarray:
    """Indices of the usable stars isolated over a ``size`` stamp, brightest first.

    A star is isolated when no other detection lies within ``isolation`` pixels (default half
    the stamp) and, with ``clean``, no masked pixel (saturated core, bad column) within the
    stamp; its whole stamp lies on the image.
    """
    arr, bad, objs = stars.image, stars.bad, stars.objects
    h = size // 2
    ny, nx = arr.shape
    x, y = objs["x"], objs["y"]
    keep = stars.usable & (x > h + 1) & (x < nx - h - 2) & (y > h + 1) & (y < ny - h - 2)
    tree = cKDTree(np.column_stack([x, y]))
    radius = h if isolation is None else isolation
    counts = np.array([len(n) for n in tree.query_ball_point(np.column_stack([x, y]), radius)])
    keep &= counts == 1
    if clean:
        bad_near = ndimage.maximum_filter(bad.astype(np.uint8), size=size)
        keep &= bad_near[np.round(y).astype(int).clip(0, ny - 1),
                         np.round(x).astype(int).clip(0, nx - 1)] == 0
    idx = np.flatnonzero(keep)
    return idx[np.argsort(-stars.flux[idx])]


def cut_stamps(stars: PsfStars, idx: np.ndarray, size: int) -> np.ndarray:
    """``size`` stamps of the stars ``idx``, centred on their windowed centroids (cubic
    spline) and normalised to sum 1; shape (len(idx), size, size), one per star in its order.
    A stamp whose pixels do not sum positive (a star on an over-subtracted background) is NaN,
    so that callers can still pair stamps with the stars' positions."""
    arr, objs = stars.image, stars.objects
    x, y = objs["x"], objs["y"]
    h = size // 2
    stamps = []
    for i in idx:
        ix, iy = int(round(x[i])), int(round(y[i]))
        cut = arr[iy - h - 1:iy + h + 2, ix - h - 1:ix + h + 2].astype(np.float64)
        # windowed centroid is more precise than sep's isophotal barycentre
        sig = max(0.5, float(objs["a"][i]))
        wx, wy, _ = sep.winpos(arr, np.array([x[i]]), np.array([y[i]]), np.array([sig]))
        dx, dy = float(wx[0]) - ix, float(wy[0]) - iy
        if abs(dx) > 1 or abs(dy) > 1:
            dx, dy = x[i] - ix, y[i] - iy
        shifted = ndimage.shift(cut, (-dy, -dx), order=3, mode="nearest")[1:-1, 1:-1]
        tot = shifted.sum()
        stamps.append(shifted / tot if tot > 0 else np.full_like(shifted, np.nan))
    return np.array(stamps).reshape(len(stamps), size, size)


def stellar_locus(stars: PsfStars, idx: np.ndarray, rmax: float, *, min_stars: int = 3,
                  window: float = LOCUS_WINDOW) -> np.ndarray:
    """Those of the sources ``idx`` (in their order) that lie on the stellar locus: not a hot
    pixel, and a half-light radius within a factor ``window`` of the stars'.

    A bright, isolated detection is not always a star: galaxies (which outnumber stars at high
    galactic latitude and can be most of a small image's bright sources) are wider, cosmic
    rays narrower, and a median stack of a sample half made of them is too wide. A source with
    most of its light in one pixel is a cosmic ray or a hot pixel, however sharp the PSF. Of
    the rest, stars are the sharpest, and share one size where galaxies spread over many.
    A size is two radii, of half and of 80% of the light: a compact elliptical's core can be
    as small as a star's, not its outer light. The locus is the smallest size that at least
    ``min_stars`` sources, and ``LOCUS_SHARE`` as many as share the most shared size, share
    within ``LOCUS_VOTE``; its members are the sources whose half-light radius lies within
    ``window`` of the median of those that share it.
    With 9 stars and 90 point-like transients among 300 bright galaxies on a 1024-pixel
    image, a vote within ``window`` found the galaxies (101 of them within 25% of one
    radius), and the PSF came out 1.7 times too wide. ``idx`` is returned whole when fewer
    than ``min_stars`` would be left.
    """
    idx = np.asarray(idx)
    if len(idx) < min_stars:
        return idx
    objs = stars.objects
    r, flag = sep.flux_radius(stars.image, objs["x"][idx], objs["y"][idx],
                              np.full(len(idx), float(rmax)), [0.5, 0.8], mask=stars.bad,
                              subpix=5)
    hot = objs["peak"][idx] > HOT_PIXEL_FRACTION * stars.flux[idx]
    ok = (flag == 0) & np.all(np.isfinite(r) & (r > 0), axis=1) & ~hot
    if ok.sum() < min_stars:
        return idx
    size = np.log(np.where(ok[:, None], r, 1.0))
    sizes = size[ok][np.argsort(size[ok, 0])]
    apart = np.abs(sizes[:, None, :] - sizes[None, :, :]).max(axis=2)
    votes = (apart < np.log(LOCUS_VOTE)).sum(axis=1)
    if votes.max() < min_stars:
        return idx
    # the smallest size shared nearly as widely as the most shared one: a few compact
    # galaxies of one size do not outvote the stars, nor cosmic-ray tracks a field's stars
    first = np.argmax(votes >= max(min_stars, LOCUS_SHARE * votes.max()))
    centre = np.median(sizes[apart[first] < np.log(LOCUS_VOTE), 0])
    # members by the half-light radius, and an outer radius not far beyond the locus's (a
    # compact galaxy's outer light; the window is wider there, where any neighbour's light
    # adds)
    outer = np.median(sizes[apart[first] < np.log(LOCUS_VOTE), 1])
    keep = (ok & (np.abs(size[:, 0] - centre) < np.log(window))
            & (size[:, 1] - outer < np.log(LOCUS_OUTER)))
    return idx[keep] if keep.sum() >= min_stars else idx


def point_like(image: np.ndarray, bad: np.ndarray, x, y, psf: np.ndarray, *,
               window: float = LOCUS_WINDOW) -> np.ndarray:
    """Which of the sources at ``x, y`` have the PSF's size: radii of half and of 80% of the
    light (within 3 FWHM) both within a factor ``window`` of the PSF model's own.

    What is measured on "stars" assumes point sources: a galaxy's light beyond the PSF reads
    as a PSF model that misses light. Matched between two images, bright sources are galaxies
    as often as stars at high latitude: with 300 bright galaxies, 9 stars and point-like
    transients on a 1024-pixel pair, the aperture correction came out 0.44 and every flux 2.3
    times too high.

    Parameters
    ----------
    image, bad : ndarray
        Background-subtracted image and its bad-pixel map.
    x, y : array_like
        Source positions, zero-based pixels.
    psf : ndarray
        The image's PSF stamp, odd-sized and centred.
    window : float, optional
        Largest ratio of either radius to the PSF's (LOCUS_WINDOW).

    Returns
    -------
    ndarray
        One boolean per source (False where a radius cannot be measured).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    psf = np.asarray(psf, dtype=np.float64)
    rmax = max(3.0, 3.0 * fit_psf_fwhm(psf))
    big = int(np.ceil(rmax)) + 2
    padded = resize_psf(psf, 2 * max(big, psf.shape[0] // 2) + 1)
    c = float(padded.shape[0] // 2)
    own, _ = sep.flux_radius(np.ascontiguousarray(padded), np.array([c]), np.array([c]),
                             np.array([rmax]), [0.5, 0.8], subpix=5)
    bad = np.ascontiguousarray(bad, dtype=bool)
    clean = np.ascontiguousarray(np.where(bad, 0.0, image), dtype=np.float32)  # NaN where bad
    r, flag = sep.flux_radius(clean, x, y, np.full(x.size, rmax), [0.5, 0.8], mask=bad,
                              subpix=5)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(np.log(r / own[0][None, :]))
    return (flag == 0) & np.all(np.isfinite(ratio) & (ratio < np.log(window)), axis=1)


def star_stamps(stars: PsfStars, size: int, max_stars: int) -> np.ndarray:
    """Stamps (see :func:`cut_stamps`) of the brightest ``max_stars`` isolated stars on the
    stellar locus (:func:`stellar_locus`) whose light sums positive."""
    # the locus from a few times the stars needed: enough to outnumber the galaxies among them
    idx = stellar_locus(stars, isolated_stars(stars, size)[:4 * max_stars], rmax=size // 2)
    stamps = cut_stamps(stars, idx[:max_stars], size)
    return stamps[np.isfinite(stamps).all(axis=(1, 2))]


def stack_noise(stamps: np.ndarray) -> float:
    """Mean per-pixel variance of the median stack of ``stamps`` (as :func:`stack_stars`, each
    normalised), from how the stacks of two halves of them differ; NaN with fewer than two.

    The stars alternate between the halves in their order (brightest first), so that both
    hold bright and faint ones. Whatever makes one star's stamp differ from another's (its
    noise, a faint neighbour, the background under it) is counted, with no noise model: for
    means of ``a`` and ``b`` stamps the difference has ``n**2 / (a b)`` times the variance of
    the mean of all ``n``; the median's is taken to scale alike.
    """
    n = len(stamps)
    if n < 2:
        return float("nan")
    halves = [np.median(stamps[k::2], axis=0) for k in (0, 1)]
    a, b = (h / h.sum() for h in halves)
    na, nb = len(stamps[0::2]), len(stamps[1::2])
    return float(np.mean((a - b) ** 2) * na * nb / n**2)


def stack_stars(stamps: np.ndarray, min_stars: int) -> np.ndarray:
    """The recentred median of star stamps; ValueError when fewer than ``min_stars``."""
    if len(stamps) < min_stars:
        raise ValueError(f"only {len(stamps)} isolated bright stars, need {min_stars}")
    return recentre_psf(np.median(stamps, axis=0))
