"""EO rewards at reference values; rotated IoU against an independent polygon reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from geodata.registry import get_reward, reward_for_task
from geodata.tasks.eo import (
    caption_score,
    detection_score,
    eo_caption,
    eo_change,
    eo_detection,
    eo_format,
    eo_multilabel,
    eo_referring,
    eo_scene_cls,
    eo_vqa,
    parse_numeric,
)
from geodata.sources.eo.common import box_corners, rotated_iou, rotated_iou_matrix


def _sol(task: str, **kw) -> str:
    return json.dumps({"task": task, **kw})


def _inside(px: np.ndarray, py: np.ndarray, box: list[float]) -> np.ndarray:
    """Point-in-rotated-rectangle by rotating the points back (no shapely)."""
    x1, y1, x2, y2, t = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    c, s = math.cos(math.radians(t)), math.sin(math.radians(t))
    dx, dy = px - cx, py - cy
    u, v = dx * c + dy * s, -dx * s + dy * c
    return (np.abs(u) <= (x2 - x1) / 2) & (np.abs(v) <= (y2 - y1) / 2)


def test_rotated_iou_matches_polygon_reference() -> None:
    # analytic: a square and the same square turned by 45° -> IoU = 1/sqrt(2)
    assert rotated_iou([-1, -1, 1, 1, 0], [-1, -1, 1, 1, 45]) == pytest.approx(1 / math.sqrt(2), abs=1e-9)
    # half-overlapping squares, disjoint boxes, identical boxes
    assert rotated_iou([0, 0, 2, 2, 0], [1, 0, 3, 2, 0]) == pytest.approx(1 / 3)
    assert rotated_iou([0, 0, 1, 1, 0], [5, 5, 6, 6, 30]) == 0.0
    assert rotated_iou([3, 4, 9, 7, -33], [3, 4, 9, 7, -33]) == 1.0
    # random rotated boxes against a dense-grid rasterized reference
    rng = np.random.default_rng(0)
    g = np.linspace(0, 100, 801)
    px, py = np.meshgrid(g, g)
    for _ in range(12):
        a, b = [], []
        for out in (a, b):
            cx, cy = rng.uniform(35, 65, 2)
            w, h = rng.uniform(10, 40, 2)
            out.extend([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, float(rng.integers(-90, 90))])
        ia, ib = _inside(px, py, a), _inside(px, py, b)
        ref = (ia & ib).sum() / max((ia | ib).sum(), 1)
        assert rotated_iou(a, b) == pytest.approx(ref, abs=0.01)


def test_box_corners_rotate_clockwise_on_screen() -> None:
    c = box_corners([[0, -1, 10, 1, 90]])[0]  # a horizontal bar turned 90° -> vertical
    assert np.allclose(c[:, 0].min(), 4) and np.allclose(c[:, 1].max(), 5)
    # the top-left corner (-5, -1) relative to the centre goes to (1, -5): clockwise with y down
    assert np.allclose(c[0], [6, -5])


def test_detection_reference_values() -> None:
    g = [[0, 0, 10, 10, 0], [20, 20, 30, 30, 0], [40, 40, 50, 50, 0]]
    assert detection_score(g, g) == 1.0
    assert detection_score([], []) == 1.0
    assert detection_score([], g) == 0.0 and detection_score(g, []) == 0.0
    assert detection_score(g[:2], g) == pytest.approx(2 / 3)                    # one miss
    assert detection_score(g + [[70, 70, 80, 80, 0]], g) == pytest.approx(3 / 4)  # one false alarm
    # a shifted box (IoU 1/3 < 0.5) is a miss plus a false alarm
    assert detection_score([[0, 0, 10, 10, 0], [25, 20, 35, 30, 0]], g[:2]) == pytest.approx(1 / 3)
    # a slightly shifted box (IoU 9/11) matches: mean IoU (1 + 9/11)/2 × 2/2
    assert detection_score([[0, 0, 10, 10, 0], [21, 20, 31, 30, 0]], g[:2]) == pytest.approx((1 + 9 / 11) / 2)
    # greedy: each prediction matches at most one gold box
    assert detection_score([g[0], g[0]], g[:1]) == pytest.approx(1 / 2)
    sol = [_sol("detection", boxes=g)]
    text = "<think>.</think><answer>{<0><0><10><10>|<0>} {<20><20><30><30>|<0>} {<40><40><50><50>|<0>}</answer>"
    assert eo_detection([text], sol).tolist() == [1.0]


def test_referring_iou() -> None:
    sol = [_sol("referring", boxes=[[0, 0, 2, 2, 0]])] * 3
    out = eo_referring(["<answer>{<0><0><2><2>|<0>}</answer>", "<answer>{<1><0><3><2>|<0>}</answer>", "<answer>left</answer>"], sol)
    assert out.tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_classification_rewards() -> None:
    sol = [_sol("scene_cls", label="baseball field")] * 4
    out = eo_scene_cls(["<answer>Baseball diamond.</answer>", "<answer>baseballfield</answer>",
                        "<answer>the baseball_field</answer>", "<answer>tennis court</answer>"], sol)
    assert out.tolist() == [1.0, 1.0, 1.0, 0.0]
    sol = [_sol("multilabel_cls", labels=["airplane", "ship", "harbor"])] * 3
    out = eo_multilabel(["<answer>plane, ship and harbour</answer>", "<answer>ship</answer>", "<answer>vehicle</answer>"], sol)
    assert out.tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert eo_multilabel(["<answer>ship, vehicle</answer>"], sol[:1], metric="jaccard").tolist() == pytest.approx([0.25])


def test_vqa_reward() -> None:
    assert parse_numeric("between 10m2 and 100m2") == (10.0, 100.0)
    sols = [
        _sol("vqa", answer="yes", numeric=False),
        _sol("vqa", answer="rural", numeric=False),
        _sol("vqa", answer="1234m2", numeric=True),
        _sol("vqa", answer="1234m2", numeric=True),
        _sol("vqa", answer="between 11 and 100", numeric=True),
        _sol("vqa", answer="0", numeric=True),
    ]
    comps = ["<answer>Yes.</answer>", "<answer>an urban area</answer>", "<answer>1,300 m2</answer>",
             "<answer>2000m2</answer>", "<answer>42</answer>", "<answer>1</answer>"]
    # RSVQA bins by default (1234 m2 and 2000 m2 are both "more than 1000 m2")
    assert eo_vqa(comps, sols).tolist() == [1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    assert eo_vqa(comps, sols, numeric="tolerance").tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert eo_vqa(comps[3:4], sols[3:4], bins=[0, 10, 100, 1000]).tolist() == [1.0]
    # normalized exact match, no token-Jaccard partial credit
    assert eo_vqa(["<answer>urban area</answer>"], [_sol("vqa", answer="urban")]).tolist() == [0.0]


def test_caption_reward_libraries() -> None:
    from rouge_score import rouge_scorer

    refs = ["many planes are parked next to a long building in an airport", "an airport with a runway"]
    hyp = "some planes are parked near a building"
    rl = max(rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(r, hyp)["rougeL"].fmeasure for r in refs)
    s = caption_score(hyp, refs)
    assert 0.5 * rl < s < 1.0
    assert caption_score("Many planes are parked next to a long building in an airport.", refs) == 1.0
    assert caption_score("a dense forest", refs) < 0.2
    # METEOR stem matching works offline ("parking" ~ "parked")
    assert caption_score("planes parking", ["planes parked"]) > caption_score("planes sitting", ["planes parked"])
    # box tokens of grounded descriptions are ignored
    sol = [_sol("image_caption", references=["two <p>planes</p> {<1><2><3><4>|<0>} near a tank"])]
    assert eo_caption(["<answer>two planes near a tank</answer>"], sol).tolist() == [1.0]


def test_change_and_format() -> None:
    sol = [_sol("change_presence", changed=False)] * 3
    assert eo_change(["<answer>no</answer>", "<answer>Yes</answer>", "<answer>maybe</answer>"], sol).tolist() == [1.0, 0.0, 0.0]
    boxsol = [_sol("detection", boxes=[[1, 2, 3, 4, 0]])]
    good = "<think>a</think>\n<answer>{<1><2><3><4>|<0>}</answer>"
    assert eo_format([good], boxsol).tolist() == [1.0]
    assert eo_format(["<think>a</think><answer>{<3><2><1><4>|<0>}</answer>"], boxsol).tolist() == [0.5]   # x1 > x2
    assert eo_format(["<think>a</think><answer>somewhere</answer>"], boxsol).tolist() == [0.5]           # no box
    assert eo_format(["<answer>x</answer><think>a</think>"], boxsol).tolist() == [0.0]
    assert eo_format(["<think>a</think><answer>x</answer> trailing"], boxsol).tolist() == [0.0]
    assert eo_format(["<think>a</think><answer>forest</answer>"], [_sol("scene_cls", label="forest")]).tolist() == [1.0]


def test_rewards_registered_per_task() -> None:
    expected = {
        "scene_cls": "eo_scene_cls", "multilabel_cls": "eo_multilabel", "detection": "eo_detection",
        "referring": "eo_referring", "region_caption": "eo_caption", "vqa": "eo_vqa",
        "image_caption": "eo_caption", "change_caption": "eo_caption", "change_presence": "eo_change",
    }
    for task, name in expected.items():
        assert reward_for_task(task).name == name
    assert get_reward("eo_format").tasks == ()


def test_geodata_eo_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, geodata.tasks.eo, geodata.steps.eo, geodata.sources.eo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_rsvqa_bins_reference_values() -> None:
    # syvlo/RSVQA VocabEncoder.py and big_vision rsvqa bin_answer: 0 | 1-10 | 11-100 | 101-1000 | >1000
    from geodata.tasks.eo.contract import rsvqa_bin

    assert [rsvqa_bin(v) for v in (0, 1, 10, 11, 100, 101, 1000, 1001, 10**6)] == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    sol = [_sol("vqa", answer="12", numeric=True)] * 5
    comps = ["<answer>15</answer>", "<answer>11</answer>", "<answer>10</answer>", "<answer>101</answer>", "<answer>a few</answer>"]
    assert eo_vqa(comps, sol).tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]          # gold 12, answer 15 now scores 1
    area = [_sol("vqa", answer="1234m2", numeric=True)] * 3
    assert eo_vqa(["<answer>999m2</answer>", "<answer>5000 m2</answer>", "<answer>more than 1000 m2</answer>"], area).tolist() == [0.0, 1.0, 1.0]
    zero = [_sol("vqa", answer="0", numeric=True)] * 2
    assert eo_vqa(["<answer>0</answer>", "<answer>1</answer>"], zero).tolist() == [1.0, 0.0]


def test_yes_no_normalized_exact_match() -> None:
    # TEOChat videollava/eval/classification.py: lower-case, string.punctuation removed, exact match
    sol = [_sol("vqa", answer="yes", numeric=False)] * 4
    comps = ["<answer>YES!</answer>", "<answer> yes </answer>", "<answer>Yes, there is one.</answer>", "<answer>no</answer>"]
    assert eo_vqa(comps, sol).tolist() == [1.0, 1.0, 0.0, 0.0]


def test_geochat_untagged_turns_are_routed_by_the_question() -> None:
    from geodata.steps.eo import geochat_route

    # the example: a count question with a sentence answer is VQA (count), not a caption
    assert geochat_route("How many buildings are there in the image?", "image_caption", "") == ("vqa", "count")
    assert geochat_route("What is the area covered by buildings?", "image_caption", "") == ("vqa", "area")
    assert geochat_route("Is the number of roads greater than the number of houses?", "vqa", "") == ("vqa", "comparison")
    assert geochat_route("Are there any ships in the harbor?", "image_caption", "") == ("vqa", "presence")
    assert geochat_route("Is it a rural or an urban area?", "vqa", "") == ("vqa", "rural_urban")
    assert geochat_route("Describe the image in detail.", "vqa", "") == ("image_caption", None)
    assert geochat_route("[refer] where is the ship?", "referring", "refer") == ("referring", None)
    assert geochat_route("Classify the image. Classes: forest, river", "scene_cls", "") == ("scene_cls", None)
    # scored as a count: the sentence gold "There are 4 buildings" takes 5 (same bin) and refuses 40
    sol = [_sol("vqa", answer="There are 4 buildings present in the image.", qtype="count", numeric=True)] * 2
    assert eo_vqa(["<answer>5</answer>", "<answer>40</answer>"], sol).tolist() == [1.0, 0.0]
