"""Adapt the rewards registered in ``geodata`` to TRL's reward-function signature.

TRL calls ``f(prompts, completions, completion_ids, **columns)`` with one list entry per
completion, ``columns`` holding the dataset columns (``task``, ``solution`` ...). Here each
reward name becomes one such function that scores the rows whose task uses it and returns
``None`` for the others (TRL sums the functions per row, ignoring ``None``), so the GRPO
logs show every reward separately. The math stays in ``geodata``; this module imports
neither torch nor transformers.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from geodata.registry import RewardInfo
from geodata.schema import messages_text

from .recipe import RewardRef

__all__ = ["completion_text", "trl_reward_funcs"]


def completion_text(completion: Any) -> str:
    """The text of a completion as TRL passes it: a string or a list of chat messages."""
    return messages_text(completion)


def trl_reward_funcs(
    per_task: dict[str, list[tuple[RewardInfo, RewardRef]]],
) -> list[Callable[..., list[float | None]]]:
    """One TRL reward function per reward name used by ``per_task``.

    Parameters
    ----------
    per_task
        ``task -> [(reward, ref)]`` from :func:`geodata_train.data.task_rewards`; ``ref`` carries
        the weight and the validated parameters of the reward for that task.

    Returns
    -------
    list of callables
        ``f(prompts, completions, *, task, solution, **_) -> list[float | None]``, each named
        after its reward.
    """
    names: list[str] = []
    for pairs in per_task.values():
        for info, _ in pairs:
            if info.name not in names:
                names.append(info.name)

    def make(name: str) -> Callable[..., list[float | None]]:
        uses = {
            task: (info, ref) for task, pairs in per_task.items() for info, ref in pairs if info.name == name
        }

        def fn(
            prompts: Sequence[Any],
            completions: Sequence[Any],
            *,
            task: Sequence[str],
            solution: Sequence[str],
            **_: Any,
        ) -> list[float | None]:
            out: list[float | None] = [None] * len(completions)
            for t, (info, ref) in uses.items():
                idx = [i for i, ti in enumerate(task) if ti == t]
                if not idx:
                    continue
                texts = [completion_text(completions[i]) for i in idx]
                sols = [solution[i] for i in idx]
                scores = np.asarray(info.fn(texts, sols, **ref.params), dtype=np.float64)
                for i, s in zip(idx, scores):
                    out[i] = float(s) * ref.weight
            return out

        fn.__name__ = name
        fn.__qualname__ = name
        return fn

    return [make(n) for n in names]
