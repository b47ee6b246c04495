"""The think / answer format reward of every EO row (GeoVLM-R1's format term).

1.0 when the completion is exactly one think block followed by one answer block whose boxes
GeoChat's parsers read (or, on a qwen row, ordered ``bbox_2d`` JSON); 0.5 when only the box
part fails; 0 otherwise. It scores every EO task, so it names none (add it in a recipe).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from ...registry import reward
from ..base import completion_text, solutions as _solutions
from .contract import BOX_RE, BOX_TASKS, parse_qwen

__all__ = ["eo_format"]

_FORMAT = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$", re.S)
_text = completion_text


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
