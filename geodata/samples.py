"""The embedded samples: where they are written and how, atomically and under geodata's marker.

A source may ship a sample writer (``@source(..., sample=fn)``); its sample lives in
``$GEODATA_DATA/samples/<reader>`` and counts only with geodata's sample marker
(:func:`geodata.dataset.ownership.is_sample`). Readers (a sample built from another source's
sample), the engine's roots and ``geodata sample-data`` all use this one module.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

from .dataset import ownership as own
from .errors import GeodataError
from .paths import data_dir
from .registry import SOURCES, SourceInfo, _load_all

__all__ = ["data_dir", "sample_root", "write_sample_to", "sample_targets"]


def sample_root(reader: str) -> Path:
    return data_dir() / "samples" / reader


def write_sample_to(info: SourceInfo, root: Path) -> None:
    """Write a source's sample atomically (into a temp folder, then rename).

    ``root`` is written only when it is missing, empty or a sample geodata wrote (its
    ``.complete`` marker); anything else is an :class:`~geodata.errors.OwnershipError`. In a
    sample folder of geodata's only geodata's files are replaced
    (:func:`~geodata.dataset.ownership.replace_sample`): the user's stay where they are.
    """
    assert info.sample is not None
    root = own.check_out(Path(root), "sample")
    root.parent.mkdir(parents=True, exist_ok=True)
    own.clean_stale_temps(root)
    own.clean_stale_temps(root, "old")
    tmp = own.make_temp(root)
    try:
        info.sample(tmp)
        own.replace_sample(tmp, root)  # keeps every file in root that geodata did not write
    finally:
        own.remove_temp(tmp)


def sample_targets(only: Iterable[str] = (), out: Path | None = None) -> list[tuple[SourceInfo, Path]]:
    """Every source with a sample (or those in ``only``) and the folder it goes to, checked.

    MP-16 comes first (the predictions sample is simulated over it); every target is checked
    by the ownership rule before any is written, so a refused folder writes nothing.
    """
    _load_all()
    names = sorted(n for n, i in SOURCES.items() if i.sample is not None)
    names.sort(key=lambda n: (n != "mp16", n))
    only = list(only)
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise GeodataError(f"sample-data: --only {', '.join(unknown)}: no such sample (known: {', '.join(names)})")
    if out is not None and out.exists() and not out.is_dir():
        raise GeodataError(f"--out {out}: is a file, not a folder; geodata never replaces it")
    targets = [(SOURCES[n], (out / n) if out else sample_root(n)) for n in names if not only or n in only]
    for _, root in targets:
        own.check_out(root, "sample")
    return targets
