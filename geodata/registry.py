"""Name registries for pipeline steps, source readers, sample writers, rewards and output formats.

A *step* is a function ``fn(df, ctx, *, param: T = default, ...) -> StepOutput`` of a
``kind``: ``map`` (row-local), ``frame`` (needs the whole table) or ``join`` (takes named
input tables: keyword-only parameters annotated ``pl.DataFrame``, or ``**tables:
pl.DataFrame`` for any names, which the spec gives in the step's ``inputs:``). A ``map`` step
runs on the build's runner in chunks of ``output.map_chunk_rows`` rows, so it must give the
same rows for a chunk whatever else is in the frame; ``parallel=False`` keeps it on the driver,
one call over the whole frame. ``ctx`` is a
read-only :class:`~geodata.context.StepContext`. Its other keyword-only, annotated parameters
become a pydantic model, so a spec that passes an unknown key or a value of the wrong type
fails on load with a message naming the key.

A *source* is ``fn(ctx, *, root: Path, param: T = default, ...) -> StepOutput``; it is
located by the environment variable ``<NAME>_ROOT`` (``env``) and may ship a ``sample``
writer so that the demo needs no download.

A *reward* is ``fn(completions: Sequence[str], solutions: Sequence[str], **params) -> np.ndarray``
returning one float per completion; the gold completion of a row scores ``max_score``.

A *task* is the scorer of dataset rows whose ``task`` column holds its name:
``fn(completions: list[str], solutions: list[dict], ctx: ScoreContext) -> TaskResult``
(:mod:`geodata.tasks.base`). Its module in :mod:`geodata.tasks` also holds the task's answer
contract and rewards; ``reference`` names the benchmark code it follows (repository, path).

An *output format* is ``fn(df, root, prefix, *, config, split, output, max_image_pixels, on_rows,
runner) -> PartitionResult`` (see :mod:`geodata.formats.parquet`): it writes one config/split of
rows below ``root/prefix`` and says what files it wrote; a spec picks it by ``output.format``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .errors import SpecError, did_you_mean

__all__ = [
    "StepInfo",
    "SourceInfo",
    "RewardInfo",
    "TaskInfo",
    "step",
    "source",
    "reward",
    "get_step",
    "get_source",
    "get_reward",
    "get_task",
    "task",
    "TASKS",
    "STEPS",
    "SOURCES",
    "REWARDS",
    "FormatInfo",
    "output_format",
    "get_format",
    "FORMATS",
    "params_model",
    "validate_params",
]


STEP_KINDS = ("map", "frame", "join")


def _is_table(ann: Any) -> bool:
    import polars as pl

    return ann is pl.DataFrame or (getattr(ann, "__args__", None) is not None and pl.DataFrame in ann.__args__)


def table_inputs(fn: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """The input tables of a join step: (required names, optional names, any other names)."""
    hints = inspect.get_annotations(fn, eval_str=True)
    req: list[str] = []
    opt: list[str] = []
    var = False
    for pname, p in inspect.signature(fn).parameters.items():
        if not _is_table(hints.get(pname)):
            continue
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var = True
        elif p.kind is inspect.Parameter.KEYWORD_ONLY:
            (req if p.default is inspect.Parameter.empty else opt).append(pname)
    return tuple(req), tuple(opt), var


def params_model(
    fn: Callable[..., Any], name: str, skip: int, exclude: tuple[str, ...] = ()
) -> type[BaseModel]:
    """Build a strict pydantic model from the keyword-only parameters of ``fn``."""
    fields: dict[str, Any] = {}
    sig = inspect.signature(fn)
    hints = inspect.get_annotations(fn, eval_str=True)
    for i, (pname, p) in enumerate(sig.parameters.items()):
        if i < skip or p.kind is not inspect.Parameter.KEYWORD_ONLY or pname in exclude:
            continue
        ann = hints.get(pname, Any)
        if _is_table(ann):
            continue  # an input table (join steps), given by the spec's ``inputs:``
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[pname] = (ann, default)
    model = create_model(  # type: ignore[call-overload]
        f"{name}_params",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )
    return model


def validate_params(model: type[BaseModel], params: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate ``params`` against ``model``; raise SpecError naming ``where`` and the key."""
    try:
        obj = model.model_validate(params)
    except ValidationError as exc:
        allowed = ", ".join(sorted(model.model_fields)) or "(none)"
        msgs = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "?"
            if err["type"] == "extra_forbidden":
                msgs.append(f"unknown key '{key}'{did_you_mean(key, model.model_fields)} (allowed: {allowed})")
            elif err["type"] == "missing":
                msgs.append(f"missing required key '{key}'")
            else:
                msgs.append(f"bad value for '{key}': {err['msg'].lower()} (got {err.get('input')!r})")
        raise SpecError(f"{where}: " + "; ".join(msgs)) from None
    return {k: getattr(obj, k) for k in model.model_fields}


