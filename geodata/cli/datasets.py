"""``geodata validate``, ``publish`` and ``report``: check, share and picture a built dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from .app import _debug, _error_line, app, cli_errors, console, err


def _issues_table(report: Any, limit: int) -> Table:
    t = Table(title=f"failing rows (first {min(limit, len(report.issues))} of {sum(report.counts.values())})")
    for col in ("check", "file", "row", "id", "problem"):
        t.add_column(col, overflow="fold")
    for i in report.issues[:limit]:
        t.add_row(i.check, i.file or "-", "-" if i.row is None else str(i.row), "-" if i.id is None else str(i.id), i.message)
    return t


@app.command("validate")
@cli_errors
def validate_cmd(
    name: str = typer.Argument(..., help="dataset name under ./datasets (or a built folder)"),
    datasets: Optional[Path] = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    images: bool = typer.Option(True, "--images/--no-images", help="decode every image"),
    rewards: bool = typer.Option(True, "--rewards/--no-rewards", help="reward self-check of every gold completion"),
    hashes: bool = typer.Option(True, "--hashes/--no-hashes", help="compare each shard's sha256 with the manifest"),
    show: int = typer.Option(20, "--show", help="failing rows listed"),
    as_json: bool = typer.Option(False, "--json", help="print the full report as JSON"),
) -> None:
    """Check schema, features, images, ids and that every gold completion scores its reward's maximum.

    Exits 1 when a check fails (and lists the failing rows).
    """
    from ..validate import validate_dataset

    report = validate_dataset(name, datasets, images=images, rewards=rewards, hashes=hashes)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=1, default=str) + "\n")
    else:
        console.print(report.summary(), highlight=False, soft_wrap=True)
        if not report.ok:
            console.print(_issues_table(report, show))
    if not report.ok:
        raise typer.Exit(1)


@app.command("publish")
@cli_errors
def publish_cmd(
    name: str = typer.Argument(..., help="dataset name under ./datasets (or a built folder)"),
    repo_id: str = typer.Option(..., "--repo-id", help="the Hub dataset repo, ORG/NAME"),
    private: bool = typer.Option(False, "--private", help="create the repo private"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and assemble the folder, upload nothing"),
    datasets: Optional[Path] = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    out: Optional[Path] = typer.Option(None, "--out", help="assembled folder (default build/hub/<name>)"),
    images: bool = typer.Option(True, "--images/--no-images", help="decode every image during validation"),
) -> None:
    """Validate, complete the card, assemble the Hub folder and upload it (commits of <= 50 files).

    The token comes from HF_TOKEN or `hf auth login`; it is never printed.
    """
    from ..publish import folder_summary, publish
    from ..validate import ValidationError

    try:
        res = publish(
            name, repo_id, private=private, dry_run=dry_run, datasets_dir=datasets, out=out, images=images,
            log=lambda m: err.print(m, highlight=False, markup=False),
        )
    except ValidationError as exc:
        if _debug():
            raise
        err.print(_error_line(str(exc)), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    summ = folder_summary(res.folder)
    if res.dry_run:
        console.print(f"dry run: assembled {summ['files']} files ({summ['bytes'] / 1e6:.1f} MB) in {res.folder}; "
                      f"nothing uploaded", highlight=False, soft_wrap=True)
        for rel in summ["tree"]:
            console.print(f"  {rel}", highlight=False, soft_wrap=True)
        from ..dataset import Dataset

        configs = Dataset.open(res.folder).configs
        arg = "" if "default" in configs or not configs else f", '{configs[0]}'"
        console.print(f"check it: python -c \"import datasets; print(datasets.load_dataset('{res.folder}'{arg}))\"",
                      highlight=False, soft_wrap=True)
        return
    console.print(
        f"published {res.url}: {len(res.uploaded)} files uploaded in {len(res.commits)} commits, "
        f"{len(res.skipped)} already there, {len(res.deleted)} stale files deleted", highlight=False, soft_wrap=True,
    )


@app.command("report")
@cli_errors
def report_cmd(
    name: str = typer.Argument(..., help="dataset name under ./datasets (or a built folder)"),
    datasets: Optional[Path] = typer.Option(None, "--datasets", help="folder of built datasets (default ./datasets)"),
    link: bool = typer.Option(True, "--link/--no-link", help="link the figures from the dataset card"),
) -> None:
    """Write PNG figures (density map, hotspots, countries, tasks, answer lengths) and a summary."""
    from ..report import make_report

    rep = make_report(name, datasets, link=link)
    for f in rep.figures:
        console.print(f"wrote {f}", highlight=False, soft_wrap=True)
    console.print(f"wrote {rep.folder / 'summary.md'}\n", highlight=False, soft_wrap=True)
    console.print(rep.summary, highlight=False, markup=False, soft_wrap=True)
