"""``geodata eval``: score predictions against a built dataset or a benchmark truth CSV.

A thin shell over :mod:`geodata.evaluate` (one engine, one report schema for every truth).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import GeodataError
from .app import app, cli_errors, console


@app.command("eval")
@cli_errors
def eval_cmd(
    predictions: Path = typer.Argument(..., help="predictions .parquet/.csv (id + completion, or pred_lat/pred_lon)"),
    truth: str = typer.Option(..., "--truth", help="built dataset (folder or name) or truth CSV (IMG_ID, LAT, LON)"),
    out: Optional[Path] = typer.Option(None, "--out", help="JSON report (default: PREDICTIONS.eval.json)"),
    unknown_ids: str = typer.Option("drop", "--unknown-ids", help="prediction ids not in the truth: drop (counted) | error"),
    no_geocode: bool = typer.Option(False, "--no-geocode", help="skip country/admin1/city accuracy"),
    by: Optional[str] = typer.Option(None, "--by", help="also break the metrics down by source | split"),
    compare: Optional[str] = typer.Option(None, "--compare", help="print published results beside yours (e.g. geo-r)"),
    protocol: str = typer.Option("geochat", "--protocol", help="where benchmarks disagree: geochat | earthdial | synonyms (docs/eval.md)"),
    tokenizer: str = typer.Option("auto", "--tokenizer", help="caption tokenizer: auto (PTB when java is on the PATH) | ptb | simple"),
) -> None:
    """Score predictions against a built dataset or a truth CSV, each task by its benchmark's rule."""
    if not predictions.exists():
        raise GeodataError(f"eval: {predictions}: the predictions file does not exist; pass the .parquet or .csv "
                           "that `geodata predict` (or your model) wrote")
    from ..dataset.ownership import MANIFEST_MARKER, check_out_file
    from ..evaluate import evaluate_files, format_report

    target = out if out is not None else predictions.with_name(predictions.name + ".eval.json")
    check_out_file(target)  # never overwrite a file geodata did not write
    rep = evaluate_files(predictions, truth, by=by, unknown_ids=unknown_ids, protocol=protocol,
                         geocode=not no_geocode, tokenizer=tokenizer)
    text = format_report(rep)
    if compare:  # the paper's tables with this run's row where it ranks (geodata/compare.py)
        from ..compare import compare as compare_paper, format_comparison

        cmp = compare_paper(rep.model_dump(), compare, truth)
        rep.compare, rep.compare_tables = cmp["rows"], cmp["tables"]
        text += "\n" + format_comparison(cmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({MANIFEST_MARKER[0]: MANIFEST_MARKER[1], **rep.model_dump()}, indent=2) + "\n")
    console.print(text, highlight=False, markup=False, soft_wrap=True)
    console.print(f"wrote {target}", highlight=False, soft_wrap=True)
