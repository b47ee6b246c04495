"""Disaster assessment on xBD pre / post pairs: ``damage_cls`` (a boxed building's damage level,
region classification) and ``damage_referring`` (box every building of a damage level).
xBD change captions (RSCC) are ``change_caption`` rows, scored by ``eo_caption`` and the caption
metrics. Contract: :mod:`geodata.tasks.eo.series`.

Rewards (the gold answer scores 1):

* ``eo_damage_cls`` — 1 when the answer names the gold level (``Minor damage.`` reads as
  ``minor-damage``), else 0.
* ``eo_damage_referring`` — :func:`geodata.tasks.eo.boxes.detection_score` of the answer's boxes
  (GeoChat braces or Qwen JSON, :func:`geodata.tasks.eo.contract.answer_boxes`) against the gold boxes.

Scorers (``geodata eval``):

* :func:`score_damage_cls` — ``earthdial_recall``: EarthDial's xBD region classification
  (``hiyamdebary/EarthDial``, ``src/earthdial/eval/rs_change_detection/eval_classification.py``,
  ``evaluate_f1`` on ``xBD_reg_cls_testset_*``), averaged; ``teochat_inv_w_f1``: TEOChat's
  ``xbd_dmg_cls`` score (``ermongroup/TEOChat``, ``videollava/eval/detection.py``,
  ``change_detection_classification(...)["inv_w_f1"]``): each building's polygon is rasterised on a
  256 × 256 mask (PIL ``ImageDraw.polygon``, outline and fill, TEOChat's default ``height`` /
  ``width``) and its pixels count as true / false positives and false negatives of the predicted
  and gold class; per-class F1, averaged with weights 1 / prevalence (pixel share of the gold
  class). Responses are cleaned TEOChat's way and must equal one of ``no damage``, ``minor
  damage``, ``major damage``, ``destroyed``; a response that does not adds nothing but its gold
  pixels' count, as there (``fn = gt_msk.sum()`` of an empty mask). Our polygons are in pixels
  of the post image and scaled to the 256 grid; the coordinate frame of TEOChatlas' own polygons
  is not verified. ``accuracy``: the level read by :func:`damage_key` equals the gold level.
* :func:`score_damage_referring` — ``precision@0.25``: EarthDial's xBD referred detection
  (``src/earthdial/eval/rs_change_detection/eval_detection.py``): every predicted box's θ is set
  to 0, a prediction is correct when its IoU with any gold box is ≥ 0.25 (a gold box may match
  several predictions), precision = correct / predicted boxes over the whole set. Boxes are read
  in EarthDial's bracket form ``[[x1, y1, x2, y2, θ]]`` (its ``parse_bboxes``) and, unlike
  EarthDial, also in geodata's GeoChat / Qwen forms (EarthDial's parser reads no brace box: a
  GeoChat-form answer scores no prediction there). IoU on the 0–100 grid, as EarthDial computes
  it; with θ 0 on both sides it equals the IoU in pixels.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from ...registry import reward, task
from ..base import ScoreContext, TaskResult, solutions as _solutions
from .boxes import detection_score
from .contract import answer_boxes, extract_answer, rotated_iou_matrix
from .series import XBD_DAMAGE, damage_key, earthdial_boxes, earthdial_recall, teochat_clean

__all__ = ["eo_damage_cls", "eo_damage_referring", "score_damage_cls", "score_damage_referring",
           "teochat_damage_f1", "earthdial_referred_precision"]

#: TEOChat's xBD damage classes (``detection_metrics``), in xBD's order
TEOCHAT_DAMAGE = ("no damage", "minor damage", "major damage", "destroyed")


@reward("eo_damage_cls", tasks=("damage_cls",))
def eo_damage_cls(completions: Sequence[Any], solutions: Sequence[str]) -> np.ndarray:
    """1 when the answer names the building's xBD damage level.

    Examples
    --------
    >>> sol = ['{"task": "damage_cls", "label": "minor-damage"}'] * 3
    >>> eo_damage_cls(["<answer>minor-damage</answer>", "<answer>Minor damage.</answer>", "<answer>destroyed</answer>"], sol).tolist()
    [1.0, 1.0, 0.0]
    """
    return np.array([float(damage_key(extract_answer(c)) == s["label"]) for c, s in zip(completions, _solutions(solutions))])


@reward("eo_damage_referring", tasks=("damage_referring",))
def eo_damage_referring(completions: Sequence[Any], solutions: Sequence[str], *, iou_threshold: float = 0.5) -> np.ndarray:
    """Detection score (:func:`geodata.tasks.eo.boxes.detection_score`) of the boxed damaged buildings.

    Examples
    --------
    >>> sol = ['{"task": "damage_referring", "boxes": [[10, 10, 20, 20, 0]], "size": [1024, 1024]}']
    >>> eo_damage_referring(["<answer>{<10><10><20><20>|<0>}</answer>"], sol).tolist()
    [1.0]
    """
    sols = _solutions(solutions)
    return np.array([detection_score(answer_boxes(extract_answer(c), s) or [], s["boxes"], iou_threshold, s.get("size"))
                     for c, s in zip(completions, sols)], dtype=float)


def _mask(wkt_text: str, size: Sequence[float], grid: int = 256) -> np.ndarray:
    """TEOChat's ``create_mask`` of one polygon scaled from pixels of ``size`` to ``grid`` × ``grid``."""
    from PIL import Image, ImageDraw
    from shapely import affinity, wkt

    poly = affinity.scale(wkt.loads(wkt_text), grid / float(size[0]), grid / float(size[1]), origin=(0, 0))
    polys = list(getattr(poly, "geoms", [poly]))
    img = Image.new("L", (grid, grid), 0)
    draw = ImageDraw.Draw(img)
    for p in polys:
        draw.polygon(list(p.exterior.coords), outline=1, fill=1)
    return np.array(img)


