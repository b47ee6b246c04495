"""The Earth-observation contract: task names, box conventions, answer parsing, RSVQA rules.

``geodata.steps.eo`` writes rows in this form; the EO task modules of :mod:`geodata.tasks.eo`
(rewards and scorers) read them with the same functions. Nothing here imports a source reader.

Box conventions (``boxes:`` option of the ``eo_tasks`` step; docs/eo-instruct.md)
--------------------------------------------------------------------------------
``geochat`` (default)
    ``{<x1><y1><x2><y2>|<θ>}``, **non-negative integers** that GeoChat / TEOChat / EarthDial's
    parsers read (``<(\\d+)>`` then ``int``). ``(x1, y1)–(x2, y2)`` is the rectangle *before*
    rotation with ``x = 100·px/width`` and ``y = 100·py/height``; ``θ`` in ``[0, 90)`` (GeoChat's
    data uses ``[0, 90]``) is the rotation in degrees about the centre **in pixel space**,
    positive = clockwise on screen (y points down): a corner at ``(dx, dy)`` pixels from the
    centre goes to ``(dx·cosθ − dy·sinθ, dx·sinθ + dy·cosθ)``. Geometry (IoU) is evaluated in
    pixels: the grid is scaled by the image size first, then rotated (as GeoChat's demo draws).
``qwen``
    Qwen2.5-VL's native grounding answer ``[{"bbox_2d": [x1, y1, x2, y2], "label": "…"}]`` in
    absolute pixels of the image *as the model sees it* after the processor's resize
    (:func:`smart_resize`). Boxes are horizontal: a rotated object is its axis-aligned hull.
    The solution records ``size`` (original) and ``resized`` so rewards and eval rescale.

Every box solution holds ``boxes`` on the 0–100 grid (the geometry both forms are scored on),
``size: [width, height]`` where known and ``box_format``. A reward reads an answer in the row's
form first and accepts the other form too (a Qwen JSON answer to a GeoChat row is rescaled
VLM-R1 style), so the same geometry scores the same in either form.
"""

from __future__ import annotations

import csv
import json
import math
import re
import string
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Sequence

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from ...errors import SourceError

__all__ = [
    "EO_TASKS",
    "BOX_TASKS",
    "BOX_FORMATS",
    "SYSTEM_EO",
    "SYSTEM_EO_QWEN",
    "GEOCHAT_INT_RE",
    "BOX_RE",
    "BOX_RE_ANY",
    "QWEN_MIN_PIXELS",
    "QWEN_MAX_PIXELS",
    "RSVQA_BINS",
    "class_key",
    "class_table",
    "canonical_class",
    "label_key",
    "label_set",
    "yes_no",
    "quads_to_boxes",
    "hbbs_to_boxes",
    "canonical_boxes",
    "box_corners",
    "box_polygons",
    "rotated_iou_matrix",
    "rotated_iou",
    "format_box",
    "format_boxes",
    "parse_boxes",
    "split_geochat_boxes",
    "parse_bracket_boxes",
    "parse_qwen2_boxes",
    "eval_boxes",
    "smart_resize",
    "boxes_to_qwen",
    "qwen_to_boxes",
    "format_qwen",
    "parse_qwen",
    "answer_boxes",
    "extract_answer",
    "normalize_answer",
    "parse_numeric",
    "words_number",
    "rsvqa_bin",
    "numeric_match",
    "geochat_question_type",
]

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

#: Values of the ``boxes`` option of ``eo_tasks`` (and ``box_format`` of a solution).
BOX_FORMATS: tuple[str, ...] = ("geochat", "qwen")

_SYSTEM = (
    "You are an expert in Earth Observation reasoning. Look carefully at the remote sensing "
    "image(s), think step by step about what they show, and put your reasoning inside "
    "<think> </think> tags and your final response inside <answer> </answer> tags. "
)
#: GeoVLM-R1's system prompt form with the GeoChat box syntax.
SYSTEM_EO = _SYSTEM + (
    "Boxes are written {<x1><y1><x2><y2>|<θ>} with whole numbers on a 0-100 grid of the image, "
    "with θ the clockwise rotation in degrees (0-90)."
)
#: The same with Qwen2.5-VL's native JSON boxes.
SYSTEM_EO_QWEN = _SYSTEM + (
    'Boxes are written as JSON [{"bbox_2d": [x1, y1, x2, y2], "label": "name"}] in pixels of the image.'
)

#: The integer pattern GeoChat-format evaluators read box numbers with (TEOChat
#: ``convert_geochat_string``; EarthDial ``parse_bboxes`` uses ``\d+`` likewise).
GEOCHAT_INT_RE = re.compile(r"<(\d+)>")

_INT = r"\s*(\d+)\s*"
#: One box as GeoChat's parsers read it: non-negative integers; ``|<θ>`` optional (θ = 0).
BOX_RE = re.compile(
    r"\{\s*<" + _INT + r">\s*<" + _INT + r">\s*<" + _INT + r">\s*<" + _INT + r">\s*(?:\|\s*<" + _INT + r">\s*)?\}"
)
_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
#: Any box-like group, signed decimals included (to read and normalise third-party inputs).
BOX_RE_ANY = re.compile(
    r"\{\s*<" + _NUM + r">\s*<" + _NUM + r">\s*<" + _NUM + r">\s*<" + _NUM + r">\s*(?:\|\s*<" + _NUM + r">\s*)?\}"
)

