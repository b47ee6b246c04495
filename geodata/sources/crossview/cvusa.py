"""CVUSA (the 44,416-pair cross-view subset of Workman et al.; Zhai et al. 2017).

On disk (``$CVUSA_ROOT``: the release root or the folder above it; Skyy93/Sample4Geo
``sample4geo/dataset/cvusa.py`` and GaoShuang98/CVCities read the same two split files)::

    splits/train-19zl.csv          no header: satellite path, ground path, annotation path
    splits/val-19zl.csv            (split validation; the set every CVUSA result is reported on)
                                   e.g. bingmap/19/0000001.jpg,streetview/panos/0000001.jpg,
                                        streetview/annotations/0000001.png
    split_locations/all.csv        optional; no header: sat_lat, sat_lon, ground_lat, ground_lon, …
                                   (row k holds pair id k + 1, the number in the file names)
    bingmap/19/<id>.jpg            satellite tiles
    streetview/panos/<id>.jpg      ground panoramas

Without ``split_locations/all.csv`` the pairs have null coordinates; the pairing step then
drops them (a hard negative needs a distance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .common import BadLine, drop_bad_rows, drop_missing_images, finish, read_fields, tiny_image
from .._layout import find_root, official_splits

__all__ = ["read_cvusa", "write_sample"]

SPLIT_FILES = {"train": "splits/train-19zl.csv", "validation": "splits/val-19zl.csv"}
LOCATIONS = "split_locations/all.csv"


def _read_locations(path: Path, on_bad_line: BadLine, ctx: StepContext, out: StepOutput) -> pl.DataFrame | None:
    """``pair`` (1-based) → sat_lat, sat_lon, lat, lon from ``all.csv``; None if absent."""
    if not path.exists():
        out.note("cvusa.locations", "absent (coordinates are null)")
        return None
    f = read_fields(path, 4, on_bad_line=on_bad_line, ctx=ctx, out=out, min_fields=4)
    nums = [pl.col(f"f{i}").cast(pl.Float64, strict=False).alias(n)
            for i, n in enumerate(("sat_lat", "sat_lon", "lat", "lon"))]
    f = f.with_columns(nums)
    ok = pl.all_horizontal(pl.col(n).is_not_null() for n in ("sat_lat", "sat_lon", "lat", "lon"))
    f = drop_bad_rows(f, ok, path=path, message="coordinates do not parse: {f0!r},{f1!r},{f2!r},{f3!r}",
                      on_bad_line=on_bad_line, ctx=ctx, out=out)
    # row k (0-based) belongs to pair k + 1, i.e. the 1-based line number is the pair id
    return f.select(pl.col("line").alias("pair"), "sat_lat", "sat_lon", "lat", "lon")


def write_sample(d: Path) -> None:
    """Write a 24-pair CVUSA copy in the real layout (one satellite tile is missing).

    Pairs sit in three clusters (Kentucky, Colorado, Oregon) a few hundred metres apart,
    so the pairing step finds real near neighbours.
    """
    d = Path(d)
    rng = np.random.default_rng(11)
    centres = [(38.2527, -85.7585), (39.7392, -104.9903), (45.5152, -122.6784)]
    rows, locs = [], []
    for i in range(24):
        clat, clon = centres[i % 3]
        lat = clat + rng.uniform(-0.02, 0.02)
        lon = clon + rng.uniform(-0.02, 0.02)
        locs.append((lat + 1e-5, lon - 1e-5, lat, lon))
        num = f"{i + 1:07d}"
        rows.append((f"bingmap/19/{num}.jpg", f"streetview/panos/{num}.jpg",
                     f"streetview/annotations/{num}.png"))
        tiny_image(d / rows[-1][1], (48, 12), i)
        if i != 5:  # a hole, as in real copies
            tiny_image(d / rows[-1][0], (16, 16), 100 + i)
    (d / "splits").mkdir(parents=True, exist_ok=True)
    (d / "splits/train-19zl.csv").write_text("".join(",".join(r) + "\n" for r in rows[:18]))
    (d / "splits/val-19zl.csv").write_text("".join(",".join(r) + "\n" for r in rows[18:]))
    (d / "split_locations").mkdir(parents=True, exist_ok=True)
    (d / LOCATIONS).write_text(
        "".join(f"{a:.7f},{b:.7f},{c:.7f},{e:.7f},0\n" for a, b, c, e in locs)
    )


@source("cvusa", env="CVUSA_ROOT", sample=write_sample)
def read_cvusa(
    ctx: StepContext,
    *,
    root: Path,
    splits: list[str] = ["train", "validation"],  # noqa: B006
    on_bad_line: Literal["error", "skip"] = "error",
) -> StepOutput:
    """CVUSA ground panorama / Bing satellite pairs from the 19zl split files.

    Parameters
    ----------
    root
        The CVUSA folder (``splits/``, ``bingmap/``, ``streetview/``).
    splits
        Which split files to read: ``train`` (train-19zl.csv), ``validation`` (val-19zl.csv;
        ``val`` is accepted too).
    on_bad_line
        ``error``: a malformed split or location line raises, naming file and line;
        ``skip``: such lines are dropped and counted as ``malformed_line``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geodata.context import StepContext
    >>> d = pathlib.Path(tempfile.mkdtemp()); write_sample(d)
    >>> df = read_cvusa(StepContext(), root=d).rows
    >>> df.columns[:6], sorted(df["split"].unique())
    (['id', 'source', 'city', 'split', 'lat', 'lon'], ['train', 'validation'])
    """
    out = StepOutput()
    root = find_root(root, lambda p: (p / SPLIT_FILES["train"]).is_file() or (p / SPLIT_FILES["validation"]).is_file(),
                     "splits/train-19zl.csv or splits/val-19zl.csv")
    frames = []
    for split in official_splits(list(splits)) or []:
        if split not in SPLIT_FILES:
            raise SourceError(f"cvusa: no '{split}' split (CVUSA ships {', '.join(SPLIT_FILES)})")
        path = root / SPLIT_FILES[split]
        f = read_fields(path, 3, on_bad_line=on_bad_line, ctx=ctx, out=out)
        f = f.with_columns(
            pl.col("f0").str.extract(r"(\d+)\.\w+$", 1).alias("num"),
        )
        f = drop_bad_rows(
            f, pl.col("num").is_not_null(), path=path,
            message="satellite path {f0!r} has no numeric pair id", on_bad_line=on_bad_line, ctx=ctx, out=out,
        )
        frames.append(f.with_columns(pl.lit(split).alias("split")))
    df = pl.concat(frames) if frames else pl.DataFrame()
    if df.height == 0:
        raise SourceError(f"{root}: no pairs in {[SPLIT_FILES.get(s, s) for s in splits]}")
    root_s = str(root.resolve())
    df = df.with_columns(
        (pl.lit("cvusa/") + pl.col("num")).alias("id"),
        pl.col("num").cast(pl.Int64).alias("pair"),
        (pl.lit(root_s + "/") + pl.col("f0")).alias("satellite"),
        (pl.lit(root_s + "/") + pl.col("f1")).alias("ground"),
        pl.lit("cvusa").alias("source"),
        pl.lit(None, dtype=pl.String).alias("city"),
    )
    out.note("cvusa.image_layout", "release (splits/*-19zl.csv, bingmap/19/, streetview/panos/)")
    loc = _read_locations(root / LOCATIONS, on_bad_line, ctx, out)
    if loc is not None:
        df = df.join(loc, on="pair", how="left", maintain_order="left")
        n_nocoord = int(df["lat"].is_null().sum())
        if n_nocoord:
            out.note("cvusa.pairs_without_location", n_nocoord)
    df = drop_missing_images(
        df, ctx, out, {"ground": "missing_ground_image", "satellite": "missing_satellite_image"}
    )
    return out.result(finish(df, "cvusa", ctx, out))
