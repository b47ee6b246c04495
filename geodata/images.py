"""Image references: where the bytes of an image live until the writer embeds them.

A reference is a string:

* a file path (``/data/mp16/images/34/8d/9055806529.jpg``);
* ``msgpack://FILE@OFFSET:LENGTH#NAME``: one msgpack map ``{"image": bytes, "id": str}`` at
  that byte range of a GeoEstimation shard (keys may be bytes: shards are read ``raw``);
* ``tar://FILE@OFFSET:LENGTH#NAME``: the data of one member of an uncompressed tar archive.
  When ``FILE`` is one byte chunk of a split archive (``mp-16-images00``, ``mp-16-images01`` …,
  or ``split``'s ``images_partaa``, ``images_partab`` …), a member that runs past its end
  continues in the next chunk.
* ``deflate://FILE@OFFSET:LENGTH#NAME``: a deflate-compressed zip member's data at that byte
  range (``tar://`` serves stored members: their bytes are the image), continuing into the next
  chunk of a split file as ``tar://`` does.
* ``hfarrow://FILE::COLUMN@ROW:K#NAME``: an image stored in a Hugging Face ``datasets`` Arrow
  file (a ``save_to_disk`` shard, or the cache file ``datasets`` wrote for a Parquet / JSON
  snapshot): row ``ROW`` of ``COLUMN``, item ``K`` when the column holds a list of images. The
  cell is an Image struct ``{"bytes", "path"}`` (bytes win; else the path is read) or raw bytes.

``NAME`` (URL-quoted, optional) is the image's own file name, stored as the Image feature's
``path``. Index builders return polars frames ``(key, ref, size, problem)`` so that joining
images to metadata is a vectorized join and reading one image is one seek; rows with a
``problem`` (and no key) describe unreadable parts of a shard or archive.
"""

from __future__ import annotations

import io
import threading
import os
import re
import tarfile
import threading
from pathlib import Path
from typing import Iterable, Iterator, Sequence
from urllib.parse import quote, unquote

import msgpack
import polars as pl

from .errors import SourceError

__all__ = [
    "read_ref", "ref_name", "index_folder", "index_msgpack", "index_tar", "check_image",
    "iter_msgpack_records", "ChunkedFile", "INDEX_SCHEMA", "image_problem", "png_stream_problem",
    "strict_pil",
]

INDEX_SCHEMA = {"key": pl.String, "ref": pl.String, "size": pl.Int64, "problem": pl.String}
_REF = re.compile(r"(.*)@(\d+):(\d+)(?:#([^#@/]*))?", re.S)
_NUMBERED = re.compile(r"^(.*?)(\d+)$")
_SPLIT_PART = re.compile(r"^(.*part)([a-z]{2,})$")  # `split -b` chunk names: images_partaa, images_partab, ...


def _split(ref: str, scheme: str) -> tuple[str, int, int]:
    m = _REF.fullmatch(ref[len(scheme):])
    if m is None:
        raise ValueError(f"malformed image reference {ref!r}")
    return m.group(1), int(m.group(2)), int(m.group(3))


def _field(obj: dict, name: str) -> object:
    """``obj[name]`` whether the shard stored its keys as str or as raw bytes."""
    if name in obj:
        return obj[name]
    return obj.get(name.encode())


def _next_letters(s: str) -> str | None:
    """``split``'s next suffix: ``aa`` → ``ab``, ``az`` → ``ba`` (None after ``zz…``)."""
    out = list(s)
    for i in range(len(out) - 1, -1, -1):
        if out[i] != "z":
            out[i] = chr(ord(out[i]) + 1)
            return "".join(out)
        out[i] = "a"
    return None


def _next_chunk(path: str) -> str | None:
    """The chunk after ``path`` of a split file (``x00`` → ``x01``; ``x_partaa`` → ``x_partab``).

    Examples
    --------
    >>> _next_chunk("/d/mp-16-images09"), _next_chunk("/d/images_partaz"), _next_chunk("/d/a.tar")
    ('/d/mp-16-images10', '/d/images_partba', None)
    """
    d, _, name = path.rpartition("/")
    sp = _SPLIT_PART.match(name)
    if sp is not None:
        nxt = _next_letters(sp.group(2))
        return None if nxt is None else (f"{d}/{sp.group(1)}{nxt}" if d else f"{sp.group(1)}{nxt}")
    m = _NUMBERED.match(name)
    if m is None:
        return None
    nxt = f"{m.group(1)}{int(m.group(2)) + 1:0{len(m.group(2))}d}"
    return f"{d}/{nxt}" if d else nxt