#: Qwen2.5-VL image processor defaults (``min_pixels = 56·56``, ``max_pixels = 28·28·1280``).
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 1280

#: RSVQA count / area bins (upper edges, right-closed): 0 | 1–10 | 11–100 | 101–1000 | >1000.
RSVQA_BINS: tuple[float, ...] = (0.0, 10.0, 100.0, 1000.0)


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


# -- geometry ---------------------------------------------------------------------------------
def _sizes(size: ArrayLike | None, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if size is None:
        return np.full(n, 100.0), np.full(n, 100.0)
    s = np.asarray(size, dtype=np.float64)
    s = np.broadcast_to(s.reshape(-1, 2) if s.ndim else np.array([[s, s]]), (n, 2))
    return s[:, 0].copy(), s[:, 1].copy()


def _grid_from_pixels(cx, cy, w, h, ang, W, H) -> NDArray[np.float64]:
    """Integer grid boxes from pixel centre/size/angle (θ in [0, 90), min size 1, x1/y1 ≥ 0)."""
    ang = np.round(np.mod(ang, 180.0), 0)
    swap = ang >= 90.0
    ang = np.where(swap, ang - 90.0, ang)
    w, h = np.where(swap, h, w), np.where(swap, w, h)
    def side(c, half, n):
        lo = np.maximum(np.round(100.0 * (c - half) / n), 0.0)
        hi = np.round(100.0 * (c + half) / n)
        thin = ~(hi > lo)  # under one grid unit: the unit cell holding the centre
        with np.errstate(invalid="ignore"):
            cell = np.clip(np.floor(100.0 * c / n), 0.0, 99.0)
        return np.where(thin, cell, lo), np.where(thin, cell + 1, hi)

    x1, x2 = side(cx, w / 2, W)
    y1, y2 = side(cy, h / 2, H)
    return np.stack([x1, y1, x2, y2, ang], axis=1) + 0.0


def quads_to_boxes(quads: ArrayLike, width: ArrayLike, height: ArrayLike) -> NDArray[np.float64]:
    """Pixel quadrilaterals ``(n, 8)`` → integer GeoChat grid boxes ``(n, 5)``.

    The minimum-area rectangle (shapely) is fitted **in pixel space**, its angle folded into
    ``[0, 90)`` (a turn of 90° swaps the side lengths), then its unrotated extent is normalised
    onto the 0–100 grid and rounded to whole numbers. A collinear quadrilateral gives NaN.

    Examples
    --------
    >>> quads_to_boxes([[10, 10, 30, 10, 30, 20, 10, 20]], 100, 200).tolist()
    [[10.0, 5.0, 30.0, 10.0, 0.0]]
    >>> quads_to_boxes([[50, 40, 60, 50, 50, 60, 40, 50]], 100, 100).tolist()
    [[43.0, 43.0, 57.0, 57.0, 45.0]]
    >>> # a 45° ship on a 200 x 100 image keeps its pixel angle (not the grid's)
    >>> quads_to_boxes([[90, 40, 110, 60, 100, 70, 80, 50]], 200, 100)[0, 4]
    np.float64(45.0)
    """
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    n = len(q)
    if n == 0:
        return np.zeros((0, 5))
    W = np.broadcast_to(np.asarray(width, dtype=np.float64), (n,))
    H = np.broadcast_to(np.asarray(height, dtype=np.float64), (n,))
    rect = shapely.minimum_rotated_rectangle(shapely.polygons(np.concatenate([q, q[:, :1]], axis=1)))
    coords, index = shapely.get_coordinates(rect, return_index=True)
    counts = np.bincount(index, minlength=n)
    ok = counts == 5  # a polygon ring of 4 corners + closing point
    c = np.full((n, 5, 2), np.nan)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    take = starts[ok][:, None] + np.arange(5)[None, :]
    c[ok] = coords[take]
    e1, e2 = c[:, 1] - c[:, 0], c[:, 2] - c[:, 1]
    ang = np.degrees(np.arctan2(e1[:, 1], e1[:, 0]))
    w, h = np.hypot(e1[:, 0], e1[:, 1]), np.hypot(e2[:, 0], e2[:, 1])
    cx, cy = c[:, :4, 0].mean(axis=1), c[:, :4, 1].mean(axis=1)
    out = _grid_from_pixels(cx, cy, w, h, ang, W, H)
    out[~ok | ~(w > 0) | ~(h > 0)] = np.nan
    return out


def hbbs_to_boxes(hbbs: ArrayLike, width: ArrayLike, height: ArrayLike) -> NDArray[np.float64]:
    """Horizontal pixel boxes ``(n, 4)`` ``xmin ymin xmax ymax`` → integer grid boxes, ``θ = 0``.

    Examples
    --------
    >>> hbbs_to_boxes([[0, 0, 400, 200]], 800, 800).tolist()
    [[0.0, 0.0, 50.0, 25.0, 0.0]]
    """
    b = np.asarray(hbbs, dtype=np.float64).reshape(-1, 4)
    W = np.broadcast_to(np.asarray(width, dtype=np.float64), (len(b),))
    H = np.broadcast_to(np.asarray(height, dtype=np.float64), (len(b),))
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    return _grid_from_pixels(cx, cy, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1], np.zeros(len(b)), W, H)


