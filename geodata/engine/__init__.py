"""Run a pipeline spec: plan, read sources, apply steps, write the dataset, swap it in.

A build is

* **fingerprinted** (:mod:`~geodata.engine.plan`): the resolved spec, the inputs' file stats and
  the geodata version give one sha256; if ``datasets/<name>/manifest.json`` holds the same one,
  nothing is done;
* **a flow of steps** (:mod:`~geodata.engine.flow`): readers, then steps, each output checked;
* **written** (:mod:`~geodata.engine.write`) in the spec's output format into a hidden sibling
  folder, and swapped in by rename at the end, so a killed build never leaves a half-written
  dataset in place (:func:`geodata.dataset.ownership.swap_in`);
* **deterministic**: the same spec, inputs and seed give byte-identical shards.

Where each source's files are (the spec's ``root``, ``$<ENV>`` or the embedded sample) is
:mod:`~geodata.engine.roots`, shared with ``geodata check``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..dataset import ownership as own
from ..dataset.layout import IMAGES_SIDECAR
from ..runners import get_runner
from ..spec import Spec, load_spec
from .flow import DATA_LOSS_REASONS, Flow, StepStat, loss_reason, read_sources, run_steps
from .plan import Plan, check_not_downgraded, make_plan, up_to_date
from .roots import data_dir, resolve_root, sample_root, write_sample_to
from .write import select_rows, write_dataset

__all__ = [
    "build", "BuildResult", "Plan", "data_dir", "sample_root", "resolve_root", "write_sample_to", "run_steps",
    "read_sources", "Flow", "StepStat", "DATA_LOSS_REASONS", "loss_reason", "IMAGES_SIDECAR",
]


@dataclass
class BuildResult:
    """What a build did: ``status`` is ``built`` or ``up to date``."""

    name: str
    path: Path
    status: str
    fingerprint: str
    rows: int = 0
    configs: dict[str, dict[str, int]] = field(default_factory=dict)
    steps: list[StepStat] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def build(
    name_or_path: str | Path | Spec,
    sets: Iterable[str] = (),
    out: Path | None = None,
    force: bool = False,
    progress: bool = False,
    runner: str | Any = "local",
    workers: int | str | None = 1,
) -> BuildResult:
    """Build one dataset from its spec: plan → read → steps → write → swap in.

    ``name_or_path`` is a pipeline name (``mp16-rand-500k`` → ``pipelines/mp16-rand-500k.yaml``),
    a YAML path or a :class:`~geodata.spec.Spec`; ``sets`` are ``key.path=value`` overrides.
    ``out`` (default ``datasets/<name>``) must be missing, empty or a dataset geodata built
    (:mod:`geodata.dataset.ownership`); files in it that geodata did not write are kept.
    ``force`` rebuilds an up-to-date folder; ``progress`` shows a live display on stderr.
    ``runner``/``workers`` say where map steps and the image plane run (:mod:`geodata.runners`:
    ``local`` with ``workers=1`` this process, ``0``/``"auto"`` all cores, or ``ray``): the
    bytes are the same whatever they are, and neither is recorded in the fingerprint or card.
    """
    from .._progress import BuildProgress

    t0 = time.perf_counter()
    spec = name_or_path if isinstance(name_or_path, Spec) else load_spec(name_or_path, sets)
    run = get_runner(runner, workers)  # checked before the up-to-date test; starts nothing yet
    plan = make_plan(spec, out)
    if not force:
        check_not_downgraded(plan)  # never the sample's over a dataset built from the user's input
    old = None if force else up_to_date(plan)
    if old is not None:
        return _result(plan, "up to date", old)
    ui = BuildProgress(spec.name, enabled=progress)
    flow = Flow(seed=spec.seed, spec_path=spec.path, limits=dict(plan.limits), progress=ui if progress else None)
    tmp: Path | None = None
    try:
        with ui, run:
            run.start()  # workers start up while this process reads the sources
            ui.stage("reading sources")
            stats = read_sources(spec, flow, plan.roots)
            df, step_stats = run_steps(spec, flow, progress=ui.stage, roots=plan.roots, runner=run)
            stats += step_stats
            rows = select_rows(df, spec)
            tmp = own.make_temp(plan.out)
            manifest = write_dataset(plan, flow, rows, stats, tmp, ui, run)  # stats gains the write line
        own.swap_in(tmp, plan.out)
    except BaseException:
        if tmp is not None:
            own.remove_temp(tmp)
        raise
    return _result(plan, "built", manifest, steps=stats, drops=manifest.stats.drops, notes=dict(flow.notes),
                   seconds=time.perf_counter() - t0)


def _result(plan: Plan, status: str, manifest: Any, **facts: Any) -> BuildResult:
    configs = {c: {s: v.num_rows for s, v in sp.items()} for c, sp in manifest.configs.items()}
    return BuildResult(plan.spec.name, plan.out, status, plan.fingerprint, rows=manifest.rows, configs=configs, **facts)
