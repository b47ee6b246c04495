"""Model predictions: the reader of predictions files (the one schema is :mod:`geodata.predictions`).

``geodata predict`` (local generation, the vLLM offline engine or an OpenAI-compatible
endpoint) and the served-model step of MP16-Hard-200K (:mod:`geodata.steps.predict`) all write
:data:`~geodata.predictions.PREDICTION_COLUMNS`, made by :func:`~geodata.predictions.prediction_table`:

=============  =============================================================
Reading (:func:`load_predictions`) takes this schema and any narrower table of ``id`` plus
``pred_lat``/``pred_lon`` or ``completion`` (files written before the schema was one, or by
other tools; the reader notes which columns were missing). It normalizes to ``id, pred_lat,
pred_lon, parsed`` plus the schema's other columns that are present. Completions are parsed
for coordinates only where ``pred_lat``/``pred_lon`` are absent or null and the task is
geolocation (or unknown). Non-numeric or out-of-range coordinates and unparsable completions
become null coordinates with ``parsed = false`` (counted, never an exception). A duplicate
id or a missing ``id`` column is an error naming the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from ..context import StepContext, StepOutput
from ..errors import SourceError
from ..dataset.ownership import is_sample
from ..predictions import PREDICTION_COLUMNS, PREDICTION_SCHEMA, RUN_COLUMNS, missing_schema_columns, prediction_table
from ..tasks.geolocation.parse import parse_coords
from ..registry import source
from ..samples import sample_root, write_sample_to

log = logging.getLogger("geodata")

__all__ = ["read_predictions", "load_predictions", "predictions_file", "write_sample", "simulate_predictions",
           "PREDICTION_COLUMNS", "PREDICTION_SCHEMA", "prediction_table", "missing_schema_columns"]

_NAMES = ("predictions.parquet", "predictions.csv")


def predictions_file(root: Path) -> Path:
    """The predictions table at ``root``: the file itself, or ``predictions.{parquet,csv}`` in it."""
    root = Path(root)
    if root.is_file():
        return root
    if root.is_dir():
        for name in _NAMES:
            if (root / name).is_file():
                return root / name
        raise SourceError(f"predictions: no {' or '.join(_NAMES)} in {root} (set PREDICTIONS to the file)")
    raise SourceError(f"predictions: {root} does not exist (set PREDICTIONS to a .parquet or .csv file)")


def load_predictions(path: Path) -> pl.DataFrame:
    """Read and normalize one predictions file; see the module docstring.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
    >>> _ = p.write_text('id,completion\\na,"<answer>(1.5, 2)</answer>"\\nb,no idea\\n')
    >>> load_predictions(p).select("id", "pred_lat", "parsed").rows()
    [('a', 1.5, True), ('b', None, False)]
    """
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            df = pl.read_parquet(path)
        elif path.suffix in (".csv", ".tsv"):
            df = pl.read_csv(path, infer_schema=False, separator="\t" if path.suffix == ".tsv" else ",")
        else:
            raise SourceError(f"predictions: {path}: unsupported file type '{path.suffix}' (use .parquet or .csv)")
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise SourceError(f"predictions: {path}: cannot read: {str(exc).splitlines()[0]}") from None
    cols = set(df.columns)
    if "id" not in cols:
        raise SourceError(f"predictions: {path}: no 'id' column (found {df.columns})")
    has_xy = {"pred_lat", "pred_lon"} <= cols
    if not has_xy and "completion" not in cols:
        raise SourceError(
            f"predictions: {path}: needs pred_lat and pred_lon, or completion (found {df.columns})"
        )
    df = df.with_columns(pl.col("id").cast(pl.String))
    if df["id"].null_count():
        raise SourceError(f"predictions: {path}: {df['id'].null_count()} rows have an empty id")
    dup = df.group_by("id").len().filter(pl.col("len") > 1).sort("id")
    if dup.height:
        first = dup.row(0, named=True)
        raise SourceError(
            f"predictions: {path}: {dup.height} duplicate ids (e.g. '{first['id']}' appears {first['len']} times)"
        )
    n = df.height
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    if has_xy:
        lat = df["pred_lat"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy().astype(np.float64, copy=True)
        lon = df["pred_lon"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy().astype(np.float64, copy=True)
    if "completion" in cols:
        need = np.isnan(lat) | np.isnan(lon)
        if "task" in cols:  # coordinates are a geolocation answer only
            t = df["task"].cast(pl.String)
            need &= (t.is_null() | t.is_in(["geolocation", ""])).to_numpy()
        todo = np.flatnonzero(need)
        if todo.size:
            p = parse_coords(df["completion"].cast(pl.String).gather(todo))
            lat[todo], lon[todo] = p.lat, p.lon
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    lat[~ok] = np.nan
    lon[~ok] = np.nan
    parsed = ok
    if {"task", "parsed"} <= cols:  # other tasks' answers are not coordinates: the writer's parse stands
        t = df["task"].cast(pl.String)
        geo_rows = (t.is_null() | t.is_in(["geolocation", ""])).to_numpy()
        theirs = df["parsed"].cast(pl.Boolean, strict=False).fill_null(False).to_numpy()
        parsed = np.where(geo_rows, ok, theirs)
    out = pl.DataFrame(
        {
            "id": df["id"],
            "pred_lat": pl.Series(lat).fill_nan(None),
            "pred_lon": pl.Series(lon).fill_nan(None),
            "parsed": pl.Series(parsed, dtype=pl.Boolean),
        }
    )
    if "completion" in cols:
        out = out.with_columns(completion=df["completion"].cast(pl.String))
    keep = [c for c in RUN_COLUMNS if c in cols]
    if keep:
        out = out.with_columns(df.select(pl.col(c).cast(PREDICTION_SCHEMA[c]) for c in keep))
    return out


#: ``geodata predict``'s default outputs under :func:`geodata.paths.runs_dir`:
#: ``<train.output_dir>/predictions.parquet``, ``runs/<recipe>/`` unless the recipe says otherwise
PREDICT_OUTPUTS = "*/predictions.parquet"


def made_predictions(runs: Path | None = None) -> list[Path]:
    """Predictions files ``geodata predict`` wrote at its default place (``runs/*/predictions.parquet``
    with geodata's marker in the Parquet schema metadata), newest first."""
    import pyarrow.parquet as pq

    from ..dataset.layout import MANIFEST_MARKER
    from ..paths import runs_dir

    found = []
    for f in Path(runs or runs_dir()).glob(PREDICT_OUTPUTS):
        try:
            meta = pq.read_schema(f).metadata or {}
        except Exception:  # noqa: BLE001 - unreadable: not one to offer
            continue
        if meta.get(MANIFEST_MARKER[0].encode()) == MANIFEST_MARKER[1].encode() and _geolocation(f):
            found.append(f)
    return sorted(found, key=lambda f: (-f.stat().st_mtime, str(f)))


def _geolocation(path: Path) -> bool:
    """The file holds coordinates of geolocation rows (not, say, predictions over an EO set)."""
    try:
        lf = pl.scan_parquet(path)
        names = lf.collect_schema().names()
        if "pred_lat" not in names:
            return False
        if "task" not in names:
            return True
        return bool(lf.select((pl.col("task") == "geolocation").any()).collect().item())
    except Exception:  # noqa: BLE001 - unreadable: not one to offer
        return False


def check_not_shadowed(root: Path) -> None:
    """Refuse the embedded simulated predictions when the user made their own.

    When ``PREDICTIONS`` is unset the build falls back to the embedded sample; if ``geodata
    predict`` has written predictions at its default place, mining hotspots from the simulated
    ones instead would quietly ignore them, so this names the command that passes them.
    """
    from ..paths import source_root

    sample = sample_root("predictions")
    if source_root("PREDICTIONS") is not None or Path(root).resolve() != sample.resolve():
        return
    mine = made_predictions()
    if not mine:
        return
    cwd = Path.cwd()
    rel = [str(f.absolute().relative_to(cwd)) if f.absolute().is_relative_to(cwd) else str(f) for f in mine]
    first = rel[0]
    others = f" (also: {', '.join(rel[1:4])})" if len(rel) > 1 else ""
    raise SourceError(
        f"source 'predictions': PREDICTIONS is not set, so this build would use the embedded simulated "
        f"predictions, but `geodata predict` wrote {first}{others}. Pass yours: PREDICTIONS={first} geodata build "
        f"mp16-hard-200k (or --set sources.predictions.root={first}; make: PREDICTIONS={first}). To use the "
        f"simulated sample anyway: PREDICTIONS={sample}"
    )


def _fingerprint(root: Path) -> list[Path]:
    check_not_shadowed(root)
    return [predictions_file(root)]


# --------------------------------------------------------------------------------------
# Sample predictions for the embedded MP-16 sample: a simulated base model.
# --------------------------------------------------------------------------------------

#: Hubs where the simulated base model "knows" the place (it localizes photos within ~30 km).
_KNOWN = [
    (51.5074, -0.1278), (48.8566, 2.3522), (40.7128, -74.0060), (37.7749, -122.4194),
    (35.6762, 139.6503), (41.9028, 12.4964), (41.3874, 2.1686), (52.5200, 13.4050),
    (34.0522, -118.2437), (52.3676, 4.9041),
]


def simulate_predictions(lat: np.ndarray, lon: np.ndarray, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate a base model: near a famous hub it is right (a few km off) 90 % of the time,
    elsewhere it guesses a few hundred to a few thousand km away.

    Returns ``(pred_lat, pred_lon, kind)`` with kind 0 = solved-style, 1 = wrong.
    """
    from ..geo import haversine

    rng = np.random.default_rng(seed)
    n = lat.size
    hubs = np.array(_KNOWN)
    d = haversine(lat[:, None], lon[:, None], hubs[None, :, 0], hubs[None, :, 1]).min(axis=1)
    solved = (d <= 60.0) & (rng.random(n) < 0.9)
    # error distance and bearing: ~N(0, 5 km) when solved, 300-4000 km otherwise
    dist = np.where(solved, np.abs(rng.normal(0, 5, n)), rng.uniform(300, 4000, n))
    brg = rng.uniform(0, 2 * np.pi, n)
    delta = dist / 6371.0
    p1, l1 = np.radians(lat), np.radians(lon)
    p2 = np.arcsin(np.sin(p1) * np.cos(delta) + np.cos(p1) * np.sin(delta) * np.cos(brg))
    l2 = l1 + np.arctan2(np.sin(brg) * np.sin(delta) * np.cos(p1), np.cos(delta) - np.sin(p1) * np.sin(p2))
    plat = np.degrees(p2)
    plon = (np.degrees(l2) + 180.0) % 360.0 - 180.0
    return plat, plon, (~solved).astype(np.int8)


def write_sample(out: Path) -> dict[str, int]:
    """Write ``predictions.csv`` (id, completion) for the embedded MP-16 sample rows.

    Reads the MP-16 sample metadata (writing the MP-16 sample first when it is missing) and
    simulates a base model (:func:`simulate_predictions`). Raw completions in the Geo-R
    answer format, plus what real runs produce: a few unparsable answers, one out of range,
    a few JSON-style ones. Rows with bad coordinates in the sample get no prediction.
    """
    from ..registry import get_source

    mp16_root = sample_root("mp16")
    if not is_sample(mp16_root):
        write_sample_to(get_source("mp16"), mp16_root)
    meta = pl.read_csv(mp16_root / "mp16_places365.csv", infer_schema=False).select(
        id=pl.col("IMG_ID"),
        lat=pl.col("LAT").cast(pl.Float64, strict=False),
        lon=pl.col("LON").cast(pl.Float64, strict=False),
    ).unique("id", keep="first", maintain_order=True)
    meta = meta.filter(pl.col("lat").is_finite() & pl.col("lon").is_finite()
                       & (pl.col("lat").abs() <= 90) & (pl.col("lon").abs() <= 180))
    lat, lon = meta["lat"].to_numpy(), meta["lon"].to_numpy()
    plat, plon, kind = simulate_predictions(lat, lon)
    n = meta.height
    rng = np.random.default_rng(11)
    text = [
        f"<think>The view suggests this region.</think><answer>Coordinates: ({a:.4f}, {b:.4f})</answer>"
        for a, b in zip(plat.tolist(), plon.tolist())
    ]
    counts = {"rows": n, "solved_style": int((kind == 0).sum()), "unparsable": 0, "json": 0}
    special = rng.choice(n, size=min(n, 40), replace=False)
    for j, i in enumerate(special.tolist()):
        if j < 12:
            text[i] = "<think>Hard to say.</think><answer>I cannot determine the location.</answer>"
            counts["unparsable"] += 1
        elif j == 12:
            text[i] = "<think>Far north.</think><answer>Coordinates: (123.4, 500.0)</answer>"
            counts["unparsable"] += 1
        else:
            text[i] = f'{{"latitude": {plat[i]:.4f}, "longitude": {plon[i]:.4f}}}'
            counts["json"] += 1
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"id": meta["id"], "completion": text}).write_csv(out / "predictions.csv")
    return counts


@source("predictions", env="PREDICTIONS", sample=lambda d: write_sample(d), fingerprint=lambda root, **_: _fingerprint(root))
def read_predictions(ctx: StepContext, *, root: Path) -> StepOutput:
    """Model predictions (id + pred_lat/pred_lon or completion) from a Parquet or CSV file.

    ``root`` is the file, or a folder holding ``predictions.parquet`` or ``predictions.csv``.
    Unparsable predictions are kept with null coordinates and ``parsed = false``.
    """
    out = StepOutput()
    path = predictions_file(Path(root))
    df = load_predictions(path)
    bad = int((~df["parsed"]).sum())
    out.note("predictions.file", str(path))
    out.note("predictions.rows", df.height)
    out.note("predictions.unparsed", bad)
    if df.height and bad == df.height:
        log.warning("predictions %s: none of the %d predictions could be parsed: no row counts as solved", path, bad)
        out.note("predictions.warning", f"none of the {bad} predictions could be parsed")
    gaps = missing_schema_columns(pl.read_parquet_schema(path) if path.suffix == ".parquet"
                                  else pl.read_csv(path, n_rows=0, infer_schema=False).columns)
    if gaps:
        out.note("predictions.schema", f"older or foreign predictions file without {', '.join(gaps)}; "
                                       f"read from id with pred_lat/pred_lon or completion")
    if "finish_reason" in df.columns:
        out.note("predictions.truncated", int((df["finish_reason"] == "length").sum()))
    return out.result(df)
