"""Roots: where a source's files are, one rule for ``geodata build`` and ``geodata check``.

A source's root is the spec's ``root``, else ``$<ENV>`` (``MP16_ROOT``), else its embedded
sample under ``$GEODATA_DATA/samples/<reader>`` — a sample counts only when it carries
geodata's sample marker (:func:`geodata.dataset.ownership.is_sample`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..dataset import ownership as own
from ..errors import SourceError
from ..registry import SourceInfo
from ..paths import source_root
from ..samples import data_dir, sample_root, write_sample_to
from ..spec import SourceSpec

__all__ = ["locate_root", "resolve_root", "data_dir", "sample_root", "write_sample_to"]

log = logging.getLogger("geodata")


def locate_root(info: SourceInfo, root: str | Path | None = None) -> tuple[Path, str, bool]:
    """Where source ``info`` is: ``(path, where it came from, ready)``.

    ``root`` (given) wins, then ``$<ENV>``; else the embedded sample's folder, ready only when
    it holds geodata's sample marker.
    """
    if root:
        return _existing(info, Path(root).expanduser(), f"root {root}"), "root", True
    env_root = source_root(info.env)
    if env_root is not None:
        return _existing(info, env_root, f"{info.env}={env_root}"), f"${info.env}", True
    sample = sample_root(info.name)
    return sample, "the embedded sample", own.is_sample(sample)


def _existing(info: SourceInfo, root: Path, how: str) -> Path:
    """``root`` when it exists, else a one-line SourceError naming the source, where the path
    came from (``how``: ``MP16_ROOT=/data/mp61``, ``root ...``) and the fix."""
    if root.exists():  # a folder, or a file where a reader takes one (predictions): the reader checks it
        return root
    fix = f"point it at the {info.name} release folder"
    env = how.startswith(f"{info.env}=")
    if env and info.sample is not None:
        fix += f" (or unset {info.env} to use the embedded sample)"
    raise SourceError(f"source '{info.name}': {how}: {'is set but ' if env else ''}the path does not exist; {fix}")


def resolve_root(src: SourceSpec, info: SourceInfo, write_sample: bool = True) -> Path:
    """The root of a source: the spec's ``root``, else ``$<ENV>``, else the embedded sample."""
    root, _, ready = locate_root(info, src.root)
    if not ready:
        if info.sample is None or not write_sample:
            why = "it has no embedded sample" if info.sample is None else "its sample is not written here"
            raise SourceError(f"source '{info.name}': {info.env} is not set and {why}; set {info.env} to its root folder")
        own.check_out(root, "sample", flag=f"{info.env} is not set and the sample folder")
        log.warning("%s is not set: writing the embedded %s sample to %s", info.env, info.name, root)
        write_sample_to(info, root)
    return root
