"""Bad images and a full disk: a counted drop or one line, never an aborted build or a partial file.

* a PNG whose pixel data is cut short (valid chunks, a zlib stream that ends early) is
  ``undecodable_image`` at every size, also when another library switched Pillow's
  ``LOAD_TRUNCATED_IMAGES`` on, and is never embedded;
* a raw DOTA image with a PNG header and no pixel data is a counted drop of its objects in
  ``eo_tiles``, not an ``OSError`` that aborts ``eo-instruct``;
* the cache's disk filling up mid-write is one line naming the folder and the bytes needed,
  and leaves no partial file (also on a real 256 KiB tmpfs, where the machine lets us mount one);
* the dataset's disk filling up while the shards are written is one line naming the dataset's
  folder; the dataset already at the path stays byte-identical and no partial file is left.
"""

from __future__ import annotations

import errno
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from geodata import _cache
from geodata._cache import DiskFullError, cached_frame
from geodata.context import StepContext
from geodata.engine import build
from geodata.images import FULL_DECODE_PIXELS, image_problem, png_stream_problem, strict_pil
from geodata.dataset.writer import write_partition


# -- planted bad images ------------------------------------------------------------------------------
def png(w: int, h: int, mode: str = "L", seed: int = 0) -> bytes:
    """A real PNG (a noisy gradient: compresses, so a 17-Mpx one is checked in ~0.1 s)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    row = (np.arange(w) % 251).astype(np.uint8)
    arr = np.broadcast_to(row, (h, w)).copy()
    arr[:: max(1, h // 7)] = rng.integers(0, 255, size=(len(arr[:: max(1, h // 7)]), w), dtype=np.uint8)
    if mode == "RGB":
        arr = np.stack([arr, arr[::-1], arr], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "PNG")
    return buf.getvalue()


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def _assemble(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d)) for t, d in chunks)


def cut_idat(data: bytes, keep: float = 0.5) -> bytes:
    """The same PNG with its pixel stream cut to ``keep`` of its rows: every chunk valid, IEND present."""
    ch = _chunks(data)
    head = [(t, d) for t, d in ch if t not in (b"IDAT", b"IEND")]
    raw = zlib.decompress(b"".join(d for t, d in ch if t == b"IDAT"))
    return _assemble([*head, (b"IDAT", zlib.compress(raw[: int(len(raw) * keep)])), (b"IEND", b"")])


def header_only(w: int, h: int) -> bytes:
    """A PNG header declaring ``w × h`` and no pixel data (a download cut after 33 bytes, plus IEND)."""
    return _assemble([(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)), (b"IEND", b"")])


def jpeg(w: int = 64, h: int = 48, seed: int = 1) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


# -- the decode check --------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(5000, 300), (5000, 3400)], ids=["full-decode", "streamed"])
def test_png_with_pixel_data_cut_short_is_undecodable(size):
    w, h = size
    assert (w * h > FULL_DECODE_PIXELS) == (h == 3400)  # both paths of the check
    good = png(w, h)
    assert image_problem(good) is None
    bad = cut_idat(good)
    assert _chunks(bad)[-1][0] == b"IEND"  # structurally a complete file: only a full decode sees it
    assert image_problem(bad) == "undecodable_image"
    assert image_problem(good[: len(good) * 3 // 4]) == "undecodable_image"  # the file itself cut
    assert image_problem(good[:-12]) == "undecodable_image"  # cut just before IEND
    assert image_problem(header_only(w, h)) == "undecodable_image"


def test_png_stream_check_says_what_is_wrong():
    good = png(300, 200, "RGB")
    assert png_stream_problem(good) is None
    assert png_stream_problem(cut_idat(good)) == f"pixel data ends early: {100 * (1 + 900)} of {200 * (1 + 900)} bytes"
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    assert png_stream_problem(bytes(flipped)).startswith(("bad CRC in chunk b'IDAT'", "broken pixel stream"))
    ihdr_crc = bytearray(good)
    ihdr_crc[29] ^= 1  # the IHDR chunk's CRC
    assert png_stream_problem(bytes(ihdr_crc)) == "bad CRC in chunk b'IHDR'"
    assert png_stream_problem(good[:-12]) == "file ends before IEND"
    ch = _chunks(good)
    raw = zlib.decompress(b"".join(d for t, d in ch if t == b"IDAT"))
    ihdr = bytearray(ch[0][1])
    ihdr[12] = 1  # Adam7: the stream is the 7 passes' scanlines, a size of its own
    adam7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    passes = b"".join((b"\x00" + bytes(3 * ((300 - x + dx - 1) // dx))) * ((200 - y + dy - 1) // dy)
                      for x, y, dx, dy in adam7)
    interlaced = _assemble([(b"IHDR", bytes(ihdr)), (b"IDAT", zlib.compress(passes)), (b"IEND", b"")])
    from PIL import Image

    assert png_stream_problem(interlaced) is None and Image.open(io.BytesIO(interlaced)).load() is not None
    assert png_stream_problem(_assemble([(b"IHDR", bytes(ihdr)), (b"IDAT", zlib.compress(raw)), (b"IEND", b"")])
                              ) == f"pixel data ends early: {len(raw)} of {len(passes)} bytes"
    bad_filter = bytearray(raw)
    bad_filter[901 * 50] = 9  # row 50's filter type
    assert png_stream_problem(_assemble([ch[0], (b"IDAT", zlib.compress(bytes(bad_filter))), (b"IEND", b"")])
                              ) == "bad filter type 9"


def test_check_refuses_truncated_images_even_when_pillow_is_told_to_load_them(monkeypatch):
    from PIL import Image, ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as some libraries set it globally
    j = jpeg()
    assert image_problem(j) is None
    assert image_problem(j[: len(j) // 2]) == "undecodable_image"
    assert image_problem(cut_idat(png(400, 300))) == "undecodable_image"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True and Image.MAX_IMAGE_PIXELS is not None  # both restored
    with strict_pil():
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False and Image.MAX_IMAGE_PIXELS is None


def test_writer_never_embeds_an_image_that_does_not_decode_fully(tmp_path):
    from PIL import Image

    files = {"good.jpg": jpeg(), "good.png": png(400, 300), "cut.png": cut_idat(png(5000, 3400)),
             "cut.jpg": jpeg()[:-300]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    df = pl.DataFrame({"id": list(files), "images": [[str(tmp_path / n)] for n in files]})
    res = write_partition(df, tmp_path / "out", "data", config="default", split="train")
    assert res.rows == 2 and res.drops == {"undecodable_image": 2}
    assert res.examples["undecodable_image"] == ["cut.png", "cut.jpg"]
    table = pl.read_parquet(tmp_path / "out" / res.files[0].path)
    assert table["id"].to_list() == ["good.jpg", "good.png"]
    with strict_pil():
        for row in table["images"].to_list():
            Image.open(io.BytesIO(row[0]["bytes"])).load()  # every embedded image decodes in full


def test_build_counts_a_truncated_png_and_leaves_it_out(tmp_path, monkeypatch):
    from geodata.sources.mp16 import write_sample

    root = tmp_path / "mp16"
    write_sample(root, n=40, layouts=("folder",), bad_rows=False)
    victim = sorted((root / "images").rglob("*.jpg"))[3]
    victim.write_bytes(cut_idat(png(5000, 3400)))  # a 5000-px PNG whose IDAT stops half way
    monkeypatch.setenv("MP16_ROOT", str(root))
    res = build("mp16-rand-500k", out=tmp_path / "ds", force=True, sets=["max_drop_fraction=0.5"])
    assert res.drops.get("undecodable_image") == 1
    ids = pl.read_parquet(sorted((tmp_path / "ds").rglob("*.parquet")))["id"].to_list()
    assert victim.relative_to(root / "images").as_posix() not in ids and len(ids) == res.rows == 39


# -- tiling: a raw image that cannot be read is a counted drop ---------------------------------------
def write_dota(d: Path) -> None:
    """One good 1400×1100 raw DOTA image, one with a header and no pixel data, one cut mid-IDAT."""
    from PIL import Image

    d.joinpath("train/images").mkdir(parents=True)
    d.joinpath("train/labelTxt").mkdir(parents=True)
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 255, (1100, 1400, 3), dtype=np.uint8)).save(d / "train/images/P0005.png")
    (d / "train/images/P0007.png").write_bytes(header_only(1400, 1100))
    (d / "train/images/P0008.png").write_bytes(cut_idat(png(1400, 1100, "RGB"), 0.3))
    for stem in ("P0005", "P0007", "P0008"):
        (d / "train/labelTxt" / f"{stem}.txt").write_text(
            "imagesource:GoogleEarth\ngsd:0.146\n"
            "100 100 160 100 160 140 100 140 plane 0\n"
            "1300 1000 1350 1000 1350 1050 1300 1050 storage-tank 0\n")


def test_eo_tiles_drops_the_objects_of_an_unreadable_raw_image(tmp_path):
    from geodata.registry import SOURCES, _load_all
    from geodata.steps.eo_tiles import eo_tiles

    _load_all()
    write_dota(tmp_path / "DOTA")
    df = SOURCES["dota"].fn(StepContext(name="read:dota"), root=tmp_path / "DOTA", on_error="skip").rows
    assert df["image_id"].unique().sort().to_list() == ["P0005", "P0007", "P0008"]  # headers read fine
    out = eo_tiles(df, StepContext(name="eo_tiles"), sources=["dota"], out_dir=str(tmp_path / "tiles"), dota=df)
    t = out.provides["dota"]
    assert out.drops["dota: undecodable image"] == 4  # the 2 objects of each bad image
    assert set(t["image_id"].str.split("__").list.first()) == {"P0005"}
    assert out.notes["eo_tiles.dota"]["images_dropped"] == 2 and out.notes["eo_tiles.dota"]["images_tiled"] == 1
    written = [p for p in (tmp_path / "tiles").rglob("*") if p.is_file()]
    assert written and all(p.name.startswith("P0005__") for p in written)  # no window cut from a broken image
    # the raw file gone between reading and tiling: a counted drop too
    (tmp_path / "DOTA/train/images/P0005.png").unlink()
    out = eo_tiles(df, StepContext(name="eo_tiles"), sources=["dota"], out_dir=str(tmp_path / "tiles2"), dota=df)
    assert out.drops["dota: missing image"] == 2 and out.provides["dota"].height == 0


def test_eo_instruct_build_skips_a_truncated_raw_dota_image(tmp_path, monkeypatch):
    write_dota(tmp_path / "dota")
    monkeypatch.setenv("DOTA_ROOT", str(tmp_path / "dota"))
    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache"))
    res = build("eo-instruct", out=tmp_path / "out", force=True, sets=["max_drop_fraction=0.9"])
    assert res.status == "built" and res.drops["dota: undecodable image"] == 4
    det = pl.concat([pl.read_parquet(f) for f in (tmp_path / "out" / "detection").glob("train-*.parquet")])
    dota = det.filter(pl.col("source") == "dota")
    assert dota.height and set(dota["id"].str.extract(r"(P\d{4})").to_list()) == {"P0005"}


# -- a full disk ---------------------------------------------------------------------------------------
def full_after(n: int):
    """A ``_write_all`` that writes ``n`` bytes, then fails as a full disk does."""
    real = _cache._write_all

    def write(fd: int, data: memoryview) -> None:
        real(fd, data[:n])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


def test_cache_disk_full_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GEODATA_CACHE", str(cache))
    (cache / "mine.txt").parent.mkdir(parents=True)
    (cache / "mine.txt").write_text("a file of the user's")
    monkeypatch.setattr(_cache, "_write_all", full_after(100))
    df = pl.DataFrame({"key": [f"k{i}" for i in range(5000)]})
    with pytest.raises(DiskFullError) as exc:
        cached_frame("idx", [tmp_path], lambda: df)
    msg = str(exc.value)
    assert msg.startswith(f"no space left on {cache}: ") and " bytes needed (" in msg and "GEODATA_CACHE" in msg
    assert "\n" not in msg
    assert sorted(p.name for p in cache.iterdir()) == ["mine.txt"]  # nothing half-written, the user's file kept
    monkeypatch.setattr(_cache, "_write_all", full_after(10**9))
    monkeypatch.undo()
    monkeypatch.setenv("GEODATA_CACHE", str(cache))
    assert cached_frame("idx", [tmp_path], lambda: df).equals(df)  # space again: written whole
    assert len([p for p in cache.iterdir() if p.suffix == ".parquet"]) == 1


def test_build_on_a_full_cache_disk_keeps_the_dataset(tmp_path, monkeypatch):
    from geodata.cli import app
    from geodata.sources.mp16 import write_sample

    write_sample(tmp_path / "mp16", n=30, layouts=("folder",), bad_rows=False)
    monkeypatch.setenv("MP16_ROOT", str(tmp_path / "mp16"))
    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache1"))
    build("mp16-rand-500k", out=tmp_path / "ds", force=True)
    before = {p: p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()}
    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache2"))  # a cold cache on a full disk
    monkeypatch.setattr(_cache, "_write_all", full_after(64))
    res = CliRunner().invoke(app, ["build", "mp16-rand-500k", "--out", str(tmp_path / "ds"), "--force"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"no space left on {tmp_path / 'cache2'}: " in lines[0], res.output
    assert "Traceback" not in res.output
    assert {p: p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()} == before
    assert not [p for p in (tmp_path / "cache2").rglob("*") if p.is_file()]


def test_build_on_a_full_dataset_disk_is_one_line_and_keeps_the_old_dataset(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from geodata.cli import app
    from geodata.sources.mp16 import write_sample

    write_sample(tmp_path / "mp16", n=30, layouts=("folder",), bad_rows=False)
    monkeypatch.setenv("MP16_ROOT", str(tmp_path / "mp16"))
    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache"))
    ds = tmp_path / "out" / "ds"
    build("mp16-rand-500k", out=ds, force=True)
    (tmp_path / "out" / "notes.txt").write_text("the user's, beside the dataset")
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    real = pq.ParquetWriter.write_table

    def full(self, table, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202 - pyarrow's own signature
        real(self, table, *a, **kw)  # part of the shard reaches the disk, then it is full (pyarrow's error)
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    res = CliRunner().invoke(app, ["build", "mp16-rand-500k", "--out", str(ds), "--force"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert f"no space left on {ds}: the new dataset did not fit (" in lines[0] and "bytes free); " in lines[0]
    assert "--out" in lines[0] and lines[0].endswith("(No space left on device)")
    # the old dataset is byte-identical, the user's file stays, no partial shard or temp folder is left
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ds", "notes.txt"]


def test_eo_tiles_full_disk_leaves_no_partial_window(tmp_path, monkeypatch):
    from geodata.registry import SOURCES, _load_all
    from geodata.steps.eo_tiles import eo_tiles

    _load_all()
    write_dota(tmp_path / "DOTA")
    df = SOURCES["dota"].fn(StepContext(name="read:dota"), root=tmp_path / "DOTA", on_error="skip").rows
    monkeypatch.setattr(_cache, "_write_all", full_after(1000))
    with pytest.raises(DiskFullError, match=r"^no space left on .*tiles/[0-9a-f]{16}: [\d,]+ bytes needed"):
        eo_tiles(df, StepContext(name="eo_tiles"), sources=["dota"], out_dir=str(tmp_path / "tiles"), dota=df)
    assert not [p for p in (tmp_path / "tiles").rglob("*") if p.is_file()]


TMPFS_SCRIPT = """
import os, sys, polars as pl, numpy as np
from geodata._cache import cached_frame, DiskFullError
rng = np.random.default_rng(0)
df = pl.DataFrame({"blob": [rng.bytes(64).hex() for _ in range(20000)]})  # ~2.6 MB, incompressible
try:
    cached_frame("big", [sys.argv[1]], lambda: df)
    print("NO ERROR")
