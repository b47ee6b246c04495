"""``geodata sql``, ``show`` and ``inspect``: read built and published datasets (DuckDB)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.text import Text

from ..errors import GeodataError
from .app import app, cli_errors, console


@app.command()
@cli_errors
def sql(
    query: str = typer.Argument(..., help="a DuckDB query; built datasets are views (mp16_rand_500k ...)"),
    datasets: Path = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    max_rows: int = typer.Option(50, "--max-rows", help="rows shown in table format"),
    hub: Optional[List[str]] = typer.Option(
        None, "--hub", help="also a published set: ORG/NAME (hf://datasets/ORG/NAME/**/*.parquet) or a folder"
    ),
) -> None:
    """Run SQL over every built dataset (DuckDB), and over published sets with --hub."""
    import duckdb

    from ..dataset import datasets_dir
    from ..sql import RESULT_MODES, connect, print_result

    con = connect(datasets or datasets_dir())
    if hub:
        from ..shell import register_published

        for ref in hub:
            register_published(con, ref)
    if fmt not in RESULT_MODES:
        raise GeodataError(f"sql: unknown --format '{fmt}' (allowed: {', '.join(RESULT_MODES)})")
    try:
        rel = con.sql(query)
        if rel is None:
            return
        cols = rel.columns
        rows = rel.fetchall()
    except duckdb.Error as exc:  # parse, bind and runtime errors alike: one line
        first = str(exc).splitlines()[0]
        if isinstance(exc, duckdb.CatalogException) and "does not exist" in first:
            views = sorted(r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall())
            where = datasets or datasets_dir()
            first += (f" (views: {', '.join(views)})" if views else
                      f" (no views: no built dataset under {where}; run `geodata build NAME`, or pass --datasets DIR or --hub)")
        raise GeodataError(f"sql: {first}") from None
    shown = rows[:max_rows] if fmt == "table" else rows
    note = (f"({len(rows)} rows, {max_rows} shown; --max-rows N or --format csv)"
            if len(shown) < len(rows) else None)
    print_result(console, cols, shown, fmt, note=note)


def _short(v: Any, n: int = 120) -> str:
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    s = str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


@app.command()
@cli_errors
def show(
    name: str = typer.Argument(..., help="a built dataset (datasets/NAME) or a folder"),
    n: int = typer.Option(3, "-n", help="rows to show"),
    config: Optional[str] = typer.Option(None, "--config", help="config (default: the default one)"),
) -> None:
    """Print the first rows of a built dataset: prompt, completion, solution."""
    import duckdb

    from ..dataset import Dataset
    from ..schema import messages_text

    if n < 0:
        raise GeodataError(f"show: -n must be 0 or more, got {n}")
    ds = Dataset.open(name)
    folder = ds.path
    files = [str(f) for f in ds.files(config)]
    try:
        df = duckdb.sql(f"SELECT * FROM read_parquet({files!r}) LIMIT {int(n)}").pl()
    except duckdb.Error as exc:
        raise GeodataError(f"show: cannot read {folder}: {str(exc).splitlines()[0]}") from None
    for row in df.iter_rows(named=True):
        console.rule(f"{row.get('id')}  [{row.get('task', '')}]")
        for key, val in row.items():
            if key in ("prompt", "completion"):
                console.print(Text.assemble((f"{key}:", "bold"), f" {messages_text(val)}"), highlight=False)
            elif key == "images":
                sizes = [len(i["bytes"]) if i and i.get("bytes") else 0 for i in (val or [])]
                console.print(Text.assemble(("images:", "bold"), f" {len(sizes)} ({', '.join(f'{s} B' for s in sizes)})"))
            else:
                console.print(Text.assemble((f"{key}:", "bold"), f" {_short(val, 400)}"), highlight=False)


@app.command("inspect")
@cli_errors
def inspect_cmd(
    names: Optional[List[str]] = typer.Argument(None, help="built datasets to open (default: all)"),
    hub: Optional[List[str]] = typer.Option(None, "--hub", help="published set: ORG/NAME, hf://datasets/ORG/NAME or a folder"),
    datasets: Optional[Path] = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    command: Optional[List[str]] = typer.Option(None, "-c", "--command", help="run this SQL (or .command) and exit"),
    mode: str = typer.Option("table", "--mode", help="table | csv | json"),
) -> None:
    """Interactive DuckDB shell with one view per dataset and config (also over published sets)."""
    from ..shell import open_connection, run_shell

    if mode not in ("table", "csv", "json"):
        raise GeodataError(f"inspect: unknown --mode '{mode}' (allowed: table, csv, json)")
    con = open_connection(datasets, published=hub or [], only=names or [])
    lines = None
    if command:
        lines = [c if c.strip().startswith(".") or c.rstrip().endswith(";") else c + ";" for c in command]
    failures = run_shell(con, lines, console=console, mode=mode)
    if failures and (command or not sys.stdin.isatty()):
        raise typer.Exit(1)