def _read_range(path: str, off: int, length: int) -> bytes:
    """``length`` bytes at ``off``; continues into the next-numbered chunk of a split file."""
    parts = []
    while length > 0:
        with open(path, "rb") as fh:
            fh.seek(off)
            data = fh.read(length)
        parts.append(data)
        length -= len(data)
        if length > 0:
            nxt = _next_chunk(path)
            if nxt is None or not os.path.exists(nxt):
                raise ValueError(f"{path}@{off}: {length} bytes missing (truncated file)")
            path, off = nxt, 0
    return b"".join(parts)


_ARROW_TABLES: dict[str, object] = {}
_ARROW_LOCK = threading.Lock()


def _arrow_table(path: str):
    """The (memory-mapped, zero-copy) Arrow table of a ``datasets`` Arrow file; the last 8 stay open."""
    import pyarrow as pa

    with _ARROW_LOCK:
        tab = _ARROW_TABLES.get(path)
        if tab is None:
            src = pa.memory_map(path, "r")
            try:
                tab = pa.ipc.open_stream(src).read_all()
            except pa.ArrowInvalid:
                tab = pa.ipc.open_file(src).read_all()
            if len(_ARROW_TABLES) >= 8:
                _ARROW_TABLES.pop(next(iter(_ARROW_TABLES)))
            _ARROW_TABLES[path] = tab
        return tab


def _read_hfarrow(ref: str) -> bytes:
    m = _REF.fullmatch(ref[len("hfarrow://"):])
    if m is None or "::" not in m.group(1):
        raise ValueError(f"malformed image reference {ref!r}")
    path, _, col = m.group(1).rpartition("::")
    row, k = int(m.group(2)), int(m.group(3))
    tab = _arrow_table(path)
    if col not in tab.column_names or row >= tab.num_rows:
        raise ValueError(f"{path}: no row {row} of column '{col}'")
    cell = tab.column(col)[row].as_py()
    if isinstance(cell, list):
        cell = cell[k] if k < len(cell) else None
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return bytes(cell["bytes"])
        cell = cell.get("path")
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    if isinstance(cell, str) and cell:
        with open(cell, "rb") as fh:
            return fh.read()
    raise ValueError(f"{path}: row {row} of '{col}' holds no image")


def read_ref(ref: str) -> bytes:
    """Return the encoded image bytes behind ``ref``."""
    if ref.startswith("hfarrow://"):
        return _read_hfarrow(ref)
    if ref.startswith("deflate://"):
        import zlib

        path, off, length = _split(ref, "deflate://")
        try:
            return zlib.decompress(_read_range(path, off, length), -15)
        except zlib.error as exc:
            raise ValueError(f"{path}@{off}: the deflate stream does not decompress ({exc})") from None
    if ref.startswith("msgpack://"):
        path, off, length = _split(ref, "msgpack://")
        with open(path, "rb") as fh:
            fh.seek(off)
            try:
                obj = msgpack.unpackb(fh.read(length), raw=True)
            except Exception as exc:
                raise ValueError(f"{path}@{off}: unreadable msgpack record ({exc})") from None
        data = _field(obj, "image") if isinstance(obj, dict) else None
        if not isinstance(data, bytes):
            raise ValueError(f"{path}@{off}: msgpack record has no 'image' bytes")
        return data
    if ref.startswith("tar://"):
        path, off, length = _split(ref, "tar://")
        return _read_range(path, off, length)
    with open(ref, "rb") as fh:
        return fh.read()