except DiskFullError as exc:
    print("ERROR", exc)
print("FILES", sorted(os.listdir(os.environ["GEODATA_CACHE"])))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mounts a tmpfs in a user namespace")
def test_cache_on_a_real_full_tmpfs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=256k tmpfs {mnt}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()[:100]}")
    (tmp_path / "script.py").write_text(TMPFS_SCRIPT)
    out = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         f"mount -t tmpfs -o size=256k tmpfs {mnt} && GEODATA_CACHE={mnt} {sys.executable} {tmp_path / 'script.py'} "
         f"{tmp_path}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"ERROR no space left on {mnt}: " in out.stdout and "bytes needed" in out.stdout, out.stdout
    assert "FILES []" in out.stdout  # the half-written temp file is gone


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mounts a tmpfs in a user namespace")
def test_dataset_on_a_real_full_tmpfs_leaves_nothing(tmp_path):
    from geodata.sources.mp16 import write_sample

    mnt = tmp_path / "small"
    mnt.mkdir()
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=48k tmpfs {mnt}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()[:100]}")
    write_sample(tmp_path / "mp16", n=60, layouts=("folder",), bad_rows=False)  # ~0.6 MB of images
    geodata = f"{sys.executable} -c 'from geodata.cli import app; app()'"
    out = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         f"mount -t tmpfs -o size=48k tmpfs {mnt} && MP16_ROOT={tmp_path / 'mp16'} GEODATA_CACHE={tmp_path / 'cache'} "
         f"{geodata} build mp16-rand-500k --out {mnt / 'ds'}; echo rc=$?; find {mnt}"],
        capture_output=True, text=True, timeout=300)
    assert "rc=2" in out.stdout, (out.stdout, out.stderr)
    errors = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "Traceback" not in out.stderr
    assert f"no space left on {mnt / 'ds'}: the new dataset did not fit" in errors[0]  # names the dataset's folder
    assert out.stdout.split("rc=2")[1].split() == [str(mnt)]  # the mount is empty again: no partial shard


