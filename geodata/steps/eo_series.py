"""Rows of the image-sequence and land-cover EO tasks, built by ``eo_tasks`` from reader tables
of the families ``temporal`` (fMoW), ``disaster`` (xBD, RSCC captions) and ``multilabel``
(BigEarthNet). Answer forms: :mod:`geodata.tasks.eo.series`.

The reader tables these builders take (one row per site / image pair / patch):

==========  =========================================================================================
family      columns (besides ``eo_family``, ``dataset``, ``split``, ``key``)
==========  =========================================================================================
temporal    ``images`` (list of image paths), ``timestamps`` (list, same length, ISO dates or
            times), ``category`` (the raw fMoW name, ``crop_field``; else ``label``) — the
            ``fmow_rgb`` reader's table
disaster    ``image_pre``, ``image_post``, ``width``, ``height`` (of the post image),
            ``disaster_type`` (xBD: ``flooding``, ``wind``, ``fire`` …), ``polygons`` (list of
            building outer rings in pixels of the post image: flat ``[x1, y1, x2, y2, …]`` lists,
            or WKT strings), ``damage`` (list, same length: xBD ``subtype``), optional
            ``captions`` (list, RSCC change captions) — the ``xbd`` reader's table
multilabel  ``image``, ``labels`` (list of BigEarthNet-19 class names) — ``bigearthnet_s2``'s table
==========  =========================================================================================

A time series keeps at most ``max_frames`` frames (evenly spaced, first and last kept, in time
order; EarthDial's FMoW rows hold 4); every frame is one image placeholder of the prompt, in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ..context import StepContext, StepOutput
from ..tasks.eo.contract import format_box, hbbs_to_boxes
from ..tasks.eo.series import (
    BIGEARTHNET19,
    DAMAGE_NAMES,
    FMOW_CLASSES,
    XBD_DAMAGE,
    XBD_UNSCORED,
    format_landcover,
    pick_frames,
)
from ..errors import SourceError
from .eo_rows import BOX_HINT, Boxes as _Boxes, row as _row

__all__ = ["build_temporal", "build_disaster", "build_landcover", "SERIES_BUILDERS"]


def _need(df: pl.DataFrame, cols: tuple[str, ...], family: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise SourceError(f"eo_tasks: a '{family}' table lacks the columns {missing} (found {df.columns})")


def build_temporal(df: pl.DataFrame, tasks: set[str], ctx: StepContext, out: StepOutput, p: dict) -> list[dict]:
    """``temporal_cls``: a site's fMoW category from its time series (``max_frames`` frames)."""
    col = "category" if "category" in df.columns else "label"
    _need(df, ("images", "timestamps", col), "temporal")
    df = df.with_columns(pl.col(col).alias("_cat"))
    bad = sorted(set(df["_cat"].to_list()) - set(FMOW_CLASSES))
    if bad:
        raise SourceError(f"eo_tasks: fMoW categories {bad[:5]} are not among fMoW's 62 (e.g. {FMOW_CLASSES[:3]})")
    k = int(p.get("max_frames", 4))
    opts = ", ".join(FMOW_CLASSES)
    rows = []
    for r in df.iter_rows(named=True):
        imgs, times = list(r["images"] or []), list(r["timestamps"] or [])
        if len(imgs) != len(times):
            raise SourceError(f"eo_tasks: fMoW site {r['key']}: {len(imgs)} images but {len(times)} timestamps")
        if len(imgs) < 2:
            out.drop("temporal: fewer than two frames", 1)
            continue
        order = sorted(range(len(imgs)), key=lambda i: (str(times[i]), i))  # time order, stable
        keep = [order[i] for i in pick_frames(len(order), k)]
        frames, when = [imgs[i] for i in keep], [str(times[i]) for i in keep]
        text = (f"These {len(frames)} images show the same site in time order, taken on {', '.join(when)}. "
                f"Classify the site into one of: {opts}. Answer with the category name.")
        cat = r["_cat"]
        rows.append(_row(f"{r['dataset']}-temporal_cls-{r['key']}", r["dataset"], "temporal_cls", frames, text,
                         cat, {"label": cat, "timestamps": when}, r["split"], category=cat))
    return rows


def _polygon_boxes(polys: list[Any], width: float, height: float, where: str) -> tuple[np.ndarray, list[str]]:
    """Axis-aligned grid boxes (θ 0) of building polygons in pixels (flat rings or WKT); their WKT."""
    from shapely import wkt
    from shapely.geometry import Polygon

    geoms = []
    for p in polys:
        if isinstance(p, str):
            geoms.append(wkt.loads(p))
            continue
        xy = np.asarray(p, dtype=float)
        if xy.size < 6 or xy.size % 2:
            raise SourceError(f"eo_tasks: xBD {where}: a polygon ring needs ≥ 3 x, y pairs, got {len(xy)} numbers")
        geoms.append(Polygon(xy.reshape(-1, 2)))
    hbbs = np.array([g.bounds for g in geoms], dtype=float).reshape(-1, 4)
    boxes = hbbs_to_boxes(hbbs, np.full(len(hbbs), width), np.full(len(hbbs), height))
    return boxes, [g.wkt for g in geoms]


