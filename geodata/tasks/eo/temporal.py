"""Temporal classification over an image sequence: ``temporal_cls`` (fMoW: a site's category
from its time series). Contract: :mod:`geodata.tasks.eo.series`.

* Reward ``eo_temporal_cls``: 1 when the answer names the gold category, compared after TEOChat's
  cleaning (lower-case, punctuation removed) with spaces removed too, so ``crop field`` and
  ``Crop_Field.`` both count for ``crop_field``; else 0. The gold answer scores 1.
* Scorer :func:`score_temporal_cls` (``geodata eval``):

  - ``accuracy`` — TEOChat's fMoW score (``ermongroup/TEOChat``, ``videollava/eval/eval.py`` sends
    ``fmow_high_res`` / ``fmow_low_res`` to ``classification_metrics`` in
    ``videollava/eval/classification.py``): the cleaned response equals the cleaned ground
    truth (no keywords), averaged over rows;
  - ``earthdial_recall`` — EarthDial's FMoW score (``hiyamdebary/EarthDial``,
    ``src/earthdial/eval/rs_change_detection/eval_classification.py``, ``evaluate_f1``), averaged.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...registry import reward, task
from ..base import ScoreContext, TaskResult, solutions as _solutions
from .contract import extract_answer
from .series import earthdial_recall, teochat_clean

__all__ = ["eo_temporal_cls", "score_temporal_cls"]


def _key(text: str) -> str:
    return teochat_clean(text).replace(" ", "")


@reward("eo_temporal_cls", tasks=("temporal_cls",))
def eo_temporal_cls(completions: Sequence[Any], solutions: Sequence[str]) -> np.ndarray:
    """1 when the answer names the site's fMoW category (case, punctuation and spaces ignored).

    Examples
    --------
    >>> sol = ['{"task": "temporal_cls", "label": "crop_field"}'] * 3
    >>> eo_temporal_cls(["<answer>crop_field</answer>", "<answer>Crop field.</answer>", "<answer>park</answer>"], sol).tolist()
    [1.0, 1.0, 0.0]
    """
    sols = _solutions(solutions)
    return np.array([float(bool(_key(extract_answer(c))) and _key(extract_answer(c)) == _key(s["label"]))
                     for c, s in zip(completions, sols)])


@task("temporal_cls", reference="ermongroup/TEOChat videollava/eval/classification.py; hiyamdebary/EarthDial src/earthdial/eval/rs_change_detection/eval_classification.py")
def score_temporal_cls(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """TEOChat's accuracy and EarthDial's recall of fMoW answers (see the module docstring)."""
    answers = [extract_answer(c) for c in comps]
    acc = [teochat_clean(a) == teochat_clean(s["label"]) for a, s in zip(answers, sols)]
    rec = [earthdial_recall(s["label"], a) for a, s in zip(answers, sols)]
    n = len(comps)
    return TaskResult(task="temporal_cls", n=n, n_unparsed=sum(not a for a in answers),
                      metrics={"accuracy": float(np.mean(acc)) if n else 0.0,
                               "earthdial_recall": float(np.mean(rec)) if n else 0.0})

