"""DuckDB over built datasets: one view per dataset (and per extra config).

``datasets/mp16-rand-500k`` becomes the view ``mp16_rand_500k``; a further config such as
``hotspots`` becomes ``mp16_hard_200k_hotspots``. A dataset written with one config per task
(``eo-instruct``) gets a view per config plus ``eo_instruct`` over all of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb

__all__ = ["connect", "view_name", "dataset_views"]


def view_name(*parts: str) -> str:
    """SQL-safe view name: ``mp16-hard-200k`` + ``hotspots`` → ``mp16_hard_200k_hotspots``."""
    return "_".join(re.sub(r"[^0-9a-zA-Z_]", "_", p) for p in parts).lower()


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def dataset_views(folder: Path) -> dict[str, list[str]]:
    """View name → parquet globs for one built dataset folder (read from its manifest)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    name = manifest["name"]
    views: dict[str, list[str]] = {}
    configs = manifest["configs"]
    globs_all: list[str] = []
    default = manifest.get("default_config", "default")
    task_configs = "default" not in configs
    for config, splits in configs.items():
        globs = [str(folder / f) for s in splits.values() for f in s["files"]]
        if config == "default":
            views[view_name(name)] = globs
        else:
            views[view_name(name, config)] = globs
            if task_configs and config != "hotspots":
                globs_all += globs
    if task_configs and globs_all and view_name(name) not in views:
        views[view_name(name)] = globs_all
    del default
    return views


def connect(datasets_dir: Path | str = "datasets", database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view for every dataset built under ``datasets_dir``.

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
        for view, globs in dataset_views(folder).items():
            files = ", ".join(_quote(g) for g in globs)
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet([{files}], union_by_name = true)")
    return con