def test_strict_pil_restores_pillow_settings_when_checks_overlap_in_threads() -> None:
    """Two overlapping checks (the served-model step checks images in threads): the one that
    leaves first must not restore, and the last must restore what was there before either."""
    import threading

    from PIL import Image, ImageFile

    from geodata.images import strict_pil

    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a() -> None:
        with strict_pil():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with strict_pil():
            b_in.set()
            a_out.wait(5)
            assert Image.MAX_IMAGE_PIXELS is None  # still inside b's check

    ts = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mounts a tmpfs in a user namespace")
def test_dataset_on_a_real_full_tmpfs_keeps_the_old_dataset(tmp_path):
    """A small dataset fits on a 96 KiB tmpfs; a bigger rebuild into the same path does not:
    one line naming the folder, and the small dataset is byte-identical afterwards."""
    from geodata.sources.mp16 import write_sample

    mnt = tmp_path / "small"
    mnt.mkdir()
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=96k tmpfs {mnt}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()[:100]}")
    write_sample(tmp_path / "mp16", n=60, layouts=("folder",), bad_rows=False)
    geodata = f"{sys.executable} -c 'from geodata.cli import app; app()'"
    ds, sums = mnt / "ds", f"find {mnt} -type f -exec sha256sum {{}} + | sort"
    out = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         f"mount -t tmpfs -o size=96k tmpfs {mnt} && export MP16_ROOT={tmp_path / 'mp16'} "
         f"GEODATA_CACHE={tmp_path / 'cache'} && {geodata} build mp16-rand-500k --out {ds} --set sample.n=3 "
         f">/dev/null 2>&1 && {sums} > {tmp_path / 'before'} && "
         f"{geodata} build mp16-rand-500k --out {ds} --set sample.n=60 >/dev/null; echo rc=$?; "
         f"{sums} > {tmp_path / 'after'}; find {mnt} -name '.*tmp*'"],
        capture_output=True, text=True, timeout=300)
    assert "rc=2" in out.stdout, (out.stdout, out.stderr)
    errors = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and f"no space left on {ds}: the new dataset did not fit" in errors[0], out.stderr
    before = (tmp_path / "before").read_text()
    assert "manifest.json" in before and (tmp_path / "after").read_text() == before  # the old dataset, unchanged
    assert out.stdout.split("rc=2")[1].split() == []  # no temp folder or partial file left on the mount
