"""Multiple-choice rewards for Geo-R1's cross-view pairing rows (task ``crossview_mcq``).

The completion is expected as ``<think>…</think><answer>B</answer>``. The pieces:

* **accuracy** — the text of the last ``<answer>`` block, stripped of whitespace, one pair
  of brackets, a trailing period and a leading ``option``/``candidate``, must be exactly
  one letter, equal to the gold letter (case-insensitive): 1, else 0;
* **format** — 1 when the whole completion is one ``<think>`` block followed by one
  ``<answer>`` block (whitespace around them allowed, no other text, no nested tags), else 0;
* **length** — 0 up to ``length_limit - length_buffer`` words, falling linearly to −1 at
  ``length_limit`` and beyond (DAPO's soft overlong penalty, counted in words);
* **repetition** — minus the share of repeated word ``ngram``-grams (0 for text without a
  repeated n-gram, towards −1 for a loop).

``crossview_mcq`` combines them by ``combine``:

=========  ==================================================================================
accuracy   accuracy alone
product    accuracy × format (default): 1 only for a correct, well-formed answer
sum        (fw·format + aw·accuracy + lw·length + rw·repetition) / (fw + aw) — Geo-R1's sum
           of format, accuracy, length and repetition terms; divided by ``fw + aw`` so the
           gold completion scores 1 (``normalize: false`` keeps Geo-R1's raw scale, where the
           gold scores ``fw + aw``). Range [−(lw + rw)/(fw + aw), 1].
=========  ==================================================================================

The gold completion of every ``crossview_mcq`` row scores 1 under all three.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Sequence

import numpy as np

from ..registry import reward
from ..schema import messages_text as _text  # a completion (string or messages) as text

__all__ = [
    "extract_choice",
    "gold_choice",
    "format_ok",
    "length_term",
    "repetition_term",
    "crossview_mcq",
    "mcq_format",
]

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_FORMAT = re.compile(
    r"^\s*<think>(?:(?!</?think>|</?answer>).)*</think>\s*"
    r"<answer>(?:(?!</?think>|</?answer>).)*</answer>\s*$",
    re.S,
)
_CHOICE = re.compile(r"^(?:(?:option|candidate|answer)\s*:?\s*)?[\(\[]?\s*([A-Za-z])\s*[\)\]]?\.?$", re.I)


def extract_choice(completion: Any) -> str | None:
    """The letter answered in the last ``<answer>`` block (upper case), or None.

    Examples
    --------
    >>> extract_choice("<think>…</think><answer> (b) </answer>")
    'B'
    >>> extract_choice("<answer>Option C.</answer>"), extract_choice("<answer>B or C</answer>")
    ('C', None)
    >>> extract_choice("The answer is B") is None
    True
    """
    found = _ANSWER.findall(_text(completion))
    if not found:
        return None
    m = _CHOICE.match(found[-1].strip())
    return m.group(1).upper() if m else None


def gold_choice(solution: Any) -> str:
    """The gold letter of a solution: ``{"answer": "B"}`` JSON, a JSON string, or ``B``.

    Examples
    --------
    >>> gold_choice('{"answer":"B"}'), gold_choice('"c"'), gold_choice("D")
    ('B', 'C', 'D')
    """
    if isinstance(solution, dict):
        return str(solution.get("answer", "")).strip().upper()
    s = str(solution).strip()
    if s[:1] in ('{', '"'):
        try:
            obj = json.loads(s)
        except json.JSONDecodeError:
            obj = s
        if isinstance(obj, dict):
            return str(obj.get("answer", "")).strip().upper()
        s = str(obj)
    return s.strip().upper()


def format_ok(completion: Any) -> float:
    """1.0 for exactly ``<think>…</think><answer>…</answer>``, else 0.0.

    Examples
    --------
    >>> format_ok("<think>x</think>\\n<answer>A</answer>"), format_ok("<answer>A</answer>")
    (1.0, 0.0)
    """
    return 1.0 if _FORMAT.match(_text(completion)) else 0.0


def length_term(completion: Any, limit: int = 600, buffer: int = 150) -> float:
    """0 up to ``limit - buffer`` words, linear down to −1 at ``limit`` words and beyond.

    Examples
    --------
    >>> length_term("a " * 10, 100, 50), length_term("a " * 75, 100, 50), length_term("a " * 200, 100, 50)
    (0.0, -0.5, -1.0)
    """
    n = len(_text(completion).split())
    start = limit - buffer
    if n <= start:
        return 0.0
    if n >= limit or buffer <= 0:
        return -1.0
    return -(n - start) / buffer


def repetition_term(completion: Any, ngram: int = 3) -> float:
    """Minus the share of repeated word ``ngram``-grams: 0 for none, towards −1 for loops.

    Examples
    --------
    >>> repetition_term("the road runs north past the church")
    0.0
    >>> round(repetition_term("go on " * 20), 2)
    -0.95
    """
    words = _text(completion).lower().split()
    if len(words) < ngram:
        return 0.0
    grams = list(zip(*(words[i:] for i in range(ngram))))
    return (len(set(grams)) - len(grams)) / len(grams)


@reward("crossview_mcq", tasks=("crossview_mcq",))
def crossview_mcq(
    completions: Sequence[Any],
    solutions: Sequence[Any],
    *,
    combine: Literal["product", "sum", "accuracy"] = "product",
    format_weight: float = 1.0,
    accuracy_weight: float = 1.0,
    length_weight: float = 0.0,
    repetition_weight: float = 0.0,
    length_limit: int = 600,
    length_buffer: int = 150,
    ngram: int = 3,
    normalize: bool = True,
) -> np.ndarray:
    """Multiple-choice reward: letter in ``<answer>`` by exact match, with the format term.

    ``combine``: ``product`` (accuracy × format), ``sum`` (Geo-R1's weighted sum of
    format, accuracy, length and repetition terms; see the module docstring) or
    ``accuracy``. The gold completion scores 1.

    Examples
    --------
    >>> gold = "<think>Candidate B matches.</think><answer>B</answer>"
    >>> crossview_mcq([gold, "<answer>B</answer>", gold.replace(">B<", ">C<")], ['{"answer":"B"}'] * 3).tolist()
    [1.0, 0.0, 0.0]
    >>> crossview_mcq(["<answer>B</answer>"], ['{"answer":"B"}'], combine="sum").tolist()
    [0.5]
    """
    if len(completions) != len(solutions):
        raise ValueError(f"crossview_mcq: {len(completions)} completions but {len(solutions)} solutions")
    acc = np.array(
        [1.0 if (c := extract_choice(x)) is not None and c == gold_choice(s) else 0.0
         for x, s in zip(completions, solutions)],
        dtype=np.float64,
    )
    if combine == "accuracy":
        return acc
    fmt = np.array([format_ok(x) for x in completions], dtype=np.float64)
    if combine == "product":
        return acc * fmt
    total = format_weight * fmt + accuracy_weight * acc
    if length_weight:
        total += length_weight * np.array([length_term(x, length_limit, length_buffer) for x in completions])
    if repetition_weight:
        total += repetition_weight * np.array([repetition_term(x, ngram) for x in completions])
    scale = format_weight + accuracy_weight
    return total / scale if normalize and scale > 0 else total


@reward("mcq_format", tasks=())
def mcq_format(completions: Sequence[Any], solutions: Sequence[Any]) -> np.ndarray:
    """1 for a completion of exactly ``<think>…</think><answer>…</answer>``, else 0.

    Examples
    --------
    >>> mcq_format(["<think>a</think><answer>B</answer>", "B"], ["B", "B"]).tolist()
    [1.0, 0.0]
    """
    return np.array([format_ok(x) for x in completions], dtype=np.float64)
