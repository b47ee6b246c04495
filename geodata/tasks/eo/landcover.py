"""Multi-label land cover: ``landcover_cls`` (BigEarthNet: its 19-class nomenclature on the RGB
bands). Contract: :mod:`geodata.tasks.eo.series` (answer: the classes, ``; ``-separated; read
back by class name, since names hold commas).

* Reward ``eo_landcover``: F1 of the predicted and gold label sets (1 for the gold answer).
* Scorer :func:`score_landcover_cls`: ``earthdial_recall`` — EarthDial's BigEarthNet score
  (``hiyamdebary/EarthDial``, ``src/earthdial/eval/rs_classification/eval.py``, ``evaluate_f1``:
  the BigEarthNet_RGB / BigEarthNet_S2 sets of ``classification_test.py`` are scored by it), the
  gold answer text as the reference, averaged over rows; separators are tokens of that score
  (EarthDial's own ground-truth string form for BigEarthNet is not in its repository: unverified).
  Besides it, per-sample ``sample_precision`` / ``sample_recall`` / ``sample_f1`` of the label
  sets (averaged over rows) and ``micro_f1``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...registry import reward, task
from ..base import ScoreContext, TaskResult, solutions as _solutions
from .contract import extract_answer
from .series import earthdial_recall, format_landcover, landcover_labels

__all__ = ["eo_landcover", "score_landcover_cls"]


def _f1(p: set[str], g: set[str]) -> float:
    if not p and not g:
        return 1.0
    return 2 * len(p & g) / (len(p) + len(g))


@reward("eo_landcover", tasks=("landcover_cls",))
def eo_landcover(completions: Sequence[Any], solutions: Sequence[str]) -> np.ndarray:
    """F1 of the BigEarthNet-19 classes named in the answer against the gold labels.

    Examples
    --------
    >>> sol = ['{"task": "landcover_cls", "labels": ["Pastures", "Transitional woodland, shrub"]}']
    >>> eo_landcover(["<answer>Transitional woodland, shrub; Pastures</answer>"], sol).tolist()
    [1.0]
    >>> eo_landcover(["<answer>pastures</answer>"], sol).round(4).tolist()
    [0.6667]
    """
    return np.array([_f1(landcover_labels(extract_answer(c)), set(s["labels"]))
                     for c, s in zip(completions, _solutions(solutions))])


@task("landcover_cls", reference="hiyamdebary/EarthDial src/earthdial/eval/rs_classification/eval.py")
def score_landcover_cls(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """EarthDial's recall and per-sample precision / recall / F1 (module docstring)."""
    answers = [extract_answer(c) for c in comps]
    n = len(comps)
    ed = [earthdial_recall(format_landcover(s["labels"]), a) for a, s in zip(answers, sols)]
    prec, rec, f1 = [], [], []
    tp = npred = ngold = 0
    for a, s in zip(answers, sols):
        p, g = landcover_labels(a), set(s["labels"])
        prec.append(len(p & g) / len(p) if p else 0.0)
        rec.append(len(p & g) / len(g) if g else 0.0)
        f1.append(_f1(p, g))
        tp, npred, ngold = tp + len(p & g), npred + len(p), ngold + len(g)
    mean = lambda x: float(np.mean(x)) if n else 0.0  # noqa: E731
    return TaskResult(task="landcover_cls", n=n, n_unparsed=sum(not landcover_labels(a) for a in answers),
                      metrics={"earthdial_recall": mean(ed), "sample_precision": mean(prec), "sample_recall": mean(rec),
                               "sample_f1": mean(f1), "micro_f1": 2 * tp / (npred + ngold) if npred + ngold else 0.0})

