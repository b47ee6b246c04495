"""Synthetic reader tables of the image-sequence / land-cover families (fMoW, xBD, BigEarthNet) with
real tiny image files, in the columns ``geodata.steps.eo_series`` reads; and their rows as a
dataset folder (Hub layout) for the training tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

#: the colour of frame k of the fMoW site: the frames are told apart by it
FRAME_COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200)]


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (56, 56)) -> str:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(path)
    return str(path)


def series_tables(d: Path) -> dict[str, pl.DataFrame]:
    """``fmow`` (a 6-frame site with shuffled timestamps, a 2-frame site and a 1-frame site),
    ``xbd`` (one 1024 × 1024 pair, buildings of every damage level and one un-classified) and
    ``ben`` (two patches)."""
    d = Path(d)
    times = ["2016-05-01", "2015-01-10", "2017-03-02", "2015-08-20", "2016-11-30", "2017-09-09"]
    frames = [_png(d / "fmow" / f"site0_{k}.png", FRAME_COLOURS[k]) for k in range(6)]
    fmow = pl.DataFrame({
        "eo_family": ["temporal"] * 3, "dataset": ["fmow_rgb"] * 3, "split": ["train", "train", "test"],
        "key": ["crop_field/site0", "airport/site1", "park/site2"],
        "images": [frames, frames[:2], frames[:1]], "timestamps": [times, times[:2], times[:1]],
        "category": ["crop_field", "airport", "park"], "label": ["crop field", "airport", "park"],
    })
    ring = lambda x, y, s: [x, y, x + s, y, x + s, y + s, x, y + s]  # noqa: E731  (the xbd reader's flat rings)
    polys = [ring(100, 100, 40), ring(300, 120, 60), ring(600, 600, 80), ring(700, 200, 50), ring(50, 800, 30),
             ring(900, 900, 40)]
    dmg = ["no-damage", "minor-damage", "major-damage", "destroyed", "destroyed", "un-classified"]
    xbd = pl.DataFrame({
        "eo_family": ["disaster"], "dataset": ["xbd"], "split": ["train"], "key": ["hurricane-harvey_00000001"],
        "image_pre": [_png(d / "xbd" / "pre.png", (90, 90, 90), (64, 64))],
        "image_post": [_png(d / "xbd" / "post.png", (60, 40, 40), (64, 64))],
        "width": [1024], "height": [1024], "disaster_type": ["flooding"],
        "polygons": pl.Series([polys], dtype=pl.List(pl.List(pl.Float64))), "damage": [dmg],
        "captions": [["Two houses in the south-east were destroyed and the road is flooded."]],
    })
    ben = pl.DataFrame({
        "eo_family": ["multilabel"] * 2, "dataset": ["bigearthnet_s2"] * 2, "split": ["train", "test"],
        "key": ["S2A_1", "S2A_2"],
        "image": [_png(d / "ben" / "a.png", (20, 120, 20)), _png(d / "ben" / "b.png", (20, 20, 160))],
        "labels": [["Pastures", "Transitional woodland, shrub"], ["Marine waters"]],
    })
    return {"fmow": fmow, "xbd": xbd, "ben": ben}


SOURCES = {"fmow": ["temporal_cls"], "xbd": ["damage_cls", "damage_referring", "change_caption"], "ben": ["landcover_cls"]}


def series_rows(d: Path, **params) -> pl.DataFrame:
    """The ``eo_tasks`` rows of :func:`series_tables`."""
    from geodata.context import StepContext
    from geodata.steps.eo import eo_tasks

    res = eo_tasks(pl.DataFrame(), StepContext(seed=0, name="eo_tasks"), sources=SOURCES, **params, **series_tables(d))
    return res.rows


def series_dataset(d: Path) -> Path:
    """The rows written as a dataset folder (``data/train-00000-of-00001.parquet``, images embedded)."""
    from geodata.dataset.writer import write_partition

    rows = series_rows(d / "src").drop("split", "category", "qtype")
    out = d / "series-ds"
    write_partition(rows, out, "data", config="default", split="train")
    return out


def sols(df: pl.DataFrame) -> list[dict]:
    return [json.loads(s) for s in df["solution"].to_list()]
