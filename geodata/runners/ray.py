"""The ``ray`` runner: Ray Data ``map_batches`` on a local Ray or the cluster in ``RAY_ADDRESS``.

``ray`` is imported only when the first chunk is submitted. Without ``RAY_ADDRESS`` (and
without a Ray already started in this process) a new local Ray is started with
``num_cpus=workers`` (``address="local"``: never a cluster found on the machine); with it,
this process joins that cluster as its driver. A Ray this runner started is shut down when it
closes; one already running is left alone.

Each call of :meth:`RayRunner.imap` is one Ray Data pipeline: the chunks (row groups of image
references, or row chunks of a ``map`` step) become the rows of a dataset, each pickled into
one binary cell; ``map_batches`` runs the function on them, one chunk per batch and one CPU
per task (at most ``workers`` tasks at once on a local Ray, the whole cluster otherwise), and
the driver streams the results back **in input order** (``preserve_order``), so it writes the
same shards as the ``local`` runner. Ray Data's streaming executor bounds what is in flight
by its object-store budget.

Workers must import the same ``geodata`` and read the image references at the same paths
as the driver (see docs/scale.md).
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Callable, Iterable, Iterator

from ..errors import BuildError
from . import Runner

__all__ = ["RayRunner"]


class RayRunner(Runner):
    name = "ray"

    def __init__(self, workers: int | str | None = 1) -> None:
        super().__init__(workers)
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

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple]) -> Iterator[Any]:
        ray = self._init()
        import ray.data

        items = [{"args": pickle.dumps(a, protocol=pickle.HIGHEST_PROTOCOL)} for a in args]
        if not items:
            return
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results come back in input order
        ctx.enable_progress_bars = False
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        on_cluster = bool(os.environ.get("RAY_ADDRESS"))
        ds = ds.map_batches(
            _apply, fn_kwargs={"fn": fn}, batch_size=1, batch_format="pyarrow", num_cpus=1,
            concurrency=None if on_cluster else self.workers,
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=self.workers):
            for cell in batch.column("out").to_pylist():
                yield pickle.loads(cell)

    def close(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._ray, self._started = None, False


def _apply(batch: Any, fn: Callable[..., Any]) -> Any:
    """One Ray Data batch of pickled argument tuples -> a batch of pickled results (same order)."""
    import pyarrow as pa

    out = [pickle.dumps(fn(*pickle.loads(cell)), protocol=pickle.HIGHEST_PROTOCOL)
           for cell in batch.column("args").to_pylist()]
    return pa.table({"out": pa.array(out, type=pa.large_binary())})
