"""A small on-disk cache for expensive source indexes (e.g. one pass over msgpack shards).

Every file written here goes through :func:`write_atomic`: a temp file of geodata's own in the
same folder, renamed into place when complete, removed when the write fails. A full disk is
one line naming the folder and the bytes needed, never a half-written cache file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import secrets
from pathlib import Path
from typing import Callable, Iterable

import polars as pl

from .errors import BuildError
from .paths import cache_dir

__all__ = ["cache_dir", "file_sha256", "stat_digest", "cached_frame", "stat_files", "files_digest", "ref_file",
           "walk_dirs", "write_atomic", "DiskFullError", "is_disk_full", "disk_full_error"]

#: errors that mean the disk (or the user's quota on it) is full
_FULL = {errno.ENOSPC, errno.EDQUOT} if hasattr(errno, "EDQUOT") else {errno.ENOSPC}
_SLICE = 1 << 20


class DiskFullError(BuildError):
    """A file geodata writes does not fit on its disk (``ENOSPC`` / ``EDQUOT``)."""


def _write_all(fd: int, data: memoryview) -> None:
    """Write every byte of ``data`` to ``fd``, in slices (the one place cache bytes hit the disk)."""
    for off in range(0, len(data), _SLICE):
        view = data[off:off + _SLICE]
        while view:
            view = view[os.write(fd, view):]


def write_atomic(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` all or nothing.

    The bytes go to a hidden temp file in the same folder (``.NAME.tmp-PID-RANDOM``, geodata's
    own), which is fsync'ed and renamed over ``path`` when complete; on any failure the temp file
    is removed and ``path`` is left as it was. A full disk raises :class:`DiskFullError`: one line
    with the folder, the bytes needed and the space free.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); write_atomic(d / "a.bin", b"xyz")
    >>> sorted(p.name for p in d.iterdir()), (d / "a.bin").read_bytes()
    (['a.bin'], b'xyz')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            _write_all(fd, memoryview(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno in _FULL:
            raise DiskFullError(_full_message(path.parent, len(data))) from None
        raise


def _free(folder: Path) -> str:
    """``N bytes free`` on the disk of ``folder`` (or of its nearest existing parent)."""
    where = Path(folder)
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        st = os.statvfs(where)
        return f"{st.f_bavail * st.f_frsize:,} bytes free"
    except OSError:
        return "free space unknown"


def _full_message(folder: Path, needed: int) -> str:
    hint = ("free space there or set GEODATA_CACHE to a folder on a larger disk"
            if _inside(folder, cache_dir()) else "free space there")
    return f"no space left on {folder}: {needed:,} bytes needed ({_free(folder)}); {hint}"


def is_disk_full(exc: BaseException) -> bool:
    """True for the error of a write that did not fit (``ENOSPC`` / ``EDQUOT``, pyarrow's included)."""
    return isinstance(exc, OSError) and exc.errno in _FULL


def disk_full_error(folder: Path, what: str, exc: OSError, hint: str) -> DiskFullError:
    """The one-line :class:`DiskFullError` for ``exc`` on ``folder``: ``no space left on <folder>: …``.

    >>> e = disk_full_error(Path("/nowhere/ds"), "3 bytes written", OSError(errno.ENOSPC, "x"), "free space there")
    >>> str(e).startswith("no space left on /nowhere/ds: 3 bytes written ("), str(e).endswith("(No space left on device)")
    (True, True)
    """
    return DiskFullError(f"no space left on {folder}: {what} ({_free(folder)}); {hint} ({os.strerror(exc.errno or errno.ENOSPC)})")


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (shards, published files)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def walk_dirs(root: Path) -> list[Path]:
    """``root`` and every folder below it, following symlinked folders, each real folder once.

    Loop-safe: a symlink back up the tree (or to a folder already seen) is not entered again.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "a").mkdir(); (d / "a" / "up").symlink_to(d)
    >>> [p.relative_to(d).as_posix() for p in walk_dirs(d)]
    ['.', 'a']
    """
    root = Path(root)
    seen: set[str] = set()
    out: list[Path] = []
    for d, dirs, _ in os.walk(root, followlinks=True):
        real = os.path.realpath(d)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        out.append(Path(d))
        dirs.sort()
    return sorted(out)


def cached_frame(
    kind: str, inputs: list[Path], make: Callable[[], pl.DataFrame], expand: bool = True
) -> pl.DataFrame:
    """Return ``make()``, cached under the cache dir by the stats of ``inputs``.

    A folder in ``inputs`` is keyed by its own stats and those of every sub-folder (symlinked
    sub-folders included, see :func:`walk_dirs`; unless ``expand`` is false: then ``inputs`` already lists every path that matters).
    """
    expanded: list[Path] = []
    for p in inputs:
        p = Path(p)
        expanded.append(p)
        if expand and p.is_dir():
            expanded += walk_dirs(p)[1:]
    key = stat_digest(expanded)
    path = cache_dir() / f"{kind}-{key[:24]}.parquet"
    if path.exists():
        try:
            return pl.read_parquet(path)
        except Exception:
            path.unlink(missing_ok=True)
    df = make()
    buf = io.BytesIO()
    df.write_parquet(buf)  # in memory: polars never sees the disk, so a full one is our one-line error
    try:
        write_atomic(path, buf.getbuffer())
    except DiskFullError:
        raise
    except OSError:
        pass  # a read-only home is fine: no cache (and no temp file left)
    return df


def ref_file(refs: pl.Expr) -> pl.Expr:
    """The file behind an image reference: ``msgpack://F@o:l#NAME``, ``tar://F@o:l#NAME`` and
    ``hfarrow://F::COL@r:k#NAME`` give ``F``.

    Examples
    --------
    >>> import polars as pl
    >>> pl.select(ref_file(pl.lit("tar://C:/x@y/a.tar@512:10#ab_cd.jpg"))).item()
    'C:/x@y/a.tar'
    >>> pl.select(ref_file(pl.lit("/data/a/b.jpg"))).item()
    '/data/a/b.jpg'
    >>> pl.select(ref_file(pl.lit("hfarrow:///s/data-00000-of-00001.arrow::jpg@7:0#x.png"))).item()
    '/s/data-00000-of-00001.arrow'
    """
    return (refs.str.replace(r"^hfarrow://(.*)::[^@]*@\d+:\d+(?:#[^#@/]*)?$", "$1")
            .str.replace(r"^(?:msgpack|tar|deflate)://(.*)@\d+:\d+(?:#[^#@/]*)?$", "$1"))


def _stat_chunk(paths: list[str]) -> tuple[list[int], list[int]]:
    sizes, mtimes = [], []
    for p in paths:
        try:
            st = os.stat(p)
            sizes.append(st.st_size)
            mtimes.append(st.st_mtime_ns)
        except OSError:
            sizes.append(-1)
            mtimes.append(-1)
    return sizes, mtimes


def stat_files(paths: list[str], workers: int | None = None, chunk: int = 20_000) -> pl.DataFrame:
    """``(file, size, mtime_ns)`` for each path (``-1`` when missing), stat'ed by a thread pool.

    ``os.stat`` releases the GIL, so threads overlap the waits of a cold or network file
    system; on a warm local one the pool costs little over a plain loop (see docs/benchmarks.md).
    """
    n_workers = workers if workers is not None else min(8, (os.cpu_count() or 1) * 2)
    parts = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    if n_workers <= 1 or len(parts) <= 1:
        res = [_stat_chunk(p) for p in parts]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(n_workers) as pool:
            res = list(pool.map(_stat_chunk, parts))
    sizes = [v for r in res for v in r[0]]
    mtimes = [v for r in res for v in r[1]]
    return pl.DataFrame(
        {"file": paths, "size": sizes, "mtime_ns": mtimes},
        schema={"file": pl.String, "size": pl.Int64, "mtime_ns": pl.Int64},
    )


def files_digest(stats: pl.DataFrame) -> str:
    """sha256 over the ``(file, size, mtime_ns)`` rows of :func:`stat_files` (vectorized)."""
    if stats.height == 0:
        return hashlib.sha256(b"").hexdigest()
    blob = stats.select(
        pl.concat_str([pl.col("file"), pl.col("size").cast(pl.String), pl.col("mtime_ns").cast(pl.String)],
                      separator="\0").str.join("\n")
    ).item()
    return hashlib.sha256(blob.encode()).hexdigest()