def build_disaster(df: pl.DataFrame, tasks: set[str], ctx: StepContext, out: StepOutput, p: dict) -> list[dict]:
    """xBD pairs: ``damage_cls`` (up to ``buildings_per_image`` boxed buildings, seeded; levels written
    as ``damage_names``: ``xbd`` ``no-damage`` … or ``teochat`` ``No damage`` …),
    ``damage_referring`` (all buildings of each damage level present, ≤ ``max_boxes``) and
    ``change_caption`` (RSCC captions, when the table has them)."""
    _need(df, ("image_pre", "image_post", "width", "height", "disaster_type", "polygons", "damage"), "disaster")
    rng = ctx.rng("damage_cls")
    per_image = int(p.get("buildings_per_image", 4))
    names = DAMAGE_NAMES[p.get("damage_names", "xbd")]
    opts = ", ".join(names[d] for d in XBD_DAMAGE)
    rows: list[dict[str, Any]] = []
    for r in df.iter_rows(named=True):
        imgs = [r["image_pre"], r["image_post"]]
        base = f"{r['dataset']}-{r['split']}-{r['key']}"
        pre = (f"The first image was taken before a {r['disaster_type']} disaster and the second after it, "
               "of the same place.")
        polys, dmg = list(r["polygons"] or []), list(r["damage"] or [])
        if len(polys) != len(dmg):
            raise SourceError(f"eo_tasks: xBD {r['key']}: {len(polys)} polygons but {len(dmg)} damage levels")
        unknown = sorted(set(dmg) - set(XBD_DAMAGE) - {XBD_UNSCORED})
        if unknown:
            raise SourceError(f"eo_tasks: xBD {r['key']}: unknown damage subtype(s) {unknown} (xBD: {', '.join(XBD_DAMAGE)}, {XBD_UNSCORED})")
        keep = [i for i, d in enumerate(dmg) if d != XBD_UNSCORED]
        out.drop("damage: un-classified building", len(dmg) - len(keep))
        boxes, wkts = (_polygon_boxes([polys[i] for i in keep], r["width"], r["height"], r["key"]) if keep
                       else (np.zeros((0, 5)), []))
        levels = [dmg[i] for i in keep]
        size = [int(r["width"]), int(r["height"])]
        if "damage_cls" in tasks and keep:
            pick = sorted(rng.choice(len(keep), size=min(per_image, len(keep)), replace=False).tolist())
            for j in pick:
                text = (f"{pre} Classify the damage of the building at {format_box(boxes[j])} in the post-disaster "
                        f"image. Choose one of: {opts}. Answer with the damage level.")
                sol = {"label": levels[j], "box": boxes[j].tolist(), "polygon": wkts[j], "size": size}
                rows.append(_row(f"{base}-damage_cls-{keep[j]}", r["dataset"], "damage_cls", imgs, text,
                                 names[levels[j]], sol, r["split"], category=levels[j]))
        if "damage_referring" in tasks:
            form = _Boxes(p, *size)
            for level in XBD_DAMAGE[1:]:
                idx = [j for j, lv in enumerate(levels) if lv == level]
                if not idx:
                    continue
                if len(idx) > p["max_boxes"]:
                    out.drop("damage_referring: more boxes than max_boxes", 1)
                    continue
                cb = boxes[idx]
                cb = cb[np.lexsort((cb[:, 0], cb[:, 1]))]
                ans, sb = form.answer(cb, f"{level} building")
                text = (f"{pre} Box every building with the damage level {names[level]} in the post-disaster image. "
                        "Answer with one box per building. "
                        f"{_hint(p)}")
                rows.append(_row(f"{base}-damage_referring-{level}", r["dataset"], "damage_referring", imgs, text,
                                 ans, {**form.solution(sb), "category": level}, r["split"], category=level))
        caps = [c for c in (r.get("captions") or []) if c and c.strip()]
        if "change_caption" in tasks and caps:
            rows.append(_row(f"{base}-change_caption", r["dataset"], "change_caption", imgs,
                             f"{pre} Describe the damage the disaster caused between them.", caps[0],
                             {"references": caps}, r["split"]))
    return rows


def _hint(p: dict) -> str:
    return BOX_HINT[p["boxes"]]


def build_landcover(df: pl.DataFrame, tasks: set[str], ctx: StepContext, out: StepOutput, p: dict) -> list[dict]:
    """``landcover_cls``: a BigEarthNet patch's BigEarthNet-19 labels (RGB bands)."""
    _need(df, ("image", "labels"), "multilabel")
    opts = "; ".join(BIGEARTHNET19)
    rows = []
    for r in df.iter_rows(named=True):
        labels = sorted(set(r["labels"] or []))
        bad = [x for x in labels if x not in BIGEARTHNET19]
        if bad:
            raise SourceError(f"eo_tasks: BigEarthNet {r['key']}: {bad} are not BigEarthNet-19 class names")
        if not labels:
            out.drop("landcover: no labels", 1)
            continue
        text = ("Which land-cover classes of the BigEarthNet nomenclature are present in this Sentinel-2 patch? "
                f"Classes: {opts}. List every class present, separated by semicolons.")
        rows.append(_row(f"{r['dataset']}-landcover_cls-{r['key']}", r["dataset"], "landcover_cls", [r["image"]],
                         text, format_landcover(labels), {"labels": labels}, r["split"]))
    return rows


#: family -> builder, merged into ``geodata.steps.eo.BUILDERS``
SERIES_BUILDERS = {"temporal": build_temporal, "disaster": build_disaster, "multilabel": build_landcover}
