"""MP-16 (and MP16-Pro) reader, image-layout detection and the embedded sample writer.

See ``catalogs/mp16.yaml`` for the on-disk layout. Rows keep the file's ``IMG_ID`` as ``id``;
images are matched to ids by their last path components, so ``34/8d/9055806529.jpg``
(folder tree, msgpack ``id``, tar member ``mp16/34/8d/9055806529.jpg``) and the MP16-Pro
spelling ``34_8d_9055806529.jpg`` all meet.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from .._cache import cached_frame
from ..context import Context
from ..errors import SourceError
from ..images import index_folder, index_msgpack, index_tar
from ..registry import source

__all__ = ["read_mp16", "write_sample", "detect_layout", "METADATA_FILES"]

METADATA_FILES = ("mp16_places365.csv", "MP16_Pro_places365.csv", "MP16_Pro_filtered.csv")

_PLACES_COLUMNS = {
    "IMG_ID": "id",
    "AUTHOR": "author",
    "LAT": "lat",
    "LON": "lon",
    "S3_Label": "s3_label",
    "S16_Label": "s16_label",
    "S365_Label": "s365_label",
    "Prob_indoor": "prob_indoor",
    "Prob_natural": "prob_natural",
    "Prob_urban": "prob_urban",
}
_PRO_COLUMNS = {
    "IMG_ID": "id",
    "LAT": "lat",
    "LON": "lon",
    "neighbourhood": "pro_neighbourhood",
    "city": "pro_city",
    "county": "pro_county",
    "state": "pro_state",
    "region": "pro_region",
    "country": "pro_country",
    "continent": "pro_continent",
}

Layout = Literal["auto", "folder", "msgpack", "tar", "none"]


def _metadata_path(root: Path, metadata: str) -> Path:
    if not root.is_dir():
        raise SourceError(f"mp16: root {root} is not a directory (set MP16_ROOT)")
    if metadata != "auto":
        p = root / metadata
        if not p.is_file():
            raise SourceError(f"mp16: metadata file {p} does not exist")
        return p
    for name in METADATA_FILES:
        if (root / name).is_file():
            return root / name
    raise SourceError(
        f"mp16: no metadata under {root} (expected one of {', '.join(METADATA_FILES)}); "
        "set MP16_ROOT or run `geodata sample-data`"
    )


def detect_layout(root: Path) -> str:
    """``folder`` if ``images/`` exists, else ``msgpack`` if ``msgpack/*.msg``, else ``tar``."""
    if (root / "images").is_dir():
        return "folder"
    if any((root / "msgpack").glob("*.msg")):
        return "msgpack"
    if any(root.glob("*.tar")):
        return "tar"
    return "none"


def _image_files(root: Path, layout: str) -> list[Path]:
    if layout == "msgpack":
        return sorted((root / "msgpack").glob("*.msg"))
    if layout == "tar":
        return sorted(root.glob("*.tar"))
    return []


def fingerprint_files(root: Path, metadata: str = "auto", images: Layout = "auto") -> list[Path]:
    """Files whose size and mtime decide whether an MP-16 build is up to date."""
    files = [_metadata_path(root, metadata)]
    layout = detect_layout(root) if images == "auto" else images
    if layout == "folder":
        # directory mtimes change whenever an entry is added or removed
        files += sorted(Path(d) for d, _, _ in os.walk(root / "images"))
    else:
        files += _image_files(root, layout)
    return files


def _read_metadata(path: Path) -> pl.DataFrame:
    header = pl.read_csv(path, n_rows=0).columns
    mapping = _PRO_COLUMNS if path.name.startswith("MP16_Pro") else _PLACES_COLUMNS
    required = ["IMG_ID", "LAT", "LON"]
    missing = [c for c in required if c not in header]
    if missing:
        raise SourceError(
            f"{path}: missing columns {missing} (expected {list(mapping)}, found {header})"
        )
    present = {k: v for k, v in mapping.items() if k in header}
    df = pl.read_csv(
        path,
        columns=list(present),
        schema_overrides={c: pl.String for c in present},
        infer_schema=False,
    ).rename(present)
    casts = []
    for col in df.columns:
        if col in ("lat", "lon") or col.startswith("prob_"):
            casts.append(pl.col(col).str.strip_chars().cast(pl.Float64, strict=False))
        elif col.endswith("_label"):
            casts.append(pl.col(col).str.strip_chars().cast(pl.Int32, strict=False))
    df = df.with_columns(casts)
    if "author" not in df.columns:  # MP16-Pro has no AUTHOR: keep the column for one schema
        df = df.with_columns(author=pl.lit(None, dtype=pl.String))
    return df


def _index_images(root: Path, layout: str) -> pl.DataFrame:
    if layout == "folder":
        return cached_frame("mp16-folder", [root / "images"], lambda: index_folder(root / "images"))
    files = _image_files(root, layout)
    if layout == "msgpack":
        return cached_frame("mp16-msgpack", files, lambda: index_msgpack(files))
    return cached_frame("mp16-tar", files, lambda: index_tar(files))


def _norm_key(col: pl.Expr, depth: int) -> pl.Expr:
    """Last ``depth`` path components joined by '_' (MP16-Pro's spelling of IMG_ID)."""
    parts = col.str.replace_all("_", "/").str.split("/")
    return parts.list.slice(-depth, depth).list.join("_")


@source("mp16", env="MP16_ROOT", sample=lambda d: write_sample(d), fingerprint=fingerprint_files)
def read_mp16(
    ctx: Context,
    *,
    root: Path,
    metadata: str = "auto",
    images: Layout = "auto",
) -> pl.DataFrame:
    """Read MP-16 metadata and index its images (folder tree, msgpack shards or tars).

    Returns one row per metadata line: id, lat, lon (null when not numeric), author and the
    Places365 columns (or MP16-Pro's address columns, prefixed ``pro_``), and ``images``:
    a one-element list of image references, null when the image is missing, empty when
    ``images="none"`` (metadata-only build).
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"mp16: root {root} is not a directory (set MP16_ROOT)")
    df = _read_metadata(_metadata_path(root, metadata))
    layout = detect_layout(root) if images == "auto" else images
    ctx.note("mp16.image_layout", layout)
    if layout == "none":
        if images == "auto":
            raise SourceError(
                f"mp16: no images under {root} (expected images/, msgpack/*.msg or *.tar); "
                "pass images: none for a metadata-only build"
            )
        return df.with_columns(images=pl.lit([], dtype=pl.List(pl.String)))
    idx = _index_images(root, layout)
    sample_id = df["id"].drop_nulls().head(1).to_list()
    depth = (sample_id[0].replace("_", "/").count("/") + 1) if sample_id else 3
    idx = idx.with_columns(_k=_norm_key(pl.col("key"), depth)).unique("_k", keep="first").select(
        "_k", "ref"
    )
    df = df.with_columns(_k=_norm_key(pl.col("id"), depth)).join(
        idx, on="_k", how="left", maintain_order="left"
    )
    return df.with_columns(
        images=pl.when(pl.col("ref").is_null()).then(None).otherwise(pl.concat_list("ref"))
    ).drop("_k", "ref")


# --------------------------------------------------------------------------------------
# Embedded sample: MP-16-format rows clustered like Flickr photos around GeoNames places.
# --------------------------------------------------------------------------------------

# Photo hubs (name, lat, lon, weight): Flickr density is heavy-tailed around big cities.
_HUBS = [
    ("London", 51.5074, -0.1278, 9), ("Paris", 48.8566, 2.3522, 8), ("New York City", 40.7128, -74.0060, 9),
    ("San Francisco", 37.7749, -122.4194, 6), ("Tokyo", 35.6762, 139.6503, 6), ("Rome", 41.9028, 12.4964, 5),
    ("Barcelona", 41.3874, 2.1686, 5), ("Berlin", 52.5200, 13.4050, 4), ("Sydney", -33.8688, 151.2093, 3),
    ("Los Angeles", 34.0522, -118.2437, 5), ("Chicago", 41.8781, -87.6298, 3), ("Amsterdam", 52.3676, 4.9041, 3),
    ("Istanbul", 41.0082, 28.9784, 2), ("Rio de Janeiro", -22.9068, -43.1729, 2), ("Cape Town", -33.9249, 18.4241, 1),
    ("Mumbai", 19.0760, 72.8777, 1), ("Beijing", 39.9042, 116.4074, 2), ("Moscow", 55.7558, 37.6173, 2),
    ("Buenos Aires", -34.6037, -58.3816, 1), ("Mexico City", 19.4326, -99.1332, 1), ("Cairo", 30.0444, 31.2357, 1),
    ("Reykjavik", 64.1466, -21.9426, 1), ("Singapore", 1.3521, 103.8198, 1), ("Nairobi", -1.2921, 36.8219, 1),
    ("Anchorage", 61.2181, -149.9003, 1), ("Helsinki", 60.1699, 24.9384, 1), ("Lima", -12.0464, -77.0428, 1),
    ("Auckland", -36.8485, 174.7633, 1), ("Honolulu", 21.3069, -157.8583, 1), ("Suva", -18.1248, 178.4501, 1),
]


def _jpeg(rng: np.random.Generator, lat: float, lon: float, size: int = 32) -> bytes:
    from PIL import Image

    base = np.array([(lat + 90) / 180 * 255, (lon + 180) / 360 * 255, 128.0])
    grad = np.linspace(0, 60, size)[None, :, None]
    noise = rng.normal(0, 12, (size, size, 3))
    arr = np.clip(base[None, None, :] + grad + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def sample_frame(n: int = 3000, seed: int = 16) -> pl.DataFrame:
    """Clean sample metadata: ``n`` rows, 80 % near photo hubs, 20 % scattered on land cities."""
    from ..geocode import gazetteer

    rng = np.random.default_rng(seed)
    n_hub = int(n * 0.8)
    w = np.array([h[3] for h in _HUBS], dtype=float)
    hub = rng.choice(len(_HUBS), n_hub, p=w / w.sum())
    hlat = np.array([h[1] for h in _HUBS])[hub] + rng.normal(0, 0.06, n_hub)
    hlon = np.array([h[2] for h in _HUBS])[hub] + rng.normal(0, 0.08, n_hub)
    cities = gazetteer().cities
    pick = rng.choice(len(cities), n - n_hub, replace=False)
    slat = cities["lat"].to_numpy()[pick] + rng.normal(0, 0.02, n - n_hub)
    slon = cities["lon"].to_numpy()[pick] + rng.normal(0, 0.02, n - n_hub)
    lat = np.clip(np.concatenate([hlat, slat]), -89.9, 89.9)
    lon = (np.concatenate([hlon, slon]) + 180.0) % 360.0 - 180.0
    order = rng.permutation(n)
    lat, lon = np.round(lat[order], 6), np.round(lon[order], 6)
    # distinct 10-digit Flickr-like ids (sorted draws + strictly increasing offsets)
    flickr = 10**9 + np.cumsum(rng.integers(1, 2_000_000, n))[rng.permutation(n)]
    ids = []
    for f in flickr:
        h = hashlib.md5(str(f).encode()).hexdigest()
        ids.append(f"{h[:2]}/{h[2:4]}/{f}.jpg")
    probs = rng.dirichlet([1.0, 1.0, 1.0], n)
    return pl.DataFrame(
        {
            "IMG_ID": ids,
            "AUTHOR": [f"{rng.integers(10**7, 10**8)}@N0{rng.integers(0, 9)}" for _ in range(n)],
            "LAT": lat,
            "LON": lon,
            "S3_Label": probs.argmax(1).astype(np.int32),
            "S16_Label": rng.integers(0, 16, n).astype(np.int32),
            "S365_Label": rng.integers(0, 365, n).astype(np.int32),
            "Prob_indoor": np.round(probs[:, 0], 4),
            "Prob_natural": np.round(probs[:, 1], 4),
            "Prob_urban": np.round(probs[:, 2], 4),
        }
    )


def write_sample(
    out: Path,
    n: int = 3000,
    layouts: tuple[str, ...] = ("folder", "msgpack"),
    seed: int = 16,
    bad_rows: bool = True,
) -> dict[str, int]:
    """Write an MP-16-format source to ``out``: metadata CSV plus images in ``layouts``.

    With ``bad_rows`` the sample also holds what real copies have: rows with NaN,
    out-of-range, (0, 0) and non-numeric coordinates, duplicate ids, ids without an image
    and one undecodable JPEG. Returns the planted counts per drop reason.
    """
    import msgpack

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = sample_frame(n, seed)
    planted = {"invalid_coordinates": 0, "duplicate_id": 0, "missing_image": 0, "undecodable_image": 0}
    rows = df.with_columns(pl.col("LAT").cast(pl.String), pl.col("LON").cast(pl.String))
    no_image: set[str] = set()
    corrupt: set[str] = set()
    if bad_rows:
        bad = [("nan", "12.5"), ("95.0", "10.0"), ("10.0", "-181.0"), ("0.0", "0.0"), ("abc", "3.2"), ("", "7.0")]
        extra = []
        for i, (la, lo) in enumerate(bad):
            r = rows.row(i, named=True)
            extra.append({**r, "IMG_ID": f"ba/d{i}/{9000000000 + i}.jpg", "LAT": la, "LON": lo})
        planted["invalid_coordinates"] = len(bad)
        dups = [rows.row(10 + i, named=True) for i in range(4)]
        planted["duplicate_id"] = len(dups)
        rows = pl.concat([rows, pl.DataFrame(extra, schema=rows.schema), pl.DataFrame(dups, schema=rows.schema)])
        no_image = set(df["IMG_ID"][20:26].to_list())
        corrupt = {df["IMG_ID"][30]}
        planted["missing_image"] = len(no_image)
        planted["undecodable_image"] = len(corrupt)
    rows.write_csv(out / "mp16_places365.csv")

    rng = np.random.default_rng(seed + 1)
    ids = rows["IMG_ID"].unique(maintain_order=True).to_list()
    coords = dict(zip(df["IMG_ID"].to_list(), zip(df["LAT"].to_list(), df["LON"].to_list())))
    blobs: list[tuple[str, bytes]] = []
    for img_id in ids:
        if img_id in no_image:
            continue
        lat, lon = coords.get(img_id, (0.0, 0.0))
        data = _jpeg(rng, lat, lon)
        if img_id in corrupt:
            data = data[:40]  # truncated: the header parses, the decode fails
        blobs.append((img_id, data))
    if "folder" in layouts:
        for img_id, data in blobs:
            p = out / "images" / img_id
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    if "msgpack" in layouts:
        (out / "msgpack").mkdir(exist_ok=True)
        per = max(1, (len(blobs) + 2) // 3)
        for s in range(0, len(blobs), per):
            with open(out / "msgpack" / f"shard_{s // per}.msg", "wb") as fh:
                for img_id, data in blobs[s : s + per]:
                    fh.write(msgpack.packb({"image": data, "id": img_id}, use_bin_type=True))
    if "tar" in layouts:
        import tarfile

        per = max(1, (len(blobs) + 1) // 2)
        for s in range(0, len(blobs), per):
            with tarfile.open(out / f"mp16-{s // per:03d}.tar", "w") as tf:
                for img_id, data in blobs[s : s + per]:
                    info = tarfile.TarInfo(f"mp16/{img_id}")
                    info.size = len(data)
                    info.mtime = 0
                    tf.addfile(info, io.BytesIO(data))
    (out / "SAMPLE.json").write_text(json.dumps({"rows": n, "planted_drops": planted}, indent=2))
    return planted
