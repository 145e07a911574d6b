"""pixfind: local photo search with CLIP models optimised for image retrieval."""

__version__ = "0.1.0"