def ref_name(ref: str) -> str:
    """The image's own file name for ``ref`` (stored as the Image feature's ``path``).

    Examples
    --------
    >>> ref_name("msgpack:///d/shard_1.msg@10:99#9055806529.jpg")
    '9055806529.jpg'
    >>> ref_name("/d/images/34/8d/9055806529.jpg")
    '9055806529.jpg'
    """
    for scheme in ("msgpack://", "tar://", "deflate://", "hfarrow://"):
        if ref.startswith(scheme):
            m = _REF.fullmatch(ref[len(scheme):])
            if m is not None and m.group(4):
                return unquote(m.group(4))
            return ref.rpartition("@")[0].rsplit("/", 1)[-1]
    return Path(ref).name


def _name(key: str) -> str:
    return quote(key.rstrip("/").rsplit("/", 1)[-1], safe="")


#: images up to this many pixels are decoded in full by Pillow to check them; larger ones are
#: checked without holding their full-size pixels: a PNG's whole zlib stream is inflated in
#: slices (:func:`png_stream_problem`), a JPEG is decoded at 1/8 scale (every entropy-coded byte
#: is still read), any other format is decoded in full
FULL_DECODE_PIXELS = 4096 * 4096

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


# Pillow's settings are process-wide and checks run in threads (the served-model step, tiling):
# the first ``strict_pil`` to enter saves them and the last to leave restores them.
_STRICT_LOCK = threading.Lock()
_STRICT: dict = {"depth": 0}


class strict_pil:
    """Pillow set up for a full check: no truncated-image leniency, no bomb guard (our own limit).

    ``ImageFile.LOAD_TRUNCATED_IMAGES`` (which another library may have switched on) is False
    inside, so a short file raises instead of decoding into grey padding; Pillow's pixel guard
    and its ``DecompressionBombWarning`` are lifted (the caller reads the size from the header
    and applies ``max_pixels`` itself). Both are restored when the last one open leaves.
    """

    def __enter__(self) -> "strict_pil":
        import warnings

        from PIL import Image, ImageFile

        with _STRICT_LOCK:
            if _STRICT["depth"] == 0:
                _STRICT["saved"] = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
                _STRICT["warn"] = warnings.catch_warnings()
                _STRICT["warn"].__enter__()
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                Image.MAX_IMAGE_PIXELS = None
                ImageFile.LOAD_TRUNCATED_IMAGES = False
            _STRICT["depth"] += 1
        return self

    def __exit__(self, *exc: object) -> None:
        from PIL import Image, ImageFile

        with _STRICT_LOCK:
            _STRICT["depth"] -= 1
            if _STRICT["depth"] == 0:
                Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = _STRICT["saved"]
                _STRICT["warn"].__exit__(None, None, None)


