"""Geolocation evaluation: accuracy at 1/25/200/750/2500 km, median error, GeoScore, admin levels.

``geodata eval PREDICTIONS --truth X`` scores a predictions table (see
:mod:`geodata.sources.predictions`: ``id`` plus ``pred_lat``/``pred_lon`` or ``completion``)
against ground truth, which is

* a built dataset folder (``datasets/mp16-hard-200k``) or its name: columns ``id``, ``lat``,
  ``lon`` of the default config (or the ``solution`` JSON);
* a CSV in the IM2GPS3K / YFCC4K layout: ``IMG_ID``, ``LAT``, ``LON`` (other columns ignored;
  ``id``/``lat``/``lon`` also accepted).

Metrics, over the predictions whose id is in the truth (``n``):

* ``acc_km[T]`` — share with great-circle error ``<= T`` km (haversine, R = 6371 km);
* ``median_km`` — median error, unparsed predictions counting as infinitely far
  (null when more than half are unparsed); ``median_km_parsed`` over parsed ones only;
* ``geoscore_mean`` — mean of ``5000 exp(-d / 1492.7)`` (0 for unparsed);
* ``country_acc`` / ``admin1_acc`` / ``city_acc`` — the prediction and the truth reverse-geocode
  (:func:`geodata.geocode.reverse_geocode`) to the same country, the same (country, admin1),
  the same (country, admin1, city);
* ``n_unparsed`` — predictions without usable coordinates, counted as wrong everywhere.

Bad input is never silent: duplicate prediction ids are an error; prediction ids not in the
truth are counted (``n_unknown_ids``) or, with ``unknown_ids="error"``, an error; duplicate
or invalid truth rows are dropped and counted; no matching id at all is an error.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from .errors import SourceError
from .geo import EARTH_RADIUS_KM, haversine, valid_coords
from .sources.predictions import load_predictions, predictions_file

__all__ = ["THRESHOLDS_KM", "GEOSCORE_SCALE_KM", "load_truth", "evaluate", "evaluate_files", "metrics", "format_report"]

log = logging.getLogger("geodata")

THRESHOLDS_KM: tuple[float, ...] = (1.0, 25.0, 200.0, 750.0, 2500.0)
GEOSCORE_SCALE_KM = 1492.7


def _find_col(df: pl.DataFrame, names: tuple[str, ...]) -> str | None:
    low = {c.lower(): c for c in df.columns}
    for n in names:
        if n.lower() in low:
            return low[n.lower()]
    return None


def _labels_swapped(df: pl.DataFrame, latc: str, lonc: str, where: Path) -> int:
    """Rows of a table whose ``LAT``/``LON`` labels sit over lon/lat values (0: not swapped).

    Decided from the values: latitudes never leave ±90, so a ``LAT`` column beyond ±90 (and
    within ±180) while ``LON`` stays within ±90 is swapped (IM2GPS3K before GeoEstimation
    commit 5e091c0) and says so; any other column beyond ±90 is undecidable: an error.
    """
    v = df.select(
        a=(pl.col(latc).cast(pl.Float64, strict=False).abs() > 90).sum(),
        b=(pl.col(lonc).cast(pl.Float64, strict=False).abs() > 90).sum(),
        c=(pl.col(latc).cast(pl.Float64, strict=False).abs() > 180).sum(),
        n=pl.len(),
    ).row(0, named=True)
    if not v["a"]:
        return 0
    if v["b"] or v["c"]:
        raise SourceError(
            f"truth: {where}: cannot tell latitude from longitude: {v['a']} rows have |{latc}| > 90 "
            f"({v['c']} beyond 180) and {v['b']} rows |{lonc}| > 90; fix the file (or its header)"
        )
    log.warning(
        "truth: %s: columns labelled %s,%s hold longitude,latitude (%d of %d %s values beyond ±90, none of %s): "
        "read swapped (IM2GPS3K copies before GeoEstimation commit 5e091c0 carry this header)",
        where, latc, lonc, v["a"], v["n"], latc, lonc,
    )
    return int(v["n"])


def load_truth(path: str | Path) -> tuple[pl.DataFrame, dict[str, int]]:
    """Read ground truth as ``id, lat, lon`` (+ the drop counts of duplicate/invalid rows).

    ``path`` is a built dataset folder (has ``manifest.json``), a dataset name under
    ``./datasets`` (``$GEODATA_DATASETS``), or a CSV/Parquet truth table. A table whose
    ``LAT``/``LON`` labels are swapped over the values (old IM2GPS3K copies) is recognised
    from the values and read correctly, with a warning and ``truth_lat_lon_swapped`` (its row
    count) in the returned counts; one that cannot be decided is an error.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("IMG_ID,LAT,LON\\na.jpg,1.5,2\\nb.jpg,x,3\\na.jpg,1.5,2\\n")
    >>> df, drops = load_truth(p)
    >>> df.rows(), drops
    ([('a.jpg', 1.5, 2.0)], {'truth_duplicate_id': 1, 'truth_invalid_coordinates': 1})
    """
    p = Path(path)
    if not p.exists():
        from .dataset import datasets_dir

        cand = datasets_dir() / str(path)
        if cand.is_dir():
            p = cand
        else:
            raise SourceError(f"truth: {path} is neither a file, a dataset folder nor a dataset under {datasets_dir()}")
    if p.is_dir():
        from .dataset import Dataset

        if not (p / "manifest.json").is_file():
            raise SourceError(f"truth: {p} is a folder without manifest.json (not a built dataset)")
        files = Dataset.open(p).files()
        df = pl.concat([pl.read_parquet(f, columns=None) for f in files], how="diagonal_relaxed")
        df = df.drop([c for c in ("images", "prompt", "completion") if c in df.columns])
    elif p.suffix == ".parquet":
        df = pl.read_parquet(p)
    else:
        df = pl.read_csv(p, infer_schema=False)
    idc = _find_col(df, ("id", "IMG_ID"))
    if idc is None:
        raise SourceError(f"truth: {p}: no id column (expected id or IMG_ID; found {df.columns})")
    latc = _find_col(df, ("lat", "LAT", "latitude"))
    lonc = _find_col(df, ("lon", "LON", "lng", "longitude"))
    if latc and lonc:
        lat, lon = pl.col(latc).cast(pl.Float64, strict=False), pl.col(lonc).cast(pl.Float64, strict=False)
        swapped = _labels_swapped(df, latc, lonc, p)
        if swapped:
            lat, lon = lon, lat
    elif "solution" in df.columns:
        swapped = 0
        lat = pl.col("solution").str.json_path_match("$.lat").cast(pl.Float64, strict=False)
        lon = pl.col("solution").str.json_path_match("$.lon").cast(pl.Float64, strict=False)
    else:
        raise SourceError(f"truth: {p}: no lat/lon columns (expected LAT, LON or lat, lon; found {df.columns})")
    df = df.select(id=pl.col(idc).cast(pl.String), lat=lat, lon=lon)
    n0 = df.height
    df = df.unique("id", keep="first", maintain_order=True)
    drops = {"truth_duplicate_id": n0 - df.height}
    ok = valid_coords(df["lat"].fill_null(np.nan).to_numpy(), df["lon"].fill_null(np.nan).to_numpy())
    drops["truth_invalid_coordinates"] = int((~ok).sum())
    if swapped:
        drops["truth_lat_lon_swapped"] = swapped
    return df.filter(pl.Series(ok)), drops


def metrics(
    pred_lat: np.ndarray,
    pred_lon: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    thresholds_km: tuple[float, ...] = THRESHOLDS_KM,
    geocode: bool = True,
) -> dict[str, Any]:
    """Metrics for aligned arrays; NaN predictions are unparsed and count as wrong.

    Examples
    --------
    >>> m = metrics(np.array([0.0, np.nan]), np.array([0.0, 0.0]), np.zeros(2), np.zeros(2), geocode=False)
    >>> m["acc_km"]["1"], m["geoscore_mean"], m["n_unparsed"], m["median_km"]
    (0.5, 2500.0, 1, None)
    """
    n = int(lat.size)
    d = haversine(pred_lat, pred_lon, lat, lon, EARTH_RADIUS_KM)
    parsed = np.isfinite(d)
    d_all = np.where(parsed, d, np.inf)
    out: dict[str, Any] = {"n": n, "n_unparsed": int((~parsed).sum())}
    out["acc_km"] = {f"{t:g}": (float((d_all <= t).mean()) if n else 0.0) for t in thresholds_km}
    med = float(np.median(d_all)) if n else math.nan
    out["median_km"] = med if math.isfinite(med) else None
    out["median_km_parsed"] = float(np.median(d[parsed])) if parsed.any() else None
    out["geoscore_mean"] = float(np.mean(np.where(parsed, 5000.0 * np.exp(-d_all / GEOSCORE_SCALE_KM), 0.0))) if n else 0.0
    if geocode and n:
        from .geocode import reverse_geocode

        t = reverse_geocode(lat, lon)
        pl_ = np.where(parsed, pred_lat, 0.0)
        po = np.where(parsed, pred_lon, 0.0)
        g = reverse_geocode(pl_, po)
        same_c = (t["country_code"] == g["country_code"]).fill_null(False).to_numpy() & parsed
        same_a = same_c & (t["admin1"] == g["admin1"]).fill_null(False).to_numpy()
        same_city = same_a & (t["city"] == g["city"]).fill_null(False).to_numpy()
        out["country_acc"] = float(same_c.mean())
        out["admin1_acc"] = float(same_a.mean())
        out["city_acc"] = float(same_city.mean())
    return out


def evaluate(
    pred: pl.DataFrame,
    truth: pl.DataFrame,
    *,
    unknown_ids: Literal["drop", "error"] = "drop",
    thresholds_km: tuple[float, ...] = THRESHOLDS_KM,
    geocode: bool = True,
) -> dict[str, Any]:
    """Join normalized predictions (``id, pred_lat, pred_lon``) to truth (``id, lat, lon``) and score.

    Examples
    --------
    >>> pred = pl.DataFrame({"id": ["a", "b"], "pred_lat": [0.0, None], "pred_lon": [0.1, None]})
    >>> truth = pl.DataFrame({"id": ["a", "b", "c"], "lat": [0.0, 1.0, 2.0], "lon": [0.0, 1.0, 2.0]})
    >>> r = evaluate(pred, truth, geocode=False)
    >>> r["n"], r["acc_km"]["25"], r["n_unparsed"], r["n_truth_without_prediction"]
    (2, 0.5, 1, 1)
    """
    for c in ("id", "pred_lat", "pred_lon"):
        if c not in pred.columns:
            raise SourceError(f"eval: predictions lack column '{c}' (found {pred.columns})")
    dup = pred.group_by("id").len().filter(pl.col("len") > 1)
    if dup.height:
        raise SourceError(f"eval: duplicate prediction id '{dup['id'][0]}' ({dup.height} ids repeat)")
    pred = pred.with_columns(pl.col("id").cast(pl.String))
    joined = pred.join(truth, on="id", how="inner", maintain_order="left")
    unknown = pred.join(truth, on="id", how="anti")
    if pred.height and joined.height == 0:
        raise SourceError(
            f"eval: no prediction id is in the truth (e.g. prediction '{pred['id'][0]}', "
            f"truth '{truth['id'][0] if truth.height else '-'}')"
        )
    if unknown.height and unknown_ids == "error":
        raise SourceError(f"eval: {unknown.height} prediction ids are not in the truth (e.g. '{unknown['id'][0]}')")
    plat = joined["pred_lat"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    plon = joined["pred_lon"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(plat) <= 90) & (np.abs(plon) <= 180))
    plat = np.where(bad, np.nan, plat)
    plon = np.where(bad, np.nan, plon)
    out = metrics(plat, plon, joined["lat"].to_numpy(), joined["lon"].to_numpy(),
                  thresholds_km=thresholds_km, geocode=geocode)
    out["n_predictions"] = pred.height
    out["n_unknown_ids"] = unknown.height
    out["n_truth"] = truth.height
    out["n_truth_without_prediction"] = truth.height - joined.height
    return out


def evaluate_files(
    predictions: str | Path,
    truth: str | Path,
    *,
    unknown_ids: Literal["drop", "error"] = "drop",
    geocode: bool = True,
) -> dict[str, Any]:
    """:func:`evaluate` on a predictions file (or folder) and a truth dataset/CSV."""
    ppath = predictions_file(Path(predictions))
    if ppath.is_file() and ppath.stat().st_size == 0:
        raise SourceError(f"eval: predictions file {ppath} is empty")
    pred = load_predictions(ppath)
    if pred.height == 0:
        raise SourceError(f"eval: predictions file {ppath} has no rows (only a header?)")
    tdf, drops = load_truth(truth)
    out = evaluate(pred, tdf, unknown_ids=unknown_ids, geocode=geocode)
    out.update({f"n_{k}": v for k, v in drops.items()})
    out["predictions"] = str(ppath)
    out["truth"] = str(truth)
    return out


def format_report(r: dict[str, Any]) -> str:
    """A short plain-text report of :func:`evaluate`'s result."""
    acc = "  ".join(f"{k} km {100 * v:5.1f}%" for k, v in r["acc_km"].items())
    lines = [
        f"predictions {r.get('predictions', '-')}  vs  truth {r.get('truth', '-')}",
        f"evaluated {r['n']} (unparsed {r['n_unparsed']}, counted wrong)",
        f"accuracy   {acc}",
        "median     " + (f"{r['median_km']:.1f} km" if r["median_km"] is not None else "n/a (most unparsed)")
        + (f"   (parsed only: {r['median_km_parsed']:.1f} km)" if r.get("median_km_parsed") is not None else ""),
        f"geoscore   {r['geoscore_mean']:.1f} (mean of 5000 exp(-d/1492.7))",
    ]
    if "country_acc" in r:
        lines.append(
            f"admin      country {100 * r['country_acc']:.1f}%  admin1 {100 * r['admin1_acc']:.1f}%  "
            f"city {100 * r['city_acc']:.1f}%"
        )
    counts = [f"{k[2:].replace('_', ' ')} {v}" for k, v in r.items()
              if k in ("n_unknown_ids", "n_truth_without_prediction", "n_truth_duplicate_id",
                       "n_truth_invalid_coordinates") and v]
    if counts:
        lines.append("not scored " + ", ".join(counts))
    return "\n".join(lines)
