"""Visual question answering (task ``vqa``): RSVQA-LR / -HR and GeoChat's VQA turns.

Contract: ``solution = {"answer", "qtype", "numeric"}``; counts and areas are ``numeric``.

Eval follows RSVQA's answer encoder (``syvlo/RSVQA`` ``VQA_model/VocabEncoder.py``, built in
``VQA_model/train.py`` with ``range_numbers=True`` for LR and ``False`` for HR): **LR counts**
are scored by bin (0 | 1–10 | 11–100 | 101–1000 | > 1000), **HR counts exactly**, areas (``m2``,
binned by the encoder whatever ``range_numbers``) by bin; every other answer by exact match
after lower-casing and removing punctuation (TEOChat ``videollava/eval/classification.py``).
Counts of other sources (GeoChat) are exact. The training reward keeps bins for every count
(``numeric: bins``, lenient on purpose; ``numeric: exact`` is the strict rule).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Literal, Sequence

import numpy as np

from ...registry import reward, task
from ..base import ScoreContext, TaskResult, mean, solutions as _solutions
from .contract import RSVQA_BINS, extract_answer, normalize_answer, numeric_match

__all__ = ["eo_vqa", "vqa_correct", "token_jaccard", "score_vqa", "binned_count_sources"]

#: sources whose counts the benchmark bins (RSVQA-LR: ``range_numbers=True``)
binned_count_sources: frozenset[str] = frozenset({"rsvqa_lr"})


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


def _mode(solution: dict, source: str | None) -> str:
    """``bins`` or ``exact``: how the benchmark scores this numeric answer."""
    if solution.get("qtype") == "area":
        return "bins"
    return "bins" if source in binned_count_sources else "exact"


@task("vqa", reference="syvlo/RSVQA VQA_model/VocabEncoder.py + VQA_model/train.py")
def score_vqa(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """Overall accuracy (OA), average accuracy over question types (AA) and accuracy per type.

    RSVQA-HR gold "12", answer "15": wrong (HR counts are exact); RSVQA-LR: right (same bin).
    """
    by_type: dict[str, list[bool]] = defaultdict(list)
    allok, unparsed = [], 0
    for c, s, src in zip(comps, sols, ctx.column("source", len(comps))):
        ans = extract_answer(c)
        if s.get("numeric"):
            ok = vqa_correct(ans, s, numeric=_mode(s, src)) if ans else None
        else:
            ok = vqa_correct(ans, s) if ans else None
        unparsed += ok is None
        by_type[str(s.get("qtype") or "other")].append(bool(ok))
        allok.append(bool(ok))
    per = {t: {"accuracy": mean(v), "n": float(len(v))} for t, v in sorted(by_type.items())}
    return TaskResult(task="vqa", n=len(comps), n_unparsed=unparsed, per_type=per,
                      metrics={"overall_accuracy": mean(allok),
                               "average_accuracy": mean([v["accuracy"] for v in per.values()])})
