"""The ``ray`` runner: Ray tasks on a local Ray or the cluster in ``RAY_ADDRESS``.

``ray`` is imported only when the first chunk is submitted. Without ``RAY_ADDRESS`` (and
without a Ray already started in this process) a new local Ray is started with
``num_cpus=workers`` (``address="local"``: never a cluster found on the machine); with it,
this process joins that cluster as its driver. A Ray this runner started is shut down when it
closes; one already running is left alone.

Each chunk (a row group of image references, or a row chunk of a ``map`` step) is one Ray
task with one CPU; at most ``2 × workers`` tasks are in flight on a local Ray (``2 × the
cluster's CPUs`` on a cluster), and the driver takes the results back **in submission
order** (the same window as the ``local`` runner), so it writes the same shards.

A task whose worker process dies (a native crash, Ray's memory monitor, a lost node) is
retried by Ray up to ``max_retries`` times (Ray's own default would retry it forever); a chunk
that still kills its worker ends the build with :class:`~geodata.runners.WorkerLost`, naming
the chunk. An exception raised by the step is not retried (``retry_exceptions=False``): a
geodata error comes back as itself, one line.

Workers must import the same ``geodata`` and read the image references at the same paths
as the driver (see docs/scale.md).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator

from ..errors import BuildError, GeodataError
from . import DEFAULT_MAX_RETRIES, Describe, Runner, numbered, ordered_window

__all__ = ["RayRunner"]


class RayRunner(Runner):
    name = "ray"

    def __init__(self, workers: int | str | None = 1, max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        super().__init__(workers, max_retries=max_retries)
        self._ray: Any = None
        self._started = False

    def _init(self) -> Any:
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError:
            raise BuildError("--runner ray: ray is not installed (pip install 'geodata[ray]')") from None
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
            if not os.environ.get("RAY_ADDRESS"):
                # a new local Ray, even if a `ray start` cluster runs on this machine
                kw.update(address="local", num_cpus=self.workers)
            try:
                ray.init(**kw)
            except Exception as exc:  # one line, not Ray's traceback
                where = f"RAY_ADDRESS={os.environ['RAY_ADDRESS']}" if os.environ.get("RAY_ADDRESS") else "a local Ray"
                msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise BuildError(f"--runner ray: could not start or join {where}: {msg}") from None
            self._started = True
        self._ray = ray
        return ray

    def _window(self, ray: Any) -> int:
        if os.environ.get("RAY_ADDRESS"):
            return max(self.window, 2 * int(ray.cluster_resources().get("CPU", self.workers)))
        return self.window

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple], describe: Describe | None = None) -> Iterator[Any]:
        ray = self._init()
        from ray.exceptions import LocalRayletDiedError, NodeDiedError, OutOfMemoryError, RayTaskError, WorkerCrashedError

        died = (WorkerCrashedError, OutOfMemoryError, NodeDiedError, LocalRayletDiedError)
        task = ray.remote(_call).options(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)

        def submit(chunk: tuple) -> tuple:
            _, a, what = chunk
            return task.remote(fn, *a), what

        def result(handle: tuple) -> Any:
            ref, what = handle
            try:
                return ray.get(ref)
            except died:
                raise self.lost(what(), self.max_retries + 1) from None
            except RayTaskError as exc:  # the step's own error: a geodata error is its one line
                cause = getattr(exc, "cause", None)
                if isinstance(cause, GeodataError):
                    raise cause from None
                raise

        yield from ordered_window(submit, result, numbered(fn, args, describe), self._window(ray))

    def close(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._ray, self._started = None, False


def _call(fn: Callable[..., Any], *a: Any) -> Any:
    """One chunk on a Ray worker: ``fn(*a)`` (``fn`` is imported there by reference)."""
    return fn(*a)
