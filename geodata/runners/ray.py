"""The ``ray`` runner: chunks as Ray tasks, on a local Ray or the cluster in ``RAY_ADDRESS``.

``ray`` is imported only when the first chunk is submitted. Without ``RAY_ADDRESS`` (and
without a Ray already started in this process) a new local Ray is started with
``num_cpus=workers`` (``address="local"``: never a cluster found on the machine); with it, this process joins that cluster as its driver. Each chunk is
one task (one CPU); at most ``2 × workers`` are in flight and results are taken in
submission order, so the driver writes the same shards as the ``local`` runner. A Ray this
runner started is shut down when it closes; one already running is left alone.

Workers must import the same ``geodata`` and read the image references at the same paths
as the driver (see docs/scale.md).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator

from ..errors import BuildError
from . import Runner, ordered_window

__all__ = ["RayRunner"]


class RayRunner(Runner):
    name = "ray"

    def __init__(self, workers: int | str | None = 1) -> None:
        super().__init__(workers)
        self._ray: Any = None
        self._started = False
        self._remote: dict[Any, Any] = {}

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

    @property
    def window(self) -> int:
        if self._ray is not None and os.environ.get("RAY_ADDRESS"):
            # on a cluster, keep every CPU of it busy (still bounded)
            cpus = int(self._ray.cluster_resources().get("CPU", self.workers))
            return 2 * max(cpus, 1)
        return 2 * self.workers

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple]) -> Iterator[Any]:
        ray = self._init()
        task = self._remote.get(fn)
        if task is None:
            task = self._remote[fn] = ray.remote(num_cpus=1, max_retries=3)(fn)
        yield from ordered_window(lambda a: task.remote(*a), ray.get, args, self.window)

    def close(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._ray, self._started = None, False
        self._remote.clear()
