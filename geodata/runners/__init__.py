"""Runners: where the parallel parts of a build run — ``map`` steps and the image plane.

A runner maps a function over chunks **in order**, with a bounded number of chunks in flight,
so the driver sees the same chunks in the same order whatever the runner or the worker count:
chunks, shard boundaries and bytes are fixed by the plan, never by timing.

* ``map`` steps: the rows are cut into consecutive chunks of ``output.map_chunk_rows``; each
  chunk runs in :func:`run_map_chunk` (the step looked up by name, a context with
  ``part=i``) and the outputs are merged in chunk order (:meth:`StepOutput.combine
  <geodata.context.StepOutput.combine>`). A frame of at most ``map_chunk_rows`` rows is one
  call in this process. ``frame`` and ``join`` steps, and map steps registered with
  ``parallel=False``, run on the driver.
* the image plane (read, decode check, embed) of the writer, per row group
  (``row_group_rows``, ``shard_max_mb``).

* ``local`` — in this process (``workers=1``, the default) or a pool of N processes;
* ``ray`` — Ray tasks, on a local Ray (``ray.init(num_cpus=N)``) or the cluster named by
  ``RAY_ADDRESS``. Ray is an optional extra (``pip install 'geodata[ray]'``), imported only
  when this runner starts.

**Worker faults.** A chunk whose worker process dies (a native crash, the kernel's
out-of-memory killer, a ``kill``) is run again, up to ``max_retries`` times (default 2) — the
same chunk, so the build writes the same bytes as one without the fault; a chunk that still
kills its worker ends the build with :class:`WorkerLost`, one line naming the chunk (the map
step and its rows, or the split and row group with its row ids). An exception raised *by* the
step is not retried: it is the build's error, as with one process. With ``workers=1`` the chunk
runs in the build's own process, so nothing survives a crash to retry it.

>>> from geodata.runners import get_runner
>>> with get_runner("local", workers=1) as run:
...     list(run.imap(pow, [(2, 3), (3, 2)]))
[8, 9]

Adding a runner is one module here with a class that has ``name``, ``workers``,
``imap(fn, args)`` and ``close()``, and one line in :data:`RUNNERS`.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from ..errors import BuildError, SpecError

__all__ = ["Runner", "InProcess", "get_runner", "resolve_workers", "run_map_chunk", "RUNNERS", "WorkerLost",
           "describe_chunk", "DEFAULT_MAX_RETRIES"]

#: how many times a chunk whose worker died is run again before the build gives up
DEFAULT_MAX_RETRIES = 2

#: ``describe(i, args) -> str``: names chunk ``i`` (its rows) in a :class:`WorkerLost` message
Describe = Callable[[int, tuple], str]


class WorkerLost(BuildError):
    """A chunk killed its worker process more often than ``max_retries`` allows."""

#: runner name -> "module:Class" (imported on use, so ``import geodata`` stays light)
RUNNERS = {"local": "geodata.runners.local:LocalRunner", "ray": "geodata.runners.ray:RayRunner"}


def resolve_workers(workers: int | str | None) -> int:
    """The worker count: ``None`` → 1; ``0`` or ``"auto"`` → every core this process may use.

    >>> resolve_workers(None), resolve_workers("3"), resolve_workers(2)
    (1, 3, 2)
    >>> resolve_workers("auto") == resolve_workers(0) >= 1
    True
    """
    if workers is None:
        return 1
    if isinstance(workers, str):
        w = workers.strip().lower()
        if w == "auto":
            workers = 0
        elif w.isdigit():
            workers = int(w)
        else:
            raise SpecError(f"--workers: expected a number or 'auto', got '{workers}'")
    if workers < 0:
        raise SpecError(f"--workers: must be >= 0 (0 = all cores), got {workers}")
    if workers == 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    return int(workers)


class Runner:
    """Base class: ``imap(fn, args)`` yields ``fn(*a)`` for each ``a`` of ``args``, in order.

    A runner is a context manager; leaving it releases its workers. Subclasses start their
    workers on :meth:`start` (the build calls it first, so workers import geodata while the
    driver reads the sources) or else on the first :meth:`imap`.
    """

    name = "local"

    def __init__(self, workers: int | str | None = 1, max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self.workers = resolve_workers(workers)
        if not isinstance(max_retries, int) or max_retries < 0:
            raise SpecError(f"runner max_retries: must be an integer >= 0, got {max_retries!r}")
        self.max_retries = max_retries

    @property
    def window(self) -> int:
        """Chunks in flight at most (memory is bounded by this × one row group)."""
        return 2 * self.workers

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple], describe: Describe | None = None) -> Iterator[Any]:
        """``fn(*a)`` for each ``a`` of ``args``, in order; ``describe(i, a)`` names chunk ``i`` in errors."""
        for a in args:
            yield fn(*a)

    def lost(self, what: str, deaths: int) -> WorkerLost:
        """The one-line error for a chunk (``what``) that killed its worker ``deaths`` times."""
        return WorkerLost(
            f"{what}: its worker process died {deaths} time{'s' if deaths != 1 else ''} "
            f"(--runner {self.name} --workers {self.workers}, max_retries={self.max_retries}); a native crash "
            f"or the out-of-memory killer on these rows: look at their inputs (their images first), or give "
            f"each worker more memory (fewer --workers)"
        )

    def start(self) -> None:
        """Start the workers without waiting for them (nothing to start in this process)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcess(Runner):
    """The single-process path: each chunk is embedded here, one after the other."""


