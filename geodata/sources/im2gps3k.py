"""IM2GPS3K as a benchmark to ask a model (Vo et al. 2017): the truth CSV and its images.

On disk (``$IM2GPS3K_ROOT``: the folder or its truth CSV; the layouts ``exclude_eval`` of the
MP-16 pipelines already reads, see ``catalogs/im2gps3k.yaml``)::

    im2gps3k_places365.csv     IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,...
    images/<IMG_ID>            e.g. 1000269685_e60e9cdfb4_1125_78841376@N00.jpg

or GeoEstimation's README form (``images/im2gps3k_places365.csv`` beside ``images/im2gps3k/``).
Swapped ``LAT``/``LON`` labels (copies before GeoEstimation commit 5e091c0) are recognised from
the values and read correctly, by the rule ``geodata eval`` applies to the same CSV. The images are required here:
a folder without them is an error, a row whose image is missing has null ``images`` (the
``require_images`` step counts it as ``missing_image`` against the spec's limits).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import polars as pl

from ..context import StepContext, StepOutput
from ..errors import SourceError
from ..images import folder_dirs, index_folder
from ..registry import source
from ..truth_files import eval_files as _eval_files
from .mp16 import match_images

__all__ = ["read_im2gps3k", "read_geo_benchmark", "read_truth_csv", "write_benchmark_sample", "benchmark_files"]


def benchmark_files(root: Path) -> list[Path]:
    """The truth CSV and the image folders: their size and mtime decide whether a build is current."""
    truth, img_dir = _eval_files(Path(root).expanduser())
    return [truth, *(folder_dirs(img_dir) if img_dir is not None else [])]


def read_truth_csv(path: Path, out: StepOutput, name: str) -> pl.DataFrame:
    """``id, lat, lon`` of a benchmark truth CSV (IMG_ID, LAT, LON in any case).

    Latitudes never leave ±90: a ``LAT`` column beyond ±90 while ``LON`` stays within it holds
    longitudes (labels swapped, read swapped with a note); both beyond is an error. Duplicate ids
    and invalid coordinates are counted drops.
    """
    from ..geo import valid_coords

    df = pl.read_csv(path, infer_schema=False)
    low = {c.lower(): c for c in df.columns}
    idc, latc, lonc = low.get("img_id") or low.get("id"), low.get("lat"), low.get("lon")
    if not (idc and latc and lonc):
        raise SourceError(f"{name}: {path}: expected IMG_ID, LAT, LON columns (found {df.columns})")
    df = df.select(id=pl.col(idc), lat=pl.col(latc).cast(pl.Float64, strict=False),
                   lon=pl.col(lonc).cast(pl.Float64, strict=False))
    lat_out = int((df["lat"].abs() > 90).sum())
    if lat_out:
        if int((df["lon"].abs() > 90).sum()) or int((df["lat"].abs() > 180).sum()):
            raise SourceError(f"{name}: {path}: cannot tell latitude from longitude ({lat_out} rows with |LAT| > 90 "
                              "and rows with |LON| > 90); fix the file or its header")
        df = df.rename({"lat": "lon", "lon": "lat"}).select("id", "lat", "lon")
        out.note(f"{name}.lat_lon_swapped", f"{path.name}: LAT/LON labels sit over longitude/latitude values: read swapped")
    n0 = df.height
    df = df.unique("id", keep="first", maintain_order=True)
    out.drop("duplicate_id", n0 - df.height)
    ok = pl.Series(valid_coords(df["lat"].fill_null(np.nan).to_numpy(), df["lon"].fill_null(np.nan).to_numpy()))
    out.drop("invalid_coordinates", int((~ok).sum()))
    return df.filter(ok)


def read_geo_benchmark(ctx: StepContext, root: Path, name: str, env: str) -> StepOutput:
    """Rows ``id, lat, lon, split='test', images`` of a geolocation benchmark (IM2GPS3K, YFCC4K).

    Duplicate ids and invalid coordinates of the truth are counted drops (``duplicate_id``,
    ``invalid_coordinates``); an image folder that is absent is an error (the benchmark is asked
    with its images); a row whose image is not in it gets null ``images``.
    """
    out = StepOutput()
    root = Path(root).expanduser()
    if not root.exists():
        raise SourceError(f"{name}: {root} does not exist (set {env} to the folder holding the truth CSV and images/)")
    truth, img_dir = _eval_files(root)
    if img_dir is None:
        raise SourceError(f"{name}: no image folder beside {truth} (expected {truth.parent / 'images'}/<IMG_ID>): "
                          f"the benchmark is asked with its images; unpack them there")
    df = read_truth_csv(truth, out, name)
    idx = index_folder(img_dir)
    df = match_images(df, idx, name)
    out.note(f"{name}.image_layout", f"{truth.name} + {img_dir.relative_to(truth.parent) if img_dir.is_relative_to(truth.parent) else img_dir.name}/")
    df = df.with_columns(
        split=pl.lit("test"),
        images=pl.when(pl.col("_ref").is_null()).then(None).otherwise(pl.concat_list("_ref")),
    )
    return out.result(df.drop("_ref", "_size"))


@source("im2gps3k", env="IM2GPS3K_ROOT", sample=lambda d: write_benchmark_sample(d, "im2gps3k"),
        fingerprint=lambda root, **_: benchmark_files(root))
def read_im2gps3k(ctx: StepContext, *, root: Path) -> StepOutput:
    """IM2GPS3K's 2,997 test photos with their truth (``im2gps3k_places365.csv`` + ``images/``)."""
    return read_geo_benchmark(ctx, root, "im2gps3k", "IM2GPS3K_ROOT")


