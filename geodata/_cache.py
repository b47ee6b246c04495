"""A small on-disk cache for expensive source indexes (e.g. one pass over msgpack shards)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable

import polars as pl

__all__ = ["cache_dir", "stat_digest", "cached_frame"]


def cache_dir() -> Path:
    """``$GEODATA_CACHE`` or ``~/.cache/geodata``."""
    return Path(os.environ.get("GEODATA_CACHE", Path.home() / ".cache" / "geodata"))


def stat_digest(paths: Iterable[Path]) -> str:
    """sha256 over (absolute path, size, mtime_ns) of each path; missing paths count too."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p).resolve()
        try:
            st = p.stat()
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


def cached_frame(
    kind: str, inputs: list[Path], make: Callable[[], pl.DataFrame], expand: bool = True
) -> pl.DataFrame:
    """Return ``make()``, cached under the cache dir by the stats of ``inputs``.

    A folder in ``inputs`` is keyed by its own stats and those of every sub-folder (unless
    ``expand`` is false: then ``inputs`` already lists every path that matters).
    """
    expanded: list[Path] = []
    for p in inputs:
        p = Path(p)
        expanded.append(p)
        if expand and p.is_dir():
            expanded += sorted(Path(d) for d, _, _ in os.walk(p))[1:]
    key = stat_digest(expanded)
    path = cache_dir() / f"{kind}-{key[:24]}.parquet"
    if path.exists():
        try:
            return pl.read_parquet(path)
        except Exception:
            path.unlink(missing_ok=True)
    df = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        df.write_parquet(tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home is fine: no cache
    return df
