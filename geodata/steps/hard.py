"""Steps of MP16-Hard-200K (Geo-R): predictions -> hotspots -> 200 km exclusion -> diverse sample.

Geo-R keeps GRPO's group rewards varied by training on what the base model gets wrong:
samples it already localizes (error <= 25 km) are *hotspots*; every sample within 200 km of a
hotspot is excluded; the long tail that remains is sampled for diversity over H3 cells.

1. ``join_predictions`` — attach ``pred_lat``, ``pred_lon``, ``pred_parsed`` and ``error_km``
   (haversine, R = 6371 km) from the predictions source;
2. ``mine_hotspots`` — flag ``is_hotspot`` for solved rows (``error_km <= threshold_km``),
   at most ``n`` of them (seeded choice);
3. ``exclude_near_hotspots`` — drop every row within ``radius_km`` of a hotspot
   (:func:`geodata.hotspots.exclude_near`, exact) and emit the hotspots as the ``hotspots``
   config, each with the number of rows it excluded;
4. ``diverse_sample`` — seeded round-robin over H3 cells (one row per cell, then a second
   per cell, …) up to ``n`` rows, optionally capped per cell.
"""

from __future__ import annotations

import logging
from typing import Literal

import h3
import numpy as np
import polars as pl

from ..context import StepContext, StepOutput
from ..errors import BuildError
from ..geo import haversine
from ..hotspots import exclude_near, latlng_to_cells
from ..registry import step
from .core import _need

log = logging.getLogger("geodata")

__all__ = ["join_predictions", "mine_hotspots", "exclude_near_hotspots", "diverse_sample", "round_robin_order"]

_PRED_COLS = ("pred_lat", "pred_lon", "pred_parsed", "error_km")


@step("join_predictions", kind="join")
def join_predictions(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    predictions: pl.DataFrame,
    raw: pl.DataFrame | None = None,
    unknown_ids: Literal["error", "drop"] = "error",
) -> StepOutput:
    """Attach a model's predictions to the rows by ``id`` and compute its error in km.

    Adds ``pred_lat``, ``pred_lon`` (null when missing or unparsable), ``pred_parsed`` and
    ``error_km`` (null without a usable prediction). Rows without a prediction stay (they are
    not evidence of a solved sample). Predictions whose id is not among the rows are an error
    by default; with ``unknown_ids: drop`` they are counted: ``prediction_for_dropped_row``
    when the id is in the raw input but was dropped by an earlier step,
    ``prediction_unknown_id`` otherwise. A table in which no id matches is always an error, and
    so is one that covers fewer than the spec's ``min_prediction_coverage`` (default 0.5) of the rows.

    A join: input ``predictions`` (a ``predictions`` reader table or the table a
    ``model_predictions`` step provides) and optional ``raw`` (the source the rows came from,
    to tell predictions for dropped rows from unknown ids; without it every stray id is unknown).
    """
    out = StepOutput()
    _need(df, ctx, "id", "lat", "lon")
    table = "predictions"
    pred = predictions
    missing = [c for c in ("id", "pred_lat", "pred_lon", "parsed") if c not in pred.columns]
    if missing:
        raise BuildError(f"step '{ctx.name}': table '{table}' lacks columns {missing} (use reader: predictions)")
    pred = pred.select("id", "pred_lat", "pred_lon", pred_parsed=pl.col("parsed"))
    dup = pred.group_by("id").len().filter(pl.col("len") > 1)
    if dup.height:
        raise BuildError(f"step '{ctx.name}': table '{table}' has duplicate id '{dup['id'][0]}'")
    rows = df.drop([c for c in _PRED_COLS if c in df.columns]).with_columns(pl.col("id").cast(pl.String))
    ids = rows.select("id")
    matched = pred.join(ids, on="id", how="semi")
    stray = pred.join(ids, on="id", how="anti")
    if pred.height and matched.height == 0:
        ex = ", ".join(repr(x) for x in pred["id"].head(3).to_list())
        raise BuildError(
            f"step '{ctx.name}': no prediction id matches a row id (predictions: {ex} …; "
            f"rows: {', '.join(repr(x) for x in ids['id'].head(3).to_list())} …)"
        )
    if stray.height:
        # ids of the raw input: predictions for rows dropped earlier
        raw_ids = raw.select(pl.col("id").cast(pl.String)) if raw is not None and "id" in raw.columns else ids
        unknown = stray.join(raw_ids, on="id", how="anti")
        if unknown.height and unknown_ids == "error":
            raise BuildError(
                f"step '{ctx.name}': {unknown.height} prediction ids are not in the source "
                f"(e.g. '{unknown['id'][0]}'); fix the file or set unknown_ids: drop"
            )
        out.drop("prediction_for_dropped_row", stray.height - unknown.height)
        out.drop("prediction_unknown_id", unknown.height)
    need = float(ctx.limits.get("min_prediction_coverage", 0.5))
    if rows.height and matched.height < need * rows.height:
        ex = ", ".join(repr(x) for x in stray["id"].head(3).to_list())
        raise BuildError(
            f"step '{ctx.name}': predictions cover {matched.height} of {rows.height} rows "
            f"({matched.height / rows.height:.1%}), fewer than min_prediction_coverage={need:g}: the hard set "
            f"would be most of the source. Are they predictions for this source?"
            + (f" (unmatched prediction ids: {ex} …)" if ex else "")
            + f"; to accept it, pass --set min_prediction_coverage={int(matched.height / rows.height * 100) / 100:g} "
            "on the command line (or lower it in the spec)"
        )
    kept = rows.join(matched, on="id", how="left", maintain_order="left")
    kept = kept.with_columns(pl.col("pred_parsed").fill_null(False))
    err = haversine(kept["lat"].to_numpy(), kept["lon"].to_numpy(),
                    kept["pred_lat"].fill_null(np.nan).to_numpy(), kept["pred_lon"].fill_null(np.nan).to_numpy())
    kept = kept.with_columns(error_km=pl.Series(err).fill_nan(None))
    out.note(f"{ctx.name}.rows_with_prediction", matched.height)
    out.note(f"{ctx.name}.rows_without_prediction", kept.height - matched.height)
    out.note(f"{ctx.name}.unparsed_predictions", int((~matched["pred_parsed"]).sum()))
    return out.result(kept)


