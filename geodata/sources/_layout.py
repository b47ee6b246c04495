"""Helpers every source reader shares: official split names and release-root detection.

Split names
-----------
Every reader exposes the release's own splits in a ``split`` column, normalized to the
Hugging Face names ``train``, ``validation`` and ``test`` (:func:`official_split`), so that a
pipeline can write them as HF splits (``output.split_by: split``) and a training mix can take
``train`` only.

Release roots
-------------
``<SOURCE>_ROOT`` may name the release root or the folder above it (the folder the archive was
unpacked into). :func:`find_root` tries the root, then each sub-folder, and settles on the one
candidate where the probe finds the release; two candidates are an error listing both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import SourceError

__all__ = ["SPLITS", "official_split", "official_splits", "find_root"]

#: The split names of the built datasets, in order.
SPLITS = ("train", "validation", "test")

_ALIASES = {
    "train": "train", "training": "train", "trainval": "train",
    "val": "validation", "valid": "validation", "validation": "validation", "dev": "validation",
    "test": "test", "testing": "test", "test_phili": "test",
}


def official_split(name: str, *, where: str = "") -> str:
    """The HF split name of a release's split name (``val`` → ``validation``).

    Examples
    --------
    >>> official_split("val"), official_split("train"), official_split("test_phili")
    ('validation', 'train', 'test')
    >>> official_split("holdout", where="x.json")
    Traceback (most recent call last):
    geodata.errors.SourceError: x.json: unknown split name 'holdout' (known: train, training, trainval, val, valid, validation, dev, test, testing, test_phili)
    """
    hit = _ALIASES.get(str(name).strip().lower())
    if hit is None:
        raise SourceError(f"{where or 'split'}: unknown split name '{name}' (known: {', '.join(_ALIASES)})")
    return hit


def official_splits(names: list[str] | None, *, where: str = "splits") -> list[str] | None:
    """Normalize a reader's ``splits`` parameter (``None`` stays ``None``: every split)."""
    if names is None:
        return None
    out: list[str] = []
    for n in names:
        s = official_split(n, where=where)
        if s not in out:
            out.append(s)
    return out


def find_root(root: Path, probe: Callable[[Path], bool], what: str) -> Path:
    """The release root: ``root`` itself, else its one sub-folder where ``probe`` holds.

    ``what`` describes what the probe looks for (for the error message).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "CVUSA" / "splits").mkdir(parents=True)
    >>> find_root(d, lambda p: (p / "splits").is_dir(), "splits/").name
    'CVUSA'
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: folder not found")
    if probe(root):
        return root
    hits = sorted(p for p in root.iterdir() if p.is_dir() and probe(p))
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise SourceError(f"{root}: ambiguous root, {what} found in {', '.join(str(h) for h in hits)}; point the root at one")
    raise SourceError(f"{root}: {what} not found here nor in a sub-folder")
