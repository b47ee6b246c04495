"""The built-dataset folder and its one owner.

* :mod:`~geodata.dataset.layout` — the folder's file names and the markers that say geodata wrote it;
* :mod:`~geodata.dataset.folder` — :class:`Dataset`, the typed object over ``manifest.json``
  (configs, splits, shards, card, report record);
* :mod:`~geodata.dataset.ownership` — the rules for touching folders: geodata deletes or
  replaces only what carries its marker;
* :mod:`~geodata.dataset.writer` — the default output format (Hub-layout zstd Parquet shards);
* :mod:`~geodata.dataset.card` — the dataset card (``README.md``) renderer.

Nothing in this package imports the engine, the commands, sources or steps.
"""

from __future__ import annotations

from .folder import BuildStats, Dataset, DatasetError, FileEntry, Manifest, ReportRecord, SplitEntry, datasets_dir

__all__ = ["Dataset", "DatasetError", "Manifest", "SplitEntry", "FileEntry", "BuildStats", "ReportRecord",
           "datasets_dir"]
