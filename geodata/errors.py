"""Exceptions raised by geodata.

Every message is one lower-case line that names the file, row or key at fault.
"""

from __future__ import annotations

from typing import Iterable


def did_you_mean(word: str, names: Iterable[str]) -> str:
    """`` (did you mean X?)`` naming the names closest to ``word``, else ``""``: the one hint every
    unknown key, pipeline or dataset name gets.

    >>> did_you_mean("shard_max_bm", ["shard_max_mb", "split", "split_by"])
    ' (did you mean shard_max_mb?)'
    >>> did_you_mean("zzz", ["shard_max_mb"])
    ''
    """
    import difflib

    close = difflib.get_close_matches(str(word), sorted({str(n) for n in names}), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


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


class ChoiceError(SourceError):
    """A source root holds several variants and a reader parameter must pick one.

    ``param`` names the parameter and ``choices`` the values the root offers, so ``geodata
    check`` can report every variant instead of stopping.
    """

    def __init__(self, message: str, param: str, choices: list[str]):
        super().__init__(message)
        self.param = param
        self.choices = list(choices)
