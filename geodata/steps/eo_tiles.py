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
* windows without an object are not written; window images are PNG files named as mmrotate
  names them, ``<id>__<window>__<left>___<up>.png``, under ``out_dir`` (default: the geodata
  cache, ``$GEODATA_CACHE/eo_tiles/``), written once and reused by later builds.

The step provides the tiled tables to later steps (``inputs: {dota: eo_tiles.dota}``), so it runs before
``eo_tasks``. Images already named like split windows are left alone.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import polars as pl
import shapely

from .._cache import cache_dir
from ..context import StepContext, StepOutput
from ..errors import BuildError, SpecError
from ..registry import step
from ..contracts.eo import quads_to_boxes
from ..image_geometry import WINDOW_RE

__all__ = ["eo_tiles", "window_starts"]


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


def _save_windows(image: str, windows: list[tuple[int, int, int, int]], names: list[str], folder: Path) -> None:
    """Crop each window once from the decoded image (bomb guard lifted: DOTA-v2 is ~20000² px)."""
    todo = [(w, n) for w, n in zip(windows, names) if not (folder / n).exists()]
    if not todo:
        return
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    guard = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(image) as im:
            im.load()
            for (x0, y0, x1, y1), name in todo:
                tmp = folder / f".{name}.tmp{os.getpid()}"
                im.crop((x0, y0, x1, y1)).save(tmp, format="PNG")
                os.replace(tmp, folder / name)
    finally:
        Image.MAX_IMAGE_PIXELS = guard


def _tile_image(g: pl.DataFrame, window: int, gap: int, min_area_frac: float, base: Path) -> tuple[list[dict], int, int]:
    """Window rows of one image's objects; also (windows written, objects cut below the threshold)."""
    r0 = g.row(0, named=True)
    w, h = int(r0["width"]), int(r0["height"])
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
            folder = _tile_dir(base, r0["image"], window, gap)
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
        _save_windows(r0["image"], wins, names, _tile_dir(base, r0["image"], window, gap))
    return rows, len(wins), lost


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
        for _, g in todo.group_by(["split", "image"], maintain_order=True):
            r, nw, nl = _tile_image(g, window, gap, min_area_frac, base)
            rows += r
            n_win += nw
            lost += nl
        out.drop(f"{name}: object cut below min_area_frac", lost)
        parts = [keep]
        if rows:
            tiled = pl.DataFrame(rows, schema={c: t for c, t in table.schema.items() if c != "box"})
            q = np.asarray(tiled["quad"].to_list(), dtype=np.float64)
            boxes = quads_to_boxes(q, tiled["width"].to_numpy(), tiled["height"].to_numpy())
            tiled = tiled.with_columns(box=pl.Series(boxes.tolist(), dtype=pl.List(pl.Float64))).select(table.columns)
            parts.append(tiled)
        new = pl.concat(parts)
        out.note(f"eo_tiles.{name}", {"images_tiled": todo["image"].n_unique(), "windows": n_win,
                                      "objects_in": table.height, "objects_out": new.height})
        if table is df:
            out_df = new
        out.provide(name, new)
    return out.result(out_df)