def ordered_window(submit: Callable[[tuple], Any], result: Callable[[Any], Any],
                   args: Iterable[tuple], window: int) -> Iterator[Any]:
    """Submit ``args`` keeping at most ``window`` pending, and yield results in submit order.

    >>> list(ordered_window(lambda a: a[0] * 10, lambda h: h, [(1,), (2,), (3,)], 2))
    [10, 20, 30]
    """
    pending: deque = deque()
    it = iter(args)
    for a in it:
        pending.append(submit(a))
        if len(pending) >= window:
            break
    while pending:
        out = result(pending.popleft())  # the others keep running meanwhile
        for a in it:  # refill the slot: never more than ``window`` in flight
            pending.append(submit(a))
            break
        yield out


def _ids(rows: Any) -> str:
    """``, ids A … B`` of a frame with an ``id`` column (else empty)."""
    try:
        ids = rows["id"]
    except Exception:  # noqa: BLE001 - no id column: the row numbers say it
        return ""
    if len(ids) == 0:
        return ""
    return f", ids {ids[0]} … {ids[-1]}" if len(ids) > 1 else f", id {ids[0]}"


def describe_chunk(fn: Callable[..., Any], i: int, a: tuple, start: int | None = None) -> str:
    """A chunk in words: the map step and its rows for :func:`run_map_chunk`, else its number.

    ``start`` is the chunk's first row in the step's input (the runner counts it).

    >>> import polars as pl
    >>> from geodata.context import StepContext
    >>> rows = pl.DataFrame({"id": ["a", "b", "c"]})
    >>> describe_chunk(run_map_chunk, 2, ("validate_coords", rows, StepContext(name="v", part=2), {}), 14)
    "map step 'v' (validate_coords) chunk 2: rows 14..16 of its input, ids a … c"
    """
    if fn is run_map_chunk and len(a) == 4:
        step, rows, ctx, _ = a
        n = getattr(rows, "height", 0)
        where = f"rows {start}..{start + n - 1} of its input" if start is not None else f"{n} rows"
        return f"map step '{getattr(ctx, 'name', step)}' ({step}) chunk {i}: {where}{_ids(rows)}"
    return f"chunk {i} of {getattr(fn, '__name__', fn)}"


def numbered(fn: Callable[..., Any], args: Iterable[tuple], describe: Describe | None
             ) -> Iterator[tuple[int, tuple, Callable[[], str]]]:
    """``(i, a, what)`` for each chunk; ``what()`` names it (``describe``, else :func:`describe_chunk`)."""
    start = 0
    for i, a in enumerate(args):
        if describe is not None:
            yield i, a, (lambda i=i, a=a: describe(i, a))
            continue
        s = start
        yield i, a, (lambda i=i, a=a, s=s: describe_chunk(fn, i, a, s))
        if fn is run_map_chunk and len(a) == 4:
            start += getattr(a[1], "height", 0)


def run_map_chunk(step: str, rows: Any, ctx: Any, params: dict[str, Any]) -> Any:
    """Run the registered map step ``step`` on one chunk: the worker side of a map step.

    Module-level, so a spawn child or a Ray worker imports it by reference; the step is looked
    up in the registry there (discovery runs in the worker, so plugin steps work the same).
    Returns a :class:`~geodata.context.StepOutput` (a bare DataFrame is wrapped), or what the
    step returned when it is neither, for the engine to report.

    >>> import polars as pl
    >>> from geodata.context import StepContext
    >>> df = pl.DataFrame({"lat": [1.0, 95.0], "lon": [2.0, 2.0]})
    >>> out = run_map_chunk("validate_coords", df, StepContext(name="v", part=1), {})
    >>> out.rows.height, out.drops
    (1, {'invalid_coordinates': 1})
    """
    import polars as pl

    from ..context import StepOutput
    from ..registry import get_step

    res = get_step(step).fn(rows, ctx, **params)
    return StepOutput(res) if isinstance(res, pl.DataFrame) else res


def get_runner(name: str | Runner | None = "local", workers: int | str | None = 1,
               max_retries: int = DEFAULT_MAX_RETRIES) -> Runner:
    """The runner called ``name`` (``local`` or ``ray``) with ``workers`` workers.

    ``max_retries``: how many times a chunk whose worker died is run again (see :class:`WorkerLost`).

    >>> get_runner("local", 1).workers
    1
    >>> get_runner("spark")
    Traceback (most recent call last):
    ...
    geodata.errors.SpecError: --runner: unknown runner 'spark' (known: local, ray)
    """
    if isinstance(name, Runner):
        return name
    key = (name or "local").strip().lower()
    if key not in RUNNERS:
        raise SpecError(f"--runner: unknown runner '{name}' (known: {', '.join(sorted(RUNNERS))})")
    import importlib

    mod, _, cls = RUNNERS[key].partition(":")
    return getattr(importlib.import_module(mod), cls)(workers, max_retries=max_retries)