def canonical_boxes(boxes: ArrayLike, size: ArrayLike | None = None) -> NDArray[np.float64]:
    """Any grid boxes (signed or decimal θ, e.g. ``-45``) → the integer GeoChat form, same geometry.

    Examples
    --------
    >>> canonical_boxes([[40, 45, 60, 55, -90]]).tolist()      # -90° = a 90° turn: sides swap
    [[45.0, 40.0, 55.0, 60.0, 0.0]]
    >>> canonical_boxes([[8, 20, 30, 41, -45]]).tolist()
    [[8.0, 20.0, 30.0, 42.0, 45.0]]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    W, H = _sizes(size, len(b))
    cx, cy = (b[:, 0] + b[:, 2]) / 2 * W / 100, (b[:, 1] + b[:, 3]) / 2 * H / 100
    w, h = (b[:, 2] - b[:, 0]) * W / 100, (b[:, 3] - b[:, 1]) * H / 100
    return _grid_from_pixels(cx, cy, w, h, b[:, 4], W, H)


def box_corners(boxes: ArrayLike, size: ArrayLike | None = None, sense: str = "cw") -> NDArray[np.float64]:
    """Corners ``(n, 4, 2)`` of grid boxes, in pixels of an image of ``size`` (grid units without).

    From the top-left corner of the unrotated rectangle, clockwise on screen. ``sense="cw"``
    turns θ clockwise on screen (geodata's rows; TEOChat ``convert_geochat_string``);
    ``"ccw"`` counter-clockwise (EarthDial ``get_rotated_box_vertices``: ``rect @ R``; GeoChat's
    demo with ``cv2.getRotationMatrix2D``).

    Examples
    --------
    >>> box_corners([[0, 0, 10, 20, 0]]).tolist()
    [[[0.0, 0.0], [10.0, 0.0], [10.0, 20.0], [0.0, 20.0]]]
    >>> box_corners([[0, 0, 10, 20, 0]], size=(200, 50)).tolist()
    [[[0.0, 0.0], [20.0, 0.0], [20.0, 10.0], [0.0, 10.0]]]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    W, H = _sizes(size, len(b))
    sx, sy = W / 100.0, H / 100.0
    cx, cy = (b[:, 0] + b[:, 2]) / 2 * sx, (b[:, 1] + b[:, 3]) / 2 * sy
    hw, hh = (b[:, 2] - b[:, 0]) / 2 * sx, (b[:, 3] - b[:, 1]) / 2 * sy
    t = np.radians(b[:, 4]) * (-1.0 if sense == "ccw" else 1.0)
    cos, sin = np.cos(t), np.sin(t)
    dx = np.stack([-hw, hw, hw, -hw], axis=1)
    dy = np.stack([-hh, -hh, hh, hh], axis=1)
    x = cx[:, None] + dx * cos[:, None] - dy * sin[:, None]
    y = cy[:, None] + dx * sin[:, None] + dy * cos[:, None]
    return np.stack([x, y], axis=2)


def box_polygons(boxes: ArrayLike, size: ArrayLike | None = None, sense: str = "cw") -> NDArray[np.object_]:
    """shapely polygons of grid boxes (vectorized), in pixels when ``size`` is given."""
    c = box_corners(boxes, size, sense)
    return shapely.polygons(np.concatenate([c, c[:, :1]], axis=1))


def rotated_iou_matrix(a: ArrayLike, b: ArrayLike, size: ArrayLike | None = None, sense: str = "cw") -> NDArray[np.float64]:
    """IoU ``(n, m)`` between rotated grid boxes ``a (n, 5)`` and ``b (m, 5)`` of one image.

    ``size = (width, height)`` evaluates the geometry in pixels (needed on non-square images:
    θ is a pixel-space angle); without it the grid is taken as square.

    Examples
    --------
    >>> round(float(rotated_iou_matrix([[0, 0, 2, 2, 0]], [[1, 0, 3, 2, 0]])[0, 0]), 4)
    0.3333
    >>> round(float(rotated_iou_matrix([[-1, -1, 1, 1, 0]], [[-1, -1, 1, 1, 45]])[0, 0]), 4)
    0.7071
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 5)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    s = None if size is None else np.asarray(size, dtype=np.float64).reshape(2)
    pa, pb = box_polygons(a, s, sense), box_polygons(b, s, sense)
    inter = shapely.area(shapely.intersection(pa[:, None], pb[None, :]))
    union = shapely.area(pa)[:, None] + shapely.area(pb)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    # identical boxes score exactly 1 (polygon clipping leaves ~1e-16 of rounding)
    same = np.all(np.abs(a[:, None] - b[None]) < 1e-9, axis=2)
    return np.where(same, 1.0, np.clip(np.nan_to_num(iou), 0.0, 1.0))


def rotated_iou(a: ArrayLike, b: ArrayLike, size: ArrayLike | None = None) -> float:
    """IoU of two rotated grid boxes ``[x1, y1, x2, y2, θ]``."""
    return float(rotated_iou_matrix([a], [b], size)[0, 0])


# -- GeoChat text -------------------------------------------------------------------------------
def format_box(box: Sequence[float]) -> str:
    """``{<x1><y1><x2><y2>|<θ>}`` of one canonical grid box (whole numbers).

    Examples
    --------
    >>> format_box([12, 30, 20, 35, 30])
    '{<12><30><20><35>|<30>}'
    >>> GEOCHAT_INT_RE.findall(format_box([12.0, 30.0, 20.0, 35.0, 0.0]))
    ['12', '30', '20', '35', '0']
    """
    v = [int(round(float(x))) for x in box]
    if min(v) < 0:
        raise ValueError(f"format_box: {list(box)} is not a canonical box (use canonical_boxes)")
    return "{<%d><%d><%d><%d>|<%d>}" % tuple(v)


def format_boxes(boxes: Iterable[Sequence[float]]) -> str:
    """Boxes joined the way GeoChat writes them (``{…}{…}``): its demo and TEOChat split on ``}{``.

    Examples
    --------
    >>> format_boxes([[1, 2, 3, 4, 0], [5, 6, 7, 8, 9]])
    '{<1><2><3><4>|<0>}{<5><6><7><8>|<9>}'
    """
    return "".join(format_box(b) for b in boxes)


def parse_boxes(text: str, *, strict: bool = False) -> list[list[float]]:
    """Every box written in ``text`` (a missing ``|<θ>`` means θ = 0).

    ``strict=True`` reads only what GeoChat's evaluators read (non-negative integers; this is
    what rewards and eval use); the default also reads signed decimals (third-party inputs).

    Examples
    --------
    >>> parse_boxes("a {<1><2><3><4>|<10>} and {<5><6><7><8>}", strict=True)
    [[1.0, 2.0, 3.0, 4.0, 10.0], [5.0, 6.0, 7.0, 8.0, 0.0]]
    >>> parse_boxes("{<8><20><30><41>|<-45>} {<1.5><2><3><4>}", strict=True)
    []
    >>> parse_boxes("{<8><20><30><41>|<-45>}")
    [[8.0, 20.0, 30.0, 41.0, -45.0]]
    """
    rx = BOX_RE if strict else BOX_RE_ANY
    return [[float(g) if g is not None else 0.0 for g in m.groups()] for m in rx.finditer(text)]


# -- Qwen2.5-VL native boxes --------------------------------------------------------------------
def smart_resize(
    height: ArrayLike,
    width: ArrayLike,
    *,
    factor: int = 28,
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(height, width)`` after the Qwen2-VL / Qwen2.5-VL image processor's resize (numpy).

    Both sides become multiples of ``factor`` (rounded, half to even as Python's ``round``),
    then the image is scaled down (floor) if above ``max_pixels`` or up (ceil) if below
    ``min_pixels``, keeping the aspect ratio (transformers ``smart_resize``).

    Examples
    --------
    >>> [int(v) for v in smart_resize(1000, 2000)]
    [700, 1400]
    >>> [int(v) for v in smart_resize(48, 48)]
    [56, 56]
    >>> [int(v) for v in smart_resize(800, 800)]
    [812, 812]
    """
    h = np.asarray(height, dtype=np.float64)
    w = np.asarray(width, dtype=np.float64)
    if np.any(np.maximum(h, w) / np.minimum(h, w) > 200):
        raise ValueError("smart_resize: absolute aspect ratio must be smaller than 200")
    hb = np.round(h / factor) * factor
    wb = np.round(w / factor) * factor
    big = hb * wb > max_pixels
    small = ~big & (hb * wb < min_pixels)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta_d = np.sqrt(h * w / max_pixels)
        beta_u = np.sqrt(min_pixels / (h * w))
        hb = np.where(big, np.maximum(factor, np.floor(h / beta_d / factor) * factor), hb)
        wb = np.where(big, np.maximum(factor, np.floor(w / beta_d / factor) * factor), wb)
        hb = np.where(small, np.ceil(h * beta_u / factor) * factor, hb)
        wb = np.where(small, np.ceil(w * beta_u / factor) * factor, wb)
    return hb.astype(np.int64), wb.astype(np.int64)


