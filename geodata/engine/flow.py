"""The flow of a build: source readers, then the spec's steps, each output checked and collected.

The engine alone runs readers and steps, hands each its read-only context and the tables a
join names, checks what it returned (:class:`~geodata.context.StepOutput`), counts its drops
against ``max_drop_fraction`` and hands the rows on. Nothing is passed through shared state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..context import StepContext, StepOutput
from ..errors import BuildError, SourceError
from ..registry import get_source, get_step
from ..runners import InProcess, run_map_chunk
from ..schema import images_missing
from ..spec import Spec

__all__ = ["Flow", "StepStat", "read_sources", "run_steps", "DATA_LOSS_REASONS", "loss_reason"]

log = logging.getLogger("geodata")

#: drop reasons that mean input data was lost, as opposed to an intended selection (sampling,
#: de-duplication, hotspot exclusion ...). A reader or step that drops more than the spec's
#: ``max_drop_fraction`` of the rows entering it for one of these fails the build. Readers may
#: prefix a reason with their dataset (``"dota: missing image"``): see :func:`loss_reason`.
DATA_LOSS_REASONS = frozenset({
    "missing_image", "undecodable_image", "image_too_large", "invalid_coordinates", "no_coordinates",
    "malformed_line", "malformed_record", "malformed_object", "bad_record", "bad_shard", "missing_annotation",
})


@dataclass
class StepStat:
    step: str
    rows_in: int
    rows_out: int
    seconds: float
    drops: dict[str, int] = field(default_factory=dict)


@dataclass
class Flow:
    """The tables and facts of one build so far; owned by the engine, never handed to a step.

    ``tables`` maps every name a join may give in ``inputs`` (the sources and
    ``<source>.<table>`` for what their readers provide, then ``<step>.<table>`` and
    ``<step>`` for what earlier steps provide) to its table;
    ``emitted`` holds the further configs to write, ``notes`` the notes in step order.
    """

    seed: int = 0
    spec_path: Path | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    emitted: dict[str, pl.DataFrame] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    #: the build's live display (None when not shown); steps get it as ``ctx.progress``
    progress: Any = None

    def context(self, name: str, part: int = 0) -> StepContext:
        """The read-only context of the step or reader ``name`` (``part``: a map step's chunk)."""
        return StepContext(seed=self.seed, name=name, limits=self.limits, spec_path=self.spec_path, part=part,
                           progress=self.progress)

    def collect(self, name: str, res: Any, what: str) -> StepOutput:
        """Check what a step or reader returned; merge its notes and emitted tables in order."""
        res = _as_output(res, what)
        for reason, n in res.drops.items():
            log.info("%s: dropped %d rows (%s)", name, n, reason)
        self.notes.update(res.notes)
        self.emitted.update(res.tables)
        return res

    def inputs(self, key: str, refs: dict[str, str]) -> dict[str, pl.DataFrame]:
        """The tables a join names in its spec ``inputs``, by parameter name."""
        missing = {n: r for n, r in refs.items() if r not in self.tables}
        if missing:
            n, r = next(iter(missing.items()))
            raise BuildError(f"step '{key}': input {n}: no table '{r}' (tables so far: {', '.join(self.tables)})")
        return {n: self.tables[r] for n, r in refs.items()}


def _as_output(res: Any, what: str) -> StepOutput:
    """``res`` as a StepOutput with rows, or a BuildError naming ``what``."""
    if isinstance(res, pl.DataFrame):
        res = StepOutput(res)
    if not isinstance(res, StepOutput) or not isinstance(res.rows, pl.DataFrame):
        got = type(res.rows if isinstance(res, StepOutput) else res).__name__
        raise BuildError(f"{what} returned {got}, not a polars DataFrame (or a StepOutput with rows)")
    return res


def _run_map(info: Any, key: str, params: dict[str, Any], df: pl.DataFrame, flow: Flow,
             runner: Any, chunk_rows: int, what: str) -> StepOutput:
    """Run the map step ``info`` in consecutive chunks of ``chunk_rows`` rows on ``runner``.

    The chunks depend on the plan only (``output.map_chunk_rows``), and their outputs are
    merged in chunk order by :meth:`StepOutput.combine`, so every runner and worker count
    gives the same rows, drops and notes. A frame of at most ``chunk_rows`` rows is one call
    here, with the context of an unchunked step (``part=0``).
    """
    if df.height <= chunk_rows:
        return StepOutput.combine([_as_output(info.fn(df, flow.context(key), **params), what)], key)
    args = ((info.name, df.slice(start, chunk_rows), flow.context(key, part=i), params)
            for i, start in enumerate(range(0, df.height, chunk_rows)))
    parts = [_as_output(res, f"{what} (chunk {i})")
             for i, res in enumerate((runner or InProcess()).imap(run_map_chunk, args))]
    return StepOutput.combine(parts, key)


def loss_reason(reason: str) -> str | None:
    """The data-loss reason behind a drop reason, or None for an intended selection.

    Examples
    --------
    >>> loss_reason("missing_image"), loss_reason("dota: missing image"), loss_reason("not_sampled")
    ('missing_image', 'missing_image', None)
    """
    kind = reason.rsplit(": ", 1)[-1].strip().lower().replace(" ", "_")
    return kind if kind in DATA_LOSS_REASONS else None


def _missing_ids(df: pl.DataFrame | None, column: str = "images") -> list[str]:
    if df is None or "id" not in df.columns or column not in df.columns:
        return []
    return [str(x) for x in df.filter(images_missing(pl.col(column)))["id"].head(3).to_list()]


def _likely_cause(
    kind: str, source: str, spec: Spec, ctx: Flow, roots: dict[str, Path],
    df_in: pl.DataFrame | None, examples: list[str],
) -> str:
    src = spec.sources.get(source)
    reader = src.reader if src is not None else source
    root = roots.get(source)
    if kind == "missing_image":
        layout = ctx.notes.get(f"{reader}.image_layout")
        if layout is None:
            layout = next((v for k, v in sorted(ctx.notes.items()) if k.endswith(".image_layout")), "unknown")
        ex = examples or list(ctx.notes.get(f"{reader}.missing_examples") or [])[:3] or _missing_ids(df_in)
        env = ""
        try:
            env = get_source(reader).env
        except Exception:  # noqa: BLE001 - only for the message
            pass
        return (
            f"images of source '{source}' were looked for under {root} (layout: {layout}); "
            f"not found: {', '.join(repr(e) for e in ex) or '(no ids)'}; check {env or 'the root'} "
            f"and the image layout (`geodata catalog {reader}`)"
        )
    if kind in ("undecodable_image", "image_too_large"):
        ex = ", ".join(repr(e) for e in examples)
        what = (f"images larger than max_image_pixels={spec.max_image_pixels}" if kind == "image_too_large"
                else "image files that exist but do not decode (truncated, or not images)")
        return f"{what}{' e.g. ' + ex if ex else ''} in source '{source}' under {root}"
    if kind in ("invalid_coordinates", "no_coordinates"):
        return f"lat/lon null, not numeric, out of range or (0, 0) in source '{source}' under {root}: are they the right columns?"
    return f"records of source '{source}' under {root} that do not parse: is it the right file and format?"


def _check_losses(
    step: str, rows_in: int, drops: dict[str, int], spec: Spec, ctx: Flow, roots: dict[str, Path],
    source: str, df_in: pl.DataFrame | None = None, examples: dict[str, list[str]] | None = None,
) -> None:
    """Fail when ``step`` lost more than ``max_drop_fraction`` of ``rows_in`` for one data-loss reason."""
    if rows_in <= 0:
        return
    limit = spec.max_drop_fraction
    for reason, n in sorted(drops.items(), key=lambda kv: -kv[1]):
        kind = loss_reason(reason)
        if kind is None or n <= limit * rows_in:
            continue
        cause = _likely_cause(kind, source, spec, ctx, roots, df_in, (examples or {}).get(reason, []))
        raise BuildError(
            f"{spec.name}: {step} lost {n} of {rows_in} rows ({n / rows_in:.0%}) as '{reason}', more than "
            f"max_drop_fraction={limit:g}: {cause} (raise max_drop_fraction in the spec if this is expected)"
        )


def read_sources(spec: Spec, flow: Flow, roots: dict[str, Path]) -> list[StepStat]:
    """Run each source reader with its own context; its rows become table ``<source name>``
    and each table it provides ``<source name>.<table>``.

    A source with no rows, or one that lost too many for one data-loss reason, is an error.
    """
    stats = []
    for name, src in spec.sources.items():
        info = get_source(src.reader)
        key = f"read:{name}"
        t = time.perf_counter()
        res = flow.collect(key, info.fn(flow.context(key), root=roots[name], **src.params),
                           f"source '{name}' ({src.reader})")
        df, drops = res.rows, dict(res.drops)
        seen = df.height + sum(drops.values())
        _check_losses(key, seen, drops, spec, flow, roots, name)
        if df.height == 0:
            lost = ", ".join(f"{k}: {v}" for k, v in sorted(drops.items()))
            raise SourceError(
                f"source '{name}' ({src.reader}): no rows under {roots[name]}"
                + (f" (dropped {lost})" if lost else "") + "; a build needs at least one"
            )
        flow.tables[name] = df
        for tname, table in res.provides.items():  # e.g. mp16.image_sizes
            flow.tables[f"{name}.{tname}"] = table
        stats.append(StepStat(key, 0, df.height, time.perf_counter() - t, drops))
    return stats


def run_steps(
    spec: Spec, flow: Flow, progress: Any = None, roots: dict[str, Path] | None = None,
    runner: Any = None,
) -> tuple[pl.DataFrame, list[StepStat]]:
    """Apply the spec's steps in order to its input table; return rows and per-step stats.

    Each step gets a fresh read-only context and, for a join, the tables its ``inputs`` name.
    A ``map`` step runs on ``runner`` (default: this process) in chunks of
    ``spec.output.map_chunk_rows`` rows (see :func:`_run_map`); one registered with
    ``parallel=False``, and ``frame`` and ``join`` steps, run here over the whole frame.
    A step that loses more than ``spec.max_drop_fraction`` of its rows for one data-loss
    reason, or leaves no rows, fails the build with the reason, the count and a likely cause.
    """
    df = flow.tables[spec.input_name]
    roots = roots or {}
    stats = []
    for st in spec.steps:
        info = get_step(st.step)
        if progress is not None:
            progress(st.key)
        t = time.perf_counter()
        rows_in = df.height
        tables = flow.inputs(st.key, st.inputs) if info.kind == "join" else {}
        what = f"step '{st.key}'"
        if info.kind == "map":  # parallel=False: one chunk, the whole frame, on the driver
            chunk = spec.output.map_chunk_rows if info.parallel else max(df.height, 1)
            res = _run_map(info, st.key, st.params, df, flow, runner, chunk, what)
        else:
            res = info.fn(df, flow.context(st.key), **st.params, **tables)
        res = flow.collect(st.key, res, what)
        for tname, table in res.provides.items():
            flow.tables[f"{st.key}.{tname}"] = table
        if len(res.provides) == 1:
            flow.tables[st.key] = next(iter(res.provides.values()))
        out, drops = res.rows, dict(res.drops)
        stats.append(StepStat(st.key, rows_in, out.height, time.perf_counter() - t, drops))
        _check_losses(f"step '{st.key}'", rows_in, drops, spec, flow, roots, spec.input_name, df_in=df)
        if out.height == 0 and rows_in > 0:
            lost = ", ".join(f"{k}: {v}" for k, v in sorted(drops.items())) or "no drops recorded"
            raise BuildError(f"{spec.name}: step '{st.key}' left 0 of {rows_in} rows ({lost}); a build needs at least one")
        df = out
    return df, stats
