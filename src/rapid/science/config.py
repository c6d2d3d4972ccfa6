"""Settings of the difference-imaging steps, with their defaults, in one place.

Each step has one frozen dataclass; :class:`DifferenceConfig` gathers them for
:func:`rapid.science.difference.difference_images`. Defaults are chosen for Roman WFI L2 images
(undersampled PSF, FWHM about 1-1.5 pixels in the near-infrared) and stay sensible for any
well-sampled ground-based image; every field says where it differs from RAPID.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BackgroundConfig:
    """Background subtraction with sep (:func:`rapid.science.background.estimate_background`).

    Attributes
    ----------
    box : int
        Side of the background mesh cells in pixels (64).
    filter_size : int
        Median filter over mesh cells, in cells (3).
    mask_sources : bool
        Mask pixels of detected sources before the final background estimate (True), so that
        bright stars do not raise the local background.
    source_thresh : float
        Detection threshold for that source mask, in background sigma (3.0).
    level_scale : float
        Gaussian kernel in pixels (128, sigma) of the local linear fit by which the science
        background's level is matched to the reference's, on the two images brought to one
        PSF (:func:`rapid.science.background.match_level`); 0 keeps each image's own
        estimate.
    """

    box: int = 64
    filter_size: int = 3
    mask_sources: bool = True
    source_thresh: float = 3.0
    level_scale: float = 128.0


@dataclass(frozen=True)
class PsfConfig:
    """PSF handling (:mod:`rapid.science.psf`).

    Attributes
    ----------
    size : int
        Side of an estimated PSF stamp in pixels, odd (25).
    min_stars : int
        Fewest isolated stars that make an estimate (3); below that ``fallback_fwhm`` is used.
    fallback_fwhm : float
        FWHM in pixels of the Gaussian PSF used when a frame has no PSF, too few stars and no
        source for ``few_source_snr`` (2.0, the finder FWHM RAPID uses).
    few_source_snr : float
        With too few stars for a stack, and none from the other image, the PSF is the Moffat
        fitted to the narrowest of the brightest isolated sources at this S/N or more (20;
        :func:`rapid.science.moffat_wings.few_source_psf`), a star or a bright transient; 0
        goes straight to ``fallback_fwhm``.
    stamp_fwhms : float
        An estimated PSF spans at least this many FWHM (8), up to ``max_size`` pixels (61):
        ``size`` suits Roman's 1.5-pixel PSF, but a seeing-limited 4.5-pixel one keeps 3% of
        its light (Moffat beta 2.5) beyond a 25-pixel stamp, which every bright star leaves
        in the difference as a square ring of candidates.
    max_size : int
        Largest side of an estimated PSF stamp, odd (61).
    cell_size : int
        An estimated PSF is also fitted across the image, in cells about this many pixels wide
        (512; 0: never), and where it varies the difference runs cell by cell with the local
        PSFs (:mod:`rapid.science.psf_cells`). RAPID uses one PSF per image.
    cell_min_variation : float
        Smallest relative L2 difference between a cell's PSF and the image's that makes the
        cells worth it (0.015); the moments behind it must also differ by ``cell_nsigma``
        (5) of their errors.
    cell_nsigma : float
        See ``cell_min_variation``.
    cell_stars_per_term : int
        Isolated PSF stars needed per term of the polynomial the stars' moments are fitted
        with (10): quadratic from 60 stars, linear from 30, none below.
    fine_below_fwhm : float
        An estimated PSF narrower than this many pixels FWHM is estimated again on a grid
        ``fine_factor`` (4) times finer than the pixels from the stars' many sub-pixel phases
        (:mod:`rapid.science.effective_psf`), when ``fine_min_stars`` (10) isolated stars
        allow: interpolated and stacked, an undersampled core comes out too wide. Off by
        default (0): on romanisim's images, whose PSF has Roman's full diffraction wings,
        it leaves more residuals around bright stars than the stack (7 candidates besides
        the transient in a 260-pixel cutout with 40 stars, against at most 3); 2.5 turns it
        on for undersampled images.
    moffat_wings_from_fwhm : float
        An estimated PSF at least this many pixels wide (FWHM) takes its wings, beyond 1.5-2.5
        FWHM, from an elliptical Moffat profile fitted to the stack of its stars (2.5;
        :mod:`rapid.science.moffat_wings`): a stack's wings follow the background estimate and
        the neighbours about its stars, and their lumps came back as rings of candidates around
        the bright stars of small images (71 on 20 cutouts of ground-based pairs, 2 with the
        Moffat's wings). 0 keeps the stack as it is.
    fine_factor : int
        See ``fine_below_fwhm``.
    fine_min_stars : int
        See ``fine_below_fwhm``.
    """

    size: int = 25
    min_stars: int = 3
    fallback_fwhm: float = 2.0
    few_source_snr: float = 20.0
    stamp_fwhms: float = 8.0
    max_size: int = 61
    cell_size: int = 512
    cell_min_variation: float = 0.015
    cell_nsigma: float = 5.0
    cell_stars_per_term: int = 10
    fine_below_fwhm: float = 0.0
    moffat_wings_from_fwhm: float = 2.5
    fine_factor: int = 4
    fine_min_stars: int = 10


@dataclass(frozen=True)
class GainMatchConfig:
    """Flux scaling and residual offsets from cross-matched stars (:mod:`rapid.science.gainmatch`).

    Attributes
    ----------
    detect_thresh : float
        sep extraction threshold in background sigma (5.0).
    match_radius : float
        Cross-match radius in pixels (1.5).
    min_snr : float
        Smallest S/N of a star in both images to enter the ratio (20).
    min_stars : int
        Fewest matched stars for a measured ratio (5); fewer falls back to the zero points
        (else 1: the images' units taken to be the same), while the positions of the matched
        stars (S/N >= 10 in both) still register the reference: on cutouts of 128-384 pixels of
        ground-based pairs with 1-4 such stars, each star had otherwise been left a dipole.
    clip_sigma : float
        Sigma of the clipping of ratios and offsets (3.0).
    aperture_radius : float or None
        Aperture radius in pixels; None uses 2 x the larger PSF FWHM (at least 3 px). The fluxes
        are aperture-corrected with each image's PSF, so different seeing does not bias the
        ratio. In a crowded field (fewer than half the bright sources unblended) the ratio
        comes from the two images brought to one PSF (each convolved with the other's), where
        a star's neighbours cancel: in ground-based fields of a star per 105 and per 63
        pixels, aperture fluxes of the unblended stars gave ratios 4% and 11% low, and 80 and
        360 fading false candidates.
    saturation_fraction : float
        Stars whose peak exceeds this fraction of the saturation level are not used (0.8).
    max_offset : float
        Largest offset between the two images' WCS that the cross-match finds, pixels (16: 1.8"
        on Roman's pixels; :func:`rapid.science.registration.common_offset`). RAPID matches
        at zero offset only.
    """

    detect_thresh: float = 5.0
    match_radius: float = 1.5
    min_snr: float = 20.0
    min_stars: int = 5
    clip_sigma: float = 3.0
    aperture_radius: float | None = None
    saturation_fraction: float = 0.8
    max_offset: float = 16.0


@dataclass(frozen=True)
class RegistrationConfig:
    """Correction of the reference's registration from matched stars
    (:mod:`rapid.science.registration`).

    Attributes
    ----------
    correct : bool
        Resample the reference again through the fitted offsets when they are significant
        (True). RAPID keeps the WCS mapping and only records the offsets.
    min_shift : float
        Smallest offset, anywhere on the image, worth a second resampling, pixels (0.05);
        smaller residuals are left to ZOGY's astrometric-noise term.
    nsigma : float
        The offset must also exceed this many of its own errors (5). The centroids of an
        undersampled PSF carry pixel-phase errors of several hundredths of a pixel: on 16
        simulated Roman differences, whose WCS are exact, the fits gave 0.02-0.17 pixel at a
        corner, none of them 3 errors from zero.
    """

    correct: bool = True
    min_shift: float = 0.05
    nsigma: float = 5.0


@dataclass(frozen=True)
class ZogyConfig:
    """ZOGY proper image subtraction (:func:`rapid.science.zogy.zogy`).

    Attributes
    ----------
    device : str
        "cpu" (default), "gpu" (CuPy, error when absent) or "auto" (GPU when CuPy imports).
    workers : int or None
        Threads for scipy.fft (None: scipy's default, one).
    astrometric_noise : bool
        Include the registration noise in Scorr's variance, as in the paper's V_ast (True):
        the scatter of the matched stars' offsets that their own centroid noise does not
        explain (:func:`rapid.science.registration.registration_noise`; the plain rms, RAPID's
        ``dxrmsfin``, is mostly the faint stars' centroid noise: 0.029 pixel where the
        brightest stars scatter by 0.003-0.008 on a simulated ground-based pair). RAPID leaves
        it out (sigma_x = sigma_y = 0); with it, the residuals of bright stars left by
        registration and interpolation errors of undersampled images are weighed against
        their expected size instead of becoming candidates (on simulated Roman images: 0.3
        instead of 2.2 false positives per 512^2 image, with higher completeness at the same
        threshold). Only sources in both images are weighed so: a transient keeps its Scorr
        (see :func:`rapid.science.zogy.zogy`).
    flux_noise : float
        Fractional PSF-model mismatch of sources present in both images, weighed into Scorr's
        variance (0.1), see :func:`rapid.science.zogy.zogy`. It keeps the wings of bright
        stars, where PSF models of undersampled images are least exact, from producing
        candidates, and leaves the Scorr of transients on empty sky unchanged (simulated Roman
        1024^2 images: 6.8 instead of 11.3 false positives per image, same completeness). 0 is
        RAPID's behaviour. Used as it is when not measured (below).
    flux_noise_from_stars : bool
        Measure the mismatch on the matched stars instead (True;
        :func:`rapid.science.psf_mismatch.psf_mismatch`, the 90th percentile of the fraction
        of their flux their difference leaves, each star weighed by its S/N squared), kept
        within ``flux_noise_min`` (0.01) and ``flux_noise_max`` (0.3): PSFs estimated from a
        well-sampled image's own stars match to a per cent or two, and a fixed 10% would hide
        a supernova on any galaxy core ten times brighter than itself. With fewer than five
        measurable stars, the largest of their fractions. Stars whose light changed between
        the images (variables, and transients on stars) are not measured: their change is
        what Scorr is for.
    flux_noise_min, flux_noise_max : float
        Bounds of the measured mismatch (0.01, 0.3): no PSF model is trusted to better than
        1% for the brightest stars, which the matched stars leave out (saturated, or
        brighter than any of them). On a simulated ground-based pair (2048^2, 3000 stars)
        unmasked stars up to 10^6 ADU leave |Scorr| < 5 with no allowance at all; with a 3%
        floor, 6 of the 23 transients on a galaxy core or a star whose S/N in D is >= 10 were
        lost, with 1% (and the registration noise above) 1.
    flux_noise_min_fwhm : float
        Measure only when both PSFs are at least this wide, pixels (2.0, Nyquist sampling).
        An undersampled PSF's mismatch depends on each star's pixel phase and brightness more
        than the matched stars sample: on simulated Roman images (FWHM 1.4) they gave
        0.04-0.07, and the brightest stars' wings then left 0.8 false positives per 1024^2
        image instead of 0.2-0.3 with the fixed 0.1.
    pd_size : int
        Side of the returned difference PSF stamp, odd (25).
    """

    device: str = "cpu"
    workers: int | None = None
    astrometric_noise: bool = True
    flux_noise: float = 0.1
    flux_noise_from_stars: bool = True
    flux_noise_min: float = 0.01
    flux_noise_max: float = 0.3
    flux_noise_min_fwhm: float = 2.0
    pd_size: int = 25


@dataclass(frozen=True)
class DetectConfig:
    """Candidate detection on Scorr (:func:`rapid.science.detect.detect_candidates`).

    Attributes
    ----------
    threshold : float
        Lowest detection threshold in units of Scorr's standard deviation (5.0), the usual
        ZOGY choice; ``false_alarm_rate`` may raise it. RAPID uses 2.5 with SExtractor's
        relative threshold, which on a 4088^2 image admits thousands of noise peaks.
    relative : bool
        Scale the threshold by the measured robust std of Scorr (True), like RAPID's relative
        thresholds; this absorbs noise correlations left by resampling. It is measured where
        Scorr is noise alone (:attr:`rapid.science.zogy.ZogyResult.noise_only`), and the
        threshold stays absolute when fewer than 5000 such pixels are left.
    minarea : int
        Fewest connected pixels above threshold (2). Scorr is already matched-filtered, so its
        peak alone is the detection statistic; RAPID's 5 pixels (a SExtractor habit on
        unfiltered images) drop faint point sources of an undersampled PSF, whose Scorr peak
        is only 1-3 pixels above threshold. Measured on 30 simulated 1024^2 differences (289
        transients at S/N 5-7): 5 pixels find 28% of them, 2 pixels 43% (all whose Scorr peak
        reaches the threshold), 1 pixel no more, at 5.6, 6.9 and 7.5 false positives per
        image.
    both_signs : bool
        Detect fading sources on -Scorr too (True).
    edge : int
        Candidates whose peak lies closer than this to the image border are dropped (8).
    deblend_nthresh : int
        sep deblending levels (32).
    deblend_cont : float
        sep deblending contrast (0.005).
    skew_correction : bool
        Move the brightening and fading thresholds apart by the Cornish-Fisher term
        ``+-skew (t**2 - 1) / 6`` (True), so that each keeps the false-alarm rate of a Gaussian
        at ``t`` when Scorr's noise is skewed: the Poisson noise of a faint sky (Roman: ~100
        e- per pixel under 8.5 e- read noise) passes a skewness of ~0.03 through the nearly
        one-pixel matched filter of an undersampled PSF, which on pure noise gives 1.6 times
        the Gaussian rate of brightening peaks at 4.5 sigma and half the fading ones. The
        skewness comes from the science frame's gain and exposure time; without a gain the
        noise is taken as Gaussian.
    subpixel_phases : bool
        Also search Scorr computed with the filters matched to sources half a pixel off the
        pixel centres (True; :mod:`rapid.science.phases`). With Roman's undersampled PSF the
        best pixel of the centred filter keeps only 71-100% (89% on average) of a source's
        S/N; with the half-pixel phases >= 94%. Needs a finely sampled PSF of the science
        image (a PSF file with an oversampled HDU): only that shifts exactly. Costs three FFTs
        of the image.
    false_alarm_rate : float
        Expected noise false alarms per million pixels and sign that the threshold admits
        (0.25, i.e. ~8 per 4088^2 image for both signs); the threshold is raised above
        ``threshold`` to the level where Gaussian noise through the difference PSF gives this
        rate (:func:`rapid.science.phases.false_alarm_threshold`). Sharp PSFs have more
        independent noise elements than broad ones and so get higher thresholds: ~5.35 for
        Roman H158 (where the half-pixel search then finds as many sources as the pixel-centre
        filter at 5.0, with half its noise false alarms), ~5.05 for a 3-pixel FWHM. 0 keeps
        ``threshold`` as it is.
    star_residuals : bool
        Hold a candidate near a bright static point source (150 times its flux or more, 1.5-8
        FWHM of D's PSF away) to the threshold times Scorr's noise level about that source at
        the candidate's distance (True; :mod:`rapid.science.star_residuals`): the spots a PSF
        model's error leaves there. With PSFs estimated from Roman's stars, 6.6 false
        positives per 1024x1024 image fell to 1.4 (seed 11), with the PSF files 0.6 to 0.3;
        no transient was lost.
    streaks : bool
        Find satellite, aircraft and meteor trails as lines in Scorr averaged over blocks
        (True; :mod:`rapid.science.streaks`), drop the candidates on them and leave their bands
        out of Scorr's scatter. On eight simulated 1024x1024 ground-based pairs with two trails
        each (0.5-10 sky sigma per pixel) all 16 were found, the 131 candidates on them fell
        to 1, and 147 rather than 146 of the 156 transients at S/N >= 10 away from them were
        found; none was found where there was none.
    pixel_score_max : float
        Detections that one or two bright pixels of one image (a cosmic ray, a hot pixel)
        describe better than a point source by more than this score are dropped (3.0; inf
        keeps them; :func:`rapid.science.artifacts.pixel_scores`, whose value every candidate
        carries as ``pixel_score``). A real source scores about ``-s sqrt((1 - rho) / 2)`` +- 1
        at S/N ``s``: it is never dropped, and for an undersampled PSF, where the two
        profiles are alike (rho near 1), nothing is. On a simulated ground-based pair (2048^2,
        Moffat PSF of 4.2 pixels FWHM, 300 cosmic rays of 1-3 pixels;
        ``tests/science/ground_pair.py``) all 275 detected cosmic rays scored above 3 (2 of
        them only with the two-pixel profiles) and no real source did. RAPID keeps them all.
    """

    threshold: float = 5.0
    relative: bool = True
    minarea: int = 2
    both_signs: bool = True
    edge: int = 8
    deblend_nthresh: int = 32
    deblend_cont: float = 0.005
    skew_correction: bool = True
    subpixel_phases: bool = True
    false_alarm_rate: float = 0.25
    star_residuals: bool = True
    streaks: bool = True
    pixel_score_max: float = 3.0


@dataclass(frozen=True)
class PhotometryConfig:
    """PSF-fit and aperture photometry of candidates (:mod:`rapid.science.photometry`).

    Attributes
    ----------
    fit_shape : tuple of int
        Fit box in pixels (11, 11); RAPID uses 17 x 17, which is more than an undersampled
        Roman difference PSF needs and slower.
    aperture_radii : tuple of float
        Aperture radii in pixels (2, 4); columns ``aper_flux_r<radius>``.
    max_shift : float
        How far a fit may move a candidate from its detected position, pixels (1.0); 0 fixes it.
    aperture_correction : bool
        Divide the PSF fluxes of candidates by the aperture correction measured on the stars
        (:mod:`rapid.science.aperture_correction`) when the PSF model they depend on was
        estimated from the image rather than read from a PSF file (True): a file defines the
        flux scale, an estimate's normalisation is what the correction repairs.
    aperture_correction_min_stars : int
        Fewest stars it is measured on (4): four stars that agree set it to a per cent or two,
        while a stacked PSF left uncorrected can put every flux 8% high (a ground-based pair
        whose PSF widens by 30% across the field, 16 cells, 4 stars isolated enough).
    aperture_correction_below_fwhm : float
        The correction is measured for PSFs read from files too when the difference PSF is
        narrower than this, pixels (2.0, Nyquist sampling), and no finer sampling of it is
        known: the fits then interpolate an undersampled PSF between pixel centres, which
        put new sources' fluxes 4% low on average for a Gaussian PSF of FWHM 1.2 given at
        pixel centres.
    """

    fit_shape: tuple[int, int] = (11, 11)
    aperture_radii: tuple[float, ...] = (2.0, 4.0)
    max_shift: float = 1.0
    aperture_correction: bool = True
    aperture_correction_min_stars: int = 4
    aperture_correction_below_fwhm: float = 2.0


@dataclass(frozen=True)
class CosmicRayConfig:
    """Cosmic rays found in either image, on the science grid (:mod:`rapid.science.cosmic_rays`).

    Attributes
    ----------
    min_fwhm : float
        Only an image whose PSF is at least this wide, in pixels (2.5), is searched: L.A.Cosmic
        tells a cosmic ray from a star by its sharpness, and an undersampled star's core is as
        sharp (inf never searches).
    sigclip : float
        Detection limit of the Laplacian in sigma (4.5, L.A.Cosmic's).
    sigfrac : float
        Neighbours of a detection are flagged down to this fraction of ``sigclip`` (0.3).
    objlim : float
        Least contrast of a cosmic ray's Laplacian over the image's fine structure (5.0): a
        star's core, however bright, has less.
    niter : int
        Passes (1): a second found 5% more pixels of the same rays and took 70% longer.
    """

    min_fwhm: float = 2.5
    sigclip: float = 4.5
    sigfrac: float = 0.3
    objlim: float = 5.0
    niter: int = 1


@dataclass(frozen=True)
class DifferenceConfig:
    """All steps of :func:`rapid.science.difference.difference_images`.

    Attributes
    ----------
    background, psf, cosmic_rays, gainmatch, registration, zogy, detect, photometry
        The per-step settings above.
    resample_order : int
        Spline order when the reference is resampled onto the science grid (3).
    min_ref_coverage : float
        Pixels where the reference coverage (``ref.meta["coverage"]``, number of input frames,
        when present) is below this are masked (1.0).
    mask_grow : int
        Masked areas are grown by this many pixels, or by the wider PSF's FWHM when that is
        more, before D and Scorr are blanked (2), because the ZOGY kernels spread a bad pixel
        over its neighbours: with a 4.5-pixel PSF a star cut by the edge of the reference's
        footprint otherwise left candidates 3-8 pixels from it.
    bright_mask_snr : float
        Masked areas whose rim reaches this S/N (saturated star cores) also get a halo mask
        out to where the star's PSF wing falls below the noise, its flux fitted to the rim
        (50; see :mod:`rapid.science.bright_mask`); inf disables it.
    min_overlap_pixels : int
        Fewest pixels valid in both images; fewer raises ``NoOverlapError`` (100).
    """

    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    psf: PsfConfig = field(default_factory=PsfConfig)
    cosmic_rays: CosmicRayConfig = field(default_factory=CosmicRayConfig)
    gainmatch: GainMatchConfig = field(default_factory=GainMatchConfig)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    zogy: ZogyConfig = field(default_factory=ZogyConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    photometry: PhotometryConfig = field(default_factory=PhotometryConfig)
    resample_order: int = 3
    min_ref_coverage: float = 1.0
    mask_grow: int = 2
    bright_mask_snr: float = 50.0
    min_overlap_pixels: int = 100


@dataclass(frozen=True)
class ReferenceConfig:
    """The reference build of the science job (:func:`rapid.science.reference.build_reference`).

    Attributes
    ----------
    order : int
        Spline order of the resampling of the input frames onto the tile grid (3, cubic).
        1 (bilinear) costs about a second less per 4088² frame (no prefilter, 2x2 instead of 4x4
        taps and bad-pixel footprints) but smooths more: the coadd's per-pixel noise drops to
        ~0.67 of what its uncertainty map says (~0.88 for cubic), so ZOGY's Scorr comes out
        with a smaller standard deviation (0.899 in the end-to-end survey test, which wants
        more than 0.9), and a cosmic ray spread over several output pixels is rejected less
        completely.
    block_rows : int
        Output rows combined at once (128): bounds the stack in memory to
        frames x block_rows x tile width x 8 bytes.
    """

    order: int = 3
    block_rows: int = 128