def boxes_to_qwen(boxes: ArrayLike, size: Sequence[float], resized: Sequence[float]) -> NDArray[np.int64]:
    """Grid boxes → Qwen ``bbox_2d`` ``(n, 4)``: integer pixels of the resized image (axis-aligned hull).

    Examples
    --------
    >>> boxes_to_qwen([[10, 20, 30, 40, 0]], size=(400, 200), resized=(392, 196)).tolist()
    [[39, 39, 118, 78]]
    """
    c = box_corners(boxes, size)
    sx, sy = float(resized[0]) / float(size[0]), float(resized[1]) / float(size[1])
    hull = np.stack([c[:, :, 0].min(1) * sx, c[:, :, 1].min(1) * sy, c[:, :, 0].max(1) * sx, c[:, :, 1].max(1) * sy], 1)
    return np.round(hull).astype(np.int64).reshape(-1, 4)


def qwen_to_boxes(bbox_2d: ArrayLike, resized: Sequence[float]) -> NDArray[np.float64]:
    """Qwen ``bbox_2d`` pixels of the resized image → grid boxes ``(n, 5)`` with ``θ = 0``.

    Examples
    --------
    >>> qwen_to_boxes([[0, 0, 196, 49]], resized=(392, 196)).tolist()
    [[0.0, 0.0, 50.0, 25.0, 0.0]]
    """
    p = np.asarray(bbox_2d, dtype=np.float64).reshape(-1, 4)
    W, H = float(resized[0]), float(resized[1])
    out = np.zeros((len(p), 5))
    out[:, 0], out[:, 2] = p[:, 0] * 100.0 / W, p[:, 2] * 100.0 / W
    out[:, 1], out[:, 3] = p[:, 1] * 100.0 / H, p[:, 3] * 100.0 / H
    return out


