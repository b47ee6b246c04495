"""Geolocation scorer: accuracy at 1 / 25 / 200 / 750 / 2500 km, median error, GeoScore, admin levels.

Follows OSV-5M's distance metrics (``gastruc/osv5m`` ``metrics/distance_based.py``: haversine
on R = 6371 km, accuracy per radius, GeoScore ``5000·exp(−d/1492.7)``), which count **every
truth row**: a truth row at exactly (0, 0) is a place like any other, and a truth row that
cannot be scored (latitude 95, NaN) stays in the denominator, scored wrong, and is counted in
``n_truth_invalid``. Unparsed predictions count as wrong everywhere (``n_unparsed``). An error
exactly at a threshold counts as within it (``<=``; OSV-5M writes ``<``, which differs only on
exact ties).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from ...geo import EARTH_RADIUS_KM, haversine
from ...registry import task
from ..base import ScoreContext, TaskResult
from .parse import parse_coords

__all__ = ["THRESHOLDS_KM", "GEOSCORE_SCALE_KM", "metrics", "score_geolocation", "truth_usable"]

THRESHOLDS_KM: tuple[float, ...] = (1.0, 25.0, 200.0, 750.0, 2500.0)
GEOSCORE_SCALE_KM = 1492.7


def truth_usable(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """True where a truth coordinate can be scored: finite and in range ((0, 0) included).

    Examples
    --------
    >>> truth_usable(np.array([0.0, 95.0, np.nan]), np.array([0.0, 1.0, 1.0])).tolist()
    [True, False, False]
    """
    with np.errstate(invalid="ignore"):
        return np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0)


def metrics(
    pred_lat: np.ndarray,
    pred_lon: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    thresholds_km: tuple[float, ...] = THRESHOLDS_KM,
    geocode: bool = True,
) -> dict[str, Any]:
    """Metrics for aligned arrays; NaN predictions are unparsed, unusable truth rows unscorable.

    Both count as wrong and stay in ``n``.

    Examples
    --------
    >>> m = metrics(np.array([0.0, np.nan]), np.array([0.0, 0.0]), np.zeros(2), np.zeros(2), geocode=False)
    >>> m["acc_km"]["1"], m["geoscore_mean"], m["n_unparsed"], m["median_km"]
    (0.5, 2500.0, 1, None)
    """
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    n = int(lat.size)
    ok_t = truth_usable(lat, lon)
    with np.errstate(invalid="ignore"):
        ok_p = np.isfinite(pred_lat) & np.isfinite(pred_lon) & (np.abs(pred_lat) <= 90) & (np.abs(pred_lon) <= 180)
    d = haversine(np.where(ok_p, pred_lat, np.nan), np.where(ok_p, pred_lon, np.nan),
                  np.where(ok_t, lat, 0.0), np.where(ok_t, lon, 0.0), EARTH_RADIUS_KM)
    scored = np.isfinite(d) & ok_t
    d_all = np.where(scored, d, np.inf)
    out: dict[str, Any] = {"n": n, "n_unparsed": int((~ok_p).sum()), "n_truth_invalid": int((~ok_t).sum())}
    out["acc_km"] = {f"{t:g}": (float((d_all <= t).mean()) if n else 0.0) for t in thresholds_km}
    med = float(np.median(d_all)) if n else math.nan
    out["median_km"] = med if math.isfinite(med) else None
    out["median_km_parsed"] = float(np.median(d[scored])) if scored.any() else None
    out["geoscore_mean"] = float(np.mean(np.where(scored, 5000.0 * np.exp(-d_all / GEOSCORE_SCALE_KM), 0.0))) if n else 0.0
    if geocode and n:
        from ...geocode import reverse_geocode

        t = reverse_geocode(np.where(ok_t, lat, 0.0), np.where(ok_t, lon, 0.0))
        g = reverse_geocode(np.where(scored, pred_lat, 0.0), np.where(scored, pred_lon, 0.0))
        same_c = (t["country_code"] == g["country_code"]).fill_null(False).to_numpy() & scored
        same_a = same_c & (t["admin1"] == g["admin1"]).fill_null(False).to_numpy()
        same_city = same_a & (t["city"] == g["city"]).fill_null(False).to_numpy()
        out["country_acc"] = float(same_c.mean())
        out["admin1_acc"] = float(same_a.mean())
        out["city_acc"] = float(same_city.mean())
    return out


def _floats(ctx: ScoreContext, name: str, n: int) -> np.ndarray:
    """Column ``name`` of the group as float64 (NaN where absent or not a number)."""
    if ctx.rows is None or name not in ctx.rows.columns:
        return np.full(n, np.nan)
    col = ctx.rows[name].cast(pl.Float64, strict=False).fill_null(np.nan)
    return col.to_numpy().astype(np.float64, copy=True)


@task("geolocation", reference="gastruc/osv5m metrics/distance_based.py")
def score_geolocation(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """Accuracy at 1 / 25 / 200 / 750 / 2500 km, median km, GeoScore (+ admin levels with geocoding).

    Predicted coordinates are the predictions file's ``pred_lat`` / ``pred_lon`` where given,
    else :func:`~geodata.tasks.geolocation.parse.parse_coords` of the completion; the truth
    is the row's ``lat`` / ``lon`` (CSV truth) or its solution's.
    """
    n = len(comps)
    plat, plon = _floats(ctx, "pred_lat", n), _floats(ctx, "pred_lon", n)
    todo = np.flatnonzero(np.isnan(plat) | np.isnan(plon))
    if todo.size:
        p = parse_coords([comps[i] for i in todo])
        plat[todo], plon[todo] = p.lat, p.lon
    tlat, tlon = _floats(ctx, "lat", n), _floats(ctx, "lon", n)
    miss = np.flatnonzero(np.isnan(tlat) & np.isnan(tlon))
    for i in miss:
        s = sols[i] or {}
        for k_lat, k_lon in (("lat", "lon"), ("latitude", "longitude")):
            if k_lat in s and k_lon in s:
                try:
                    tlat[i], tlon[i] = float(s[k_lat]), float(s[k_lon])
                except (TypeError, ValueError):
                    pass
                break
    m = metrics(plat, plon, tlat, tlon, geocode=ctx.geocode)
    flat: dict[str, float | None] = {f"acc@{k}km": v for k, v in m["acc_km"].items()}
    for k in ("median_km", "median_km_parsed", "geoscore_mean", "country_acc", "admin1_acc", "city_acc"):
        if k in m:
            flat[k] = m[k]
    return TaskResult(task="geolocation", n=m["n"], n_unparsed=m["n_unparsed"],
                      n_truth_invalid=m["n_truth_invalid"], metrics=flat)
