"""Task-aware rewards for the Earth-observation instruction set (GeoVLM-R1 style).

Every reward takes the model completions and the rows' ``solution`` JSON strings and returns
one float in ``[0, 1]`` per completion; the gold completion of every built row scores exactly
1.0 (tested over the whole sample build). The answer is the text of the last
``<answer>…</answer>`` block, or the whole completion when there is none (the structure itself
is scored by :func:`eo_format`).

=================  ===================  ==========================================================
reward             tasks                score
=================  ===================  ==========================================================
eo_format          (any; add it)        1 for ``<think>…</think><answer>…</answer>`` with boxes GeoChat's
                                        parsers read (non-negative integers, θ ≤ 90) or, on a qwen
                                        row, ``bbox_2d`` JSON; 0.5 when the tags are right but a box
                                        is malformed or missing where one is required, else 0
eo_scene_cls       scene_cls            normalized exact match; class synonyms from
                                        ``geodata/data/eo_classes.csv`` count as equal
eo_multilabel      multilabel_cls       F1 (default) or Jaccard of the canonical label sets
eo_detection       detection            greedy IoU matching (rotated IoU ≥ ``iou_threshold``):
                                        mean matched IoU × matched / (gold + predicted − matched)
eo_referring       referring            rotated IoU of the first predicted box with the gold box
                                        (several gold boxes: the detection score)

Boxes are read in the row's convention (``box_format`` of the solution) and in the other one
(a Qwen ``bbox_2d`` answer to a GeoChat row is rescaled, VLM-R1 style); IoU is computed in
pixels of the image (``size``), see :mod:`geodata.contracts.eo`.
eo_vqa             vqa                  count / area by RSVQA bin (0 | 1–10 | 11–100 | 101–1000 |
                                        >1000; or tolerance); other answers by normalized exact
                                        match (lower-case, punctuation removed)
eo_caption         image_caption,       mean of ROUGE-L F (``rouge-score``) and self-normalized
                   region_caption,      METEOR (``nltk``), maximized over the references
                   change_caption
eo_change          change_presence      yes/no match
=================  ===================  ==========================================================

METEOR offline: nltk's ``meteor_score`` needs WordNet for synonym matching, which cannot be
downloaded here; it is given a stand-in with no synonyms, so METEOR reduces to exact + Porter
stem matching (with its fragmentation penalty). Because the penalty keeps even an identical
sentence below 1, each reference's METEOR is divided by that reference's METEOR against
itself (capped at 1): a caption equal to a reference scores exactly 1 — the gold completion is
one of the references, so it scores 1.0.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Literal, Sequence

import numpy as np

from ..contracts.eo import (
    BOX_RE,
    BOX_TASKS,
    RSVQA_BINS,
    answer_boxes,
    extract_answer,
    label_key,
    label_set,
    normalize_answer,
    numeric_match,
    parse_numeric,
    parse_qwen,
    rotated_iou_matrix,
    yes_no,
)
from ..registry import reward
from ..schema import messages_text as _text  # a completion (string or messages) as text

__all__ = [
    "extract_answer",
    "eo_format",
    "eo_scene_cls",
    "eo_multilabel",
    "eo_detection",
    "eo_referring",
    "eo_vqa",
    "eo_caption",
    "eo_change",
    "detection_score",
    "parse_numeric",
    "vqa_correct",
    "caption_score",
]

_FORMAT = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$", re.S)


def _solutions(solutions: Sequence[str]) -> list[dict]:
    return [json.loads(s) if isinstance(s, str) else dict(s) for s in solutions]


# -- format -------------------------------------------------------------------------------------
_BRACE = re.compile(r"\{[^{}]*\}")


@reward("eo_format")
def eo_format(completions: Sequence[Any], solutions: Sequence[str]) -> np.ndarray:
    """Format reward: ``<think>…</think><answer>…</answer>`` and well-formed boxes.

    1.0 when the completion is exactly one think block followed by one answer block, every
    ``{…}`` group in the answer that contains ``<`` is a box GeoChat's parsers read
    (``{<x1><y1><x2><y2>|<θ>}``, non-negative integers, ``x1 < x2``, ``y1 < y2``, ``θ ≤ 90``),
    every ``bbox_2d`` of a qwen row is ordered and non-negative, and (for detection / referring
    rows with gold boxes) the answer holds at least one box of the row's form; 0.5 when only the
    box part fails; 0.0 otherwise.

    Examples
    --------
    >>> sol = ['{"task": "referring", "boxes": [[1, 2, 3, 4, 0]]}'] * 3
    >>> eo_format(["<think>x</think><answer>{<1><2><3><4>|<0>}</answer>",
    ...            "<think>x</think><answer>{<1><2><3>|<0>}</answer>", "{<1><2><3><4>|<0>}"], sol).tolist()
    [1.0, 0.5, 0.0]
    >>> eo_format(["<think>x</think><answer>{<1><2><3><4>|<-30>}</answer>"], sol[:1]).tolist()  # unreadable
    [0.5]
    """
    out = np.zeros(len(completions))
    for i, (c, s) in enumerate(zip(completions, _solutions(solutions))):
        m = _FORMAT.match(_text(c))
        if not m or "<think>" in m.group(2) or "<answer>" in m.group(2) or "<answer>" in m.group(1):
            continue
        answer = m.group(2)
        ok = True
        for g in _BRACE.findall(answer):
            if "<" in g:
                bm = BOX_RE.fullmatch(g)
                if not bm:
                    ok = False
                    break
                v = [float(x) if x is not None else 0.0 for x in bm.groups()]
                if not (v[0] < v[2] and v[1] < v[3] and v[4] <= 90):
                    ok = False
                    break
        qwen = parse_qwen(answer) if s.get("box_format") == "qwen" else []
        if ok and any(not (b[0] < b[2] and b[1] < b[3] and min(b) >= 0) for b in qwen):
            ok = False
        if ok and s.get("task") in BOX_TASKS and s.get("boxes") and not (qwen or BOX_RE.search(answer)):
            ok = False
        out[i] = 1.0 if ok else 0.5
    return out


# -- classification -------------------------------------------------------------------------------
@reward("eo_scene_cls", tasks=("scene_cls",))
def eo_scene_cls(completions: Sequence[Any], solutions: Sequence[str]) -> np.ndarray:
    """Normalized exact match of the class name; aliases in ``eo_classes.csv`` are synonyms.

    Examples
    --------
    >>> sol = ['{"task": "scene_cls", "label": "storage tank"}'] * 3
    >>> eo_scene_cls(["<answer>Storage tanks.</answer>", "storage_tank", "harbor"], sol).tolist()
    [1.0, 1.0, 0.0]
    """
    out = np.zeros(len(completions))
    for i, (c, s) in enumerate(zip(completions, _solutions(solutions))):
        pred = label_key(extract_answer(c))
        gold = {label_key(s["label"]), *(label_key(x) for x in s.get("synonyms", []))}
        out[i] = float(bool(pred) and pred in gold)
    return out


@reward("eo_multilabel", tasks=("multilabel_cls",))
def eo_multilabel(
    completions: Sequence[Any], solutions: Sequence[str], *, metric: Literal["f1", "jaccard"] = "f1"
) -> np.ndarray:
    """F1 (or Jaccard) between predicted and gold label sets (comma / ``and`` separated).

    Both sets empty (``none``) scores 1.

    Examples
    --------
    >>> sol = ['{"task": "multilabel_cls", "labels": ["airplane", "ship"]}'] * 2
    >>> eo_multilabel(["<answer>plane, ship</answer>", "<answer>ship, harbor</answer>"], sol).tolist()
    [1.0, 0.5]
    >>> eo_multilabel(["<answer>ship, harbor</answer>"], sol[:1], metric="jaccard").round(4).tolist()
    [0.3333]
    """
    out = np.zeros(len(completions))
    for i, (c, s) in enumerate(zip(completions, _solutions(solutions))):
        pred = label_set(extract_answer(c))
        gold = {label_key(x) for x in s["labels"]}
        if not pred and not gold:
            out[i] = 1.0
            continue
        inter = len(pred & gold)
        if metric == "f1":
            out[i] = 2 * inter / (len(pred) + len(gold))
        else:
            out[i] = inter / len(pred | gold)
    return out


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


# -- VQA --------------------------------------------------------------------------------------------
def _tokens(text: str) -> set[str]:
    t = re.sub(r"[^a-z0-9 ]", " ", text.lower())
    return {w for w in t.split() if w not in ("a", "an", "the")}


def token_jaccard(pred: str, gold: str) -> float:
    """Jaccard of lower-cased word sets without punctuation and articles (both empty: 1).

    Examples
    --------
    >>> token_jaccard("Yes.", "yes"), token_jaccard("urban area", "urban")
    (1.0, 0.5)
    """
    p, g = _tokens(pred), _tokens(gold)
    if not p and not g:
        return 1.0
    return len(p & g) / len(p | g)


def vqa_correct(answer: str, solution: dict, *, numeric: str = "bins", bins: Sequence[float] = RSVQA_BINS,
                rel_tol: float = 0.1, abs_tol: float = 0.5) -> bool | None:
    """RSVQA-style correctness of one answer (``None``: a count/area answer without a number).

    Examples
    --------
    >>> vqa_correct("15", {"answer": "12", "numeric": True}), vqa_correct("Yes.", {"answer": "yes"})
    (True, True)
    >>> vqa_correct("Yes, there is one.", {"answer": "yes"})
    False
    """
    gold = str(solution["answer"])
    if solution.get("numeric"):
        return numeric_match(answer, gold, mode=numeric, edges=bins, rel_tol=rel_tol, abs_tol=abs_tol)
    return normalize_answer(answer) == normalize_answer(gold)


@reward("eo_vqa", tasks=("vqa",))
def eo_vqa(
    completions: Sequence[Any],
    solutions: Sequence[str],
    *,
    numeric: Literal["bins", "tolerance", "exact"] = "bins",
    bins: list[float] | None = None,
    rel_tol: float = 0.1,
    abs_tol: float = 0.5,
) -> np.ndarray:
    """VQA reward as RSVQA scores it: 1 for a correct answer, else 0.

    Rows whose solution carries ``numeric: true`` (counts and areas) compare the first number
    of the answer by RSVQA bin (``numeric: bins``, upper edges ``bins``, default
    ``[0, 10, 100, 1000]``: 0 | 1–10 | 11–100 | 101–1000 | >1000); a range gold (``between
    11 and 100``) accepts a number inside it. ``numeric: tolerance`` accepts
    ``|p − g| ≤ max(abs_tol, rel_tol·|g|)``; ``exact`` equal numbers. Every other answer is a
    normalized exact match (lower-case, punctuation removed: TEOChat's cleaner).

    Examples
    --------
    >>> sol = ['{"task": "vqa", "answer": "12", "numeric": true}'] * 3
    >>> eo_vqa(["<answer>12</answer>", "<answer>15</answer>", "<answer>200</answer>"], sol).tolist()
    [1.0, 1.0, 0.0]
    >>> eo_vqa(["<answer>15</answer>"], sol[:1], numeric="tolerance").tolist()
    [0.0]
    >>> eo_vqa(["<answer>No.</answer>", "<answer>No, there is none.</answer>"], ['{"task": "vqa", "answer": "no"}'] * 2).tolist()
    [1.0, 0.0]
    """
    edges = RSVQA_BINS if bins is None else bins
    out = np.zeros(len(completions))
    for i, (c, s) in enumerate(zip(completions, _solutions(solutions))):
        ok = vqa_correct(extract_answer(c), s, numeric=numeric, bins=edges, rel_tol=rel_tol, abs_tol=abs_tol)
        out[i] = float(bool(ok))
    return out


# -- captions -----------------------------------------------------------------------------------
class _NoSynonyms:
    """WordNet stand-in for nltk's METEOR: no synonyms (exact + stem matching only)."""

    @staticmethod
    def synsets(word: str) -> list:  # noqa: D401 - nltk interface
        return []


_STRIP = re.compile(r"\{[^{}]*\}|</?p>")


def _caption_tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", _STRIP.sub(" ", text).lower())


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


def _meteor(ref: list[str], hyp: list[str]) -> float:
    from nltk.translate.meteor_score import single_meteor_score

    return float(single_meteor_score(ref, hyp, stemmer=_stemmer(), wordnet=_NoSynonyms()))


def caption_score(hypothesis: str, references: Sequence[str], rouge_weight: float = 0.5) -> float:
    """``max_r [w·ROUGE-L_F(h, r) + (1 − w)·min(1, METEOR(h, r) / METEOR(r, r))]``.

    Box tokens and ``<p>`` markers are removed first (grounded descriptions).

    Examples
    --------
    >>> refs = ["many planes are parked at the airport", "an airport with a runway"]
    >>> caption_score("many planes are parked at the airport", refs)
    1.0
    >>> 0.3 < caption_score("planes parked at an airport", refs) < 1.0
    True
    >>> caption_score("", refs)
    0.0
    """
    hyp = _caption_tokens(hypothesis)
    if not hyp:
        return 0.0
    best = 0.0
    hyp_text = " ".join(hyp)
    for r in references:
        ref = _caption_tokens(r)
        if not ref:
            continue
        if ref == hyp:
            return 1.0
        rl = _rouge().score(" ".join(ref), hyp_text)["rougeL"].fmeasure
        self_m = _meteor(ref, ref)
        met = min(1.0, _meteor(ref, hyp) / self_m) if self_m > 0 else 0.0
        best = max(best, rouge_weight * rl + (1 - rouge_weight) * met)
    return float(best)


@reward("eo_caption", tasks=("image_caption", "region_caption", "change_caption"))
def eo_caption(completions: Sequence[Any], solutions: Sequence[str], *, rouge_weight: float = 0.5) -> np.ndarray:
    """Caption reward: ROUGE-L and self-normalized METEOR, best over the references.

    Examples
    --------
    >>> sol = ['{"task": "image_caption", "references": ["a river runs through green fields"]}']
    >>> eo_caption(["<think>.</think><answer>A river runs through green fields.</answer>"], sol).tolist()
    [1.0]
    """
    return np.array(
        [caption_score(extract_answer(c), s["references"], rouge_weight) for c, s in zip(completions, _solutions(solutions))],
        dtype=float,
    )


# -- change presence ----------------------------------------------------------------------------
@reward("eo_change", tasks=("change_presence",))
def eo_change(completions: Sequence[Any], solutions: Sequence[str]) -> np.ndarray:
    """1 when the answer's yes/no matches whether the scene changed.

    Examples
    --------
    >>> sol = ['{"task": "change_presence", "changed": true}'] * 2
    >>> eo_change(["<answer>Yes, new buildings.</answer>", "<answer>No.</answer>"], sol).tolist()
    [1.0, 0.0]
    """
    out = np.zeros(len(completions))
    for i, (c, s) in enumerate(zip(completions, _solutions(solutions))):
        yn = yes_no(extract_answer(c))
        out[i] = float(yn is not None and yn == bool(s["changed"]))
    return out