def _png_raw_size(w: int, h: int, depth: int, color: int, interlace: int) -> int:
    """Bytes of the filtered scanlines a PNG's zlib stream must inflate to (PNG spec, 7.2 and 8.2)."""
    bits = _PNG_CHANNELS[color] * depth

    def lines(pw: int, ph: int) -> int:
        return ph * (1 + (pw * bits + 7) // 8) if pw and ph else 0

    if not interlace:
        return lines(w, h)
    return sum(lines((w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy) for x0, y0, dx, dy in _ADAM7)


def png_stream_problem(src: "bytes | memoryview | str | os.PathLike[str] | io.BufferedIOBase",
                       slice_bytes: int = 1 << 20) -> str | None:
    """None when a PNG's chunks and whole pixel stream are intact, else what is wrong.

    ``src`` is the PNG's bytes, its path or an open binary file. Every chunk's CRC is checked,
    the IDAT chunks are read and inflated in slices of at most ``slice_bytes`` (so a 20000² image
    is checked in bounded memory, without unfiltering it; each scanline's filter type must be
    0..4 when not interlaced), and the stream must end (zlib end mark and Adler-32) exactly at
    the size the header implies, followed by IEND. This is what
    Pillow's ``load`` does not check: a zlib stream that ends cleanly but early leaves the rest
    of the image zero, without an error.

    Examples
    --------
    >>> import io, struct, zlib
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("L", (64, 64), 7).save(buf, "PNG"); png = buf.getvalue()
    >>> png_stream_problem(png) is None
    True
    >>> raw = zlib.compress(bytes(65 * 32))  # half the rows a 64 x 64 grey image needs
    >>> idat = struct.pack(">I", len(raw)) + b"IDAT" + raw + struct.pack(">I", zlib.crc32(b"IDAT" + raw))
    >>> png_stream_problem(png[:33] + idat + png[-12:])
    'pixel data ends early: 2080 of 4160 bytes'
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _png_stream(io.BytesIO(src), slice_bytes)
    if isinstance(src, (str, os.PathLike)):
        with open(src, "rb") as fh:
            return _png_stream(fh, slice_bytes)
    return _png_stream(src, slice_bytes)


def _png_stream(fh: "io.BufferedIOBase | io.BytesIO", slice_bytes: int) -> str | None:
    import struct
    import zlib

    if fh.read(8) != _PNG_SIG:
        return "not a PNG"
    need, got, row = None, 0, 0
    inflate = zlib.decompressobj()
    while True:
        head = fh.read(8)
        if len(head) < 8:
            return "file ends before IEND"
        length, ctype = struct.unpack(">I4s", head)
        crc = zlib.crc32(ctype)
        if ctype == b"IHDR":
            body = fh.read(length)
            if len(body) < max(length, 13):
                return "IHDR cut short"
            crc = zlib.crc32(body, crc)
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body[:13])
            if color not in _PNG_CHANNELS:
                return f"bad colour type {color}"
            need = _png_raw_size(w, h, depth, color, interlace)
            row = 0 if interlace else 1 + (w * _PNG_CHANNELS[color] * depth + 7) // 8
        else:
            if ctype == b"IDAT" and need is None:
                return "IDAT before IHDR"
            left = length
            while left:
                piece = fh.read(min(left, slice_bytes))
                if not piece:
                    return f"chunk {ctype!r} cut short"
                left -= len(piece)
                crc = zlib.crc32(piece, crc)
                if ctype != b"IDAT":
                    continue
                chunk: bytes = piece
                while chunk and not inflate.eof:
                    try:
                        out = inflate.decompress(chunk, slice_bytes)
                    except zlib.error as exc:
                        return f"broken pixel stream ({exc})"
                    if row and out:  # each scanline starts with its filter type, 0..4
                        bad = out[(-got) % row::row].translate(None, b"\x00\x01\x02\x03\x04")
                        if bad:
                            return f"bad filter type {bad[0]}"
                    got += len(out)
                    chunk = inflate.unconsumed_tail
                    if got > need:  # type: ignore[operator]
                        return f"pixel data too long: more than {need} bytes"
        tail = fh.read(4)
        if len(tail) < 4:
            return f"chunk {ctype!r} cut short"
        if crc != struct.unpack(">I", tail)[0]:
            return f"bad CRC in chunk {ctype!r}"
        if ctype == b"IEND":
            break
    if need is None:
        return "no IHDR"
    if not inflate.eof or got != need:
        return f"pixel data ends early: {got} of {need} bytes"
    return None


def _decode_fully(im: "object", data: bytes) -> None:
    """Decode ``im`` (opened on ``data``) completely, or raise; see :data:`FULL_DECODE_PIXELS`.

    A PNG's pixel stream is always checked to its end (:func:`png_stream_problem`: Pillow pads
    an early-ending stream with zeros); up to :data:`FULL_DECODE_PIXELS` it is also decoded by
    Pillow (bad filter bytes and the like).
    """
    w, h = im.size  # type: ignore[attr-defined]
    fmt = im.format  # type: ignore[attr-defined]
    if fmt == "PNG":
        why = png_stream_problem(data)
        if why:
            raise ValueError(why)
        if w * h > FULL_DECODE_PIXELS:
            return
    elif fmt == "JPEG" and w * h > FULL_DECODE_PIXELS:
        im.draft(im.mode, (max(1, w // 8), max(1, h // 8)))  # type: ignore[attr-defined]
    im.load()  # type: ignore[attr-defined]


def image_problem(data: bytes, max_pixels: int | None = None) -> str | None:
    """None when ``data`` is a readable image, else the drop reason.

    ``image_too_large`` when the header says more than ``max_pixels`` pixels (read from the
    header alone, nothing decoded); ``undecodable_image`` when it does not open or does not
    decode **fully**: every pixel is decoded (Pillow ``load`` with truncated images refused,
    see :class:`strict_pil`), and a PNG's pixel stream must run to the size its header implies,
    CRCs intact, then IEND (:func:`png_stream_problem`; over :data:`FULL_DECODE_PIXELS` pixels
    that is the whole check, so the full-size pixels are never held; a JPEG that large is
    decoded at 1/8 scale, which still reads every entropy-coded byte).

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (40, 30)).save(buf, "PNG"); png = buf.getvalue()
    >>> image_problem(png) is None, image_problem(png, max_pixels=1000), image_problem(png[:60])
    (True, 'image_too_large', 'undecodable_image')
    """
    from PIL import Image

    try:
        with strict_pil(), Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                return "image_too_large"
            _decode_fully(im, data)
        return None
    except Exception:
        return "undecodable_image"


def check_image(data: bytes, max_pixels: int | None = None) -> bool:
    """True when ``data`` decodes as an image of at most ``max_pixels`` pixels (see :func:`image_problem`)."""
    return image_problem(data, max_pixels) is None


def _frame(keys: list, refs: list, sizes: list, problems: list) -> pl.DataFrame:
    return pl.DataFrame({"key": keys, "ref": refs, "size": sizes, "problem": problems}, schema=INDEX_SCHEMA)


def walk_files(root: Path) -> Iterator[tuple[str, str, int]]:
    """Yield ``(relative posix path, path, size)`` of every file under ``root``, sorted.

    Symlinked sub-folders are followed; a folder already visited (a symlink loop, or two
    links to one folder) is entered once.
    """
    root = Path(root)
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        path, rel = stack.pop()
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for e in entries:
            r = f"{rel}{e.name}"
            try:
                if e.is_dir():  # follows symlinks
                    subdirs.append((e.path, r + "/"))
                elif e.is_file():
                    yield r, e.path, e.stat().st_size
            except OSError:
                continue
        stack.extend(reversed(subdirs))


def folder_dirs(root: Path) -> list[Path]:
    """Every folder under ``root`` (symlinks followed, loop-safe): the stats that key its index.

    The one folder walk of geodata (:func:`geodata._cache.walk_dirs`), so the build's
    fingerprint and the image index see the same folders.
    """
    from ._cache import walk_dirs

    return walk_dirs(Path(root))


def index_folder(root: Path, pattern: str | None = None) -> pl.DataFrame:
    """Index every file under ``root``: ``key`` = path relative to root (posix), ``ref`` = path.

    Symlinked sub-folders are followed (loop-safe). ``pattern`` (a glob such as ``*.jpg``)
    keeps only files whose name matches.
    """
    import fnmatch

    keys, refs, sizes = [], [], []
    for rel, path, size in walk_files(Path(root)):
        if pattern and not fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pattern):
            continue
        keys.append(rel)
        refs.append(os.path.abspath(path))
        sizes.append(size)
    return _frame(keys, refs, sizes, [None] * len(keys))


_RESYNC = (b"\x82\xa5image", b"\x82\xa2id", b"\x82\xc4\x05image", b"\x82\xc4\x02id")


def _resync(path: Path, start: int) -> int | None:
    """Offset of the next plausible record header after ``start`` (None: none)."""
    import mmap

    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size <= start:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            hits = [h for h in (mm.find(m, start) for m in _RESYNC) if h >= 0]
    return min(hits) if hits else None


def iter_msgpack_records(
    path: Path, problems: list[str] | None = None, id_key: str = "id", image_key: str = "image"
) -> Iterator[tuple[dict, int, int]]:
    """Yield ``(record, offset, length)`` for each msgpack map in one shard, sequentially.

    Records are unpacked ``raw`` (keys and ids may be bytes, as GeoEstimation's own reader
    expects). Garbage bytes and a truncated tail never raise: each unreadable stretch is
    described in ``problems`` (shard name and byte offset) and reading resumes at the next
    plausible record.
    """
    path = Path(path)
    size = path.stat().st_size
    pos = 0
    while pos < size:
        bad_at = None
        with open(path, "rb") as fh:
            fh.seek(pos)
            unpacker = msgpack.Unpacker(fh, raw=True, max_buffer_size=1 << 30)
            start = 0
            try:
                for rec in unpacker:
                    end = unpacker.tell()
                    if isinstance(rec, dict) and isinstance(_field(rec, image_key), bytes) and _field(rec, id_key) is not None:
                        yield rec, pos + start, end - start
                        start = end
                    else:
                        bad_at = pos + start
                        break
                else:
                    if pos + start >= size:
                        return
                    bad_at = pos + start  # the unpacker stopped inside an incomplete record
            except Exception:
                bad_at = pos + start
        nxt = _resync(path, bad_at + 1)
        if nxt is None and problems is not None and bad_at is not None:
            problems.append(
                f"{path.name}: truncated or unreadable record at byte offset {bad_at} "
                f"({size - bad_at} bytes to the end of the shard)"
            )
            return
        if nxt is None:
            return
        if problems is not None:
            problems.append(f"{path.name}: unreadable bytes at byte offset {bad_at} ({nxt - bad_at} bytes skipped)")
        pos = nxt


def index_msgpack(files: Iterable[Path], id_key: str = "id", image_key: str = "image") -> pl.DataFrame:
    """One sequential pass over msgpack shards: ``key`` = the record's id, ``ref`` = byte range.

    ``size`` is the length of the image bytes; unreadable parts of a shard are rows with a
    ``problem`` and no key.
    """
    keys: list = []
    refs: list = []
    sizes: list = []
    probs: list = []
    for f in files:
        fp = os.path.abspath(f)
        problems: list[str] = []
        for rec, off, length in iter_msgpack_records(Path(f), problems, id_key, image_key):
            rid = _field(rec, id_key)
            key = rid.decode("utf-8", "replace") if isinstance(rid, bytes) else str(rid)
            keys.append(key)
            refs.append(f"msgpack://{fp}@{off}:{length}#{_name(key)}")
            sizes.append(len(_field(rec, image_key)))  # type: ignore[arg-type]
            probs.append(None)
        for p in problems:
            keys.append(None)
            refs.append(None)
            sizes.append(None)
            probs.append(p)
    return _frame(keys, refs, sizes, probs)


class ChunkedFile(io.RawIOBase):
    """A read-only, seekable file object over byte chunks read as one file (no copy on disk)."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = [str(p) for p in paths]
        self.sizes = [os.path.getsize(p) for p in self.paths]
        self.starts = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.total = sum(self.sizes)
        self.pos = 0
        self._fh: tuple[int, io.BufferedReader] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, off: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.total}[whence]
        self.pos = max(0, base + off)
        return self.pos

    def locate(self, off: int) -> tuple[int, int]:
        """(chunk index, offset inside it) of global offset ``off``."""
        import bisect

        i = max(0, bisect.bisect_right(self.starts, off) - 1)
        return i, off - self.starts[i]

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        if self.pos >= self.total:
            return 0
        i, local = self.locate(self.pos)
        if self._fh is None or self._fh[0] != i:
            if self._fh is not None:
                self._fh[1].close()
            self._fh = (i, open(self.paths[i], "rb"))
        fh = self._fh[1]
        fh.seek(local)
        n = min(len(b), self.sizes[i] - local)
        data = fh.read(n)
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        if self._fh is not None:
            self._fh[1].close()
            self._fh = None
        super().close()