def format_qwen(bbox_2d: ArrayLike, label: str | Sequence[str]) -> str:
    """Qwen2.5-VL's grounding JSON for pixel boxes ``(n, 4)``.

    Examples
    --------
    >>> format_qwen([[1, 2, 3, 4]], "ship")
    '[{"bbox_2d": [1, 2, 3, 4], "label": "ship"}]'
    """
    p = np.asarray(bbox_2d, dtype=np.int64).reshape(-1, 4)
    labels = [label] * len(p) if isinstance(label, str) else list(label)
    return json.dumps([{"bbox_2d": [int(v) for v in b], "label": lab} for b, lab in zip(p, labels)])


_QNUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_QWEN_BOX = re.compile(r'"bbox_2d"\s*:\s*\[' + _QNUM + "," + _QNUM + "," + _QNUM + "," + _QNUM + r"\]")
_BARE_BOX = re.compile(r"\[" + _QNUM + "," + _QNUM + "," + _QNUM + "," + _QNUM + r"\]")


def parse_qwen(text: str) -> list[list[float]]:
    """``bbox_2d`` lists of a Qwen-style answer (JSON, fenced or not); else bare ``[x1, y1, x2, y2]``.

    The bare-list fallback is VLM-R1's REC answer pattern.

    Examples
    --------
    >>> parse_qwen('```json\\n[{"bbox_2d": [10, 20, 30, 40], "label": "ship"}]\\n```')
    [[10.0, 20.0, 30.0, 40.0]]
    >>> parse_qwen("the ship is at [1, 2, 3, 4]"), parse_qwen("{<1><2><3><4>|<0>}")
    ([[1.0, 2.0, 3.0, 4.0]], [])
    """
    found = _QWEN_BOX.findall(text) or _BARE_BOX.findall(text)
    return [[float(v) for v in m] for m in found]


def answer_boxes(answer: str, solution: dict[str, Any]) -> list[list[float]] | None:
    """Grid boxes of an answer, in the row's ``box_format`` first, then the other form.

    ``None`` when the answer holds no readable box (unparsed); boxes with ``x1 ≥ x2`` or
    ``y1 ≥ y2`` are dropped. A Qwen answer is rescaled with the solution's ``resized`` (else
    :func:`smart_resize` of its ``size``); without either it cannot be read.

    Examples
    --------
    >>> sol = {"boxes": [[0, 0, 50, 25, 0]], "size": [400, 200], "resized": [392, 196]}
    >>> answer_boxes('[{"bbox_2d": [0, 0, 196, 49], "label": "x"}]', sol)
    [[0.0, 0.0, 50.0, 25.0, 0.0]]
    >>> answer_boxes("{<0><0><50><25>|<0>}", sol), answer_boxes("nothing", sol)
    ([[0.0, 0.0, 50.0, 25.0, 0.0]], None)
    """
    fmt = solution.get("box_format", "geochat")
    order = ("qwen", "geochat") if fmt == "qwen" else ("geochat", "qwen")
    for f in order:
        if f == "geochat":
            got = parse_boxes(answer, strict=True)
        else:
            px = parse_qwen(answer)
            if not px:
                continue
            resized = solution.get("resized")
            if resized is None and solution.get("size"):
                w, h = solution["size"]
                rh, rw = smart_resize(h, w)
                resized = (int(rw), int(rh))
            if resized is None:
                continue
            got = qwen_to_boxes(px, resized).tolist()
        if got:
            return [b for b in got if b[0] < b[2] and b[1] < b[3]]
    return None


# -- boxes as the benchmarks' scorers read them (eval) ---------------------------------------------
_GEOCHAT_INT = re.compile(r"<(\d+)>")


