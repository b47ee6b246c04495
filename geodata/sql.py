"""DuckDB over built datasets: one view per dataset (and per extra config).

``datasets/mp16-rand-500k`` becomes the view ``mp16_rand_500k``; a further config such as
``hotspots`` becomes ``mp16_hard_200k_hotspots``. A dataset written with one config per task
(``eo-instruct``) gets a view per config plus ``eo_instruct`` over all of them.
"""

from __future__ import annotations

import json
import logging
import re
import weakref
from pathlib import Path
from typing import Any, Sequence

import duckdb

from .dataset import DatasetError

log = logging.getLogger("geodata")

__all__ = ["connect", "view_name", "dataset_views", "create_view", "print_result", "RESULT_MODES"]

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


# -- printing a result: one printer for `geodata sql` and `geodata inspect` ------------------------

#: the output modes of a query result
RESULT_MODES = ("table", "csv", "json")


def _json_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    return str(v)


def _cell(v: Any, n: int | None) -> str:
    """One value as text: bytes and embedded images by their size, nested values as JSON text.

    >>> _cell([{"bytes": b"abc", "path": "a.jpg"}], 100), _cell({"a": [1, 2]}, None), _cell(None, None)
    ('<1 image>', '{"a": [1, 2]}', '')
    """
    if v is None:
        return ""
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    if n is not None and isinstance(v, list) and v and isinstance(v[0], dict) and "bytes" in v[0]:
        return f"<{len(v)} image{'s' if len(v) != 1 else ''}>"
    s = json.dumps(v, default=_json_default, ensure_ascii=False) if isinstance(v, (list, dict, tuple)) else str(v)
    return s if n is None or len(s) <= n else s[: n - 1] + "…"


def print_result(console: Any, cols: Sequence[str], rows: Sequence[Sequence[Any]], mode: str = "table",
                 note: str | None = None) -> None:
    """Print a query result as a rich table (values shortened), CSV or JSON (values whole).

    Nested columns (lists, structs: ``prompt``, ``images``) are JSON text in every mode's cells;
    ``note`` (how many rows were left out) follows the result.

    >>> from rich.console import Console
    >>> print_result(Console(markup=False), ["id", "tags"], [("a", ["x", "y"])], "csv")
    id,tags
    a,"[""x"", ""y""]"
    """
    import csv
    import io

    if mode not in RESULT_MODES:
        raise ValueError(f"unknown mode '{mode}' (allowed: {', '.join(RESULT_MODES)})")
    if mode == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows([[_cell(v, None) for v in r] for r in rows])
        console.print(buf.getvalue().rstrip("\n"), highlight=False, markup=False, soft_wrap=True)
    elif mode == "json":
        console.print(json.dumps([dict(zip(cols, r)) for r in rows], default=_json_default, indent=1,
                                 ensure_ascii=False), highlight=False, markup=False, soft_wrap=True)
    else:
        from rich.table import Table

        t = Table(show_lines=False)
        for c in cols:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*[_cell(v, 120) for v in r])
        console.print(t)
    if note:
        console.print(note, highlight=False, markup=False)