_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"(\xb5/\xfd": "zstd"}


def _compression(head: bytes) -> str | None:
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            return name
    return None


def refuse_compressed(path: Path) -> None:
    """Raise a clear error when ``path`` is a compressed archive (whatever its name)."""
    with open(path, "rb") as fh:
        kind = _compression(fh.read(8))
    if kind:
        raise SourceError(
            f"{path}: a {kind}-compressed archive, not a plain tar; its images cannot be read in place "
            f"(decompress it first, e.g. `{'gunzip' if kind == 'gzip' else kind + ' -d'} -c {path.name} > "
            f"{path.name.split('.')[0]}.plain.tar`, and point the source at the plain tar)"
        )


def index_tar(files: Iterable[Path | Sequence[Path]]) -> pl.DataFrame:
    """Index the regular members of uncompressed tar archives: ``key`` = member name.

    An element of ``files`` that is a list is one tar split into byte chunks, read in place
    as one file. A compressed archive is refused with a clear error (its members cannot be
    read by offset); a truncated or corrupt archive keeps the members before the damage and
    adds a ``problem`` row naming the archive and the byte offset.
    """
    keys: list = []
    refs: list = []
    sizes: list = []
    problems: list[str] = []
    for f in files:
        parts = [Path(p) for p in f] if isinstance(f, (list, tuple)) else [Path(f)]
        label = parts[0].name if len(parts) == 1 else f"{parts[0].name}..{parts[-1].name}"
        refuse_compressed(parts[0])
        raw = ChunkedFile(parts)
        total = raw.total
        n = 0
        try:
            tf = tarfile.open(fileobj=io.BufferedReader(raw, 1 << 16), mode="r:")  # type: ignore[arg-type]
        except tarfile.TarError as exc:
            raise SourceError(f"{parts[0]}: not a readable tar archive ({exc})") from None
        with tf:
            while True:
                try:
                    m = tf.next()
                except (tarfile.TarError, EOFError, OSError) as exc:
                    problems.append(f"{label}: corrupt or truncated tar at byte offset {tf.offset} after {n} members ({exc})")
                    break
                if m is None:
                    break
                if not m.isfile():
                    continue
                if m.offset_data + m.size > total:
                    problems.append(f"{label}: member {m.name} truncated at byte offset {total} (archive ends early)")
                    break
                i, local = raw.locate(m.offset_data)
                keys.append(m.name)
                refs.append(f"tar://{os.path.abspath(parts[i])}@{local}:{m.size}#{_name(m.name)}")
                sizes.append(m.size)
                n += 1
    n_ok = len(keys)
    return _frame(keys + [None] * len(problems), refs + [None] * len(problems), sizes + [None] * len(problems),
                  [None] * n_ok + problems)


