"""dto-pipeline: the DTO pseudo-ground-truth job, from images to DTO-Humans rows."""

__version__ = "0.1.0"
