"""Load the rows a recipe trains on and check them before any model is loaded.

A recipe's ``data.dataset`` is, in this order: a folder path, ``datasets/<name>`` (where
``geodata build`` writes; ``$GEODATA_DATASETS`` moves it), or a Hugging Face Hub id
(``org/name``). This module imports
neither torch nor transformers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

from geodata.errors import SourceError, SpecError
from geodata.registry import RewardInfo, get_reward, reward_for_task

from .recipe import DataSpec, Recipe, RewardRef

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = ["REQUIRED_COLUMNS", "resolve_dataset", "load_rows", "load_eval_rows", "task_rewards", "check_columns"]

#: Columns each use of a dataset needs.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "sft": ("images", "prompt", "completion"),
    "grpo": ("images", "prompt", "task", "solution"),
    "predict": ("id", "images", "prompt"),
}


def resolve_dataset(name: str, root: Path | None = None) -> str:
    """A loadable location for ``name``: a folder, ``<root>/<name>``, or a Hub id.

    ``root`` defaults to where ``geodata build`` writes (``$GEODATA_DATASETS`` or ``datasets``).
    """
    from geodata.dataset import Dataset

    p = Path(name).expanduser()
    if p.is_dir():
        return str(p)
    cand = Dataset.resolve(name, root)  # the rule every geodata command uses
    if cand.is_dir():
        return str(cand)
    if "/" in name and not p.is_absolute() and not name.startswith("."):
        return name  # a Hub id
    raise SourceError(
        f"dataset '{name}' not found: no folder {p} or {cand}, and it is not a hub id "
        f"(build it first: geodata build {name})"
    )


def _check_built(loc: str, config: str | None, split: str, label: str) -> None:
    """For a dataset geodata built: the config and split exist (the error lists the choices)."""
    from geodata.dataset import Dataset, DatasetError

    if not (Path(loc) / "manifest.json").is_file():
        return  # a Hub id or a folder geodata did not build: datasets decides
    try:
        built = Dataset.open(loc)
        splits = built.splits(config)
    except DatasetError as exc:
        raise SourceError(f"{label}: {exc}") from None
    for part in split.split("+"):  # datasets' split syntax: "train+validation", "train[:1000]"
        name = part.split("[", 1)[0].strip()
        if name not in splits:
            raise SourceError(f"{label}: no split '{name}' (splits: {', '.join(splits)})")


def check_columns(columns: Sequence[str], use: Literal["sft", "grpo", "predict"], where: str) -> None:
    """Raise if ``columns`` lacks one that ``use`` needs."""
    missing = [c for c in REQUIRED_COLUMNS[use] if c not in columns]
    if missing:
        raise SourceError(
            f"{where}: dataset lacks the columns {missing} that {use} needs (found {list(columns)})"
        )


def load_rows(
    data: DataSpec,
    use: Literal["sft", "grpo", "predict"],
    config: str | None = None,
    where: str = "data",
    split: str | None = None,
    max_rows: int | None = None,
) -> "Dataset":
    """Load one config/split of ``data``, check its columns and apply ``max_rows`` / ``tasks``.

    Parameters
    ----------
    data
        The recipe's ``data`` section.
    use
        What the rows are for; decides the required columns.
    config
        The config to load (one of ``data.configs``).
    where
        Prefix of error messages (the recipe file).
    split, max_rows
        Instead of ``data.split`` / ``data.max_rows`` (the eval split).
    """
    import datasets

    if split is None:
        split, max_rows = data.split, data.max_rows

    loc = resolve_dataset(data.dataset)
    label = f"{where}: dataset '{data.dataset}'" + (f" config '{config}'" if config else "")
    _check_built(loc, config, split, label)
    try:
        ds = datasets.load_dataset(loc, config, split=split)
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        raise SourceError(f"{label} split '{split}': {msg}") from None
    except FileNotFoundError as exc:
        raise SourceError(f"{label}: {str(exc).splitlines()[0]}") from None
    check_columns(ds.column_names, use, label)
    if data.tasks is not None:
        if "task" not in ds.column_names:
            raise SourceError(f"{label}: data.tasks is set but the dataset has no 'task' column")
        keep = set(data.tasks)
        ds = ds.filter(lambda t: t in keep, input_columns="task")
    if max_rows is not None and len(ds) > max_rows:
        ds = ds.select(range(max_rows))
    if len(ds) == 0:
        raise SourceError(f"{label} split '{split}': no rows to use")
    return ds


def load_eval_rows(
    data: DataSpec, use: Literal["sft", "grpo"], columns: Sequence[str], config: str | None, where: str
) -> "Dataset | None":
    """The ``data.eval_split`` rows of one config (``None`` when no eval split is set)."""
    if not data.eval_split:
        return None
    rows = load_rows(data, use, config, where, split=data.eval_split, max_rows=data.eval_max_rows)
    return rows.select_columns(list(columns))


def task_rewards(recipe: Recipe, tasks: Sequence[str]) -> dict[str, list[tuple[RewardInfo, RewardRef]]]:
    """The rewards of each task: the recipe's ``grpo.rewards`` entry, else the registered one.

    Raises
    ------
    SpecError
        When a task has neither, naming the task and the recipe.
    """
    g = recipe.require("grpo")
    assert g is not None
    out: dict[str, list[tuple[RewardInfo, RewardRef]]] = {}
    for task in sorted(set(tasks)):
        refs = g.rewards.get(task)
        if refs:
            out[task] = [(get_reward(r.name), r) for r in refs]
            continue
        try:
            info = reward_for_task(task)
        except SpecError as exc:
            raise SpecError(
                f"{recipe.where}: {exc}; name one under grpo.rewards.{task}"
            ) from None
        out[task] = [(info, RewardRef(name=info.name))]
    return out


def unique_tasks(ds: "Dataset") -> list[str]:
    """The distinct values of the ``task`` column."""
    return sorted(str(t) for t in ds.unique("task"))


def describe(ds: "Dataset") -> dict[str, Any]:
    """Row count and columns, for logs."""
    return {"rows": len(ds), "columns": ds.column_names}
