"""``geodata catalog``, ``sample-data`` and ``check``: the source datasets, before any build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ..errors import GeodataError
from .app import app, cli_errors, console


def _catalog_dir() -> Path:
    from ..paths import catalog_dirs

    for d in catalog_dirs():  # $GEODATA_CATALOGS, ./catalogs, the repository's
        if d.is_dir():
            return d
    raise GeodataError("catalog: no catalogs/ folder found")


@app.command()
@cli_errors
def catalog(name: Optional[str] = typer.Argument(None, help="show one source in full")) -> None:
    """List the source datasets geodata reads, where they are expected and how to point at them."""
    import yaml

    from ..paths import source_root

    entries = []
    for f in sorted(_catalog_dir().glob("*.yaml")):
        entries.append(yaml.safe_load(f.read_text()))
    if name:
        for e in entries:
            if e.get("name") == name:
                console.print(_catalog_text(e), highlight=False, markup=False, soft_wrap=True)
                return
        raise GeodataError(f"catalog: unknown source '{name}' (known: {', '.join(e.get('name', '?') for e in entries)})")
    t = Table(title="sources (geodata catalog NAME for the layout)")
    for col in ("name", "title", "env", "set?", "license"):
        t.add_column(col)
    for e in entries:
        env = e.get("env") or ""
        t.add_row(e.get("name", "?"), e.get("title", ""), env, "yes" if env and source_root(env) is not None else "sample", str(e.get("license", "")))
    console.print(t)


def _catalog_text(entry: dict) -> str:
    """A catalog entry as plain text: one ``key: value`` line, blocks (layout, evidence) indented."""
    lines: list[str] = []
    for key, val in entry.items():
        if isinstance(val, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {v}" for k, v in val.items()]
        elif isinstance(val, list):
            lines.append(f"{key}:")
            lines += [f"  - {v}" for v in val]
        elif isinstance(val, str) and "\n" in val.strip():
            lines.append(f"{key}:")
            lines += ["  " + ln for ln in val.rstrip().splitlines()]
        else:
            lines.append(f"{key}: {str(val).strip()}")
    return "\n".join(lines)


@app.command("sample-data")
@cli_errors
def sample_data(
    out: Optional[Path] = typer.Option(None, "--out", help="folder for the samples (default ./data/samples)"),
    only: Optional[List[str]] = typer.Option(None, "--only", help="write only these sources"),
) -> None:
    """Write the embedded sample of every source in its real on-disk layout."""
    from ..samples import sample_targets, write_sample_to

    for info, root in sample_targets(only or (), out):
        write_sample_to(info, root)
        n = info.name
        console.print(f"wrote {n:<12} → {root}")


@app.command("check")
@cli_errors
def check_cmd(
    source_name: str = typer.Argument(..., metavar="SOURCE", help="a registered source (geodata catalog lists them)"),
    root: Optional[Path] = typer.Option(None, "--root", help="the source's root (default: $<SOURCE>_ROOT)"),
    deep: bool = typer.Option(False, "--deep", help="also read and decode every image"),
    param: Optional[List[str]] = typer.Option(None, "--param", help="reader parameter KEY=VALUE (e.g. images=folder)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Before a build: detected layout, rows and columns, images found/missing, splits, would-be drops."""
    import yaml

    from ..check import check_source, format_check

    params = {}
    for item in param or []:
        key, eq, value = item.partition("=")
        if not eq or not key or value == "":
            raise GeodataError(f"check: --param '{item}' is not KEY=VALUE")
        params[key] = yaml.safe_load(value)
    rep = check_source(source_name, root, deep=deep, params=params)
    typer.echo(json.dumps(rep, indent=1, default=str) if as_json else format_check(rep))
    if rep["rows_after_drops"] == 0:
        raise typer.Exit(1)
