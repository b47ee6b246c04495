"""The EO box convention: pixel-space angles rendered back onto pixels, GeoChat's integer parser, Qwen boxes."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import shapely
from PIL import Image, ImageDraw

from geodata.tasks.eo.contract import (
    GEOCHAT_INT_RE,
    answer_boxes,
    box_corners,
    boxes_to_qwen,
    canonical_boxes,
    format_box,
    parse_boxes,
    qwen_to_boxes,
    quads_to_boxes,
    rotated_iou,
    smart_resize,
)
from geodata.tasks.eo import eo_detection, eo_format, eo_referring


def _mask(poly: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    img = Image.new("1", size, 0)
    ImageDraw.Draw(img).polygon([tuple(map(float, p)) for p in poly], fill=1)
    return np.asarray(img, dtype=bool)


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _rect(cx: float, cy: float, w: float, h: float, deg: float) -> np.ndarray:
    """Corners of a rectangle turned ``deg`` clockwise on screen (y down), in pixels."""
    t = math.radians(deg)
    return np.array([[cx + dx * math.cos(t) - dy * math.sin(t), cy + dx * math.sin(t) + dy * math.cos(t)]
                     for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))])


@pytest.mark.parametrize("size", [(640, 360), (300, 900)])
def test_converted_boxes_render_back_onto_their_polygons(size) -> None:
    rng = np.random.default_rng(12)
    W, H = size
    checked = {"iou": 0, "flip": 0}
    for _ in range(25):
        w, h = rng.uniform(60, 200), rng.uniform(20, 60)
        deg = float(rng.uniform(-180, 180))
        quad = _rect(rng.uniform(0.3, 0.7) * W, rng.uniform(0.3, 0.7) * H, w, h, deg)
        box = quads_to_boxes([quad.ravel()], W, H)[0]
        text = format_box(box)
        nums = [int(v) for v in GEOCHAT_INT_RE.findall(text)]
        assert len(nums) == 5 and 0 <= nums[4] < 90  # GeoChat's integer regex reads all five
        back = box_corners([nums], size)[0]
        # quantisation tolerance: half a grid unit per coordinate, half a degree of turn, a raster pixel
        tol = math.hypot(0.5 * W / 100, 0.5 * H / 100) + math.radians(0.5) * math.hypot(w, h) / 2 + 1.0
        dist = shapely.hausdorff_distance(shapely.Polygon(back), shapely.Polygon(quad))
        assert dist <= tol, (quad.round(1).tolist(), nums, dist, tol)
        iou = _mask_iou(_mask(back, size), _mask(quad, size))
        if min(w, h) >= 4 * max(W, H) / 100:  # large against the grid unit
            assert iou > 0.85, (quad.round(1).tolist(), nums, iou)
            checked["iou"] += 1
        # the opposite angle sign (counter-clockwise rendering) does not reproduce elongated diagonal objects
        if w > 2 * h and 25 < nums[4] < 65:
            flipped = box_corners([[*nums[:4], -nums[4]]], size)[0]
            assert _mask_iou(_mask(flipped, size), _mask(quad, size)) < 0.6
            checked["flip"] += 1
    assert checked["iou"] >= 5 and checked["flip"] >= 2, checked


def test_pixel_angle_on_a_non_square_image() -> None:
    # a 45° ship on a 200 x 100 image: the angle is measured in pixels (45), not on the grid (-34 before)
    quad = _rect(100, 50, 40, 10, 45)
    box = quads_to_boxes([quad.ravel()], 200, 100)[0]
    assert box[4] == 45.0
    assert rotated_iou(box, quads_to_boxes([_rect(100, 50, 40, 10, 45 - 180).ravel()], 200, 100)[0], (200, 100)) == 1.0
    # geometry is compared in pixels: the same box on the grid of a wide image
    assert rotated_iou([40, 40, 60, 60, 30], [40, 40, 60, 60, 30], (400, 100)) == 1.0


def test_canonical_form_of_third_party_boxes() -> None:
    # GeoChat-style negative / decimal angles become the integer form with the same geometry
    src = [8.0, 20.0, 30.0, 41.0, -45.0]
    can = canonical_boxes([src], (48, 48))[0]
    assert min(can) >= 0 and can[4] == 45.0
    assert rotated_iou(src, can, (48, 48)) > 0.9
    assert parse_boxes(format_box(can), strict=True) == [can.tolist()]
    assert parse_boxes("{<8><20><30><41>|<-45>}", strict=True) == []  # what the evaluators cannot read


def test_smart_resize_reference_values() -> None:
    # checked against transformers' qwen2_vl smart_resize (factor 28, 56·56 .. 28·28·1280 pixels)
    cases = {(48, 48): (56, 56), (800, 800): (812, 812), (1000, 2000): (700, 1400), (4000, 4000): (980, 980),
             (600, 600): (588, 588), (150, 200): (140, 196)}
    for (h, w), want in cases.items():
        assert tuple(int(v) for v in smart_resize(h, w)) == want
    assert tuple(int(v) for v in smart_resize(100, 100, min_pixels=200 * 200)) == (224, 224)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 5000)


def test_same_geometry_scores_the_same_in_either_form() -> None:
    size, resized = [560, 280], [560, 280]  # 560 x 280 is already a multiple of 28
    gold = [[10.0, 20.0, 30.0, 40.0, 0.0]]
    geo = json.dumps({"task": "referring", "boxes": gold, "box_format": "geochat", "size": size})
    qwen_px = boxes_to_qwen(gold, size, resized)
    assert qwen_px.tolist() == [[56, 56, 168, 112]]
    qsol = json.dumps({"task": "referring", "boxes": qwen_to_boxes(qwen_px, resized).tolist(), "box_format": "qwen",
                       "size": size, "resized": resized})
    as_geochat = "<think>.</think><answer>{<10><20><30><40>|<0>}</answer>"
    as_qwen = '<think>.</think><answer>[{"bbox_2d": [56, 56, 168, 112], "label": "ship"}]</answer>'
    shifted_g = "<answer>{<15><20><35><40>|<0>}</answer>"
    shifted_q = '<answer>[{"bbox_2d": [84, 56, 196, 112], "label": "ship"}]</answer>'
    for sol in (geo, qsol):
        assert eo_referring([as_geochat, as_qwen], [sol, sol]).tolist() == [1.0, 1.0]
        a, b = eo_referring([shifted_g, shifted_q], [sol, sol]).tolist()
        assert a == pytest.approx(b) == pytest.approx(0.6)  # 84 px overlap of 140 px union
        assert eo_detection([as_qwen], [sol]).tolist() == [1.0]
    # a GeoChat row without `resized` rescales a Qwen answer by smart_resize of its size (VLM-R1 style)
    s = {"boxes": gold, "size": [400, 200]}
    rh, rw = (int(v) for v in smart_resize(200, 400))
    px = boxes_to_qwen(gold, (400, 200), (rw, rh))[0].tolist()
    got = answer_boxes(json.dumps([{"bbox_2d": px, "label": "x"}]), s)
    assert rotated_iou(got[0], gold[0], (400, 200)) > 0.95
    # the format reward wants the row's form readable: JSON on a qwen row, integer braces on a GeoChat row
    assert eo_format([as_qwen], [qsol]).tolist() == [1.0]
    assert eo_format(["<think>.</think><answer>{<10.5><20><30><40>|<0>}</answer>"], [geo]).tolist() == [0.5]


def test_rotated_iou_needs_the_image_aspect() -> None:
    # a 30° box on a 4:1 image: grid-space rotation would be a different shape
    a = [40, 40, 60, 60, 30]
    c = box_corners([a], (400, 100))[0]
    sides = np.linalg.norm(np.roll(c, -1, axis=0) - c, axis=1)
    assert sides[0] == pytest.approx(80) and sides[1] == pytest.approx(20)  # 20 % of 400, 20 % of 100
    assert re.fullmatch(r"\{<\d+><\d+><\d+><\d+>\|<\d+>\}", format_box(canonical_boxes([a], (400, 100))[0]))