def teochat_damage_f1(responses: Sequence[str], golds: Sequence[str], masks: Sequence[np.ndarray]) -> dict[str, float]:
    """TEOChat's ``change_detection_classification`` (``f1``, ``w_f1``, ``inv_w_f1``) on cleaned
    ``responses``, TEOChat class names ``golds`` and each building's 0/1 ``masks``."""
    classes = list(TEOCHAT_DAMAGE)
    stats: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0, "count": 0})
    for resp, gold, msk in zip(responses, golds, masks):
        pred = teochat_clean(resp)
        gold = teochat_clean(gold)
        if gold in ("unclassified",):
            continue
        area = int((msk > 0).sum())
        if pred not in classes:
            fn = 0  # TEOChat: fn = gt_msk.sum() of a mask nothing was drawn into
        else:
            tp = area if pred == gold else 0
            stats[pred]["tp"] += tp
            stats[pred]["fp"] += area - tp
            fn = area - tp
        stats[gold]["fn"] += fn
        stats[gold]["count"] += area
    total = sum(s["count"] for s in stats.values())
    f1s, w, inv, inv_w = [], 0.0, 0.0, 0.0
    for c in classes:
        s = stats[c]
        prec = s["tp"] / (s["tp"] + s["fp"]) if s["tp"] + s["fp"] else 0.0
        rec = s["tp"] / (s["tp"] + s["fn"]) if s["tp"] + s["fn"] else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1s.append(f1)
        prev = s["count"] / total if total else 0.0
        w += f1 * prev
        if prev:
            inv += f1 / prev
            inv_w += 1 / prev
    return {"f1": float(np.mean(f1s)), "w_f1": w, "inv_w_f1": inv / inv_w if inv_w else 0.0}


@task("damage_cls", reference="hiyamdebary/EarthDial src/earthdial/eval/rs_change_detection/eval_classification.py; ermongroup/TEOChat videollava/eval/detection.py")
def score_damage_cls(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """EarthDial's recall, TEOChat's inverse-prevalence weighted F1 and accuracy (module docstring)."""
    answers = [extract_answer(c) for c in comps]
    n = len(comps)
    rec = [earthdial_recall(s["label"], a) for a, s in zip(answers, sols)]
    acc = [damage_key(a) == s["label"] for a, s in zip(answers, sols)]
    golds = [TEOCHAT_DAMAGE[XBD_DAMAGE.index(s["label"])] for s in sols]
    masks = [_mask(s["polygon"], s["size"]) for s in sols]
    teo = teochat_damage_f1(answers, golds, masks)
    return TaskResult(task="damage_cls", n=n, n_unparsed=sum(damage_key(a) is None for a in answers),
                      metrics={"accuracy": float(np.mean(acc)) if n else 0.0,
                               "earthdial_recall": float(np.mean(rec)) if n else 0.0,
                               "teochat_inv_w_f1": teo["inv_w_f1"] if n else None})


def _pred_boxes(answer: str, sol: dict) -> list[list[float]] | None:
    got = answer_boxes(answer, sol)
    if got:
        return got
    ed = [b for b in earthdial_boxes(answer) if len(b) in (4, 5)]
    return [[float(v) for v in b[:4]] + [0.0] for b in ed] or None


def earthdial_referred_precision(preds: Sequence[Sequence[Sequence[float]]], golds: Sequence[Sequence[Sequence[float]]],
                                 threshold: float = 0.25) -> tuple[int, int]:
    """(correct, predicted) boxes under EarthDial's rule: prediction θ set to 0, IoU ≥ ``threshold``
    with any gold box counts once."""
    correct = total = 0
    for pred, gold in zip(preds, golds):
        total += len(pred)
        if not len(pred) or not len(gold):
            continue
        p = np.asarray(pred, dtype=float).reshape(-1, 5).copy()
        p[:, 4] = 0.0
        iou = rotated_iou_matrix(p, np.asarray(gold, dtype=float).reshape(-1, 5), None)
        correct += int((iou >= threshold).any(axis=1).sum())
    return correct, total


@task("damage_referring", reference="hiyamdebary/EarthDial src/earthdial/eval/rs_change_detection/eval_detection.py")
def score_damage_referring(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """EarthDial's precision@0.25 of the predicted boxes over the whole set (module docstring)."""
    preds = [_pred_boxes(extract_answer(c), s) for c, s in zip(comps, sols)]
    correct, total = earthdial_referred_precision([p or [] for p in preds], [s["boxes"] for s in sols])
    return TaskResult(task="damage_referring", n=len(comps), n_unparsed=sum(p is None for p in preds),
                      metrics={"precision@0.25": correct / total if total else None,
                               "predicted_boxes": float(total)})

