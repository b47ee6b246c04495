"""Cut large EO images into fixed windows with their clipped objects (DOTA devkit style).

GeoChat and most DOTA detectors train on 1024-px windows, not on the raw 800–20000 px
images. :func:`eo_tiles` does what CAPTAIN-WHU/DOTA_devkit ``ImgSplit.py`` (and mmrotate's
``img_split.py``) do, inside the build:

* windows of ``window`` px start every ``window - gap`` px; the last one in each direction is
  moved back to end at the image edge (so every window of a large image is full size); an
  image no larger than the window stays as it is;
* each object's pixel quadrilateral (the reader's ``quad``) is clipped to the window with
  shapely; an object keeps a window when at least ``min_area_frac`` of its area lies inside
  (the devkit's and mmrotate's 0.7); a partial object is flagged ``truncated`` with
  ``difficulty`` 2 (the split tools' mark) and gets the minimum rotated rectangle of its
  clipped part;
* an image that cannot be read in full (missing, or its pixel data cut short) is a counted
  drop of all its objects (``<source>: missing image`` / ``<source>: undecodable image``, with up
  to three such files named in the notes), never an aborted build or a window of grey padding;
* windows without an object are not written; window images are PNG files named as mmrotate
  names them, ``<id>__<window>__<left>___<up>.png``, under ``out_dir`` (default: the geodata
  cache, ``$GEODATA_CACHE/eo_tiles/``), written once and reused by later builds.

The step provides the tiled tables to later steps (``inputs: {dota: eo_tiles.dota}``), so it runs before
``eo_tasks``. Images already named like split windows are left alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import polars as pl
import shapely

from .._cache import cache_dir, write_atomic
from ..context import StepContext, StepOutput
from ..errors import BuildError, SpecError
from ..registry import step
from ..tasks.eo.contract import quads_to_boxes
from ..image_geometry import WINDOW_RE

__all__ = ["eo_tiles", "window_starts"]

log = logging.getLogger("geodata")


def window_starts(size: int, window: int, gap: int) -> list[int]:
    """Left (or top) edges of the windows over ``size`` px, as DOTA devkit's ImgSplit places them.

    Examples
    --------
    >>> window_starts(3000, 1024, 200)
    [0, 824, 1648, 1976]
    >>> window_starts(900, 1024, 200)
    [0]
    """
    step_ = window - gap
    out = [0]
    while out[-1] + window < size:
        out.append(min(out[-1] + step_, size - window))
    return out


def _tile_dir(base: Path, image: str, window: int, gap: int) -> Path:
    st = os.stat(image)
    key = hashlib.sha256(f"{Path(image).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{window}\0{gap}".encode()).hexdigest()
    return base / key[:16]


def _save_windows(image: str, windows: list[tuple[int, int, int, int]], names: list[str], folder: Path) -> str | None:
    """Crop each window once from the decoded image; None, or the drop reason when it cannot be read.

    The image is decoded once, in full and strictly (:class:`geodata.images.strict_pil`: a file
    cut short raises instead of padding grey; the bomb guard is lifted, since DOTA-v2 is ~20000²
    px), and a PNG's pixel stream is checked to its end alongside
    (:func:`geodata.images.png_stream_problem`), so a window is never cut from a broken image.
    Each window file is written all or nothing (:func:`geodata._cache.write_atomic`).
    """
    todo = [(w, n) for w, n in zip(windows, names) if not (folder / n).exists()]
    if not todo:
        return None
    import io
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from ..images import png_stream_problem, strict_pil

    im = None
    try:
        with open(image, "rb") as fh:
            is_png = fh.read(8) == b"\x89PNG\r\n\x1a\n"
        with ThreadPoolExecutor(1) as pool:
            # Pillow pads a PNG whose pixel stream ends early with zeros: check the stream to its end
            # (inflate only, bounded memory) in a thread while Pillow decodes the image
            stream = pool.submit(png_stream_problem, image) if is_png else None
            try:
                with strict_pil():
                    im = Image.open(image)
                    im.load()
            finally:
                why = stream.result() if stream is not None else None
        if why is not None:
            raise ValueError(why)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return "missing image"
    except Exception:  # noqa: BLE001 - whatever the decoder raises, the image is unreadable
        if im is not None:
            im.close()
        return "undecodable image"
    with im:
        for box, name in todo:
            buf = io.BytesIO()
            im.crop(box).save(buf, format="PNG")
            write_atomic(folder / name, buf.getbuffer())  # a full disk: DiskFullError, one line
    return None


def _tile_image(g: pl.DataFrame, window: int, gap: int, min_area_frac: float, base: Path
                ) -> tuple[list[dict], int, int, str | None]:
    """Window rows of one image's objects; also (windows written, objects cut below the threshold,
    the drop reason when the image cannot be read: then no rows)."""
    r0 = g.row(0, named=True)
    w, h = int(r0["width"]), int(r0["height"])
    try:
        folder = _tile_dir(base, r0["image"], window, gap)
    except FileNotFoundError:
        return [], 0, 0, "missing image"
    q = np.asarray(g["quad"].to_list(), dtype=np.float64).reshape(-1, 4, 2)
    polys = shapely.make_valid(shapely.polygons(np.concatenate([q, q[:, :1]], axis=1)))
    area = shapely.area(polys)
    rows: list[dict] = []
    wins, names = [], []
    lost = 0
    recs = g.drop("quad", "box").to_dicts()
    for up in window_starts(h, window, gap):
        for left in window_starts(w, window, gap):
            x1, y1 = min(left + window, w), min(up + window, h)
            inter = shapely.intersection(polys, shapely.box(left, up, x1, y1))
            frac = np.where(area > 0, shapely.area(inter) / np.where(area > 0, area, 1), 0.0)
            keep = np.nonzero(frac >= min_area_frac)[0]
            lost += int(((frac > 0) & (frac < min_area_frac)).sum())
            if keep.size == 0:
                continue
            stem = f"{r0['image_id']}__{window}__{left}___{up}"
            name = f"{stem}.png"
            wins.append((left, up, x1, y1))
            names.append(name)
            rect = shapely.minimum_rotated_rectangle(inter[keep])
            for i, rr in zip(keep, rect):
                full = frac[i] >= 1.0 - 1e-9
                c = q[i] if full else shapely.get_coordinates(rr)[:4]
                if len(c) < 4:
                    continue
                c = np.asarray(c, dtype=np.float64) - [left, up]
                c[:, 0] = np.clip(c[:, 0], 0, x1 - left)  # as the devkit clips to the window
                c[:, 1] = np.clip(c[:, 1], 0, y1 - up)
                quad = c.reshape(-1).tolist()
                rec = dict(recs[i])
                rec.update(image_id=stem, image=str(folder / name), width=x1 - left, height=y1 - up, quad=quad,
                           truncated=bool(rec.get("truncated")) or not full,
                           difficulty=rec.get("difficulty", 0) if full else 2)
                rows.append(rec)
    if wins:
        why = _save_windows(r0["image"], wins, names, folder)
        if why is not None:
            return [], 0, 0, why
    return rows, len(wins), lost, None


@step("eo_tiles", kind="join")
def eo_tiles(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    sources: list[str] = ["dota"],  # noqa: B006
    window: int = 1024,
    gap: int = 200,
    min_area_frac: float = 0.7,
    out_dir: str | None = None,
    **tables: pl.DataFrame,
) -> StepOutput:
    """Cut the images of object tables (``sources``) larger than ``window`` into windows.

    A join: each table named in ``sources`` is one of its ``inputs``; the tiled table is
    provided to later steps as input ``<step>.<name>`` (``eo_tiles.dota``).

    Examples
    --------
    A spec step (before ``eo_tasks``)::

        - step: eo_tiles
          inputs: {dota: dota}
          sources: [dota]
          window: 1024
          gap: 200
    """
    out = StepOutput()
    if not 0 < gap < window:
        raise SpecError(f"eo_tiles: gap must be in (0, window), got gap={gap}, window={window}")
    if not 0 < min_area_frac <= 1:
        raise SpecError(f"eo_tiles: min_area_frac must be in (0, 1], got {min_area_frac}")
    base = Path(out_dir) if out_dir else cache_dir() / "eo_tiles"
    out_df = df
    for name in sources:
        if name not in tables:
            raise BuildError(f"step '{ctx.name}': sources.{name} is not among its inputs ({sorted(tables)})")
        table = tables[name]
        if table.height == 0:
            out.provide(name, table)
            continue
        if "quad" not in table.columns:
            raise SpecError(f"eo_tiles: source '{name}' has no 'quad' column (pixel quadrilaterals; read by dota)")
        big = (pl.col("width") > window) | (pl.col("height") > window)
        is_window = pl.col("image_id").str.contains(WINDOW_RE.pattern)
        todo = table.filter(big & ~is_window)
        keep = table.filter(~(big & ~is_window))
        rows: list[dict] = []
        n_win = lost = 0
        bad: dict[str, list[str]] = {}
        for _, g in todo.group_by(["split", "image"], maintain_order=True):
            r, nw, nl, why = _tile_image(g, window, gap, min_area_frac, base)
            if why is not None:  # every object of an image that cannot be read: a counted drop
                out.drop(f"{name}: {why}", g.height)
                bad.setdefault(why, []).append(str(g["image"][0]))
                continue
            rows += r
            n_win += nw
            lost += nl
        out.drop(f"{name}: object cut below min_area_frac", lost)
        for why, images in bad.items():
            log.warning("eo_tiles: %d %s image(s) of '%s' dropped with their objects, e.g. %s",
                        len(images), why.split()[0], name, ", ".join(images[:3]))
        parts = [keep]
        if rows:
            tiled = pl.DataFrame(rows, schema={c: t for c, t in table.schema.items() if c != "box"})
            q = np.asarray(tiled["quad"].to_list(), dtype=np.float64)
            boxes = quads_to_boxes(q, tiled["width"].to_numpy(), tiled["height"].to_numpy())
            tiled = tiled.with_columns(box=pl.Series(boxes.tolist(), dtype=pl.List(pl.Float64))).select(table.columns)
            parts.append(tiled)
        new = pl.concat(parts)
        out.note(f"eo_tiles.{name}", {"images_tiled": todo["image"].n_unique() - sum(map(len, bad.values())),
                                      "images_dropped": sum(map(len, bad.values())), "windows": n_win,
                                      "objects_in": table.height, "objects_out": new.height})
        if table is df:
            out_df = new
        out.provide(name, new)
    return out.result(out_df)
