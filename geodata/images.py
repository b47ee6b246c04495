"""Image references: where the bytes of an image live until the writer embeds them.

A reference is a string:

* a file path (``/data/mp16/images/34/8d/9055806529.jpg``);
* ``msgpack://FILE@OFFSET:LENGTH``: one msgpack map ``{"image": bytes, "id": str}`` at that
  byte range of a GeoEstimation shard;
* ``tar://FILE@OFFSET:LENGTH``: the data of one member of an uncompressed tar archive.

Index builders return polars frames ``(key, ref)`` so that joining images to metadata is a
vectorized join, and reading one image is one seek.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Iterable, Iterator

import msgpack
import polars as pl

__all__ = ["read_ref", "ref_name", "index_folder", "index_msgpack", "index_tar", "check_image"]


def _split(ref: str, scheme: str) -> tuple[str, int, int]:
    body = ref[len(scheme) :]
    path, _, rng = body.rpartition("@")
    off, _, length = rng.partition(":")
    return path, int(off), int(length)


def read_ref(ref: str) -> bytes:
    """Return the encoded image bytes behind ``ref``."""
    if ref.startswith("msgpack://"):
        path, off, length = _split(ref, "msgpack://")
        with open(path, "rb") as fh:
            fh.seek(off)
            obj = msgpack.unpackb(fh.read(length), raw=False)
        data = obj.get("image") if isinstance(obj, dict) else None
        if not isinstance(data, bytes):
            raise ValueError(f"{path}@{off}: msgpack record has no 'image' bytes")
        return data
    if ref.startswith("tar://"):
        path, off, length = _split(ref, "tar://")
        with open(path, "rb") as fh:
            fh.seek(off)
            return fh.read(length)
    with open(ref, "rb") as fh:
        return fh.read()


def ref_name(ref: str) -> str:
    """A short file name for ``ref`` (stored as the Image feature's ``path``)."""
    if ref.startswith(("msgpack://", "tar://")):
        return ref.rpartition("@")[0].rsplit("/", 1)[-1]
    return Path(ref).name


def check_image(data: bytes) -> bool:
    """True when ``data`` decodes as an image (header and full decode)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        return True
    except Exception:
        return False


def index_folder(root: Path, pattern: str = "**/*") -> pl.DataFrame:
    """Index every file under ``root``: ``key`` = path relative to root (posix), ``ref`` = path."""
    root = Path(root)
    keys: list[str] = []
    refs: list[str] = []
    for p in sorted(root.glob(pattern)):
        if p.is_file():
            keys.append(p.relative_to(root).as_posix())
            refs.append(str(p.resolve()))
    return pl.DataFrame({"key": keys, "ref": refs}, schema={"key": pl.String, "ref": pl.String})


def iter_msgpack_records(path: Path) -> Iterator[tuple[dict, int, int]]:
    """Yield ``(record, offset, length)`` for each msgpack map in one shard, sequentially."""
    with open(path, "rb") as fh:
        unpacker = msgpack.Unpacker(fh, raw=False, max_buffer_size=1 << 30)
        start = 0
        for rec in unpacker:
            end = unpacker.tell()
            yield rec, start, end - start
            start = end


def index_msgpack(files: Iterable[Path], id_key: str = "id") -> pl.DataFrame:
    """One sequential pass over msgpack shards: ``key`` = the record's id, ``ref`` = byte range."""
    keys: list[str] = []
    refs: list[str] = []
    for f in files:
        fp = str(Path(f).resolve())
        for rec, off, length in iter_msgpack_records(Path(f)):
            if isinstance(rec, dict) and id_key in rec:
                keys.append(str(rec[id_key]))
                refs.append(f"msgpack://{fp}@{off}:{length}")
    return pl.DataFrame({"key": keys, "ref": refs}, schema={"key": pl.String, "ref": pl.String})


def index_tar(files: Iterable[Path]) -> pl.DataFrame:
    """Index the regular members of uncompressed tar archives: ``key`` = member name."""
    keys: list[str] = []
    refs: list[str] = []
    for f in files:
        fp = str(Path(f).resolve())
        with tarfile.open(f, "r:") as tf:
            for m in tf:
                if m.isfile():
                    keys.append(m.name)
                    refs.append(f"tar://{fp}@{m.offset_data}:{m.size}")
    return pl.DataFrame({"key": keys, "ref": refs}, schema={"key": pl.String, "ref": pl.String})
