"""Shared pieces of the Earth-observation (EO) converters: box convention, prompts, class names.

Box convention
--------------
Every box in every EO row — detection, referring, region caption, GeoChat pass-through — is
``[x1, y1, x2, y2, θ]`` on a **0–100 grid** (GeoChat / EarthDial style):

* ``x`` runs left → right and ``y`` top → bottom, both as a percentage of the image width and
  height (``x = 100 · px / width``, ``y = 100 · py / height``);
* ``(x1, y1)``–``(x2, y2)`` (``x1 < x2``, ``y1 < y2``) is the rectangle *before* rotation;
* ``θ`` is the rotation in integer degrees about the rectangle's centre, in ``[-90, 90)``;
  positive ``θ`` turns the rectangle clockwise on screen (with ``y`` pointing down this is the
  usual rotation ``x' = cx + dx·cosθ − dy·sinθ, y' = cy + dx·sinθ + dy·cosθ``).

Converters translate pixel boxes: a horizontal pixel box ``xmin ymin xmax ymax`` becomes
``θ = 0``; a pixel quadrilateral (DOTA, DIOR-R) is first scaled onto the grid and then
replaced by its minimum-area enclosing rectangle, whose angle is folded into ``[-45, 45)``.
Coordinates are rounded to 0.1 grid units and ``θ`` to whole degrees; the gold completion
prints exactly the stored numbers, so its box scores IoU 1 against the solution.

In text a box is written ``{<x1><y1><x2><y2>|<θ>}`` (GeoChat's syntax), e.g.
``{<12.5><30><20.1><35.2>|<-30>}``; several boxes are separated by spaces.

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

import csv
import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import polars as pl
import shapely
from numpy.typing import ArrayLike, NDArray

from ...errors import SourceError

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
    "format_box",
    "format_boxes",
    "parse_boxes",
    "rotated_iou",
    "rotated_iou_matrix",
    "image_size",
    "clean_caption",
    "sample_image",
]

#: GeoVLM-R1's system prompt form: an EO reasoning expert answering in <think>/<answer>.
SYSTEM_EO = (
    "You are an expert in Earth Observation reasoning. Look carefully at the remote sensing "
    "image(s), think step by step about what they show, and put your reasoning inside "
    "<think> </think> tags and your final response inside <answer> </answer> tags. Boxes are "
    "written {<x1><y1><x2><y2>|<θ>} on a 0-100 grid of the image, with θ the rotation in "
    "degrees."
)

#: The unified task names (the ``task`` column; one output config each).
EO_TASKS: tuple[str, ...] = (
    "scene_cls",
    "multilabel_cls",
    "detection",
    "referring",
    "region_caption",
    "vqa",
    "image_caption",
    "change_caption",
    "change_presence",
)

#: Tasks whose answer is one or more boxes.
BOX_TASKS: frozenset[str] = frozenset({"detection", "referring"})

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
#: One box in GeoChat syntax; the angle part ``|<θ>`` is optional when parsing (θ = 0).
BOX_RE = re.compile(
    r"\{\s*<" + _NUM + r">\s*<" + _NUM + r">\s*<" + _NUM + r">\s*<" + _NUM + r">\s*"
    r"(?:\|\s*<" + _NUM + r">\s*)?\}"
)


# -- class names --------------------------------------------------------------------------
def class_key(name: str) -> str:
    """Look-up key of a class name: CamelCase split, lower-cased, non-alphanumerics removed.

    Examples
    --------
    >>> class_key("Expressway-Service-area"), class_key("StorageTanks"), class_key("golf_course")
    ('expresswayservicearea', 'storagetanks', 'golfcourse')
    """
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


@lru_cache(maxsize=1)
def class_table() -> dict[str, tuple[str, str]]:
    """``key -> (canonical, kind)`` for every alias in ``geodata/data/eo_classes.csv``."""
    text = resources.files("geodata").joinpath("data/eo_classes.csv").read_text()
    out: dict[str, tuple[str, str]] = {}
    for lineno, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        canon, kind = row["canonical"].strip(), row["kind"].strip()
        for alias in [canon, *row["aliases"].split("|")]:
            if not alias.strip():
                continue
            key = class_key(alias)
            if key in out and out[key][0] != canon:
                raise SourceError(
                    f"eo_classes.csv line {lineno}: alias '{alias}' already maps to '{out[key][0]}'"
                )
            out[key] = (canon, kind)
    return out


def canonical_class(name: str, *, strict: bool = False, where: str = "") -> str | None:
    """The canonical class name of ``name`` (``None``, or an error when ``strict``).

    Examples
    --------
    >>> canonical_class("baseball_diamond"), canonical_class("BaseballField")
    ('baseball field', 'baseball field')
    >>> canonical_class("Expressway-toll-station")
    'expressway toll station'
    >>> canonical_class("plane"), canonical_class("storage-tank")
    ('airplane', 'storage tank')
    """
    hit = class_table().get(class_key(name))
    if hit is None:
        # plural fallback: "tennis courts" -> "tennis court"
        k = class_key(name)
        hit = class_table().get(k[:-1]) if k.endswith("s") else None
    if hit is None:
        if strict:
            raise SourceError(f"{where}: unknown class name '{name}' (add it to geodata/data/eo_classes.csv)")
        return None
    return hit[0]


# -- boxes ----------------------------------------------------------------------------------
def _round_boxes(boxes: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.round(boxes, 1)
    out[:, 4] = np.round(boxes[:, 4])
    out[:, 4] = np.where(out[:, 4] >= 90, out[:, 4] - 180, out[:, 4])
    return out + 0.0  # no negative zeros


def quads_to_boxes(quads: ArrayLike, width: ArrayLike, height: ArrayLike) -> NDArray[np.float64]:
    """Pixel quadrilaterals ``(n, 8)`` → grid boxes ``(n, 5)`` ``[x1, y1, x2, y2, θ]``.

    The quadrilateral is scaled onto the 0–100 grid, replaced by its minimum-area rotated
    rectangle (shapely) and the angle folded into ``[-45, 45)``.

    Examples
    --------
    >>> quads_to_boxes([[10, 10, 30, 10, 30, 20, 10, 20]], 100, 200).tolist()
    [[10.0, 5.0, 30.0, 10.0, 0.0]]
    >>> b = quads_to_boxes([[50, 40, 60, 50, 50, 60, 40, 50]], 100, 100)[0]
    >>> b.tolist()
    [42.9, 42.9, 57.1, 57.1, -45.0]
    """
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2).copy()
    if len(q) == 0:
        return np.zeros((0, 5))
    w = np.broadcast_to(np.asarray(width, dtype=np.float64), (len(q),))
    h = np.broadcast_to(np.asarray(height, dtype=np.float64), (len(q),))
    q[:, :, 0] *= (100.0 / w)[:, None]
    q[:, :, 1] *= (100.0 / h)[:, None]
    rect = shapely.minimum_rotated_rectangle(shapely.polygons(np.concatenate([q, q[:, :1]], axis=1)))
    out = np.zeros((len(q), 5))
    for i, r in enumerate(rect):  # per-geometry coordinate extraction (vectorized get_coordinates)
        c = shapely.get_coordinates(r)
        if len(c) < 4:  # degenerate (collinear) quadrilateral
            out[i] = np.nan
            continue
        p0, p1, p2 = c[0], c[1], c[2]
        e1, e2 = p1 - p0, p2 - p1
        ang = math.degrees(math.atan2(e1[1], e1[0]))
        w1, w2 = float(np.hypot(*e1)), float(np.hypot(*e2))
        # fold the angle into [-45, 45): a turn of 90° swaps the two side lengths
        ang = (ang + 180.0) % 180.0  # [0, 180)
        if ang >= 135.0:
            ang -= 180.0
        elif ang >= 45.0:
            ang -= 90.0
            w1, w2 = w2, w1
        cx, cy = c[:4].mean(axis=0)
        out[i] = [cx - w1 / 2, cy - w2 / 2, cx + w1 / 2, cy + w2 / 2, ang]
    return _round_boxes(out)


def hbbs_to_boxes(hbbs: ArrayLike, width: ArrayLike, height: ArrayLike) -> NDArray[np.float64]:
    """Horizontal pixel boxes ``(n, 4)`` ``xmin ymin xmax ymax`` → grid boxes with ``θ = 0``.

    Examples
    --------
    >>> hbbs_to_boxes([[0, 0, 400, 200]], 800, 800).tolist()
    [[0.0, 0.0, 50.0, 25.0, 0.0]]
    """
    b = np.asarray(hbbs, dtype=np.float64).reshape(-1, 4)
    w = np.broadcast_to(np.asarray(width, dtype=np.float64), (len(b),))
    h = np.broadcast_to(np.asarray(height, dtype=np.float64), (len(b),))
    out = np.zeros((len(b), 5))
    out[:, 0] = b[:, 0] * 100.0 / w
    out[:, 2] = b[:, 2] * 100.0 / w
    out[:, 1] = b[:, 1] * 100.0 / h
    out[:, 3] = b[:, 3] * 100.0 / h
    return _round_boxes(out)


def box_corners(boxes: ArrayLike) -> NDArray[np.float64]:
    """Corners ``(n, 4, 2)`` of grid boxes ``(n, 5)`` (clockwise on screen from top-left).

    Examples
    --------
    >>> box_corners([[0, 0, 10, 20, 0]]).tolist()
    [[[0.0, 0.0], [10.0, 0.0], [10.0, 20.0], [0.0, 20.0]]]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    hw, hh = (b[:, 2] - b[:, 0]) / 2, (b[:, 3] - b[:, 1]) / 2
    t = np.radians(b[:, 4])
    cos, sin = np.cos(t), np.sin(t)
    dx = np.stack([-hw, hw, hw, -hw], axis=1)
    dy = np.stack([-hh, -hh, hh, hh], axis=1)
    x = cx[:, None] + dx * cos[:, None] - dy * sin[:, None]
    y = cy[:, None] + dx * sin[:, None] + dy * cos[:, None]
    return np.stack([x, y], axis=2)