def split_geochat_boxes(text: str) -> list[list[float]]:
    r"""GeoChat boxes as TEOChat's GeoChat-bench scorer reads them.

    ``ermongroup/TEOChat`` ``videollava/eval/eval_geochat_referring.py`` (commit 08c6eb3,
    ``convert_geochat_string``; the text is cut from the first ``{`` to the last ``}`` first):
    strip the outer braces, split on ``}{`` only, read each piece's ``<(\d+)>`` integers and
    keep the pieces with exactly five (``x1 y1 x2 y2 θ``). A box without ``|<θ>`` and boxes
    separated by a space (one piece of ten numbers) are therefore dropped. Corners are kept
    as written (swapped corners still make the same rectangle).

    Examples
    --------
    >>> split_geochat_boxes("{<1><2><3><4>|<5>}{<6><7><8><9>|<0>}")
    [[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 0.0]]
    >>> split_geochat_boxes("{<1><2><3><4>|<5>} {<6><7><8><9>|<0>}"), split_geochat_boxes("{<1><2><3><4>}")
    ([], [])
    """
    i, j = text.find("{"), text.rfind("}")
    if i < 0 or j < 0:
        return []
    out = []
    for piece in text[i : j + 1].strip("{}").split("}{"):
        v = _GEOCHAT_INT.findall(piece)
        if len(v) == 5:
            out.append([float(x) for x in v])
    return out


_BRACKET = re.compile(r"\[\s*(\d+(?:,\s*\d+)*)\s*\]")


def parse_bracket_boxes(text: str) -> list[list[float]]:
    """Bracket boxes ``[[x1, y1, x2, y2, θ]]`` (EarthDial / InternVL) or ``[[x1, y1, x2, y2]]`` (θ = 0).

    EarthDial's ``parse_bboxes`` (``hiyamdebary/EarthDial``
    ``src/earthdial/eval/rs_detection/eval.py``): ``][`` gets a comma, every bracket list of
    whole numbers is a box; it rotates only five-number boxes (others raise and are skipped
    there). Four numbers are TEOChat's own answer form (``geochat_bench.py``: ``[[x1, y1, x2,
    y2]]``, horizontal), read with θ = 0. Other lengths are dropped.

    Examples
    --------
    >>> parse_bracket_boxes("[[10, 20, 30, 40, 15]][[1, 2, 3, 4]]")
    [[10.0, 20.0, 30.0, 40.0, 15.0], [1.0, 2.0, 3.0, 4.0, 0.0]]
    """
    t = text.replace("][", "], [").replace("]], [[", "], [")
    out = []
    for m in _BRACKET.findall(t):
        v = [float(x) for x in m.split(",")]
        if len(v) == 5:
            out.append(v)
        elif len(v) == 4:
            out.append(v + [0.0])
    return out


_QWEN2_BOX = re.compile(
    r"<\|box_start\|>\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*,\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*<\|box_end\|>"
)


def parse_qwen2_boxes(text: str) -> list[list[float]]:
    """Qwen2-VL grounding ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on its 0–1000 grid → 0–100 grid.

    Qwen2-VL writes boxes normalised to 0–1000 whatever the image size (Qwen2-VL model card /
    ``QwenLM/Qwen2-VL`` README, "Grounding"); geodata's grid is 0–100.

    Examples
    --------
    >>> parse_qwen2_boxes("<|object_ref_start|>ship<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|>")
    [[10.0, 20.0, 30.0, 40.0, 0.0]]
    """
    return [[float(v) / 10.0 for v in m] + [0.0] for m in _QWEN2_BOX.findall(text)]


def eval_boxes(answer: str, solution: dict[str, Any], protocol: str = "geochat") -> list[list[float]] | None:
    """The boxes of an answer as the benchmark's scorer reads them (``None``: no box form found).

    * ``geochat`` / ``synonyms``: GeoChat braces split as TEOChat does
      (:func:`split_geochat_boxes`); else bracket lists (TEOChat's own four-number answers,
      :func:`parse_bracket_boxes`);
    * ``earthdial``: bracket lists first (EarthDial's parser reads nothing else), then braces;

    Qwen2.5-VL ``bbox_2d`` JSON (rescaled as in :func:`answer_boxes`) and Qwen2-VL
    ``<|box_start|>`` boxes are read first; a bare ``[x1, y1, x2, y2]`` on a ``qwen`` row is
    VLM-R1's pixel box. ``[]``: GeoChat-form boxes were written but none is usable by the
    scorer (e.g. space-separated). Swapped corners are put in order (TEOChat and EarthDial build the
    polygon from the corners as written, which is the same rectangle); a zero-area box is
    dropped.

    Examples
    --------
    >>> eval_boxes("{<30><40><10><20>|<0>}", {})
    [[10.0, 20.0, 30.0, 40.0, 0.0]]
    >>> eval_boxes("[[1, 2, 3, 4, 5]]", {}, "earthdial"), eval_boxes("none", {})
    ([[1.0, 2.0, 3.0, 4.0, 5.0]], None)
    """
    got: list[list[float]] | None = None
    if _QWEN_BOX.search(answer):  # Qwen2.5-VL JSON: pixels of the resized image
        got = answer_boxes(answer, {**solution, "box_format": "qwen"})
    elif _QWEN2_BOX.search(answer):
        got = parse_qwen2_boxes(answer)
    else:
        readers = [split_geochat_boxes, parse_bracket_boxes]
        if protocol == "earthdial":
            readers.reverse()
        for fn in readers:
            b = fn(answer)
            if b:
                got = b
                break
        if got and solution.get("box_format") == "qwen" and all(v[4] == 0 for v in got) and _BARE_BOX.search(answer):
            got = answer_boxes(answer, solution)  # a bare [x1, y1, x2, y2] on a qwen row: VLM-R1's pixels
        if got is None and BOX_RE_ANY.search(answer):
            got = []  # GeoChat-form boxes the scorer drops (no θ, space-separated, signed)
    if got is None:
        return None
    out = []
    for b in got:
        x1, x2 = sorted((b[0], b[2]))
        y1, y2 = sorted((b[1], b[3]))
        if x1 < x2 and y1 < y2:
            out.append([x1, y1, x2, y2, b[4]])
    return out