@dataclass(frozen=True)
class StepInfo:
    name: str
    fn: Callable[..., Any]
    params: type[BaseModel]
    doc: str
    #: ``map`` (row-local), ``frame`` (whole table) or ``join`` (named input tables)
    kind: str = "map"
    #: input tables a join needs / may take; ``any_inputs``: it takes any names (``**tables``)
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    any_inputs: bool = False
    #: a ``map`` step runs in chunks on the build's runner; ``False``: on the driver, one call
    parallel: bool = True
    #: ``fingerprint(**params)``: files outside the sources a step reads (e.g. a benchmark's
    #: truth CSV); their size and mtime decide whether a build is up to date, like a source's
    fingerprint: Callable[..., list[Path]] | None = None


@dataclass(frozen=True)
class SourceInfo:
    name: str
    fn: Callable[..., Any]
    params: type[BaseModel]
    env: str
    doc: str
    sample: Callable[[Path], None] | None = None
    fingerprint: Callable[..., list[Path]] | None = None


@dataclass(frozen=True)
class RewardInfo:
    name: str
    fn: Callable[..., Any]
    params: type[BaseModel]
    doc: str
    max_score: float = 1.0
    tasks: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TaskInfo:
    name: str
    score: Callable[..., Any]
    doc: str
    #: the benchmark code the scorer follows: ``owner/repo path`` (docs/eval.md)
    reference: str


@dataclass(frozen=True)
class FormatInfo:
    name: str
    fn: Callable[..., Any]
    doc: str


STEPS: dict[str, StepInfo] = {}
SOURCES: dict[str, SourceInfo] = {}
REWARDS: dict[str, RewardInfo] = {}
TASKS: dict[str, TaskInfo] = {}
FORMATS: dict[str, FormatInfo] = {}


