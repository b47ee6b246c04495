"""CV-Cities (Huang et al. 2024): ground/satellite pairs in 16 cities on five continents.

On disk (``$CVCITIES_ROOT``: the release root or the folder above it; GaoShuang98/CVCities
``cvcities_base/dataset/cvcities.py`` reads ``pd.read_csv(f'{data_folder}/{city}/img_info.csv',
header=None)``)::

    <city>/img_info.csv        no header: name, longitude, latitude, city, sat_dir, pano_dir
                               (sat_dir and pano_dir are image paths relative to the root;
                               backslashes, as written on Windows, are read as '/')
    <sat_dir>, <pano_dir>      the images

City folders are lower case, Cape Town spelt ``captown``. The official protocol
(``train/train_cvcities.py``: ``TRAIN_CITIES`` / ``TEST_CITIES``) trains on 10 cities
(162,954 pairs) and tests on 6 (60,782 pairs); those are the defaults of ``train_cities`` and
``test_cities``. A city folder in neither list is a counted skip (``city_outside_protocol``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .common import drop_bad_rows, drop_missing_images, finish, read_fields, tiny_image
from .._layout import find_root

__all__ = ["read_cvcities", "write_sample"]

INFO = "img_info.csv"
#: GaoShuang98/CVCities train/train_cvcities.py, TRAIN_CITIES (10 cities, 162,954 pairs)
TRAIN_CITIES = ("barcelona", "captown", "losangeles", "maynila", "melbourne", "mexico", "newyork",
                "paris", "santiago", "tokyo")
#: ... and TEST_CITIES (6 cities, 60,782 pairs)
TEST_CITIES = ("taipei", "singapore", "london", "seattle", "rio", "sydney")


def write_sample(d: Path) -> None:
    """Write a CV-Cities copy of three cities with 8 pairs each (one satellite image missing).

    ``captown`` and ``paris`` are training cities of the protocol, ``london`` a test city.
    """
    d = Path(d)
    rng = np.random.default_rng(3)
    cities = {"london": (51.5072, -0.1276), "paris": (48.8566, 2.3522),
              "captown": (-33.9249, 18.4241)}
    k = 0
    for city, (clat, clon) in cities.items():
        lines = []
        for j in range(8):
            lat = clat + rng.uniform(-0.015, 0.015)
            lon = clon + rng.uniform(-0.015, 0.015)
            name = f"{city}_{j:05d}"
            sat = f"{city}/satellite/{name}.jpg"
            pano = f"{city}/panorama/{name}.jpg"
            lines.append(f"{name},{lon:.7f},{lat:.7f},{city},{sat},{pano}")
            tiny_image(d / pano, (64, 32), 700 + k)
            if k != 12:  # a hole, as in real copies
                tiny_image(d / sat, (20, 20), 800 + k)
            k += 1
        (d / city).mkdir(parents=True, exist_ok=True)
        (d / city / INFO).write_text("\n".join(lines) + "\n")


@source("cvcities", env="CVCITIES_ROOT", sample=write_sample)
def read_cvcities(
    ctx: StepContext,
    *,
    root: Path,
    cities: list[str] | None = None,
    train_cities: list[str] = list(TRAIN_CITIES),  # noqa: B006
    test_cities: list[str] = list(TEST_CITIES),  # noqa: B006
    on_bad_line: Literal["error", "skip"] = "error",
) -> StepOutput:
    """CV-Cities pairs from every ``<city>/img_info.csv`` under the root.

    Parameters
    ----------
    cities
        City folders to read (default: every folder with an ``img_info.csv``).
    train_cities, test_cities
        Cities whose pairs get ``split = train`` / ``test`` (default: the official protocol).
        Naming a city in ``test_cities`` takes it out of ``train_cities``.
    on_bad_line
        ``error``: a line without 6 fields or with coordinates that do not parse raises,
        naming file and line; ``skip``: such lines are counted as ``malformed_line``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geodata.context import StepContext
    >>> d = pathlib.Path(tempfile.mkdtemp()); write_sample(d)
    >>> df = read_cvcities(StepContext(), root=d).rows
    >>> df.height, df.group_by("split").len().sort("split").rows()
    (23, [('test', 8), ('train', 15)])
    """
    out = StepOutput()
    root = find_root(root, lambda p: any(p.glob(f"*/{INFO}")), f"<city>/{INFO}")
    if cities is None:
        cities = sorted(p.parent.name for p in root.glob(f"*/{INFO}"))
        if not cities:
            raise SourceError(f"{root}: no <city>/{INFO} found")
    root_s = str(root.resolve()) + "/"
    out.note("cvcities.image_layout", f"release ({len(cities)} <city>/{INFO} files, no header)")
    frames = []
    for city in cities:
        path = root / city / INFO
        f = read_fields(path, 6, on_bad_line=on_bad_line, ctx=ctx, out=out)
        f = f.with_columns(
            pl.col("f1").cast(pl.Float64, strict=False).alias("lon"),
            pl.col("f2").cast(pl.Float64, strict=False).alias("lat"),
        )
        f = drop_bad_rows(
            f, pl.col("lat").is_not_null() & pl.col("lon").is_not_null(), path=path,
            message="longitude/latitude do not parse: {f1!r},{f2!r}", on_bad_line=on_bad_line, ctx=ctx, out=out,
        )
        frames.append(f.with_columns(pl.lit(city).alias("folder")))
    df = pl.concat(frames)
    norm = lambda c: pl.col(c).str.replace_all("\\\\", "/").str.strip_prefix("/")  # noqa: E731
    df = df.select(
        (pl.lit("cvcities/") + pl.col("folder") + pl.lit("/") + pl.col("f0")).alias("id"),
        pl.lit("cvcities").alias("source"),
        pl.col("f3").alias("city"),
        pl.when(pl.col("folder").is_in(test_cities)).then(pl.lit("test"))
        .when(pl.col("folder").is_in(train_cities)).then(pl.lit("train"))
        .otherwise(pl.lit(None, dtype=pl.String)).alias("split"),
        "lat",
        "lon",
        pl.col("lat").alias("sat_lat"),
        pl.col("lon").alias("sat_lon"),
        (pl.lit(root_s) + norm("f5")).alias("ground"),
        (pl.lit(root_s) + norm("f4")).alias("satellite"),
    )
    outside = df["split"].is_null()
    if outside.any():
        out.drop("city_outside_protocol", int(outside.sum()))
        out.note("cvcities.outside_protocol", sorted(set(df.filter(outside)["id"].str.split("/").list.get(1))))
        df = df.filter(~outside)
    if df.height == 0:
        raise SourceError(f"{root}: no city of {cities} is in train_cities or test_cities")
    df = drop_missing_images(
        df, ctx, out, {"ground": "missing_ground_image", "satellite": "missing_satellite_image"}
    )
    return out.result(finish(df, "cvcities", ctx, out))