# -- answers ------------------------------------------------------------------------------------
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)


def _text(c: Any) -> str:
    """:func:`geodata.schema.messages_text`, imported on use (contracts load no polars)."""
    from ...schema import messages_text

    return messages_text(c)


def extract_answer(completion: Any) -> str:
    """The text of the last ``<answer>`` block, else the whole completion (stripped).

    Examples
    --------
    >>> extract_answer("<think>hm</think><answer> forest </answer>")
    'forest'
    >>> extract_answer("forest")
    'forest'
    """
    text = _text(completion)
    found = _ANSWER.findall(text)
    return (found[-1] if found else text).strip()


_LEAD = re.compile(r"^(the answer is|answer:|it is|this is|the image shows|the scene is)\s+", re.I)
_ARTICLE = re.compile(r"^(a|an|the)\s+", re.I)


def label_key(text: str) -> str:
    """Comparison key of a class answer: lead-in and article dropped, synonyms to the canonical class.

    Examples
    --------
    >>> label_key("The answer is a Baseball diamond."), label_key("harbour")
    ('baseballfield', 'harbor')
    """
    t = _LEAD.sub("", text.strip()).strip(" .!\"'")
    t = _ARTICLE.sub("", t)
    canon = canonical_class(t)
    return class_key(canon if canon else t)


def label_set(text: str) -> set[str]:
    """Label keys of a comma / ``and`` separated list (``none`` is the empty set).

    Examples
    --------
    >>> sorted(label_set("plane, ship and harbour"))
    ['airplane', 'harbor', 'ship']
    """
    parts = re.split(r",|;|\n|\band\b", text)
    return {k for k in (label_key(p) for p in parts) if k and k != "none"}


_YES = {"yes", "true", "changed", "change"}
_NO = {"no", "false", "unchanged", "none"}


def yes_no(text: str) -> bool | None:
    """The first yes / no word of an answer (``None`` without one).

    Examples
    --------
    >>> yes_no("Yes, new buildings."), yes_no("No."), yes_no("maybe")
    (True, False, None)
    """
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in _YES:
            return True
        if w in _NO:
            return False
    return None


