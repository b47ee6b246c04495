"""The ``local`` runner: this process (1 worker) or a pool of processes on this machine.

Workers are started with the ``spawn`` method (no forked copies of polars' or Arrow's thread
pools) when the build starts (:meth:`LocalRunner.start`: each imports the image plane while
the driver reads the sources and runs the frame steps), and each gets one chunk at a time; at most ``2 × workers`` chunks
are in flight, and results come back in submission order.

A worker that dies (a native crash, the out-of-memory killer, a ``kill``) breaks the whole
pool, failing every chunk in flight; the runner starts a new pool and runs those chunks again
**one at a time**, so a chunk that kills its worker again is known for sure. A chunk is run
again at most ``max_retries`` times (once more alone, to be sure which chunk it is, when it
was not alone the first time); one that still kills its worker ends the build with
:class:`~geodata.runners.WorkerLost`, naming the chunk. Then the normal window resumes. The
results are the same chunks in the same order, so the bytes are those of a build without the
fault.

Each worker watches the build's process: on Linux the kernel kills it when its parent dies
(``PR_SET_PDEATHSIG``), elsewhere a thread checks the parent every second; a driver killed with
``-9`` leaves no worker behind.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from . import DEFAULT_MAX_RETRIES, Describe, Runner, numbered

__all__ = ["LocalRunner"]


class LocalRunner(Runner):
    """``workers=1``: today's single-process loop; ``workers=N``: N processes, ordered, bounded, retried."""

    name = "local"

    def __init__(self, workers: int | str | None = 1, max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        super().__init__(workers, max_retries=max_retries)
        self._pool: ProcessPoolExecutor | None = None

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_watch_parent, initargs=(os.getpid(),))
        return self._pool

    def _submit(self, fn: Callable[..., Any], a: tuple) -> Future:
        try:
            return self._started().submit(fn, *a)
        except BrokenProcessPool as exc:  # broke since the last result: this chunk fails with the others
            f: Future = Future()
            f.set_exception(exc)
            return f

    def _restart(self) -> None:
        """Drop the broken pool (its workers are already stopped); the next submit starts a new one."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def start(self) -> None:
        """Spawn the ``workers`` processes now; each imports the image plane in the background."""
        if self.workers > 1 and self._pool is None:
            pool = self._started()
            for _ in range(self.workers):
                pool.submit(_warm)

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple], describe: Describe | None = None) -> Iterator[Any]:
        if self.workers <= 1:
            yield from super().imap(fn, args, describe)
            return
        chunks = numbered(fn, args, describe)
        pending: deque = deque()  # (i, a, what, future), in submission order
        alone: deque = deque()  # (i, a, what): in flight when a worker died; rerun one at a time
        deaths: dict[int, int] = {}  # pool breaks each chunk was in flight for

        def refill() -> None:
            while not alone and len(pending) < self.window:
                nxt = next(chunks, None)
                if nxt is None:
                    return
                pending.append((*nxt, self._submit(fn, nxt[1])))

        while True:
            if alone:
                i, a, what = alone[0]
                try:
                    out = self._submit(fn, a).result()
                except BrokenProcessPool:
                    deaths[i] = deaths.get(i, 0) + 1
                    self._restart()
                    if deaths[i] > self.max_retries:  # it died alone: it is the chunk that kills
                        raise self.lost(what(), deaths[i]) from None
                    continue
                alone.popleft()
                refill()
                yield out
                continue
            refill()
            if not pending:
                return
            try:
                out = pending[0][3].result()  # the others keep running meanwhile
            except BrokenProcessPool:
                for i, a, what, _ in pending:
                    deaths[i] = deaths.get(i, 0) + 1
                    alone.append((i, a, what))
                self._restart()
                if len(pending) == 1 and deaths[pending[0][0]] > self.max_retries:  # it was alone
                    raise self.lost(pending[0][2](), deaths[pending[0][0]]) from None
                pending.clear()
                continue
            pending.popleft()
            refill()  # keep the window full while the caller handles ``out``
            yield out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _watch_parent(ppid: int) -> None:
    """Pool initializer: end this worker when the build's process (``ppid``) dies, even by ``kill -9``."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != ppid:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        import threading
        import time

        def watch() -> None:
            while os.getppid() == ppid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="geodata-parent-watch", daemon=True).start()


#: what a worker imports before its first task (the image plane and the step registry)
_WARM = ("geodata.registry", "geodata.dataset.writer")


def _warm() -> None:
    """A worker's first task: import what the image plane and the map steps use."""
    import importlib

    for name in _WARM:  # by name: the runners sit below the dataset folder they serve
        importlib.import_module(name)
