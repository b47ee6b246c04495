"""Boxes (tasks ``detection`` and ``referring``): GeoChat's rotated boxes on a 0–100 grid.

Contract (:mod:`geodata.tasks.eo.contract`): the gold answer writes its boxes
``{<x1><y1><x2><y2>|<θ>}`` joined without a separator (``{…}{…}``, as GeoChat writes them
and as its demo and TEOChat split them), or Qwen2.5-VL ``bbox_2d`` JSON on ``qwen`` rows.

Rewards (training, lenient): every box GeoChat's integer pattern finds counts (θ = 0 when
absent; separators ignored), matched greedily at IoU ≥ ``iou_threshold``.

Scorers (eval, strict, :func:`geodata.tasks.eo.contract.eval_boxes`):

* ``geochat`` (default) — TEOChat's GeoChat-bench scorer (``ermongroup/TEOChat`` commit
  08c6eb3 ``videollava/eval/geochat_bench.py``, ``get_single_image_results_rotated`` and
  ``accuracy0_5``; boxes read by ``eval_geochat_referring.py`` ``convert_geochat_string``):
  boxes split on ``}{``, θ required, rotated clockwise, a pair is a hit when IoU **>** 0.5,
  matched one-to-one by descending IoU; Acc@0.5 = hits / gold boxes. VLM-R1 scores REC the
  same way (``om-ai-lab/VLM-R1`` ``src/eval/test_rec_r1.py``: ``iou(...) > 0.5``).
* ``earthdial`` — ``hiyamdebary/EarthDial`` ``src/earthdial/eval/rs_detection/eval.py``:
  bracket boxes, rotated counter-clockwise (``rect @ R``), a predicted box is a hit when its
  IoU with any gold box is **≥** 0.5; precision = hits / predicted boxes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from ...registry import reward, task
from ..base import ScoreContext, TaskResult, mean, solutions as _solutions
from .contract import answer_boxes, eval_boxes, extract_answer, normalize_answer, rotated_iou_matrix

__all__ = ["detection_score", "eo_detection", "eo_referring", "voc_ap", "match_boxes", "score_referring",
           "score_detection"]


# -- boxes ------------------------------------------------------------------------------------------
def detection_score(
    pred: Sequence[Sequence[float]],
    gold: Sequence[Sequence[float]],
    iou_threshold: float = 0.5,
    size: Sequence[float] | None = None,
) -> float:
    """Greedy one-to-one matching by descending rotated IoU (pairs below the threshold never match).

    Score = mean IoU of the matched pairs × ``matched / (n_gold + n_pred − matched)``: every
    missed gold box and every false alarm lowers the completeness factor. No gold and no
    prediction scores 1; exactly one of them empty scores 0.

    Examples
    --------
    >>> g = [[0, 0, 10, 10, 0], [20, 20, 30, 30, 0]]
    >>> detection_score(g, g)
    1.0
    >>> detection_score(g[:1], g)       # one miss: 1.0 × 1/2
    0.5
    >>> round(detection_score(g + [[50, 50, 60, 60, 0]], g), 4)   # one false alarm: 1.0 × 2/3
    0.6667
    """
    if len(gold) == 0 and len(pred) == 0:
        return 1.0
    if len(gold) == 0 or len(pred) == 0:
        return 0.0
    iou = rotated_iou_matrix(pred, gold, size)
    order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None, kind="stable"), iou.shape))[0]
    used_p: set[int] = set()
    used_g: set[int] = set()
    matched: list[float] = []
    for p, g in order:
        v = iou[p, g]
        if v < iou_threshold:
            break
        if p in used_p or g in used_g:
            continue
        used_p.add(int(p))
        used_g.add(int(g))
        matched.append(float(v))
    if not matched:
        return 0.0
    m = len(matched)
    return float(np.mean(matched)) * m / (len(gold) + len(pred) - m)


def _answer_boxes(c: Any, s: dict) -> list[list[float]]:
    return answer_boxes(extract_answer(c), s) or []


@reward("eo_detection", tasks=("detection",))
def eo_detection(completions: Sequence[Any], solutions: Sequence[str], *, iou_threshold: float = 0.5) -> np.ndarray:
    """Rotated-box detection reward (see :func:`detection_score`); ``none`` means no boxes.

    Examples
    --------
    >>> sol = ['{"task": "detection", "boxes": [[0, 0, 10, 10, 0]]}']
    >>> eo_detection(["<answer>{<0><0><10><10>|<0>}</answer>"], sol).tolist()
    [1.0]
    """
    sols = _solutions(solutions)
    return np.array(
        [detection_score(_answer_boxes(c, s), s["boxes"], iou_threshold, s.get("size")) for c, s in zip(completions, sols)],
        dtype=float,
    )


@reward("eo_referring", tasks=("referring",))
def eo_referring(completions: Sequence[Any], solutions: Sequence[str], *, iou_threshold: float = 0.5) -> np.ndarray:
    """Rotated IoU of the first predicted box with the single gold box.

    With several gold boxes (GeoChat ``[refer]`` of a group) the detection score at
    ``iou_threshold`` is used instead.

    Examples
    --------
    >>> sol = ['{"task": "referring", "boxes": [[0, 0, 2, 2, 0]]}']
    >>> eo_referring(["<answer>{<1><0><3><2>|<0>}</answer>"], sol).round(4).tolist()
    [0.3333]
    """
    out = np.zeros(len(completions))
    for i, (c, s) in enumerate(zip(completions, _solutions(solutions))):
        pred, gold = _answer_boxes(c, s), s["boxes"]
        if len(gold) == 1:
            out[i] = float(rotated_iou_matrix(pred[:1], gold, s.get("size"))[0, 0]) if pred else 0.0
        else:
            out[i] = detection_score(pred, gold, iou_threshold, s.get("size"))
    return out


def voc_ap(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> float:
    """VOC all-point-interpolated AP; tied scores are one operating point (order-independent).

    Examples
    --------
    >>> voc_ap(np.ones(4), np.array([1, 1, 0, 1]), 6)  # one point: recall 3/6 × precision 3/4
    0.375
    >>> voc_ap(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 2)  # 1·1/2 + (2/3)·1/2
    0.8333333333333333
    """
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    s, t = np.asarray(scores, dtype=float)[order], np.asarray(tp, dtype=float)[order]
    ctp, cfp = np.cumsum(t), np.cumsum(1 - t)
    last = np.r_[s[1:] != s[:-1], True]
    rec, prec = ctp[last] / n_gt, ctp[last] / (ctp[last] + cfp[last])
    mrec, mpre = np.r_[0.0, rec, 1.0], np.r_[0.0, prec, 0.0]
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def _sense(protocol: str) -> str:
    return "ccw" if protocol == "earthdial" else "cw"


def match_boxes(pred: list[list[float]], gold: list[list[float]], size: Any, thr: float = 0.5,
                protocol: str = "geochat") -> np.ndarray:
    """A hit flag per predicted box, by the protocol's rule (see the module docstring).

    ``geochat``: one-to-one by descending IoU, a pair counts when IoU > ``thr`` (TEOChat
    ``get_single_image_results_rotated``). ``earthdial``: a predicted box counts when its IoU
    with any gold box is ≥ ``thr`` (EarthDial ``rs_detection/eval.py``).

    Examples
    --------
    >>> g = [[0, 0, 2, 2, 0]]
    >>> half = [[0, 0, 2, 1, 0]]             # IoU exactly 0.5
    >>> match_boxes(half, g, None).tolist(), match_boxes(half, g, None, protocol="earthdial").tolist()
    ([False], [True])
    """
    hit = np.zeros(len(pred), dtype=bool)
    if not pred or not gold:
        return hit
    iou = rotated_iou_matrix(pred, gold, size, _sense(protocol))
    if protocol == "earthdial":
        return (iou >= thr).any(axis=1)
    order = np.argsort(-iou, axis=None, kind="stable")
    used_g: set[int] = set()
    for k in order:
        p, g = divmod(int(k), iou.shape[1])
        if not iou[p, g] > thr:
            break
        if hit[p] or g in used_g:
            continue
        hit[p] = True
        used_g.add(g)
    return hit


@task("referring", reference="ermongroup/TEOChat videollava/eval/geochat_bench.py (commit 08c6eb3)")
def score_referring(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """Acc@0.5 of referring answers (TEOChat's GeoChat-bench rule; EarthDial's under ``earthdial``).

    ``geochat``: hits (IoU > 0.5, one-to-one) over gold boxes. ``earthdial``: hits (IoU ≥ 0.5
    with any gold box) over predicted boxes. ``mean_iou``: IoU of the first box with its best
    gold box (0 without a box).
    """
    thr = ctx.iou_threshold
    hits, n_gold, n_pred, ious, unparsed = 0, 0, 0, [], 0
    for c, s in zip(comps, sols):
        boxes = eval_boxes(extract_answer(c), s, ctx.protocol)
        gold = s["boxes"]
        n_gold += len(gold)
        if not boxes:
            unparsed += 1  # no box the benchmark's scorer can use
            ious.append(0.0)
            continue
        n_pred += len(boxes)
        hits += int(match_boxes(boxes, gold, s.get("size"), thr, ctx.protocol).sum())
        ious.append(float(rotated_iou_matrix(boxes[:1], gold, s.get("size"), _sense(ctx.protocol)).max()))
    if ctx.protocol == "earthdial":
        acc = hits / n_pred if n_pred else 0.0
    else:
        acc = hits / n_gold if n_gold else 0.0
    return TaskResult(task="referring", n=len(comps), n_unparsed=unparsed,
                      metrics={f"acc@{thr:g}": acc, "mean_iou": mean(ious)})


@task("detection", reference="ermongroup/TEOChat videollava/eval/geochat_bench.py (commit 08c6eb3)")
def score_detection(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """mAP (VOC all-point AP per class), precision and recall, hits by the protocol's rule.

    VLM answers carry no confidence, so all boxes tie: one operating point of the PR curve,
    a class's AP is its recall × precision. "none" (or no) with no box is an answer of no
    boxes, not unparsed.
    """
    thr = ctx.iou_threshold
    per_class: dict[str, list] = defaultdict(lambda: [[], 0])
    unparsed, tp_all, npred_all, ngt_all = 0, 0, 0, 0
    for c, s, cat in zip(comps, sols, ctx.column("category", len(comps))):
        ans = extract_answer(c)
        boxes = eval_boxes(ans, s, ctx.protocol)
        if not boxes:
            unparsed += normalize_answer(ans) not in ("none", "no", "there are none")
            boxes = []
        tp = match_boxes(boxes, s["boxes"], s.get("size"), thr, ctx.protocol)
        cls = per_class[str(cat or s.get("category") or "object")]
        cls[0].extend(tp.tolist())
        cls[1] += len(s["boxes"])
        tp_all, npred_all, ngt_all = tp_all + int(tp.sum()), npred_all + len(boxes), ngt_all + len(s["boxes"])
    aps = {k: voc_ap(np.ones(len(v[0])), np.array(v[0], dtype=float), v[1]) for k, v in sorted(per_class.items())}
    valid = [v for v in aps.values() if not math.isnan(v)]
    per = {k: {"ap": v} for k, v in aps.items() if not math.isnan(v)}
    return TaskResult(task="detection", n=len(comps), n_unparsed=unparsed, per_type=per,
                      metrics={f"map@{thr:g}": mean(valid),
                               "precision": tp_all / npred_all if npred_all else 0.0,
                               "recall": min(tp_all, ngt_all) / ngt_all if ngt_all else 0.0})
