"""Change presence (task ``change_presence``): did the scene change between the two images?

Contract: the gold answer is ``yes`` or ``no``. Reward and scorer read the answer's yes / no
as VLM-R1's ``yes_no_reward`` does (``om-ai-lab/VLM-R1``
``src/open-r1-multimodal/src/open_r1/grpo_jsonl.py``): the first ``yes`` or ``no`` in the
lower-cased answer, as a substring, so "Nothing has changed." reads as no.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from ...registry import reward, task
from ..base import ScoreContext, TaskResult, mean, solutions as _solutions
from .contract import extract_answer

__all__ = ["eo_change", "score_change", "yes_no_first"]

_YESNO = re.compile(r"(yes|no)")


def yes_no_first(text: str) -> bool | None:
    """The first ``yes`` / ``no`` substring of the lower-cased text (VLM-R1 ``yes_no_reward``).

    Examples
    --------
    >>> yes_no_first("Nothing has changed."), yes_no_first("Yes, new buildings."), yes_no_first("maybe")
    (False, True, None)
    """
    m = _YESNO.search(str(text).lower())
    return None if m is None else m.group(1) == "yes"


@reward("eo_change", tasks=("change_presence",))
def eo_change(completions: Sequence[Any], solutions: Sequence[str]) -> np.ndarray:
    """1 when the answer's yes / no (:func:`yes_no_first`) matches whether the scene changed.

    Examples
    --------
    >>> sol = ['{"task": "change_presence", "changed": true}'] * 2
    >>> eo_change(["<answer>Yes, new buildings.</answer>", "<answer>No.</answer>"], sol).tolist()
    [1.0, 0.0]
    """
    out = np.zeros(len(completions))
    for i, (c, s) in enumerate(zip(completions, _solutions(solutions))):
        yn = yes_no_first(extract_answer(c))
        out[i] = float(yn is not None and yn == bool(s["changed"]))
    return out


@task("change_presence", reference="om-ai-lab/VLM-R1 src/open-r1-multimodal/src/open_r1/grpo_jsonl.py")
def score_change(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """Accuracy of the yes / no answer (:func:`yes_no_first`) against the change flag."""
    got = [yes_no_first(extract_answer(c)) for c in comps]
    ok = [g is not None and g == bool(s["changed"]) for g, s in zip(got, sols)]
    return TaskResult(task="change_presence", n=len(comps), n_unparsed=sum(g is None for g in got),
                      metrics={"accuracy": mean(ok)})