# -- embedded samples in the release layouts -------------------------------------------------------

_PLACES = [("Paris", 48.8584, 2.2945), ("New York City", 40.7484, -73.9857), ("Tokyo", 35.6586, 139.7454),
           ("Sydney", -33.8568, 151.2153), ("Rio de Janeiro", -22.9519, -43.2105), ("Cairo", 29.9792, 31.1342),
           ("Rome", 41.8902, 12.4922), ("San Francisco", 37.8199, -122.4783), ("Moscow", 55.7539, 37.6208),
           ("Cape Town", -33.9628, 18.4098), ("Reykjavik", 64.1417, -21.9266), ("Beijing", 39.9163, 116.3972)]


def _jpeg(rng: np.random.Generator, lat: float, lon: float, size: int = 32) -> bytes:
    from PIL import Image

    base = np.array([(lat + 90) / 180 * 255, (lon + 180) / 360 * 255, 96.0])
    arr = np.clip(base[None, None, :] + rng.normal(0, 14, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def write_benchmark_sample(d: Path, name: str, n: int = 24, missing: int = 0) -> dict[str, int]:
    """A small IM2GPS3K / YFCC4K copy in the release layout: ``<name>_places365.csv`` + ``images/``.

    IM2GPS3K rows carry GeoEstimation's full header and Flickr names
    (``<photo id>_<secret>_<server>_<owner>.jpg``); YFCC4K rows ``<photo id>.jpg``. Photo ids
    lie far from the MP-16 sample's. ``missing`` rows have no image (a counted ``missing_image``).
    """
    d = Path(d)
    rng = np.random.default_rng(3000 if name == "im2gps3k" else 4536)
    pick = rng.integers(0, len(_PLACES), n)
    lat = np.round(np.array([_PLACES[i][1] for i in pick]) + rng.normal(0, 0.3, n), 6)
    lon = np.round(np.array([_PLACES[i][2] for i in pick]) + rng.normal(0, 0.3, n), 6)
    base = 70_000_000_000 if name == "im2gps3k" else 80_000_000_000
    photo = base + np.cumsum(rng.integers(1, 10_000, n))
    if name == "im2gps3k":
        ids = [f"{p}_{hashlib.md5(str(p).encode()).hexdigest()[:10]}_{1000 + i}_{rng.integers(10**7, 10**8)}@N00.jpg"
               for i, p in enumerate(photo)]
        probs = rng.dirichlet([1.0, 1.0, 1.0], n)
        df = pl.DataFrame({"IMG_ID": ids, "AUTHOR": [i.rsplit("_", 1)[1].removesuffix(".jpg") for i in ids],
                           "LAT": lat, "LON": lon, "S3_Label": probs.argmax(1).astype(np.int32),
                           "S16_Label": rng.integers(0, 16, n).astype(np.int32),
                           "S365_Label": rng.integers(0, 365, n).astype(np.int32),
                           "Prob_indoor": np.round(probs[:, 0], 4), "Prob_natural": np.round(probs[:, 1], 4),
                           "Prob_urban": np.round(probs[:, 2], 4)})
    else:
        df = pl.DataFrame({"IMG_ID": [f"{p}.jpg" for p in photo], "LAT": lat, "LON": lon})
    (d / "images").mkdir(parents=True, exist_ok=True)
    df.write_csv(d / f"{name}_places365.csv")
    absent = set(df["IMG_ID"][3 : 3 + missing].to_list())
    for img_id, a, b in df.select("IMG_ID", "LAT", "LON").iter_rows():
        if img_id not in absent:
            (d / "images" / img_id).write_bytes(_jpeg(rng, a, b))
    return {"missing_image": len(absent)}
