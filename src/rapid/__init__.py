"""rapid: the Roman WFI transient pipeline, from L2 images to difference images and candidates."""

__version__ = "0.1.0"
