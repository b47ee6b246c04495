"""VIGOR (Zhu et al. 2021): panoramas in four US cities and overlapping satellite tiles.

On disk (``$VIGOR_ROOT``: the release root or the folder above it; Jeff-Zilence/VIGOR
``data/DATASET.md`` and ``dataloader.py``)::

    <City>/panorama/<prefix>,<lat>,<lon>,.jpg       ground panoramas (location in the name)
    <City>/satellite/satellite_<lat>_<lon>.png      satellite tiles (centre in the name)
    splits/<City>/same_area_balanced_train.txt      one line per panorama, 13 space-separated
    splits/<City>/same_area_balanced_test.txt       fields: panorama, then the positive tile
    splits/<City>/pano_label_balanced.txt           and three semi-positives, each followed by
    splits/<City>/satellite_list.txt                its pixel offset (row, column), tile minus
                                                    panorama: north and east are positive

The corrected labels of SliceMatch (tudelft-iv/SliceMatch ``VIGOR_corrected_labels``) replace
``splits/`` by ``splits__corrected/<City>/`` whose label files end in ``__corrected.txt``
(``satellite_list.txt`` keeps its name); ``label_dir: auto`` finds either. Sample4Geo's
re-arranged copy (``ground/<City>/``, ``satellite/<City>/``) is read too; the layout found is
noted as ``vigor.image_layout``.

Cities: NewYork, Seattle, SanFrancisco, Chicago. ``area: same`` reads the same-area
split files of every city; ``area: cross`` reads ``pano_label_balanced.txt`` with VIGOR's
cross-area protocol (NewYork and Seattle train, SanFrancisco and Chicago test).

Semi-positive tiles also cover the panorama, so they must never serve as wrong answers:
the reader keeps them in ``semi_positives`` and the pairing step excludes them besides
every tile within ``min_km``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from ...context import StepContext, StepOutput
from ...errors import ChoiceError, SourceError
from ...registry import source
from .common import drop_bad_rows, drop_missing_images, finish, read_fields, tiny_image
from .._layout import find_root, official_splits

__all__ = ["read_vigor", "write_sample", "CITIES"]

CITIES = ("NewYork", "Seattle", "SanFrancisco", "Chicago")
CROSS_TRAIN = ("NewYork", "Seattle")
_NUM = r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_SAT_RE = rf"^satellite_{_NUM}_{_NUM}\.png$"
_PANO_RE = rf"^[^,]*,{_NUM},{_NUM},.*$"


def _sat_name(lat: float, lon: float) -> str:
    return f"satellite_{float(lat)!r}_{float(lon)!r}.png"


def write_sample(d: Path) -> None:
    """Write a small VIGOR copy: 8 panoramas per city (6 train, 2 test), one pano missing.

    Tiles lie on a grid of ~40 m; each panorama's positive is the tile nearest to it and
    its semi-positives are the three other tiles of the 2×2 block around it, as in VIGOR.
    The labels are in SliceMatch's corrected form (``splits__corrected/<City>/*__corrected.txt``).
    """
    d = Path(d)
    rng = np.random.default_rng(5)
    centres = {"NewYork": (40.7359, -73.9911), "Seattle": (47.6097, -122.3331),
               "SanFrancisco": (37.7793, -122.4193), "Chicago": (41.8781, -87.6298)}
    step = 0.0004  # ~44 m north-south
    k = 0
    for city, (clat, clon) in centres.items():
        lines = []
        tiles: set[str] = set()
        for j in range(8):
            # panoramas ~300 m to 2 km apart
            plat = clat + 0.004 * (j % 4) + rng.uniform(-0.0005, 0.0005)
            plon = clon + 0.005 * (j // 4) + rng.uniform(-0.0005, 0.0005)
            i0 = np.floor(plat / step)
            j0 = np.floor(plon / step)
            block = [(round((i0 + a) * step, 8), round((j0 + b) * step, 8)) for a in (0, 1) for b in (0, 1)]
            block.sort(key=lambda t: (t[0] - plat) ** 2 + (t[1] - plon) ** 2)
            prefix = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyzABCDEFGH0123456789_-"), 22))
            pano = f"{prefix},{plat:.7f},{plon:.7f},.jpg"
            fields = [pano]
            for tlat, tlon in block:
                name = _sat_name(tlat, tlon)
                tiles.add(name)
                dy = (tlat - plat) / step * 320.0
                dx = (tlon - plon) / step * 320.0  # tile minus panorama, east positive
                fields += [name, f"{dy:.4f}", f"{dx:.4f}"]
            lines.append(" ".join(fields))
            if k != 9:  # a hole, as in real copies
                tiny_image(d / city / "panorama" / pano, (64, 32), 400 + k)
            k += 1
        for t, name in enumerate(sorted(tiles)):
            tiny_image(d / city / "satellite" / name, (20, 20), 600 + 40 * list(centres).index(city) + t)
        sd = d / "splits__corrected" / city
        sd.mkdir(parents=True, exist_ok=True)
        (sd / "same_area_balanced_train__corrected.txt").write_text("\n".join(lines[:6]) + "\n")
        (sd / "same_area_balanced_test__corrected.txt").write_text("\n".join(lines[6:]) + "\n")
        (sd / "pano_label_balanced__corrected.txt").write_text("\n".join(lines) + "\n")
        (sd / "satellite_list.txt").write_text("\n".join(sorted(tiles)) + "\n")


def _image_dirs(root: Path, city: str) -> tuple[str, str, str]:
    """``(layout, panorama folder, satellite folder)`` of one city (absolute, '/'-terminated)."""
    r = root.resolve()
    if (root / city / "panorama").is_dir() or (root / city / "satellite").is_dir():
        return "release", f"{r}/{city}/panorama/", f"{r}/{city}/satellite/"
    if (root / "ground" / city).is_dir() or (root / "satellite" / city).is_dir():
        return "sample4geo", f"{r}/ground/{city}/", f"{r}/satellite/{city}/"
    raise SourceError(
        f"{root}: no images for {city} (looked for {root / city / 'panorama'} and {root / 'ground' / city})"
    )


def _read_city(
    path: Path, city: str, split: str, dirs: tuple[str, str, str], on_bad_line: str, ctx: StepContext, out: StepOutput
) -> pl.DataFrame:
    f = read_fields(path, 13, sep=" ", on_bad_line=on_bad_line, ctx=ctx, out=out)  # type: ignore[arg-type]
    f = f.with_columns(
        pl.col("f0").str.extract(_PANO_RE, 1).cast(pl.Float64, strict=False).alias("lat"),
        pl.col("f0").str.extract(_PANO_RE, 2).cast(pl.Float64, strict=False).alias("lon"),
        *[pl.col(f"f{i}").str.extract(_SAT_RE, g).cast(pl.Float64, strict=False).alias(f"s{i}_{g}")
          for i in (1, 4, 7, 10) for g in (1, 2)],
    )
    f = drop_bad_rows(
        f, pl.col("lat").is_not_null() & pl.col("lon").is_not_null(), path=path,
        message="panorama name {f0!r} has no coordinates (expected <prefix>,<lat>,<lon>,.jpg)",
        on_bad_line=on_bad_line, ctx=ctx, out=out,  # type: ignore[arg-type]
    )
    for i in (1, 4, 7, 10):
        f = drop_bad_rows(
            f, pl.col(f"s{i}_1").is_not_null() & pl.col(f"s{i}_2").is_not_null(), path=path,
            message=f"satellite name {{f{i}!r}} has no coordinates (expected satellite_<lat>_<lon>.png)",
            on_bad_line=on_bad_line, ctx=ctx, out=out,  # type: ignore[arg-type]
        )
    offsets = pl.concat_list([pl.col(f"f{i}").cast(pl.Float64, strict=False) for i in (2, 3)])
    f = drop_bad_rows(
        f, pl.concat_list([pl.col(f"f{i}").cast(pl.Float64, strict=False) for i in
                           (2, 3, 5, 6, 8, 9, 11, 12)]).list.drop_nulls().list.len() == 8,
        path=path, message="pixel offsets do not parse: {f2!r} {f3!r} …",
        on_bad_line=on_bad_line, ctx=ctx, out=out,  # type: ignore[arg-type]
    )
    _, pano_dir, sat_dir = dirs
    return f.select(
        (pl.lit(f"vigor/{city}/") + pl.col("f0").str.replace(r"\.\w+$", "")).alias("id"),
        pl.lit("vigor").alias("source"),
        pl.lit(city).alias("city"),
        pl.lit(split).alias("split"),
        "lat",
        "lon",
        pl.col("s1_1").alias("sat_lat"),
        pl.col("s1_2").alias("sat_lon"),
        (pl.lit(pano_dir) + pl.col("f0")).alias("ground"),
        (pl.lit(sat_dir) + pl.col("f1")).alias("satellite"),
        pl.concat_list([pl.lit(sat_dir) + pl.col(f"f{i}") for i in (4, 7, 10)]).alias("semi_positives"),
        offsets.alias("sat_offset_px"),
    )


@source("vigor", env="VIGOR_ROOT", sample=write_sample)
def read_vigor(
    ctx: StepContext,
    *,
    root: Path,
    area: Literal["same", "cross"] = "same",
    splits: list[str] = ["train", "test"],  # noqa: B006
    cities: list[str] | None = None,
    label_dir: str = "auto",
    on_bad_line: Literal["error", "skip"] = "error",
) -> StepOutput:
    """VIGOR panorama / positive-tile pairs with their semi-positive tiles.

    Parameters
    ----------
    area
        ``same``: ``same_area_balanced_{train,test}.txt``; ``cross``: ``pano_label_balanced.txt``
        with NewYork and Seattle as train, SanFrancisco and Chicago as test.
    splits
        Which splits to keep.
    cities
        Cities to read (default: every folder under ``<label_dir>/`` with split files).
    label_dir
        ``auto`` (``splits`` or ``splits__corrected``, whichever the root has; both is an
        error naming them), or the folder name.
    on_bad_line
        ``error``: a line without 13 fields, a panorama or satellite name without
        coordinates, or an offset that does not parse raises naming file and line;
        ``skip``: such lines are counted as ``malformed_line`` and dropped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geodata.context import StepContext
    >>> d = pathlib.Path(tempfile.mkdtemp()); write_sample(d)
    >>> df = read_vigor(StepContext(), root=d).rows
    >>> df.height, df["semi_positives"].list.len().unique().to_list()
    (31, [3])
    """
    out = StepOutput()
    root = find_root(root, lambda p: (p / "splits").is_dir() or (p / "splits__corrected").is_dir(),
                     "VIGOR's splits/ or splits__corrected/ folder")
    if label_dir == "auto":
        found = [n for n in ("splits", "splits__corrected") if (root / n).is_dir()]
        if len(found) > 1:
            sid = ctx.name.split(":", 1)[1] if ctx.name.startswith("read:") else "vigor"
            raise ChoiceError(
                f"{root}: both splits/ and splits__corrected/ found; set the source's label_dir to one of them "
                f"(--set sources.{sid}.label_dir=splits or =splits__corrected; `geodata check vigor` counts both)",
                "label_dir", found,
            )
        label_dir = found[0]
    labels = root / label_dir
    if not labels.is_dir():
        raise SourceError(f"{labels}: folder not found (expected VIGOR's split files under it)")
    if cities is None:
        cities = sorted(p.name for p in labels.iterdir() if p.is_dir())
        if not cities:
            raise SourceError(f"{labels}: no city folders")
    want = official_splits(list(splits)) or ["train", "test"]
    out.note("vigor.labels", label_dir)
    frames = []
    layouts = set()
    for city in cities:
        dirs = _image_dirs(root, city)
        layouts.add(dirs[0])
        if area == "same":
            todo = [(f"same_area_balanced_{s}", s) for s in ("train", "test") if s in want]
        else:
            split = "train" if city in CROSS_TRAIN else "test"
            todo = [("pano_label_balanced", split)] if split in want else []
        for stem, split in todo:
            path = _label_file(labels / city, stem)
            frames.append(_read_city(path, city, split, dirs, on_bad_line, ctx, out))
    out.note("vigor.image_layout", ", ".join(sorted(layouts)))
    if not frames:
        raise SourceError(f"{labels}: no split files selected (cities={cities}, splits={list(splits)})")
    df = pl.concat(frames)
    df = drop_missing_images(
        df, ctx, out, {"ground": "missing_ground_image", "satellite": "missing_satellite_image"}
    )
    return out.result(finish(df, "vigor", ctx, out, extra=("semi_positives", "sat_offset_px")))


def _label_file(folder: Path, stem: str) -> Path:
    """``<stem>.txt`` (the release) or ``<stem>__corrected.txt`` (SliceMatch), whichever exists."""
    for name in (f"{stem}.txt", f"{stem}__corrected.txt"):
        if (folder / name).exists():
            return folder / name
    return folder / f"{stem}.txt"  # read_fields names the missing file
