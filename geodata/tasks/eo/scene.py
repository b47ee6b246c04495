"""Scene classification (task ``scene_cls``): one class name per image.

Contract: the gold completion's answer is the class name; synonyms of a class are the aliases
of ``geodata/data/eo_classes.csv``. Reward (training): a synonym counts. Scorer (eval): by the
benchmark's rule (:data:`geodata.tasks.base.PROTOCOLS`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...registry import reward, task
from ..base import ScoreContext, TaskResult, mean, solutions as _solutions
from .contract import class_key, extract_answer, label_key

__all__ = ["eo_scene_cls", "score_scene", "geochat_scene_key"]


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


def geochat_scene_key(text: str) -> str:
    """A class answer as GeoChat's scene scorer compares it: spaces and ``.`` removed, lower case.

    ``mbzuai-oryx/GeoChat`` ``geochat/eval/batch_geochat_scene.py`` (``evaluation_metrics``:
    ``answer.replace(' ', '').lower().replace('.', '')`` equals the lower-cased class folder).

    Examples
    --------
    >>> geochat_scene_key("Dense Residential."), geochat_scene_key("farmland")
    ('denseresidential', 'farmland')
    """
    return str(text).replace(" ", "").lower().replace(".", "")


@task("scene_cls", reference="mbzuai-oryx/GeoChat geochat/eval/batch_geochat_scene.py")
def score_scene(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """Accuracy and macro F1 (over gold classes) of scene class answers.

    Under ``geochat`` and ``earthdial`` (default) an answer is right only when it is the gold
    class's name, compared as GeoChat's ``batch_geochat_scene.py`` does (spaces and ``.``
    removed, lower case): "farmland" for UCM's "agricultural" is wrong. ``--protocol synonyms``
    counts the synonyms of ``eo_classes.csv`` as right (geodata's reward rule). The gold is
    the solution's ``raw_label`` (the release's class name, GeoChat's ground truth) when the row
    keeps it, else its ``label``.
    """
    answers = [extract_answer(c) for c in comps]
    if ctx.protocol == "synonyms":
        pred = [label_key(a) for a in answers]
        gold = [label_key(s["label"]) for s in sols]
        syn = [{label_key(x) for x in s.get("synonyms", [])} for s in sols]
        pred = [g if p in sy else p for p, g, sy in zip(pred, gold, syn)]
    else:  # the release's own class name when the row keeps it (UCM's folder "agricultural")
        pred = [geochat_scene_key(a) for a in answers]
        gold = [geochat_scene_key(s.get("raw_label") or s["label"]) for s in sols]
    ok = [bool(p) and p == g for p, g in zip(pred, gold)]
    f1s = []
    for c in sorted(set(gold)):
        tp = sum(p == c and g == c for p, g in zip(pred, gold))
        npred, ngold = sum(p == c for p in pred), sum(g == c for g in gold)
        f1s.append(2 * tp / (npred + ngold) if npred + ngold else 0.0)
    return TaskResult(task="scene_cls", n=len(comps), n_unparsed=sum(not class_key(a) for a in answers),
                      metrics={"accuracy": mean(ok), "macro_f1": mean(f1s)})
