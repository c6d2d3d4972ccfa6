"""What a user should know about a difference whose inputs left a step to a guess.

A difference always completes; when an image has too few stars to estimate its PSF, or too few
match between the two images to measure their flux ratio, a default stands in and the fluxes
follow from it. :func:`difference_cautions` says so in words, for the command line and the
job log, from the result's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_IMAGES = {"sci": "science", "ref": "reference"}
# A reference whose PSF is narrower than this many of its own pixels (FWHM; Nyquist sampling
# wants 2) and that lies on pixels this much larger than the science's is one whose sources'
# resampled profiles depend on their pixel phase: a reference of 1.4 pixels FWHM at twice the
# science's scale gave fading sources' flux pulls a scatter of 2.3-2.9
UNDERSAMPLED_FWHM = 2.0
COARSER = 1.2


def difference_cautions(meta: Mapping[str, Any]) -> list[str]:
    """Sentences about the guesses a difference rested on; empty when it rested on none.

    Parameters
    ----------
    meta : mapping
        :attr:`rapid.science.difference.DifferenceResult.meta`.

    Returns
    -------
    list of str
    """
    notes = []
    for key, image in _IMAGES.items():
        source = meta.get(f"{key}_psf_source")
        fwhm = meta.get(f"{key}_fwhm", float("nan"))
        if source == "fallback":
            notes.append(f"the {image} image has too few isolated stars to estimate its PSF and "
                         f"no PSF file: a Gaussian of FWHM {fwhm:.2f} pixels stands in, and every "
                         "flux follows from it; a PSF file sets it right")
        elif source == "few sources":
            notes.append(f"the {image} image has too few isolated stars for a stacked PSF and "
                         f"no PSF file: a profile of FWHM {fwhm:.2f} pixels fitted to one of "
                         "its brightest sources stands in; a PSF file sets it right")
        elif source in _IMAGES.values() and source != image:
            notes.append(f"the {image} image has too few isolated stars to estimate its PSF and "
                         f"no PSF file: the {source} image's PSF (FWHM {fwhm:.2f} pixels) stands "
                         "in for it")
    own, here = meta.get("ref_fwhm_own", float("nan")), meta.get("ref_fwhm", float("nan"))
    if own < UNDERSAMPLED_FWHM and here > COARSER * own:
        notes.append(f"the reference is undersampled (PSF FWHM {own:.2f} of its own pixels, "
                     f"{here:.2f} on the science grid): brought onto finer pixels, its sources' "
                     "profiles depend on where they fell on its pixels, and the fluxes of "
                     "sources it holds (fading, variable) scatter by a few per cent beyond "
                     "their errors")
    method = meta.get("gainmatch_method")
    matched = (f"{meta.get('nmatched', 0)} stars bright enough in both images for a flux ratio"
               " (5 needed)")
    if method == "unity":
        notes.append(f"{matched} and no ZPTMAG: the reference's flux scale is taken to equal "
                     "the science image's")
    elif method == "zptmag":
        notes.append(f"{matched}: the reference's flux scale comes from the two ZPTMAG "
                     "keywords")
    return notes