def box_polygons(boxes: ArrayLike) -> NDArray[np.object_]:
    """shapely polygons of grid boxes (vectorized)."""
    c = box_corners(boxes)
    return shapely.polygons(np.concatenate([c, c[:, :1]], axis=1))


def rotated_iou_matrix(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """IoU ``(n, m)`` between rotated boxes ``a (n, 5)`` and ``b (m, 5)`` (shapely polygons).

    Examples
    --------
    >>> round(float(rotated_iou_matrix([[0, 0, 2, 2, 0]], [[1, 0, 3, 2, 0]])[0, 0]), 4)
    0.3333
    >>> round(float(rotated_iou_matrix([[-1, -1, 1, 1, 0]], [[-1, -1, 1, 1, 45]])[0, 0]), 4)
    0.7071
    """
    pa, pb = box_polygons(a), box_polygons(b)
    if len(pa) == 0 or len(pb) == 0:
        return np.zeros((len(pa), len(pb)))
    inter = shapely.area(shapely.intersection(pa[:, None], pb[None, :]))
    union = shapely.area(pa)[:, None] + shapely.area(pb)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    # identical boxes score exactly 1 (polygon clipping leaves ~1e-16 of rounding)
    same = np.all(np.abs(np.asarray(a, float).reshape(-1, 5)[:, None] - np.asarray(b, float).reshape(-1, 5)[None]) < 1e-9, axis=2)
    return np.where(same, 1.0, np.clip(iou, 0.0, 1.0))


def rotated_iou(a: ArrayLike, b: ArrayLike) -> float:
    """IoU of two rotated boxes ``[x1, y1, x2, y2, θ]``."""
    return float(rotated_iou_matrix([a], [b])[0, 0])


def _num(v: float) -> str:
    s = f"{v:.1f}"
    s = s.rstrip("0").rstrip(".") if "." in s else s
    return "0" if s in ("-0", "") else s


def format_box(box: Sequence[float]) -> str:
    """``{<x1><y1><x2><y2>|<θ>}`` text of one grid box.

    Examples
    --------
    >>> format_box([12.5, 30.0, 20.1, 35.2, -30.0])
    '{<12.5><30><20.1><35.2>|<-30>}'
    """
    x1, y1, x2, y2, t = (float(v) for v in box)
    return f"{{<{_num(x1)}><{_num(y1)}><{_num(x2)}><{_num(y2)}>|<{int(round(t))}>}}"


def format_boxes(boxes: Iterable[Sequence[float]]) -> str:
    """Boxes separated by spaces."""
    return " ".join(format_box(b) for b in boxes)


def parse_boxes(text: str) -> list[list[float]]:
    """Every box written in ``text`` (GeoChat syntax; a missing ``|<θ>`` means θ = 0).

    Examples
    --------
    >>> parse_boxes("a {<1><2><3><4>|<10>} and {<5.5><6><7><8>}")
    [[1.0, 2.0, 3.0, 4.0, 10.0], [5.5, 6.0, 7.0, 8.0, 0.0]]
    """
    out = []
    for m in BOX_RE.finditer(text):
        vals = [float(g) if g is not None else 0.0 for g in m.groups()]
        out.append(vals)
    return out


# -- files ------------------------------------------------------------------------------------
def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header (PIL, no full decode).

    Pillow's decompression-bomb guard is lifted for the call: only the header is read, and
    DOTA-v2 images (about 20000×20000 px) would otherwise abort the build.
    """
    from PIL import Image

    guard = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise SourceError(f"{path}: cannot read image size ({type(exc).__name__})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = guard


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
    ctx,
    dataset: str,
    rows: list[dict],
    quads: list[list[float]],
    *,
    outside_tol_px: float,
) -> pl.DataFrame:
    """Grid boxes for pixel quadrilaterals ``quads`` (one per row) and the documented skips.

    Rules: a vertex more than ``outside_tol_px`` pixels outside the image drops the object
    (counted ``box outside image``); vertices within the tolerance are clipped to the image;
    a box that rounds to zero width or height on the grid is dropped (``degenerate box``).
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
    ctx.drop(f"{dataset}: box outside image", int(outside.sum()))
    q[:, 0::2] = np.clip(xs, 0, w[:, None])
    q[:, 1::2] = np.clip(ys, 0, h[:, None])
    boxes = quads_to_boxes(q, w, h)
    degenerate = ~outside & (
        ~np.isfinite(boxes).all(1) | (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    )
    ctx.drop(f"{dataset}: degenerate box", int(degenerate.sum()))
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
