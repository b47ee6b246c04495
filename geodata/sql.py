"""DuckDB over built datasets: one view per dataset (and per extra config).

``datasets/mp16-rand-500k`` becomes the view ``mp16_rand_500k``; a further config such as
``hotspots`` becomes ``mp16_hard_200k_hotspots``. A dataset written with one config per task
(``eo-instruct``) gets a view per config plus ``eo_instruct`` over all of them.
"""

from __future__ import annotations

import logging
import re
import weakref
from pathlib import Path

import duckdb

from .dataset import DatasetError

log = logging.getLogger("geodata")

__all__ = ["connect", "view_name", "dataset_views", "create_view"]

#: per connection: view name → the folders (or published sets) it was made from
_SOURCES: "weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, dict[str, list[str]]]" = weakref.WeakKeyDictionary()


def view_name(*parts: str) -> str:
    """SQL-safe view name: ``mp16-hard-200k`` + ``hotspots`` → ``mp16_hard_200k_hotspots``."""
    return "_".join(re.sub(r"[^0-9a-zA-Z_]", "_", p) for p in parts).lower()


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _split_glob(folder: Path, files: list[str], split: str) -> list[str]:
    """Glob patterns for one split's shards: resolved by DuckDB at query time, not now."""
    dirs = sorted({Path(f).parent.as_posix() for f in files})
    return [str(folder / d / f"{split}-*.parquet") for d in dirs]


def dataset_views(folder: Path) -> dict[str, list[str]]:
    """View name → parquet globs for one built dataset folder (read from its manifest).

    The globs (``<folder>/data/train-*.parquet``) name no shard, so a view keeps working after
    a rebuild replaces the shards, in a shell opened before it. Each view has a ``split``
    column (``train`` / ``validation`` / ``test``).
    """
    from .dataset import Dataset

    ds = Dataset.open(folder)
    name = ds.name
    views: dict[str, list[str]] = {}
    configs = ds.manifest.configs
    globs_all: list[str] = []
    task_configs = "default" not in configs
    for config, splits in configs.items():
        globs = [g for split, s in splits.items() for g in _split_glob(folder, s.files, split)]
        if config == "default":
            views[view_name(name)] = globs
        else:
            views[view_name(name, config)] = globs
            if task_configs and config != "hotspots":
                globs_all += globs
    if task_configs and globs_all and view_name(name) not in views:
        views[view_name(name)] = globs_all
    return views


def connect(datasets_dir: Path | str = "datasets", database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view for every dataset built under ``datasets_dir``.

    A folder whose ``manifest.json`` cannot be read is skipped with a warning naming it.

    Examples
    --------
    >>> con = connect("datasets")  # doctest: +SKIP
    >>> con.sql("SELECT country, count(*) FROM mp16_rand_500k GROUP BY 1").show()  # doctest: +SKIP
    """
    con = duckdb.connect(database)
    root = Path(datasets_dir)
    if not root.is_dir():
        return con
    for folder in sorted(p for p in root.iterdir() if (p / "manifest.json").is_file()):
        try:
            views = dataset_views(folder)
        except DatasetError as exc:  # the message names the manifest and what is wrong with it
            log.warning("skipped %s: its manifest cannot be read: %s", folder, exc)
            continue
        for view, globs in views.items():
            create_view(con, view, _view_sql(globs), str(folder.resolve()))
    return con


def create_view(con: duckdb.DuckDBPyConnection, view: str, query: str, source: str) -> None:
    """Create ``view`` over ``query`` (rows of ``source``, a dataset folder or published set).

    A view name that another source already gave is never silently replaced: the view then
    answers every query with a one-line error naming both sources.
    """
    seen = _SOURCES.setdefault(con, {})
    sources = seen.setdefault(view, [])
    if source in sources:
        return
    sources.append(source)
    if len(sources) == 1:
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {query}")
        return
    msg = (f"view {view}: {len(sources)} datasets of that name ({' and '.join(sources)}); "
           "query one at a time (--datasets DIR, or --hub FOLDER alone) or rebuild one under another name")
    con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM range(1) WHERE error({_quote(msg)}) IS NULL")


def _view_sql(globs: list[str]) -> str:
    """One query over the shards of a view, with the HF split of each row as column ``split``.

    The split is the shard's file-name prefix (``train-*.parquet``); a ``split`` column the
    rows already carry is replaced by it.
    """
    by_split: dict[str, list[str]] = {}
    for g in globs:
        by_split.setdefault(Path(g).name[: -len("-*.parquet")], []).append(g)
    parts = []
    for split, gs in by_split.items():
        files = ", ".join(_quote(g) for g in gs)
        parts.append(f"SELECT COLUMNS(lambda c: c != 'split'), {_quote(split)} AS split "
                     f"FROM read_parquet([{files}], union_by_name = true)")
    return " UNION ALL BY NAME ".join(parts)