def archive_chunks(folder: Path, stem: str) -> list[Path]:
    """The byte chunks ``<stem>aa``, ``<stem>ab`` … of a ``split`` archive under ``folder``, in order
    (empty when there are none)."""
    return sorted(p for p in Path(folder).glob(f"{stem}*") if _SPLIT_PART.match(p.name) and p.is_file())


def index_zip(parts: Sequence[Path]) -> pl.DataFrame:
    """Index the members of a zip archive (one file, or ``parts`` read in place as one file).

    Stored members get ``tar://`` references (their bytes are the file), deflated ones
    ``deflate://`` references; both point at the member's data in its chunk. A member with
    another compression method is a ``problem`` row naming it.
    """
    import struct
    import zipfile

    parts = [Path(p) for p in parts]
    raw = ChunkedFile(parts)
    buf = io.BufferedReader(raw, 1 << 16)
    try:
        zf = zipfile.ZipFile(buf)  # type: ignore[arg-type]
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{parts[0]}: not a readable zip archive ({exc})") from None
    keys: list = []
    refs: list = []
    sizes: list = []
    problems: list[str] = []
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                problems.append(f"{parts[0].name}: member {info.filename} uses compression method {info.compress_type}")
                continue
            buf.seek(info.header_offset)
            head = buf.read(30)
            if len(head) < 30 or head[:4] != b"PK\x03\x04":
                problems.append(f"{parts[0].name}: member {info.filename}: no local header at byte offset {info.header_offset}")
                continue
            n_name, n_extra = struct.unpack("<HH", head[26:30])
            i, local = raw.locate(info.header_offset + 30 + n_name + n_extra)
            scheme = "tar" if info.compress_type == zipfile.ZIP_STORED else "deflate"
            keys.append(info.filename)
            refs.append(f"{scheme}://{os.path.abspath(parts[i])}@{local}:{info.compress_size}#{_name(info.filename)}")
            sizes.append(info.file_size)
    n_ok = len(keys)
    return _frame(keys + [None] * len(problems), refs + [None] * len(problems), sizes + [None] * len(problems),
                  [None] * n_ok + problems)
