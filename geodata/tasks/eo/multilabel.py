"""Multi-label classification (task ``multilabel_cls``): the classes present, comma-separated.

Contract: the answer lists canonical class names (``none`` for the empty set). Reward: F1 or
Jaccard of the label sets. Scorer: sample F1, micro F1 and exact-set accuracy, the metrics
multi-label remote-sensing benchmarks report (no peer scorer found to follow literally).
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np

from ...registry import reward, task
from ..base import ScoreContext, TaskResult, mean, solutions as _solutions
from .contract import extract_answer, label_key, label_set

__all__ = ["eo_multilabel", "score_multilabel"]


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


@task("multilabel_cls", reference="(none public: sample / micro F1 and exact match, docs/eval.md)")
def score_multilabel(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """Sample F1 (mean over rows), micro F1 and exact-set accuracy of canonical label sets."""
    f1, exact, tp, npred, ngold, unparsed = [], [], 0, 0, 0, 0
    for c, s in zip(comps, sols):
        ans = extract_answer(c)
        unparsed += not ans
        p, g = label_set(ans), {label_key(x) for x in s["labels"]}
        f1.append(1.0 if not p and not g else 2 * len(p & g) / (len(p) + len(g)))
        exact.append(p == g)
        tp, npred, ngold = tp + len(p & g), npred + len(p), ngold + len(g)
    micro = 2 * tp / (npred + ngold) if npred + ngold else 1.0
    return TaskResult(task="multilabel_cls", n=len(comps), n_unparsed=unparsed,
                      metrics={"sample_f1": mean(f1), "micro_f1": micro, "exact_match": mean(exact)})
