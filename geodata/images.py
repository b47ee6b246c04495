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

__all__ = ["read_ref", "ref_name", "index_folder", "index_msgpack", "index_tar", "check_image", "image_problem"]


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
            raw = fh.read(length)
        try:
            obj = msgpack.unpackb(raw, raw=False)
        except Exception as exc:  # noqa: BLE001 - truncated or garbage bytes: one clear reason
            raise ValueError(f"{path}@{off}: not a msgpack record ({type(exc).__name__})") from None
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


#: images up to this many pixels are decoded in full to check them; larger ones are checked
#: without holding the full-size pixels (JPEG at 1/8 scale, other formats by ``verify``)
FULL_DECODE_PIXELS = 4096 * 4096


def image_problem(data: bytes, max_pixels: int | None = None) -> str | None:
    """None when ``data`` is a readable image, else the drop reason.

    ``image_too_large`` when the header says more than ``max_pixels`` pixels (read from the
    header alone, nothing decoded); ``undecodable_image`` when it does not open or decode.
    Pillow's own size guard and its ``DecompressionBombWarning`` are replaced by
    ``max_pixels``, and a large image is never decoded at full size just to check it.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (40, 30)).save(buf, "PNG"); png = buf.getvalue()
    >>> image_problem(png) is None, image_problem(png, max_pixels=1000), image_problem(png[:60])
    (True, 'image_too_large', 'undecodable_image')
    """
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # our own limit below, read from the header
            try:
                with Image.open(io.BytesIO(data)) as im:
                    w, h = im.size
                    if max_pixels is not None and w * h > max_pixels:
                        return "image_too_large"
                    if w * h <= FULL_DECODE_PIXELS:
                        im.load()
                    elif im.format == "JPEG":
                        im.draft(im.mode, (max(1, w // 8), max(1, h // 8)))
                        im.load()
                    else:
                        im.verify()
            finally:
                Image.MAX_IMAGE_PIXELS = saved
        return None
    except Exception:
        return "undecodable_image"


def check_image(data: bytes, max_pixels: int | None = None) -> bool:
    """True when ``data`` decodes as an image of at most ``max_pixels`` pixels (see :func:`image_problem`)."""
    return image_problem(data, max_pixels) is None


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
