"""The ``local`` runner: this process (1 worker) or a pool of processes on this machine.

Workers are started with the ``spawn`` method (no forked copies of polars' or Arrow's thread
pools) when the build starts (:meth:`LocalRunner.start`: each imports the image plane while
the driver reads the sources and runs the frame steps), and each gets one chunk at a time; at most ``2 × workers`` chunks
are in flight, and results come back in submission order.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterable, Iterator

from . import Runner, ordered_window

__all__ = ["LocalRunner"]


class LocalRunner(Runner):
    """``workers=1``: today's single-process loop; ``workers=N``: N processes, ordered, bounded."""

    name = "local"

    def __init__(self, workers: int | str | None = 1) -> None:
        super().__init__(workers)
        self._pool: ProcessPoolExecutor | None = None

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        return self._pool

    def start(self) -> None:
        """Spawn the ``workers`` processes now; each imports the image plane in the background."""
        if self.workers > 1 and self._pool is None:
            pool = self._started()
            for _ in range(self.workers):
                pool.submit(_warm)

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple]) -> Iterator[Any]:
        if self.workers <= 1:
            yield from super().imap(fn, args)
            return
        pool = self._started()
        yield from ordered_window(lambda a: pool.submit(fn, *a), lambda f: f.result(), args, self.window)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


#: what a worker imports before its first task (the image plane and the step registry)
_WARM = ("geodata.registry", "geodata.dataset.writer")


def _warm() -> None:
    """A worker's first task: import what the image plane and the map steps use."""
    import importlib

    for name in _WARM:  # by name: the runners sit below the dataset folder they serve
        importlib.import_module(name)