@step("mine_hotspots", kind="frame")
def mine_hotspots(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    threshold_km: float = 25.0,
    n: int = 100000,
) -> StepOutput:
    """Flag ``is_hotspot`` on rows the model solved (``error_km <= threshold_km``), at most ``n``.

    With more solved rows than ``n`` a seeded choice (rows ordered by id first) picks them.
    """
    out = StepOutput()
    _need(df, ctx, "id", "error_km")
    if threshold_km < 0 or n < 0:
        raise BuildError(f"step '{ctx.name}': threshold_km and n must be >= 0 (got {threshold_km}, {n})")
    solved = (df["error_km"] <= threshold_km).fill_null(False).to_numpy()
    idx = np.flatnonzero(solved)
    out.note(f"{ctx.name}.solved", int(idx.size))
    if df.height and idx.size == 0:
        with_pred = int(df["error_km"].is_not_null().sum())
        msg = (f"no row is solved within {threshold_km:g} km ({with_pred} of {df.height} rows have a usable "
               f"prediction): 0 hotspots, nothing is excluded and the hard set is the whole source")
        log.warning("step '%s': %s", ctx.name, msg)
        out.note(f"{ctx.name}.warning", msg)
    if idx.size > n:
        order = np.argsort(df["id"].cast(pl.String).gather(idx).to_numpy(), kind="stable")
        idx = np.sort(ctx.rng("hotspots").choice(idx[order], size=n, replace=False))
        out.note(f"{ctx.name}.capped", f"{int(solved.sum())} solved rows, kept {n} as hotspots")
    flag = np.zeros(df.height, dtype=bool)
    flag[idx] = True
    out.note(f"{ctx.name}.hotspots", int(idx.size))
    out.note(f"{ctx.name}.threshold_km", threshold_km)
    return out.result(df.with_columns(is_hotspot=pl.Series(flag)))


