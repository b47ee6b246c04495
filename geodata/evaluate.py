"""The one eval engine: predictions against a truth, every task by its registered scorer.

``geodata eval PREDICTIONS --truth X`` (docs/eval.md). The truth is

* a built dataset (folder or name under ``$GEODATA_DATASETS``): every config that holds a
  ``task`` column is scored row by row by that task's scorer (:mod:`geodata.tasks`); configs
  without one (e.g. ``hotspots``) are skipped and the report says which and why;
* a truth table (CSV / Parquet) in the IM2GPS3K / YFCC4K layout (``IMG_ID, LAT, LON``; also
  ``id, lat, lon``): geolocation rows.

Whatever the truth, the result is one :class:`EvalReport`. Truth rows are never dropped from
the denominator: an unscorable row (NaN, latitude 95) is counted in ``n_truth_invalid`` and
scored wrong; a duplicate truth id keeps its first row and is counted. A truth file that cannot
be read (not UTF-8, empty, a ragged line, a stray quote) is a one-line error naming the file
and the line. Duplicate prediction ids and a predictions file with no id in the truth are
errors; prediction ids not in the truth are counted (``--unknown-ids error`` stops instead).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from .errors import SourceError
from .registry import get_task
from .tasks.base import DEFAULT_PROTOCOL, PROTOCOLS, ScoreContext, TaskResult

__all__ = [
    "EvalReport",
    "TaskResult",
    "load_truth",
    "evaluate",
    "evaluate_files",
    "format_report",
]

log = logging.getLogger("geodata")

_TRUTH_COLS = ("id", "task", "source", "split", "solution", "qtype", "category", "lat", "lon")


class EvalReport(BaseModel):
    """The one result schema of ``geodata eval``, whatever the truth."""

    predictions: str = "-"
    truth: str = "-"
    protocol: str = DEFAULT_PROTOCOL
    protocol_rule: str = PROTOCOLS[DEFAULT_PROTOCOL]
    n_predictions: int
    n_unknown_ids: int
    n_truth: int
    n_truth_without_prediction: int
    n_truth_duplicate_id: int = 0
    n_truth_invalid: int = 0
    n_truth_lat_lon_swapped: int = 0
    tasks: dict[str, TaskResult]
    by: str | None = None
    breakdown: dict[str, dict[str, TaskResult]] = Field(default_factory=dict)
    skipped_configs: dict[str, str] = Field(default_factory=dict)
    #: ``geodata eval --compare PAPER`` (:mod:`geodata.compare`): the paper's rows with ours, its tables
    compare: list[dict[str, Any]] = Field(default_factory=list)
    compare_tables: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


# -- truth --------------------------------------------------------------------------------------
def _find_col(cols: list[str], names: tuple[str, ...]) -> str | None:
    low = {c.lower(): c for c in cols}
    for n in names:
        if n.lower() in low:
            return low[n.lower()]
    return None


def _read_csv_checked(p: Path) -> pl.DataFrame:
    """A truth CSV as strings; every unreadable-file class is a one-line error naming the line."""
    data = p.read_bytes()
    if not data.strip():
        raise SourceError(f"truth: {p} line 1: the file is empty (expected a header such as IMG_ID,LAT,LON)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SourceError(
            f"truth: {p} line {line}: byte 0x{data[exc.start]:02x} at column {col} is not UTF-8 (a Latin-1 file?); "
            f"re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        header = next(reader)
        rows = []
        for row in reader:
            first = start + 1
            start = reader.line_num
            if not row:
                continue
            if start != first:
                raise SourceError(f"truth: {p} line {first}: a quoted field runs over {start - first + 1} lines "
                                  f"(a stray quote?); fix that line")
            if len(row) != len(header):
                raise SourceError(f"truth: {p} line {first}: {len(row)} fields where the header has {len(header)} "
                                  f"(a ragged line or an unquoted comma); fix that line")
            rows.append(row)
    except csv.Error as exc:
        raise SourceError(f"truth: {p} line {start + 1}: {exc} (a stray quote?); fix that line") from None
    return pl.DataFrame(rows, schema=[(h, pl.String) for h in header], orient="row")


def _swapped(lat: pl.Series, lon: pl.Series) -> bool:
    """Whether the columns labelled latitude / longitude hold longitude / latitude.

    Decided from the whole columns, never from one row: latitudes never leave ±90, so a
    latitude column with at least 2 values (and 5 %) beyond ±90 while the longitude column has
    (almost) none is swapped — IM2GPS3K copies before GeoEstimation commit 5e091c0 carry such a
    header. One mistyped ``LAT=95`` in a regional set is an invalid row, not a swap.
    """
    a, b = lat.abs(), lon.abs()
    n = int((a.is_not_null() & a.is_not_nan()).sum()) if lat.dtype.is_float() else int(a.is_not_null().sum())
    lat_out = int(((a > 90) & (a <= 180)).sum())
    lon_out = int((b > 90).sum())
    return lat_out >= 2 and lat_out >= 0.05 * n and lon_out * 10 < lat_out


def _table_truth(p: Path) -> tuple[pl.DataFrame, dict[str, int]]:
    if p.suffix == ".parquet":
        try:
            df = pl.read_parquet(p)
        except (pl.exceptions.ComputeError, OSError) as exc:
            raise SourceError(f"truth: {p}: cannot read: {str(exc).splitlines()[0]}") from None
    else:
        df = _read_csv_checked(p)
    idc = _find_col(df.columns, ("id", "IMG_ID"))
    if idc is None:
        raise SourceError(f"truth: {p}: no id column (expected id or IMG_ID; found {df.columns})")
    latc = _find_col(df.columns, ("lat", "LAT", "latitude"))
    lonc = _find_col(df.columns, ("lon", "LON", "lng", "longitude"))
    if not (latc and lonc):
        raise SourceError(f"truth: {p}: no lat/lon columns (expected LAT, LON or lat, lon; found {df.columns})")
    lat = df[latc].cast(pl.Float64, strict=False)
    lon = df[lonc].cast(pl.Float64, strict=False)
    counts = {}
    if _swapped(lat, lon):
        log.warning("truth: %s: columns labelled %s,%s hold longitude,latitude (the whole %s column leaves ±90, "
                    "%s does not): read swapped (IM2GPS3K copies before GeoEstimation commit 5e091c0 carry this "
                    "header)", p, latc, lonc, latc, lonc)
        lat, lon = lon, lat
        counts["truth_lat_lon_swapped"] = df.height
    out = pl.DataFrame({"id": df[idc].cast(pl.String), "lat": lat, "lon": lon}).with_columns(
        task=pl.lit("geolocation"), source=pl.lit(None, pl.String), split=pl.lit(None, pl.String),
        solution=pl.lit(None, pl.String), qtype=pl.lit(None, pl.String), category=pl.lit(None, pl.String))
    return out.select(_TRUTH_COLS), counts


def _dataset_truth(p: Path) -> tuple[pl.DataFrame, dict[str, int], dict[str, str]]:
    from .dataset import Dataset

    ds = Dataset.open(p)
    want = ("id", "task", "source", "split", "solution", "qtype", "category", "lat", "lon")
    frames, skipped = [], {}
    for config in ds.configs:
        files = ds.files(config)
        if not files:
            skipped[config] = "no data files"
            continue
        schema = pl.read_parquet_schema(files[0])
        if "task" not in schema:
            skipped[config] = "no 'task' column (not answers to score)"
            continue
        for f in files:
            cols = [c for c in pl.read_parquet_schema(f) if c in want]
            frames.append(pl.read_parquet(f, columns=cols))
    if not frames:
        raise SourceError(f"truth: {ds.path}: no config holds a 'task' column to score "
                          f"({', '.join(f'{c}: {w}' for c, w in skipped.items()) or 'no configs'})")
    df = pl.concat(frames, how="diagonal_relaxed")
    for c in ("id", "task"):
        if c not in df.columns:
            raise SourceError(f"truth: {ds.path}: no '{c}' column (found {df.columns})")
    for c in ("source", "split", "solution", "qtype", "category"):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    sol = pl.col("solution").cast(pl.String)
    jlat = pl.coalesce(sol.str.json_path_match("$.lat"), sol.str.json_path_match("$.latitude")).cast(pl.Float64, strict=False)
    jlon = pl.coalesce(sol.str.json_path_match("$.lon"), sol.str.json_path_match("$.longitude")).cast(pl.Float64, strict=False)
    lat = pl.coalesce(pl.col("lat").cast(pl.Float64, strict=False), jlat) if "lat" in df.columns else jlat
    lon = pl.coalesce(pl.col("lon").cast(pl.Float64, strict=False), jlon) if "lon" in df.columns else jlon
    df = df.with_columns(pl.col("id").cast(pl.String), sol, lat=lat, lon=lon)
    return df.select(_TRUTH_COLS), {}, skipped


def load_truth(path: str | Path) -> tuple[pl.DataFrame, dict[str, int]]:
    """Truth rows ``id, task, source, split, solution, qtype, category, lat, lon`` and their counts.

    ``path`` is a built dataset (folder or name under ``$GEODATA_DATASETS``), or a CSV /
    Parquet truth table (IM2GPS3K / YFCC4K). Counts: ``truth_duplicate_id`` (the first row
    of an id is kept), ``truth_invalid`` (geolocation rows whose coordinates cannot be scored;
    kept, scored wrong), ``truth_lat_lon_swapped`` (rows of a table read swapped) and
    ``skipped_configs`` in :func:`load_truth_full`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("IMG_ID,LAT,LON\\na.jpg,1.5,2\\nb.jpg,x,3\\na.jpg,1.5,2\\nc.jpg,0,0\\n")
    >>> df, counts = load_truth(p)
    >>> df.select("id", "lat", "lon").rows(), counts
    ([('a.jpg', 1.5, 2.0), ('b.jpg', None, 3.0), ('c.jpg', 0.0, 0.0)], {'truth_duplicate_id': 1, 'truth_invalid': 1})
    """
    df, counts, _ = load_truth_full(path)
    return df, counts


def load_truth_full(path: str | Path) -> tuple[pl.DataFrame, dict[str, int], dict[str, str]]:
    """:func:`load_truth` plus the configs skipped (config → why)."""
    p = Path(path)
    if not p.exists():
        from .dataset import datasets_dir

        cand = datasets_dir() / str(path)
        if cand.is_dir():
            p = cand
        else:
            raise SourceError(f"truth: {path} is neither a file, a dataset folder nor a dataset under {datasets_dir()}")
    skipped: dict[str, str] = {}
    if p.is_dir():
        if not (p / "manifest.json").is_file():
            raise SourceError(f"truth: {p} is a folder without manifest.json (not a built dataset)")
        df, extra, skipped = _dataset_truth(p)
    else:
        df, extra = _table_truth(p)
    n0 = df.height
    df = df.unique("id", keep="first", maintain_order=True)
    counts = {"truth_duplicate_id": n0 - df.height}
    geo = df.filter(pl.col("task") == "geolocation")
    if geo.height:
        from .tasks.geolocation.score import truth_usable

        ok = truth_usable(geo["lat"].fill_null(np.nan).to_numpy(), geo["lon"].fill_null(np.nan).to_numpy())
        counts["truth_invalid"] = int((~ok).sum())
    else:
        counts["truth_invalid"] = 0
    counts.update(extra)
    return df, counts, skipped


# -- scoring -------------------------------------------------------------------------------------
def _score_frame(df: pl.DataFrame, ctx: ScoreContext) -> dict[str, TaskResult]:
    out = {}
    for (task,), g in df.group_by(["task"], maintain_order=True):
        info = get_task(str(task))
        comps = g["completion"].fill_null("").to_list() if "completion" in g.columns else [""] * g.height
        sols = [json.loads(s) if s else {} for s in g["solution"].to_list()]
        ctx.rows = g
        out[str(task)] = info.score(comps, sols, ctx)
    ctx.rows = None
    return dict(sorted(out.items()))


def evaluate(
    pred: pl.DataFrame,
    truth: pl.DataFrame,
    *,
    by: str | None = None,
    unknown_ids: Literal["drop", "error"] | str = "drop",
    protocol: str = DEFAULT_PROTOCOL,
    geocode: bool = False,
    meteor: bool | None = None,
    tokenizer: str = "auto",
    iou_threshold: float = 0.5,
) -> EvalReport:
    """Score predictions (``id`` + ``completion`` and / or ``pred_lat``, ``pred_lon``) against truth rows.

    ``truth`` is :func:`load_truth`'s frame; a frame of ``id, lat, lon`` alone is geolocation.

    Examples
    --------
    >>> truth = pl.DataFrame({"id": ["a", "b"], "task": ["change_presence"] * 2, "source": ["x", "y"],
    ...     "split": ["test"] * 2, "solution": ['{"changed": true}', '{"changed": false}']})
    >>> pred = pl.DataFrame({"id": ["a", "b"], "completion": ["<answer>yes</answer>", "maybe"]})
    >>> r = evaluate(pred, truth)
    >>> r.tasks["change_presence"].metrics["accuracy"], r.tasks["change_presence"].n_unparsed
    (0.5, 1)
    """
    if protocol not in PROTOCOLS:
        raise SourceError(f"eval: unknown protocol '{protocol}' (protocols: {', '.join(PROTOCOLS)})")
    if by is not None and by not in ("source", "split"):
        raise SourceError(f"eval: --by must be source or split, got '{by}'")
    if tokenizer not in ("auto", "ptb", "simple"):
        raise SourceError(f"eval: --tokenizer must be auto, ptb or simple, got '{tokenizer}'")
    if unknown_ids not in ("drop", "error"):
        raise SourceError(f"eval: --unknown-ids must be drop or error, got '{unknown_ids}'")
    if "id" not in pred.columns:
        raise SourceError(f"eval: predictions lack column 'id' (found {pred.columns})")
    truth = truth.with_columns(pl.col("id").cast(pl.String))
    for c, dt in (("task", pl.String), ("source", pl.String), ("split", pl.String), ("solution", pl.String),
                  ("qtype", pl.String), ("category", pl.String), ("lat", pl.Float64), ("lon", pl.Float64)):
        if c not in truth.columns:
            truth = truth.with_columns(pl.lit("geolocation" if c == "task" else None, dtype=dt).alias(c))
    keep = [c for c in ("id", "completion", "pred_lat", "pred_lon") if c in pred.columns]
    pred = pred.select(keep).with_columns(pl.col("id").cast(pl.String))
    if "completion" not in pred.columns and not {"pred_lat", "pred_lon"} <= set(pred.columns):
        raise SourceError(f"eval: predictions need 'completion' (or pred_lat and pred_lon) (found {pred.columns})")
    dup = pred.group_by("id").len().filter(pl.col("len") > 1)
    if dup.height:
        raise SourceError(f"eval: duplicate prediction id '{dup['id'][0]}' ({dup.height} ids repeat)")
    joined = truth.join(pred, on="id", how="inner", maintain_order="left")
    unknown = pred.join(truth, on="id", how="anti")
    if pred.height and joined.height == 0:
        raise SourceError(f"eval: no prediction id is in the truth (e.g. prediction '{pred['id'][0]}', "
                          f"truth '{truth['id'][0] if truth.height else '-'}')")
    if unknown.height and unknown_ids == "error":
        raise SourceError(f"eval: {unknown.height} prediction ids are not in the truth (e.g. '{unknown['id'][0]}')")
    no_task = joined.filter(pl.col("task").is_null())
    joined = joined.filter(pl.col("task").is_not_null())
    other = sorted(set(joined["task"].unique().to_list()) - {"geolocation"})
    if other and "completion" not in joined.columns:
        raise SourceError(f"eval: predictions need a 'completion' column for tasks {', '.join(other)}")
    ctx = ScoreContext(protocol=protocol, geocode=geocode, meteor=meteor, tokenizer=tokenizer,
                       iou_threshold=iou_threshold)
    report = EvalReport(protocol=protocol, protocol_rule=PROTOCOLS[protocol], n_predictions=pred.height,
                        n_unknown_ids=unknown.height, n_truth=truth.height,
                        n_truth_without_prediction=truth.height - joined.height - no_task.height,
                        tasks=_score_frame(joined, ctx), by=by)
    if by:
        for (val,), g in joined.with_columns(pl.col(by).fill_null("-")).group_by([by], maintain_order=True):
            report.breakdown[str(val)] = _score_frame(g, ctx)
        report.breakdown = dict(sorted(report.breakdown.items()))
    notes = set(ctx.notes)
    if no_task.height:
        notes.add(f"{no_task.height} truth rows have no task value: not scored")
    report.notes = sorted(notes)
    return report


def evaluate_files(
    predictions: str | Path,
    truth: str | Path,
    *,
    by: str | None = None,
    unknown_ids: str = "drop",
    protocol: str = DEFAULT_PROTOCOL,
    geocode: bool = False,
    meteor: bool | None = None,
    tokenizer: str = "auto",
) -> EvalReport:
    """:func:`evaluate` on a predictions file (or folder) and a truth (dataset or table)."""
    from .sources.predictions import load_predictions, predictions_file

    ppath = predictions_file(Path(predictions))
    if ppath.is_file() and ppath.stat().st_size == 0:
        raise SourceError(f"eval: predictions file {ppath} is empty")
    pred = load_predictions(ppath)
    if pred.height == 0:
        raise SourceError(f"eval: predictions file {ppath} has no rows (only a header?)")
    tdf, counts, skipped = load_truth_full(truth)
    report = evaluate(pred, tdf, by=by, unknown_ids=unknown_ids, protocol=protocol, geocode=geocode,
                      meteor=meteor, tokenizer=tokenizer)
    report.predictions, report.truth = str(ppath), str(truth)
    report.n_truth_duplicate_id = counts.get("truth_duplicate_id", 0)
    report.n_truth_invalid = counts.get("truth_invalid", 0)
    report.n_truth_lat_lon_swapped = counts.get("truth_lat_lon_swapped", 0)
    report.skipped_configs = skipped
    if skipped:
        report.notes = sorted(set(report.notes) | {
            f"config '{c}' not scored: {why}" for c, why in skipped.items()})
    return report


# -- the text report ---------------------------------------------------------------------------------
def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.4f}" if abs(v) <= 1 else f"{v:.1f}"


def _geo_lines(res: TaskResult, indent: str) -> list[str]:
    m = res.metrics
    acc = "  ".join(f"{k[4:-2]} km {100 * v:5.1f}%" for k, v in m.items() if k.startswith("acc@") and v is not None)
    med = m.get("median_km")
    lines = [f"{indent}geolocation      n {res.n} (unparsed {res.n_unparsed}, unscorable truth {res.n_truth_invalid}; "
             f"counted wrong)",
             f"{indent}  accuracy   {acc}",
             f"{indent}  median     " + (f"{med:.1f} km" if med is not None else "n/a (most unparsed)")
             + (f"   (parsed only: {m['median_km_parsed']:.1f} km)" if m.get("median_km_parsed") is not None else ""),
             f"{indent}  geoscore   {m['geoscore_mean']:.1f} (mean of 5000 exp(-d/1492.7))"]
    if m.get("country_acc") is not None:
        lines.append(f"{indent}  admin      country {100 * m['country_acc']:.1f}%  admin1 {100 * m['admin1_acc']:.1f}%  "
                     f"city {100 * m['city_acc']:.1f}%")
    return lines


def format_report(r: EvalReport) -> str:
    """The report as plain text: one block per task (and the breakdown), counts, notes."""
    def table(tasks: dict[str, TaskResult], indent: str = "") -> list[str]:
        out = []
        for t, res in tasks.items():
            if t == "geolocation":
                out += _geo_lines(res, indent)
                continue
            ms = "  ".join(f"{k} {_fmt(v)}" for k, v in res.metrics.items())
            out.append(f"{indent}{t:<16} n {res.n:<6} unparsed {res.n_unparsed:<5} {ms}")
            for qt, pm in res.per_type.items():
                out.append(f"{indent}  {qt:<14} " + "  ".join(f"{k} {int(v) if k == 'n' else _fmt(v)}" for k, v in pm.items()))
        return out

    lines = [f"predictions {r.predictions}  vs  truth {r.truth}",
             f"protocol {r.protocol}; scored {sum(t.n for t in r.tasks.values())} rows (unparsed answers count as wrong)"]
    lines += table(r.tasks)
    for val, tasks in r.breakdown.items():
        lines.append(f"{r.by} = {val}")
        lines += table(tasks, "  ")
    counts = [(k, getattr(r, f"n_{k}")) for k in ("unknown_ids", "truth_without_prediction", "truth_duplicate_id")]
    shown = [f"{k.replace('_', ' ')} {v}" for k, v in counts if v]
    if shown:
        lines.append("not scored " + ", ".join(shown))
    if r.n_truth_invalid:
        lines.append(f"unscorable truth rows {r.n_truth_invalid} (kept in the denominator, scored wrong)")
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)
