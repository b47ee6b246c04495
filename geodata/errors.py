"""Exceptions raised by geodata.

Every message is one lower-case line that names the file, row or key at fault.
"""

from __future__ import annotations


class GeodataError(Exception):
    """Base class of every error geodata raises on bad input."""


class SpecError(GeodataError):
    """A pipeline spec (YAML) is invalid: unknown step or key, bad value."""


class SourceError(GeodataError):
    """A source dataset is missing, malformed, or lacks required columns."""


class BuildError(GeodataError):
    """A build failed for a reason other than the spec or the inputs."""


class OwnershipError(GeodataError):
    """geodata was asked to write where it would replace or delete files it did not write."""