@step("exclude_near_hotspots", kind="frame")
def exclude_near_hotspots(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    radius_km: float = 200.0,
    resolution: int | None = None,
    emit: str | None = "hotspots",
) -> StepOutput:
    """Drop every row within ``radius_km`` (great circle) of a hotspot; exact, H3-indexed.

    The hotspots themselves go (distance 0). With ``emit`` set, the hotspots are written as
    that extra config with ``rows_excluded`` (rows attributed to each: the hotspot nearest
    the row's H3 cell centre, or the row's own nearest hotspot for rows checked one by one)
    so the exclusion can be inspected with SQL.
    """
    out = StepOutput()
    _need(df, ctx, "lat", "lon", "is_hotspot")
    if radius_km < 0:
        raise BuildError(f"step '{ctx.name}': radius_km must be >= 0, got {radius_km}")
    hot = df.filter(pl.col("is_hotspot"))
    ex = exclude_near(
        df["lat"].to_numpy(), df["lon"].to_numpy(), hot["lat"].to_numpy(), hot["lon"].to_numpy(),
        radius_km, res=resolution,
    )
    out.drop("near_hotspot", int(ex.mask.sum()))
    stats = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in ex.stats.items()}
    out.note(f"{ctx.name}.radius_km", radius_km)
    out.note(f"{ctx.name}.exclusion", stats)
    if emit:
        counts = np.bincount(ex.hotspot[ex.hotspot >= 0], minlength=hot.height) if hot.height else np.zeros(0, int)
        keep = [c for c in ("id", "lat", "lon", "pred_lat", "pred_lon", "error_km", "country_code",
                            "country", "admin1", "city") if c in hot.columns]
        cells = latlng_to_cells(hot["lat"].to_numpy(), hot["lon"].to_numpy(), 5)
        table = hot.select(keep).with_columns(
            h3=pl.Series([h3.int_to_str(int(c)) for c in cells.tolist()], dtype=pl.String),
            rows_excluded=pl.Series(counts.astype(np.int64)),
            radius_km=pl.lit(float(radius_km)),
        )
        out.emit(emit, table)
    return out.result(df.filter(~pl.Series(ex.mask)).drop("is_hotspot"))


def round_robin_order(cells: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row order that visits cells round-robin in a seeded order, rows in random order per cell.

    Returns ``(order, rank)``: ``order`` lists row indices; ``rank[i]`` is row i's position
    within its cell (0 for the first row drawn from the cell).

    Examples
    --------
    >>> order, rank = round_robin_order(np.array([7, 7, 7, 9]), np.random.default_rng(0))
    >>> sorted(rank.tolist()), sorted(order[:2].tolist(), key=lambda i: i == 3)[-1]
    ([0, 0, 1, 2], 3)
    """
    n = cells.size
    df = pl.DataFrame({"c": cells, "u": rng.random(n), "i": np.arange(n)})
    ckey = pl.DataFrame({"c": np.unique(cells)})
    ckey = ckey.with_columns(k=pl.Series(rng.random(ckey.height)))
    df = df.join(ckey, on="c", how="left", maintain_order="left")
    df = df.with_columns(r=pl.col("u").rank("ordinal").over("c") - 1)
    rank = df["r"].to_numpy().astype(np.int64)
    order = df.sort(["r", "k", "c"])["i"].to_numpy()
    return order, rank


@step("diverse_sample", kind="frame")
def diverse_sample(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    n: int | None = 200000,
    resolution: int = 3,
    cap_per_cell: int | None = None,
    sort_by: str = "id",
) -> StepOutput:
    """Sample ``n`` rows spread over H3 cells: seeded round-robin over cells of ``resolution``.

    Every cell gives one row before any cell gives a second, and so on, so sparse regions
    are kept whole and dense ones thinned; ``cap_per_cell`` drops rows beyond that many per
    cell. If fewer rows remain than ``n``, all are kept and the shortfall is noted in the
    stats and the card. Output rows keep the input order (sorted by ``sort_by``).
    """
    out = StepOutput()
    _need(df, ctx, "lat", "lon")
    if n is not None and n < 0:
        raise BuildError(f"step '{ctx.name}': n must be >= 0, got {n}")
    if cap_per_cell is not None and cap_per_cell < 1:
        raise BuildError(f"step '{ctx.name}': cap_per_cell must be >= 1, got {cap_per_cell}")
    if sort_by in df.columns:
        df = df.sort(sort_by, maintain_order=True)
    cells = latlng_to_cells(df["lat"].to_numpy(), df["lon"].to_numpy(), resolution)
    order, rank = round_robin_order(cells, ctx.rng("diverse"))
    eligible = order if cap_per_cell is None else order[rank[order] < cap_per_cell]
    out.drop("cell_cap", df.height - eligible.size)
    ncells = int(np.unique(cells).size) if cells.size else 0
    out.note(f"{ctx.name}.cells", ncells)
    if n is None or n >= eligible.size:
        if n is not None and n > eligible.size:
            out.note(f"{ctx.name}.short", f"asked for {n} rows, {eligible.size} remain: kept all")
        take = eligible
    else:
        take = eligible[:n]
        out.drop("not_sampled", eligible.size - n)
    take = np.sort(take)
    if take.size:
        per = np.bincount(np.unique(cells, return_inverse=True)[1][take])
        out.note(f"{ctx.name}.max_per_cell", int(per.max()))
    return out.result(df[take])
