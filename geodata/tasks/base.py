"""What every task module shares: the result of a scorer, its context, the eval protocols.

A task module (``geodata/tasks/<family>.py`` or a sub-package) holds, for one task family,

* its **answer contract**: how an answer is written (the gold completion the steps build) and
  read back (the parsers rewards and scorers use);
* its **rewards**, registered with :func:`geodata.registry.reward` (``tasks=(name,)``);
* its **scorer**, registered with :func:`geodata.registry.task` under the ``task`` value of the
  rows it scores, naming the benchmark code it follows.

The engine (:mod:`geodata.evaluate`) groups the truth rows by ``task`` and hands each group to
the registered scorer; nothing keeps a list of tasks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

__all__ = [
    "TaskResult",
    "ScoreContext",
    "PROTOCOLS",
    "DEFAULT_PROTOCOL",
    "mean",
    "solutions",
    "completion_text",
    "answer_blocks",
]

#: Where the benchmarks' own scorers disagree among themselves, ``--protocol`` picks one
#: (docs/eval.md). Every other rule is the same under every protocol.
PROTOCOLS: dict[str, str] = {
    "geochat": (
        "GeoChat-bench as its code scores it (default): scene class = GeoChat's exact name "
        "(mbzuai-oryx/GeoChat geochat/eval/batch_geochat_scene.py); boxes rotated clockwise on "
        "screen, a hit at IoU > 0.5 (ermongroup/TEOChat videollava/eval/geochat_bench.py)"
    ),
    "earthdial": (
        "EarthDial's scorer (hiyamdebary/EarthDial src/earthdial/eval/rs_detection/eval.py): boxes "
        "rotated counter-clockwise (rect @ R), a predicted box is a hit at IoU >= 0.5 with any gold "
        "box, precision over predicted boxes; scene classes as under geochat"
    ),
    "synonyms": (
        "geochat, but a scene class answer counts when it is a synonym of the gold class in "
        "geodata/data/eo_classes.csv (geodata's training reward rule)"
    ),
}
DEFAULT_PROTOCOL = "geochat"


class TaskResult(BaseModel):
    """Metrics of one task (or one task within one group of a breakdown).

    ``n`` counts every truth row with a prediction (unscorable truth rows included, scored
    wrong); ``n_unparsed`` the answers that could not be read; ``n_truth_invalid`` the truth
    rows that cannot be scored (e.g. a latitude of 95).
    """

    task: str
    n: int
    n_unparsed: int
    n_truth_invalid: int = 0
    metrics: dict[str, float | None]
    per_type: dict[str, dict[str, float]] = Field(default_factory=dict)


@dataclass
class ScoreContext:
    """Options and side information a scorer gets besides completions and solutions.

    ``rows`` is the joined frame of the group (``source``, ``split``, ``qtype``, ``category``
    and, for geolocation, ``pred_lat`` / ``pred_lon`` / ``lat`` / ``lon``); ``notes`` collects
    what the report should say (e.g. which caption tokenizer ran).
    """

    protocol: str = DEFAULT_PROTOCOL
    geocode: bool = False
    meteor: bool | None = None
    tokenizer: str = "auto"
    iou_threshold: float = 0.5
    rows: pl.DataFrame | None = None
    notes: set[str] = field(default_factory=set)
    info: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str, n: int) -> list[Any]:
        """Column ``name`` of :attr:`rows` as a list (``None`` × n when absent)."""
        if self.rows is None or name not in self.rows.columns:
            return [None] * n
        return self.rows[name].to_list()


def mean(x: Sequence[float]) -> float:
    """Mean of ``x`` (0.0 when empty)."""
    return float(np.mean(x)) if len(x) else 0.0


def solutions(sols: Sequence[Any]) -> list[dict]:
    """Solution JSON strings (or dicts) as dicts."""
    return [json.loads(s) if isinstance(s, str) else dict(s) for s in sols]


def completion_text(c: Any) -> str:
    """A completion given as a string or a chat message list, as text."""
    if isinstance(c, str):
        return c
    if c is None:
        return ""
    from ..schema import messages_text

    return messages_text(c)


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)


def answer_blocks(completion: Any) -> list[str]:
    """The texts of every ``<answer>…</answer>`` block, in order.

    Examples
    --------
    >>> answer_blocks("<answer>A</answer> <answer>B</answer>"), answer_blocks("B")
    (['A', 'B'], [])
    """
    return _ANSWER.findall(completion_text(completion))
