"""Shared pieces of the Earth-observation (EO) converters: box convention, prompts, class names.

Box convention
--------------
The box convention (integer GeoChat grid boxes ``{<x1><y1><x2><y2>|<θ>}`` with θ in ``[0, 90)``
measured in pixel space, or Qwen2.5-VL's ``bbox_2d`` JSON), its geometry and its parsers live in
the EO contract :mod:`geodata.tasks.eo.contract`; they are re-exported here so the readers keep
importing them from this module. Converters translate pixel boxes: a horizontal pixel box
becomes ``θ = 0``; a pixel quadrilateral (DOTA, DIOR-R) is replaced by its minimum-area
rectangle **in pixel space**, whose centre and sides are then normalised onto the 0–100 grid.

Class names
-----------
Scene and object class names are normalized across datasets with the table
``geodata/data/eo_classes.csv`` (``canonical,kind,aliases``): every raw name of every dataset
is an alias of exactly one canonical name (``storagetanks``, ``StorageTanks``,
``storage_tank``, ``storage-tank`` → ``storage tank``). Look-up is on the name lower-cased with
CamelCase split and every non-alphanumeric character removed, so spelling variants such as
DIOR's ``Expressway-Service-area`` resolve too.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from ...tasks.eo.contract import (  # noqa: F401 - re-exported: the contract is the one home
    BOX_RE,
    BOX_TASKS,
    EO_TASKS,
    SYSTEM_EO,
    box_corners,
    box_polygons,
    canonical_boxes,
    canonical_class,
    class_key,
    class_table,
    format_box,
    format_boxes,
    hbbs_to_boxes,
    parse_boxes,
    quads_to_boxes,
    rotated_iou,
    rotated_iou_matrix,
)
from ...context import StepContext, StepOutput
from ...image_geometry import image_size  # noqa: F401 - re-exported: readers size their images here

__all__ = [
    "SYSTEM_EO",
    "EO_TASKS",
    "BOX_TASKS",
    "BOX_RE",
    "class_key",
    "canonical_class",
    "class_table",
    "quads_to_boxes",
    "hbbs_to_boxes",
    "box_corners",
    "box_polygons",
    "canonical_boxes",
    "format_box",
    "format_boxes",
    "parse_boxes",
    "rotated_iou",
    "rotated_iou_matrix",
    "image_size",
    "clean_caption",
    "sample_image",
]


# -- files ------------------------------------------------------------------------------------
def clean_caption(text: str) -> str:
    """Whitespace collapsed, space before final punctuation removed, first letter upper-cased.

    Examples
    --------
    >>> clean_caption(" many planes are parked next to a long building  . ")
    'Many planes are parked next to a long building.'
    """
    t = re.sub(r"\s+", " ", str(text)).strip()
    t = re.sub(r"\s+([.,;!?])", r"\1", t)
    return t[:1].upper() + t[1:]


def sample_image(path: Path, size: tuple[int, int], seed: int, fmt: str | None = None) -> None:
    """Write a small deterministic RGB test image (smooth colour field plus noise)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(40, 200, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack(
        [(base[c] + 30 * np.sin((xx + 7 * c) / (3 + c)) + 20 * np.cos(yy / 5)) for c in range(3)],
        axis=-1,
    )
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, "RGB").save(path, format=fmt)


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with ``schema``."""
    return pl.DataFrame(schema=schema)


# -- object tables (DOTA, DIOR) ---------------------------------------------------------------
OBJECT_SCHEMA: dict[str, pl.DataType] = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "image_id": pl.String,
    "image": pl.String,
    "width": pl.Int64,
    "height": pl.Int64,
    "raw_category": pl.String,
    "category": pl.String,
    "difficult": pl.Boolean,
    "where": pl.String,
    "box": pl.List(pl.Float64),
}


def finish_objects(
    ctx: StepContext, out: StepOutput,
    dataset: str,
    rows: list[dict],
    quads: list[list[float]],
    *,
    outside_tol_px: float,
) -> pl.DataFrame:
    """Grid boxes for pixel quadrilaterals ``quads`` (one per row) and the documented skips.

    Rules: a vertex more than ``outside_tol_px`` pixels outside the image drops the object
    (counted ``box outside image``); vertices within the tolerance are clipped to the image;
    a collinear (zero-area) quadrilateral is dropped (``degenerate box``); a box smaller than one
    grid unit keeps a width / height of 1 (GeoChat's integer grid has no smaller box).
    """
    if not rows:
        return pl.DataFrame(schema=OBJECT_SCHEMA)
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 8)
    w = np.array([r["width"] for r in rows], dtype=np.float64)
    h = np.array([r["height"] for r in rows], dtype=np.float64)
    xs, ys = q[:, 0::2], q[:, 1::2]
    outside = (
        (xs < -outside_tol_px).any(1)
        | (ys < -outside_tol_px).any(1)
        | (xs > w[:, None] + outside_tol_px).any(1)
        | (ys > h[:, None] + outside_tol_px).any(1)
    )
    out.drop(f"{dataset}: box outside image", int(outside.sum()))
    q[:, 0::2] = np.clip(xs, 0, w[:, None])
    q[:, 1::2] = np.clip(ys, 0, h[:, None])
    boxes = quads_to_boxes(q, w, h)
    degenerate = ~outside & (
        ~np.isfinite(boxes).all(1) | (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    )
    out.drop(f"{dataset}: degenerate box", int(degenerate.sum()))
    keep = ~(outside | degenerate)
    df = pl.DataFrame(rows, schema={k: v for k, v in OBJECT_SCHEMA.items() if k != "box"})
    df = df.with_columns(box=pl.Series(boxes.tolist(), dtype=pl.List(pl.Float64)))
    return df.filter(pl.Series(keep))


def line_of(text: str, needle: str, occurrence: int) -> int:
    """1-based line number of the ``occurrence``-th (0-based) ``needle`` in ``text`` (0 if absent)."""
    pos = -1
    for _ in range(occurrence + 1):
        pos = text.find(needle, pos + 1)
        if pos < 0:
            return 0
    return text.count("\n", 0, pos) + 1