_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-cased, ASCII punctuation removed, whitespace collapsed (TEOChat's string cleaner).

    Examples
    --------
    >>> normalize_answer(" Yes. "), normalize_answer("Yes, there is one.")
    ('yes', 'yes there is one')
    """
    return " ".join(str(text).lower().translate(_PUNCT).split())


_NUMRX = r"(\d+(?:\.\d+)?)"
_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
          "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
          "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
          "none": 0, "no": 0}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


def words_number(text: str) -> float | None:
    """The first number written in English words (``"twenty-three"`` → 23), else ``None``.

    Examples
    --------
    >>> words_number("There are twenty-three ships."), words_number("one hundred and five cars")
    (23.0, 105.0)
    >>> words_number("two thousand three hundred"), words_number("many")
    (2300.0, None)
    """
    tok = re.findall(r"[a-z]+", str(text).lower())
    total, cur, seen = 0, 0, False
    for w in tok:
        if w in _WORDS and w not in ("none", "no"):
            cur += _WORDS[w]
            seen = True
        elif w in _SCALES and seen:
            if _SCALES[w] == 100:
                cur = max(cur, 1) * 100
            else:
                total += max(cur, 1) * _SCALES[w]
                cur = 0
        elif w == "and" and seen:
            continue
        elif seen:
            break
    return float(total + cur) if seen else None


def parse_numeric(text: str) -> tuple[float, float] | None:
    """An answer as a closed interval ``(lo, hi)``; ``None`` when it holds no number.

    Examples
    --------
    >>> parse_numeric("12"), parse_numeric("1,234m2"), parse_numeric("between 11 and 100")
    ((12.0, 12.0), (1234.0, 1234.0), (11.0, 100.0))
    >>> parse_numeric("more than 1000"), parse_numeric("yes")
    ((1000.0, inf), None)
    """
    t = str(text).lower().replace(",", "")
    m = re.search(rf"between\s+{_NUMRX}\s*(?:m2)?\s+and\s+{_NUMRX}", t)
    if m:
        return float(m.group(1)), float(m.group(2))
    m = re.search(rf"(?:more|greater) than\s+{_NUMRX}", t)
    if m:
        return float(m.group(1)), math.inf
    m = re.search(rf"(?:less|fewer) than\s+{_NUMRX}", t)
    if m:
        return 0.0, float(m.group(1))
    m = re.search(_NUMRX, t)
    if m:
        v = float(m.group(1))
        return v, v
    tok = re.findall(r"[a-z]+", t)
    w = words_number(t)
    if w is not None:
        return w, w
    if any(x == "none" for x in tok):
        return 0.0, 0.0
    if len(tok) == 1 and tok[0] == "no":
        return 0.0, 0.0
    return None


def rsvqa_bin(value: float, edges: Sequence[float] = RSVQA_BINS) -> int:
    """RSVQA bin of a count or area: 0 → 0, 1–10 → 1, 11–100 → 2, 101–1000 → 3, > 1000 → 4.

    Examples
    --------
    >>> [rsvqa_bin(v) for v in (0, 1, 10, 11, 100, 101, 1000, 1001)]
    [0, 1, 1, 2, 2, 3, 3, 4]
    """
    return int(np.searchsorted(np.asarray(edges, dtype=float), float(value), side="left"))


def _interval_bin(iv: tuple[float, float], edges: Sequence[float]) -> int:
    lo, hi = iv
    if lo == hi:
        return rsvqa_bin(lo, edges)
    # a binned answer ("between 11 and 100", "more than 1000"): its upper end, or just above its lower end
    return rsvqa_bin(hi, edges) if math.isfinite(hi) else rsvqa_bin(lo + 1e-9, edges)


def numeric_match(
    pred: str,
    gold: str,
    *,
    mode: str = "bins",
    edges: Sequence[float] = RSVQA_BINS,
    rel_tol: float = 0.1,
    abs_tol: float = 0.5,
) -> bool | None:
    """Whether a count/area answer matches the gold; ``None`` when ``pred`` holds no number.

    ``mode="bins"`` (default, RSVQA): same bin, a binned answer (``between 11 and 100``,
    ``more than 1000 m2``) standing for its bin on either side. ``"tolerance"``: within
    ``max(abs_tol, rel_tol·gold)``; ``"exact"``: equal numbers (a range gold accepts a number
    inside it in both).

    Examples
    --------
    >>> numeric_match("15", "12"), numeric_match("15", "12", mode="tolerance"), numeric_match("x", "1")
    (True, False, None)
    >>> numeric_match("42", "between 11 and 100"), numeric_match("0", "between 1 and 10")
    (True, False)
    >>> numeric_match("more than 1000 m2", "1234m2"), numeric_match("between 0m2 and 10m2", "7m2")
    (True, True)
    """
    g, p = parse_numeric(gold), parse_numeric(pred)
    if p is None:
        return None
    if g is None:
        return False
    if mode == "bins":
        return _interval_bin(p, edges) == _interval_bin(g, edges)
    if g[0] != g[1]:  # a range gold
        if p[0] == p[1]:
            return g[0] <= p[0] <= g[1]
        return p == g
    if p[0] != p[1]:
        return False
    if mode == "tolerance":
        return abs(p[0] - g[0]) <= max(abs_tol, rel_tol * abs(g[0]))
    return p[0] == g[0]


# -- GeoChat routing ----------------------------------------------------------------------------
_Q_COUNT = re.compile(r"\bhow many\b|\bnumber of\b(?!.*\b(more|less|greater|smaller|fewer|equal)\b)|\bcount\b", re.I)
_Q_AREA = re.compile(r"\bwhat is the (area|surface)\b|\barea covered\b|\bhow (large|big) is the area\b", re.I)
_Q_COMP = re.compile(r"\b(more|less|greater|smaller|fewer|larger|bigger)\b.*\bthan\b|\bequal to\b|\bas many\b", re.I)
_Q_RURAL = re.compile(r"\brural or (an )?urban\b|\burban or (a )?rural\b", re.I)
_Q_YESNO = re.compile(r"^\s*(is|are|does|do|can|was|were|has|have)\b", re.I)
_Q_CAPTION = re.compile(r"\b(describe|description|caption|summari[sz]e|what does (this|the) image (show|depict))\b", re.I)


def geochat_question_type(question: str) -> str:
    """Route an untagged GeoChat question: ``count``, ``area``, ``comparison``, ``rural_urban``,
    ``presence`` (yes/no), ``caption`` or ``other``, by the question alone.

    Examples
    --------
    >>> geochat_question_type("How many buildings are there in the image?")
    'count'
    >>> geochat_question_type("Is the number of roads greater than the number of houses?")
    'comparison'
    >>> geochat_question_type("Are there any ships?"), geochat_question_type("Describe the image.")
    ('presence', 'caption')
    """
    q = re.sub(r"\[[a-z_]+\]", " ", str(question)).strip()
    if _Q_CAPTION.search(q):
        return "caption"
    if _Q_RURAL.search(q):
        return "rural_urban"
    if _Q_AREA.search(q):
        return "area"
    if _Q_COMP.search(q) and _Q_YESNO.search(q):
        return "comparison"
    if _Q_COUNT.search(q):
        return "count"
    if _Q_YESNO.search(q):
        return "presence"
    return "other"
