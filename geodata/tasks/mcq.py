"""Multiple-choice rewards for Geo-R1's cross-view pairing rows (task ``crossview_mcq``).

The completion is expected as ``<think>…</think><answer>B</answer>``. The pieces:

* **accuracy** — the text of the last ``<answer>`` block, stripped of whitespace, one pair
  of brackets, a trailing period and a leading ``option``/``candidate``, must be exactly
  one letter, equal to the gold letter (case-insensitive): 1, else 0;
* **format** — 1 when the whole completion is one ``<think>`` block followed by one
  ``<answer>`` block (whitespace around them allowed, no other text, no nested tags), else 0;
* **length** — ``length_mode: linear`` (default): 0 up to ``length_limit - length_buffer``
  words, falling linearly to −1 at ``length_limit`` and beyond (DAPO's soft overlong penalty);
  ``length_mode: cosine``: Geo-R1's cosine term (``om-ai-lab/VLM-R1``
  ``src/open-r1-multimodal/src/open_r1/grpo_jsonl.py`` ``cosine_reward``, the code Geo-R1
  trains with): ``1 − 0.5·(1 − cos(π·n/1024))/2``, from 1 at length 0 to 0.5 at 1024; that
  code counts tokenizer tokens and (its ``acc_reward = 1.0``) always takes the "correct"
  branch; geodata counts whitespace words (rewards load no tokenizer) — the one difference;
* **repetition** — minus the share of repeated word ``ngram``-grams, ``ngram = 6`` as in
  Geo-R1's code (same file, ``repetition_reward``; 0 below six words).

**Choice extraction.** The reward reads the *last* ``<answer>`` block leniently (``(B)``,
``[B]``, ``Option B`` count; text without tags does not): on purpose, so training credits any
clearly written letter and only tagged answers. ``geodata eval`` reads the letter as Geo-R1's
code does (:func:`geo_r1_choice`; ``extraction: geo-r1`` gives the reward the same rule).

``crossview_mcq`` combines them by ``combine``:

=========  ==================================================================================
accuracy   accuracy alone
product    accuracy × format (default): 1 only for a correct, well-formed answer
sum        (fw·format + aw·accuracy + lw·length + rw·repetition) / (fw + aw) — a weighted
           sum of format, accuracy, length and repetition terms (the terms Geo-R1's code
           adds, with the differences listed above); divided by ``fw + aw`` so the gold
           completion scores 1 (``normalize: false`` keeps the raw scale, where the gold
           scores ``fw + aw``). Range [−(lw + rw)/(fw + aw), 1] with the linear length term.
=========  ==================================================================================

The gold completion of every ``crossview_mcq`` row scores 1 under all three.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal, Sequence

import numpy as np

from ..registry import reward, task
from ..schema import messages_text as _text  # a completion (string or messages) as text
from .base import ScoreContext, TaskResult, mean

__all__ = [
    "extract_choice",
    "gold_choice",
    "format_ok",
    "length_term",
    "repetition_term",
    "cosine_length_term",
    "geo_r1_choice",
    "geo_r1_letter",
    "score_mcq",
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


_G1_CANDIDATE = re.compile(r"(?<![A-Z])([A-Z])(?=[\.\,\?\!\:\;]|$)")
_G1_KEYWORDS = ("答案", "选择", "正确", "是", "对", "ANSWER", "CORRECT", "CHOOSE", "SELECT", "RIGHT",
                "认为", "应该", "觉得", "THINK", "BELIEVE", "SHOULD")


def geo_r1_letter(text: str) -> str | None:
    """The choice letter of a text as Geo-R1's training code reads it.

    ``om-ai-lab/VLM-R1`` ``src/open-r1-multimodal/src/open_r1/grpo_jsonl.py`` ``extract_choice``
    (the cross-view Geo-R1, arXiv 2510.00072, publishes no code found here; ``Geo-R1/geo-r1``, a
    few-shot referring Geo-R1, names VLM-R1 as its codebase in ``README.md``):
    upper-case, collapse spaces, candidates are single letters not preceded by a letter and
    followed by ``. , ? ! : ;`` or the end. One candidate is the answer; with several, each
    scores keywords within 20 characters of its first occurrence (+1 each), lying in the last
    30 % (+2) and a following ``。.!！,，`` (+1); the first best wins. So ``(B)`` and ``[B]`` read
    nothing; "I choose B." reads B.

    Examples
    --------
    >>> geo_r1_letter("B"), geo_r1_letter("(B)"), geo_r1_letter("I choose B."), geo_r1_letter("The answer is B")
    ('B', None, 'B', 'B')
    """
    t = re.sub(r"\s+", " ", str(text).upper())
    cands = _G1_CANDIDATE.findall(t)
    if not cands:
        return None
    if len(cands) == 1:
        return cands[0]
    scores: dict[str, int] = {}
    for c in cands:
        scores.setdefault(c, 0)
    for c in list(cands):
        pos = t.find(c)
        ctx = t[max(0, pos - 20) : min(len(t), pos + 20)]
        scores[c] += sum(k in ctx for k in _G1_KEYWORDS)
        if pos > len(t) * 0.7:
            scores[c] += 2
        if pos < len(t) - 1 and t[pos + 1] in "。.!！,，":
            scores[c] += 1
    return max(scores.items(), key=lambda kv: kv[1])[0]


def geo_r1_choice(completion: Any) -> str | None:
    """The letter answered, as Geo-R1's ``mcq_reward`` reads it: the *first* ``<answer>`` block.

    Same file as :func:`geo_r1_letter` (``mcq_reward``): ``re.search`` takes the first answer
    block, or the whole completion when there is none, then ``extract_choice``.

    Examples
    --------
    >>> geo_r1_choice("<answer>A</answer><answer>B</answer>"), geo_r1_choice("<answer>[B]</answer>")
    ('A', None)
    """
    text = _text(completion)
    m = _ANSWER.search(text)
    return geo_r1_letter((m.group(1) if m else text).strip())


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


def cosine_length_term(completion: Any, max_len: int = 1024) -> float:
    """Geo-R1's cosine length term on whitespace words: 1 at 0 words, 0.5 at ``max_len``.

    Examples
    --------
    >>> cosine_length_term(""), cosine_length_term("a " * 512), cosine_length_term("a " * 1024)
    (1.0, 0.75, 0.5)
    """
    n = len(_text(completion).split())
    return 1.0 - 0.5 * (1 - math.cos(n * math.pi / max_len)) / 2


def repetition_term(completion: Any, ngram: int = 6) -> float:
    """Minus the share of repeated word ``ngram``-grams: 0 for none, towards −1 for loops.

    Examples
    --------
    >>> repetition_term("the road runs north past the church")
    0.0
    >>> round(repetition_term("go on " * 20), 2)
    -0.94
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
    length_mode: Literal["linear", "cosine"] = "linear",
    ngram: int = 6,
    normalize: bool = True,
    extraction: Literal["lenient", "geo-r1"] = "lenient",
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
    pick = geo_r1_choice if extraction == "geo-r1" else extract_choice
    acc = np.array(
        [1.0 if (c := pick(x)) is not None and c == gold_choice(s) else 0.0
         for x, s in zip(completions, solutions)],
        dtype=np.float64,
    )
    if combine == "accuracy":
        return acc
    fmt = np.array([format_ok(x) for x in completions], dtype=np.float64)
    if combine == "product":
        return acc * fmt
    total = format_weight * fmt + accuracy_weight * acc
    scale = format_weight + accuracy_weight
    if length_weight and length_mode == "cosine":
        total += length_weight * np.array([cosine_length_term(x) for x in completions])
        scale += length_weight  # the cosine term is positive: the gold scores about 1
    elif length_weight:
        total += length_weight * np.array([length_term(x, length_limit, length_buffer) for x in completions])
    if repetition_weight:
        total += repetition_weight * np.array([repetition_term(x, ngram) for x in completions])
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


@task("crossview_mcq", reference="om-ai-lab/VLM-R1 src/open-r1-multimodal/src/open_r1/grpo_jsonl.py (mcq_reward)")
def score_mcq(comps: list[str], sols: list[dict], ctx: ScoreContext) -> TaskResult:
    """Accuracy of the letter read as Geo-R1's code reads it (:func:`geo_r1_choice`)."""
    got = [geo_r1_choice(c) for c in comps]
    ok = [g is not None and g == gold_choice(s) for g, s in zip(got, sols)]
    return TaskResult(task="crossview_mcq", n=len(comps), n_unparsed=sum(g is None for g in got),
                      metrics={"accuracy": mean(ok)})
