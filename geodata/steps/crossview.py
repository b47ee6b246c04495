"""Geo-R1's cross-view pairing proxy: multiple-choice rows from ground/satellite pairs.

Geo-R1 (arXiv 2510.00072) elevates a scaffolded model with GRPO on a weakly supervised
proxy whose answer needs only GPS: *does this ground view belong with that satellite
view?* Its public code trains on a multiple-choice form. :func:`crossview_mcq` builds it
from the common frame of the cross-view readers (``geodata/sources/crossview/common.py``):

* one query image and ``k`` candidates labelled A, B, C …, exactly one of which (the
  query's own pair) is true;
* negatives are *hard* (the great-circle nearest other tiles, but only beyond ``min_km``,
  so no tile that also covers the place, such as a VIGOR semi-positive, becomes a "wrong"
  answer) mixed with *random* ones from the same city, ``hard_ratio`` of each;
* both directions: ground → satellite and satellite → ground;
* candidate order is drawn from the build's seeded generator.

Negatives are drawn from the same source and split as the query (no train/test leak).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from scipy.spatial import cKDTree

from ..context import StepContext, StepOutput
from ..errors import BuildError
from ..geo import haversine, km_to_chord, to_unit
from ..registry import step
from ..schema import THINK_ANSWER_SUFFIX, completion_expr, prompt_expr, solution_expr

__all__ = ["concat_crossview", "crossview_mcq", "pick_negatives", "letters", "QUESTIONS"]

Direction = Literal["ground_to_satellite", "satellite_to_ground"]

QUESTIONS: dict[str, str] = {
    "ground_to_satellite": (
        "The first image is a street-level view. The next {k} images are satellite views, "
        "labelled {labels} in that order. Exactly one of them was taken over the place where "
        "the street-level view was captured. Which one? Answer with its letter."
    ),
    "satellite_to_ground": (
        "The first image is a satellite view. The next {k} images are street-level views, "
        "labelled {labels} in that order. Exactly one of them was captured inside the area "
        "the satellite view shows. Which one? Answer with its letter."
    ),
}

_THINK = {
    "ground_to_satellite": (
        "Matching the layout of roads, buildings and vegetation around the street-level view "
        "against each satellite view, candidate {L} is the one that shows the same place."
    ),
    "satellite_to_ground": (
        "Matching the roads, buildings and vegetation of the satellite view against what each "
        "street-level view shows, candidate {L} is the one captured in that area."
    ),
}

_SHORT = {"ground_to_satellite": "g2s", "satellite_to_ground": "s2g"}


def letters(k: int) -> list[str]:
    """The first ``k`` capital letters.

    Examples
    --------
    >>> letters(4)
    ['A', 'B', 'C', 'D']
    """
    return [chr(65 + i) for i in range(k)]


def _label_list(k: int) -> str:
    ls = letters(k)
    return ", ".join(ls[:-1]) + " and " + ls[-1]


@step("concat_crossview", kind="join")
def concat_crossview(
    df: pl.DataFrame, ctx: StepContext, *, sources: list[str] | None = None, **tables: pl.DataFrame
) -> StepOutput:
    """Stack the step's input tables (all of them, in ``inputs`` order, or those named) into one frame.

    Columns missing from one source (VIGOR's ``semi_positives``) are null elsewhere.
    """
    out = StepOutput()
    names = sources if sources is not None else list(tables)
    missing = [n for n in names if n not in tables]
    if missing:
        raise BuildError(f"step '{ctx.name}': sources {missing} are not among its inputs ({sorted(tables)})")
    frames = [tables[n] for n in names] if names else [df]
    kept = pl.concat(frames, how="diagonal_relaxed")
    for n, f in zip(names, frames):
        out.note(f"{ctx.name}.{n}", f.height)
    return out.result(kept)


def _first_unique(arr: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """Mask of entries that are valid and the first occurrence of their value in the row."""
    order = np.argsort(arr, axis=1, kind="stable")
    srt = np.take_along_axis(arr, order, 1)
    dup_sorted = np.zeros_like(srt, dtype=bool)
    dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
    dup = np.zeros_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, 1)
    return ~dup & ~invalid


def _take_first(arr: np.ndarray, ok: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` entries of each row where ``ok``, left-aligned; -1 where too few."""
    if arr.shape[1] < n:
        pad = n - arr.shape[1]
        arr = np.pad(arr, ((0, 0), (0, pad)), constant_values=-1)
        ok = np.pad(ok, ((0, 0), (0, pad)), constant_values=False)
    order = np.argsort(~ok, axis=1, kind="stable")[:, :n]
    out = np.take_along_axis(arr, order, 1)
    got = np.take_along_axis(ok, order, 1)
    return np.where(got, out, -1), got.sum(axis=1)


def pick_negatives(
    q_lat: np.ndarray,
    q_lon: np.ndarray,
    pool_lat: np.ndarray,
    pool_lon: np.ndarray,
    pos: np.ndarray,
    group: np.ndarray,
    pool_group: np.ndarray,
    *,
    n_hard: int,
    n_rand: int,
    min_km: float,
    rng: np.random.Generator,
    exclude: np.ndarray | None = None,
    oversample: int = 8,
    chunk: int = 4096,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pool indices of ``n_hard + n_rand`` negatives per query, all beyond ``min_km``.

    Hard negatives are the nearest pool entries (great-circle) farther than ``min_km``
    from the query; random ones are drawn uniformly from pool entries of the query's
    ``group`` and farther than ``min_km``. The query's positive ``pos`` and the entries of
    ``exclude`` (n × m pool indices, -1 padded) are never chosen, and no entry twice.
    Where a group has too few random candidates the next-nearest valid entries fill in.

    Returns ``(neg, kind, n_filled)``: ``neg`` is n × (n_hard + n_rand), -1 where even the
    whole pool is too small; ``kind`` is 1 for hard, 0 for random picks; ``n_filled`` is the
    number of random slots filled with near entries.

    Examples
    --------
    >>> lat = np.array([0.0, 0.001, 0.01, 0.02, 0.03, 0.5])
    >>> lon = np.zeros(6)
    >>> neg, kind, _ = pick_negatives(lat[:1], lon[:1], lat, lon, np.array([0]), np.zeros(1, int),
    ...     np.zeros(6, int), n_hard=2, n_rand=0, min_km=0.5, rng=np.random.default_rng(0))
    >>> neg.tolist()   # entry 1 is 0.11 km away: inside min_km, never a negative
    [[2, 3]]
    """
    n, n_neg = len(q_lat), n_hard + n_rand
    P = len(pool_lat)
    if exclude is None:
        exclude = np.full((n, 0), -1, dtype=np.int64)
    r = float(km_to_chord(min_km))
    qv = to_unit(q_lat, q_lon)
    tree = cKDTree(to_unit(pool_lat, pool_lon))
    near_inside = tree.query_ball_point(qv, r * (1 + 1e-9) + 1e-12, return_length=True)
    # nearest valid entries beyond min_km: the n_neg hard candidates (reserves included)
    hard = np.full((n, n_neg), -1, dtype=np.int64)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        kq = int(min(P, near_inside[s:e].max() + n_neg + 1 + exclude.shape[1]))
        if kq == 0 or n_neg == 0:
            continue
        dist, idx = tree.query(qv[s:e], k=kq)
        dist = dist.reshape(e - s, kq)
        idx = idx.reshape(e - s, kq).astype(np.int64)
        bad = (idx >= P) | (dist <= r) | (idx == pos[s:e, None])
        if exclude.shape[1]:
            bad |= (idx[:, :, None] == exclude[s:e, None, :]).any(-1)
        hard[s:e], _ = _take_first(idx, ~bad, n_neg)
    chosen_hard = hard[:, :n_hard]
    reserve = hard[:, n_hard:]
    # random entries of the query's group
    if n_rand:
        order = np.argsort(pool_group, kind="stable")
        g_sorted = pool_group[order]
        groups, start, size = np.unique(g_sorted, return_index=True, return_counts=True)
        gi = np.searchsorted(groups, group)
        found = (gi < len(groups)) & (groups[np.minimum(gi, len(groups) - 1)] == group)
        gstart = np.where(found, start[np.minimum(gi, len(groups) - 1)], 0)
        gsize = np.where(found, size[np.minimum(gi, len(groups) - 1)], 0)
        R = max(oversample * n_rand, n_rand + 8)
        draw = (rng.random((n, R)) * gsize[:, None]).astype(np.int64)
        cand = order[np.minimum(gstart[:, None] + draw, P - 1)]
        d = haversine(q_lat[:, None], q_lon[:, None], pool_lat[cand], pool_lon[cand])
        bad = (gsize[:, None] == 0) | (d <= min_km) | (cand == pos[:, None])
        bad |= (cand[:, :, None] == chosen_hard[:, None, :]).any(-1)
        if exclude.shape[1]:
            bad |= (cand[:, :, None] == exclude[:, None, :]).any(-1)
        ok = _first_unique(cand, bad)
        rand, got = _take_first(cand, ok, n_rand)
    else:
        rand, got = np.full((n, 0), -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    # hard first, then random, then reserves for any shortfall; keep the first n_neg unique
    allc = np.concatenate([chosen_hard, rand, reserve], axis=1)
    kinds = np.concatenate(
        [np.ones_like(chosen_hard), np.zeros_like(rand), np.ones_like(reserve)], axis=1
    )
    ok = _first_unique(allc, allc < 0)
    order = np.argsort(~ok, axis=1, kind="stable")[:, :n_neg]
    neg = np.take_along_axis(allc, order, 1)
    kind = np.take_along_axis(kinds, order, 1)
    valid = np.take_along_axis(ok, order, 1)
    neg = np.where(valid, neg, -1)
    n_filled = int(np.maximum(n_rand - got, 0)[valid.all(axis=1)].sum()) if n_rand else 0
    return neg, np.where(valid, kind, -1), n_filled


def _direction_rows(
    df: pl.DataFrame,
    ctx: StepContext,
    direction: str,
    *,
    k: int,
    hard_ratio: float,
    min_km: float,
    oversample: int,
) -> tuple[pl.DataFrame, dict[str, int]]:
    g2s = direction == "ground_to_satellite"
    q_ref, c_ref = ("ground", "satellite") if g2s else ("satellite", "ground")
    q_lat, q_lon = ("lat", "lon") if g2s else ("_sat_lat", "_sat_lon")
    c_lat, c_lon = ("_sat_lat", "_sat_lon") if g2s else ("lat", "lon")
    n_neg = k - 1
    n_hard = int(round(n_neg * hard_ratio))
    n_rand = n_neg - n_hard
    stats = {"too_few_candidates": 0, "filled": 0}
    out = []
    rng = ctx.rng(f"crossview/{direction}")
    parts = df.partition_by(["source", "split"], maintain_order=True, as_dict=False)
    for part in parts:
        part = part.with_row_index("_row")
        pool = (
            part.group_by(c_ref, maintain_order=True)
            .agg(pl.col(c_lat).first().alias("_plat"), pl.col(c_lon).first().alias("_plon"),
                 pl.col("_group").first().alias("_pgroup"))
            .with_row_index("_pidx")
        )
        pos = part.join(pool.select(c_ref, "_pidx"), on=c_ref, how="left", maintain_order="left")["_pidx"]
        exclude = None
        if g2s and "semi_positives" in part.columns and part["semi_positives"].dtype != pl.Null:
            ex = (
                part.select("_row", pl.col("semi_positives").alias("_semi"))
                .explode("_semi")
                .join(pool.select(pl.col(c_ref).alias("_semi"), "_pidx"), on="_semi", how="inner")
                .with_columns(pl.int_range(pl.len()).over("_row").alias("_j"))
            )
            m = int(ex["_j"].max() + 1) if ex.height else 0
            exclude = np.full((part.height, m), -1, dtype=np.int64)
            if ex.height:
                exclude[ex["_row"].to_numpy(), ex["_j"].to_numpy()] = ex["_pidx"].to_numpy()
        groups_all = pl.concat([pool["_pgroup"], part["_group"]]).unique().sort()
        gcode = pl.DataFrame({"_g": groups_all, "_code": np.arange(len(groups_all))})
        pg = pool.join(gcode, left_on="_pgroup", right_on="_g", how="left", maintain_order="left")["_code"]
        qg = part.join(gcode, left_on="_group", right_on="_g", how="left", maintain_order="left")["_code"]
        neg, kind, filled = pick_negatives(
            part[q_lat].to_numpy(), part[q_lon].to_numpy(),
            pool["_plat"].to_numpy(), pool["_plon"].to_numpy(),
            pos.to_numpy().astype(np.int64), qg.to_numpy(), pg.to_numpy(),
            n_hard=n_hard, n_rand=n_rand, min_km=min_km, rng=rng, exclude=exclude,
            oversample=oversample,
        )
        keep = (neg >= 0).all(axis=1)
        stats["too_few_candidates"] += int((~keep).sum())
        stats["filled"] += filled
        if not keep.any():
            continue
        part, neg, kind = part.filter(pl.Series(keep)), neg[keep], kind[keep]
        posv = pos.filter(pl.Series(keep)).to_numpy().astype(np.int64)
        cands = np.concatenate([posv[:, None], neg], axis=1)  # slot 0 = the true pair
        perm = np.argsort(rng.random(cands.shape), axis=1)
        cands = np.take_along_axis(cands, perm, 1)
        answer = np.argmax(perm == 0, axis=1)
        ref = pool[c_ref].to_numpy()
        plat, plon = pool["_plat"].to_numpy(), pool["_plon"].to_numpy()
        km = haversine(part[q_lat].to_numpy()[:, None], part[q_lon].to_numpy()[:, None],
                       plat[cands], plon[cands])
        hard_count = (kind == 1).sum(axis=1)
        cols = {f"_c{j}": ref[cands[:, j]] for j in range(k)}
        part = part.with_columns(
            **{name: pl.Series(v, dtype=pl.String) for name, v in cols.items()},
            _answer=pl.Series(np.array(letters(k))[answer], dtype=pl.String),
            candidate_km=pl.Series(km.tolist(), dtype=pl.List(pl.Float64)),
            n_hard=pl.Series(hard_count, dtype=pl.Int32),
            query_lat=part[q_lat], query_lon=part[q_lon],
        )
        out.append(
            part.with_columns(
                images=pl.concat_list([pl.col(q_ref), *[pl.col(f"_c{j}") for j in range(k)]]),
                direction=pl.lit(direction),
            )
        )
    if not out:
        return pl.DataFrame(), stats
    return pl.concat(out, how="diagonal_relaxed"), stats


@step("crossview_mcq", kind="frame")
def crossview_mcq(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    k: int = 4,
    hard_ratio: float = 0.5,
    min_km: float = 0.25,
    directions: list[Direction] = ["ground_to_satellite", "satellite_to_ground"],  # noqa: B006
    group_by: str = "city",
    task: str = "crossview_mcq",
    system_prompt: str | None = None,
    oversample: int = 8,
) -> StepOutput:
    """Multiple-choice cross-view pairing rows (Geo-R1's elevating proxy), both directions.

    Parameters
    ----------
    k
        Candidates per row (2–26), labelled A, B, …; exactly one is the query's pair.
    hard_ratio
        Share of the ``k - 1`` negatives that are the nearest tiles beyond ``min_km``
        (rounded); the rest are random tiles of the same ``group_by`` value.
    min_km
        No negative lies within this great-circle distance of the query. Set it above the
        ground footprint of a tile (VIGOR: ~0.07 km; CVUSA/CVACT: ~0.1–0.2 km) so a tile
        that also shows the place is never a wrong answer.
    directions
        ``ground_to_satellite`` (a street view, satellite candidates) and/or
        ``satellite_to_ground``; one row per pair and direction.
    group_by
        Column whose value random negatives share with the query (null: the source).

    Rows without coordinates are dropped (``no_coordinates``); rows whose source and split
    hold fewer than ``k`` distinct candidates beyond ``min_km`` are dropped
    (``too_few_candidates``). Output: ``images`` = query, then candidates A, B, …; the
    ``solution`` is ``{"answer": "<letter>"}``; ``candidate_km`` lists each candidate's
    distance from the query, ``n_hard`` the number of nearest-tile negatives.
    """
    out = StepOutput()
    need = [c for c in ("id", "source", "split", "lat", "lon", "ground", "satellite") if c not in df.columns]
    if need:
        raise BuildError(f"step '{ctx.name}' needs columns {need}; the rows have {df.columns}")
    if not 2 <= k <= 26:
        raise BuildError(f"step '{ctx.name}': k must be in 2..26, got {k}")
    if not 0.0 <= hard_ratio <= 1.0:
        raise BuildError(f"step '{ctx.name}': hard_ratio must be in [0, 1], got {hard_ratio}")
    if min_km < 0:
        raise BuildError(f"step '{ctx.name}': min_km must be >= 0, got {min_km}")
    if not directions:
        raise BuildError(f"step '{ctx.name}': directions is empty")
    sat_lat = pl.col("sat_lat") if "sat_lat" in df.columns else pl.lit(None, dtype=pl.Float64)
    sat_lon = pl.col("sat_lon") if "sat_lon" in df.columns else pl.lit(None, dtype=pl.Float64)
    group = pl.col(group_by).cast(pl.String) if group_by in df.columns else pl.lit(None, dtype=pl.String)
    df = df.with_columns(
        _sat_lat=sat_lat.cast(pl.Float64).fill_null(pl.col("lat")),
        _sat_lon=sat_lon.cast(pl.Float64).fill_null(pl.col("lon")),
        _group=pl.coalesce(group, pl.col("source").cast(pl.String)),
        split=pl.col("split").fill_null("train"),
    )
    ok = pl.all_horizontal(pl.col(c).is_not_nan().fill_null(False) for c in ("lat", "lon", "_sat_lat", "_sat_lon"))
    n0 = df.height
    df = df.filter(ok)
    out.drop("no_coordinates", n0 - df.height)
    frames = []
    for direction in dict.fromkeys(directions):
        rows, stats = _direction_rows(
            df, ctx, direction, k=k, hard_ratio=hard_ratio, min_km=min_km, oversample=oversample,
        )
        out.drop("too_few_candidates", stats["too_few_candidates"])
        if stats["filled"]:
            out.note(f"{ctx.name}.{_SHORT[direction]}.random_slots_filled_with_near", stats["filled"])
        if rows.height == 0:
            continue
        question = QUESTIONS[direction].format(k=k, labels=_label_list(k))
        think = _THINK[direction]
        pre, _, post = think.partition("{L}")
        rows = rows.with_columns(
            id=pl.col("id") + pl.lit("/" + _SHORT[direction]),
            task=pl.lit(task),
            prompt=prompt_expr(f"{question} {THINK_ANSWER_SUFFIX}", n_images=k + 1, system=system_prompt),
            completion=completion_expr(pl.concat_str([
                pl.lit("<think>" + pre), pl.col("_answer"), pl.lit(post + "</think><answer>"),
                pl.col("_answer"), pl.lit("</answer>"),
            ])),
            solution=solution_expr(answer=pl.col("_answer")),
            answer=pl.col("_answer"),
        )
        frames.append(rows)
    if not frames:
        raise BuildError(
            f"step '{ctx.name}': no multiple-choice rows could be made "
            f"(k={k}, min_km={min_km}; each source and split needs at least {k} pairs far enough apart; dropped {out.drops})"
        )
    kept = pl.concat(frames, how="diagonal_relaxed")
    out.note(f"{ctx.name}.rows", kept.height)
    out.note(f"{ctx.name}.negatives", f"{int(round((k - 1) * hard_ratio))} nearest beyond {min_km} km, "
             f"{k - 1 - int(round((k - 1) * hard_ratio))} random from the same {group_by}")
    drop = [c for c in kept.columns if c.startswith("_")] + ["ground", "satellite"]
    if "semi_positives" in kept.columns:
        drop.append("semi_positives")
    return out.result(kept.drop([c for c in drop if c in kept.columns]))