def _doc(fn: Callable[..., Any]) -> str:
    return (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")


def step(
    name: str, *, kind: str, parallel: bool = True, fingerprint: Callable[..., list[Path]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(df, ctx, *, ...)`` as the pipeline step ``name`` of ``kind`` (map, frame, join).

    ``parallel=False`` (map steps only) runs the step on the driver over the whole frame, e.g.
    one that calls a remote server under one concurrency bound and cache. ``fingerprint(**params)``
    lists the files outside the sources that the step reads (a benchmark's truth CSV): the plan
    adds their size and mtime to the build's fingerprint, as it does a source's files.
    """
    if kind not in STEP_KINDS:
        raise ValueError(f"step '{name}': kind must be one of {STEP_KINDS}, got {kind!r}")
    if not parallel and kind != "map":
        raise ValueError(f"step '{name}': parallel=False is for map steps (kind={kind} runs on the driver)")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in STEPS and STEPS[name].fn is not fn:
            raise ValueError(f"step '{name}' is registered twice")
        req, opt, var = table_inputs(fn)
        if bool(req or opt or var) != (kind == "join"):
            raise ValueError(f"step '{name}': only a join step takes input tables (kind={kind})")
        STEPS[name] = StepInfo(name, fn, params_model(fn, name, skip=2), _doc(fn), kind, req, opt, var,
                               parallel=kind == "map" and parallel, fingerprint=fingerprint)
        return fn

    return deco


def source(
    name: str,
    *,
    env: str,
    sample: Callable[[Path], None] | None = None,
    fingerprint: Callable[..., list[Path]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(ctx, *, root, ...)`` as the source reader ``name``.

    ``env`` is the environment variable that locates the source (``MP16_ROOT``);
    ``sample(dir)`` writes a small copy in the real layout; ``fingerprint(root, **params)``
    lists the input files whose size and mtime decide whether a build is up to date
    (default: every file under ``root``).
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        SOURCES[name] = SourceInfo(
            name, fn, params_model(fn, name, skip=1, exclude=("root",)), env, _doc(fn), sample, fingerprint
        )
        return fn

    return deco


def reward(
    name: str, *, max_score: float = 1.0, tasks: tuple[str, ...] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a batch reward ``fn(completions, solutions, **params) -> np.ndarray``.

    ``tasks`` lists the dataset ``task`` values this reward scores by default.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        REWARDS[name] = RewardInfo(
            name, fn, params_model(fn, name, skip=2), _doc(fn), max_score, tuple(tasks)
        )
        return fn

    return deco


def task(name: str, *, reference: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(completions, solutions, ctx) -> TaskResult`` as the scorer of task ``name``.

    ``reference`` is the benchmark code the scorer follows (``owner/repo path``).
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in TASKS and TASKS[name].score is not fn:
            raise ValueError(f"task '{name}' is registered twice")
        TASKS[name] = TaskInfo(name, fn, _doc(fn), reference)
        return fn

    return deco


def output_format(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(df, root, prefix, *, config, split, output, ...)`` as the output format ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        FORMATS[name] = FormatInfo(name, fn, _doc(fn))
        return fn

    return deco


#: the packages whose modules register steps, sources, rewards, tasks and output formats when
#: imported; a new module in one of these folders is found without editing any list
PLUGIN_PACKAGES = ("geodata.sources", "geodata.steps", "geodata.tasks", "geodata.formats")
#: entry-point group through which other installed packages add their own modules
ENTRY_POINT_GROUP = "geodata.plugins"
_loaded = False


def _load_all() -> None:
    """Import every module of :data:`PLUGIN_PACKAGES` and of the ``geodata.plugins`` entry points.

    Discovery is by name (``pkgutil``/``importlib``), so this module imports none of the
    packages that import it: there is no import circle, and adding a source, step or reward
    is adding one file in its folder.
    """
    global _loaded
    if _loaded:
        return
    import importlib
    import pkgutil
    from importlib.metadata import entry_points

    for pkg_name in PLUGIN_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in sorted(pkgutil.walk_packages(pkg.__path__, prefix=pkg_name + "."), key=lambda m: m.name):
            importlib.import_module(mod.name)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        importlib.import_module(ep.value)
    _loaded = True


def _get(table: dict[str, Any], kind: str, name: str) -> Any:
    _load_all()
    if name not in table:
        allowed = ", ".join(sorted(table))
        raise SpecError(f"unknown {kind} '{name}' (allowed: {allowed})")
    return table[name]


def get_step(name: str) -> StepInfo:
    return _get(STEPS, "step", name)


def get_source(name: str) -> SourceInfo:
    return _get(SOURCES, "source", name)


def get_reward(name: str) -> RewardInfo:
    return _get(REWARDS, "reward", name)


def get_task(name: str) -> TaskInfo:
    """The scorer registered for rows whose ``task`` column is ``name``."""
    _load_all()
    if name not in TASKS:
        raise SpecError(f"no scorer for task '{name}' (tasks: {', '.join(sorted(TASKS))})")
    return TASKS[name]


def get_format(name: str) -> FormatInfo:
    return _get(FORMATS, "output format", name)


def reward_for_task(task: str) -> RewardInfo:
    """The reward registered for dataset rows whose ``task`` column is ``task``."""
    _load_all()
    for info in REWARDS.values():
        if task in info.tasks:
            return info
    known = sorted({t for r in REWARDS.values() for t in r.tasks})
    raise SpecError(f"no reward for task '{task}' (tasks with a reward: {', '.join(known)})")
