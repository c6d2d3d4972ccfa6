"""Job exit codes, kept from RAPID: 0-31 normal, 32-63 warning, 64 and above error.

Downstream steps take jobs whose exit code is at most ``DOWNSTREAM_MAX``.
"""

OK = 0
NO_REFERENCE = 33  # fewer than the minimum prior images, or no overlap with any reference
ERROR = 64  # unexpected failure inside the job
BAD_INPUT = 65  # an input could not be read
LOST = 70  # the engine lost the job, or it crashed before writing its manifest
BAD_MANIFEST = 71  # the job ended but its manifest is missing or unreadable
TIMED_OUT = 72  # queued or running past the operator's limits
NOT_SUBMITTED = 73  # the job row was opened but the submission failed

DOWNSTREAM_MAX = 32

MEANINGS = {
    OK: "normal",
    NO_REFERENCE: "no reference image possible",
    ERROR: "error in job",
    BAD_INPUT: "input unreadable",
    LOST: "job lost by engine or crashed",
    BAD_MANIFEST: "manifest missing or corrupt",
    TIMED_OUT: "timed out",
    NOT_SUBMITTED: "submission failed",
}


def meaning(code: int | None) -> str:
    """Words for an exit code, by its range when it has no name of its own."""
    if code is None:
        return "not ended"
    if code in MEANINGS:
        return MEANINGS[code]
    if code < 32:
        return "normal"
    if code < 64:
        return "warning"
    return "error"
