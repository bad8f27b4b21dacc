"""The pipeline's errors: each names the file or argument at fault and what to do."""

from __future__ import annotations

__all__ = [
    "CacheError",
    "MissingCacheError",
    "MissingWeightsError",
    "OutputMismatchError",
    "TeachersFileError",
    "UsageError",
]


class UsageError(ValueError):
    """A command-line argument or job parameter that cannot be used (named)."""


class OutputMismatchError(ValueError):
    """The output folder holds a run with other settings or another input, or shares that
    cannot be merged."""


class TeachersFileError(ValueError):
    """teachers.toml is malformed (unknown table or key, wrong type)."""


class MissingWeightsError(FileNotFoundError):
    """A teacher's weights are not where teachers.toml (or the default) says."""


class CacheError(ValueError):
    """A cache entry that cannot be read (named), e.g. a file damaged outside this program."""


class MissingCacheError(FileNotFoundError):
    """An image has no cached teacher output for the requested model ids."""
