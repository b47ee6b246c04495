"""MP-16 (GeoEstimation release, MP16-Pro) reader, release detection and the sample writer.

See ``catalogs/mp16.yaml`` for the layouts and the public evidence. ``MP16_ROOT`` is a
release root or the folder above it:

* **GeoEstimation** (``resources/``): ``mp16_places365.csv``, ``mp16_urls.csv`` and msgpack
  shards ``images/mp16/shard_<N>.msg`` (records ``{"image": <JPEG>, "id": <IMG_ID>}``, keys
  possibly bytes), ``images/yfcc25600/`` + ``yfcc25600_places365.csv`` for validation;
* **MP16-Pro** (G3): ``metadata/MP16_Pro_places365.csv`` | ``MP16_Pro_filtered.csv`` and
  ``mp-16-images.tar`` or its byte chunks ``mp-16-images00`` … (read in place; the shipped
  ``tar_index.pkl`` is never unpickled), members ``./images/<hh>_<hh>_<id>.jpg``;
* the plain forms ``images/<IMG_ID>`` (a folder tree, symlinks followed), ``msgpack/*.msg``
  and ``*.tar``.

Rows keep the file's ``IMG_ID`` as ``id``. An image matches an id exactly (the id equals the
last path components of the image key); the ``_`` ↔ ``/`` spelling (MP16-Pro's
``34_8d_9055806529.jpg`` for ``34/8d/9055806529.jpg``) is a fallback, and an error where it
is ambiguous.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from .._cache import cached_frame
from ..context import StepContext, StepOutput
from ..errors import SourceError
from ..images import folder_dirs, index_folder, index_msgpack, index_tar, iter_msgpack_records
from ..registry import source
from ..truth_files import photo_id_expr, read_csv_checked

__all__ = [
    "read_mp16", "write_sample", "detect", "detect_layout", "Release", "METADATA_FILES",
    "read_csv_checked", "photo_id_expr",  # from geodata.truth_files, where the exclude_eval step reads them too
]

METADATA_FILES = ("mp16_places365.csv", "MP16_Pro_filtered.csv", "MP16_Pro_places365.csv")
VALIDATION_FILE = "yfcc25600_places365.csv"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")

_KNOWN = {
    "IMG_ID": "id", "AUTHOR": "author", "LAT": "lat", "LON": "lon",
    "S3_Label": "s3_label", "S16_Label": "s16_label", "S365_Label": "s365_label",
    "Prob_indoor": "prob_indoor", "Prob_natural": "prob_natural", "Prob_urban": "prob_urban",
}
# MP16-Pro's own place names; prefixed so they never clash with the reverse-geocoded columns
_PRO_PLACES = ("neighbourhood", "city", "county", "state", "region", "country", "continent")

Layout = Literal["auto", "geoestimation", "mp16pro", "folder", "msgpack", "tar", "none"]


# --------------------------------------------------------------------------------------
# Metadata CSV
# --------------------------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_") or "column"


def _header(path: Path) -> list[str]:
    """The columns of a metadata CSV; an error when IMG_ID, LAT or LON is missing."""
    header = read_csv_checked(path, n_rows=0).columns
    missing = [c for c in ("IMG_ID", "LAT", "LON") if c not in header]
    if missing:
        raise SourceError(f"{path}: missing columns {missing} (expected {list(_KNOWN)}, found {header})")
    return header


def _read_metadata(path: Path) -> pl.DataFrame:
    """Every column of an MP-16 / MP16-Pro metadata CSV, renamed to snake case."""
    header = _header(path)
    rename: dict[str, str] = {}
    for c in header:
        if c in _KNOWN:
            rename[c] = _KNOWN[c]
        elif c.lower() in _PRO_PLACES:
            rename[c] = f"pro_{c.lower()}"
        else:
            rename[c] = _snake(c)
    df = read_csv_checked(path, infer_schema=False).rename(rename)
    casts = []
    for col in df.columns:
        if col in ("lat", "lon") or col.startswith("prob_"):
            casts.append(pl.col(col).str.strip_chars().cast(pl.Float64, strict=False))
        elif col.endswith("_label"):
            casts.append(pl.col(col).str.strip_chars().cast(pl.Int32, strict=False))
    df = df.with_columns(casts)
    if "author" not in df.columns:
        df = df.with_columns(author=pl.lit(None, dtype=pl.String))
    return df


# --------------------------------------------------------------------------------------
# Release detection
# --------------------------------------------------------------------------------------


@dataclass
class Images:
    """One image layout found under a release root."""

    layout: str
    where: Path
    files: list = field(default_factory=list)  # shards, tars (a list = one tar in chunks), or [folder]

    def describe(self, root: Path) -> str:
        try:
            rel = self.where.relative_to(root).as_posix() or "."
        except ValueError:
            rel = str(self.where)
        if self.layout == "folder":
            return f"{self.layout}: {rel}/ (image files)"
        if self.layout in ("geoestimation", "msgpack"):
            return f"{self.layout}: {rel}/ ({len(self.files)} msgpack shards)"
        chunks = [f for f in self.files if isinstance(f, list)]
        if chunks:
            return f"{self.layout}: {rel}/ (one tar in {len(chunks[0])} chunks {chunks[0][0].name}..{chunks[0][-1].name})"
        names = ", ".join(f.name for f in self.files[:3]) + (", …" if len(self.files) > 3 else "")
        return f"{self.layout}: {rel}/ ({len(self.files)} tar file{'s' if len(self.files) > 1 else ''}: {names})"


@dataclass
class Release:
    """What :func:`detect` found: the release folder, its metadata and its images."""

    root: Path
    base: Path
    metadata: Path
    images: Images | None
    found: list[str] = field(default_factory=list)
    validation: tuple[Path, Images] | None = None

    def describe(self) -> str:
        meta = self.metadata.relative_to(self.root).as_posix() if self.metadata.is_relative_to(self.root) else str(self.metadata)
        img = self.images.describe(self.root) if self.images else "none (metadata only)"
        return f"{img}; metadata {meta}"


def _metadata_in(base: Path) -> list[Path]:
    out = []
    for d in (base, base / "metadata"):
        out += [d / n for n in METADATA_FILES if (d / n).is_file()]
    return out


def _shard_no(p: Path) -> tuple[int, str]:
    m = re.search(r"(\d+)", p.stem)
    return (int(m.group(1)) if m else -1, p.name)


def _image_candidates(base: Path) -> list[Images]:
    out = []
    shards = sorted((base / "images" / "mp16").glob("shard_*.msg"), key=_shard_no)
    if shards:
        out.append(Images("geoestimation", base / "images" / "mp16", shards))
    legacy = sorted((base / "msgpack").glob("*.msg"), key=_shard_no)
    if legacy:
        out.append(Images("msgpack", base / "msgpack", legacy))
    for d in (base, base / "images"):
        single = d / "mp-16-images.tar"
        chunks = sorted((p for p in d.glob("mp-16-images[0-9]*") if re.fullmatch(r"mp-16-images\d+", p.name)), key=_shard_no)
        if single.is_file():
            out.append(Images("mp16pro", d, [single]))
        elif chunks:
            out.append(Images("mp16pro", d, [chunks]))
    tars = sorted(p for pat in ("*.tar", "*.tar.gz", "*.tgz") for p in base.glob(pat) if p.name != "mp-16-images.tar")
    if tars:
        out.append(Images("tar", base, tars))
    if (base / "images").is_dir():
        out.append(Images("folder", base / "images", [base / "images"]))
    return out


def _probe_keys(img: Images, limit: int = 64) -> list[str]:
    """A few image keys of a layout, read cheaply (first records / members / files)."""
    keys: list[str] = []
    if img.layout in ("geoestimation", "msgpack"):
        for f in img.files[:2]:
            for rec, _, _ in iter_msgpack_records(f):
                rid = rec.get(b"id", rec.get("id"))
                keys.append(rid.decode("utf-8", "replace") if isinstance(rid, bytes) else str(rid))
                if len(keys) >= limit:
                    return keys
    elif img.layout in ("mp16pro", "tar"):
        import tarfile

        from ..images import ChunkedFile, refuse_compressed

        for f in img.files[:2]:
            parts = f if isinstance(f, list) else [f]
            refuse_compressed(parts[0])
            try:
                with tarfile.open(fileobj=io.BufferedReader(ChunkedFile(parts)), mode="r:") as tf:  # type: ignore[arg-type]
                    for m in tf:
                        if m.isfile():
                            keys.append(m.name)
                        if len(keys) >= limit:
                            return keys
            except (tarfile.TarError, OSError, EOFError):
                keys.append(f"<unreadable:{parts[0].name}>")
    else:
        from ..images import walk_files

        for rel, _, _ in walk_files(img.where):
            if rel.lower().endswith(IMAGE_SUFFIXES):
                keys.append(rel)
                if len(keys) >= limit:
                    break
    return keys


def _norm(col: pl.Expr) -> pl.Expr:
    return col.str.strip_prefix("./").str.replace_all("_", "/")


def _probe_hits(img: Images, ids: pl.Series) -> int:
    """How many probed image keys (and sampled ids) of ``img`` meet the metadata ids."""
    keys = [k for k in _probe_keys(img) if not k.startswith("<")]
    hits = 0
    if keys:
        norm_ids = ids.to_frame("id").select(n=_norm(pl.col("id"))).to_series()
        depth = int(norm_ids.head(1000).str.count_matches("/").max() or 0) + 1
        kn = pl.Series(keys).to_frame("k").select(
            n=_norm(pl.col("k")).str.split("/").list.slice(-depth, depth).list.join("/")
        ).to_series()
        hits = int(kn.is_in(norm_ids.implode()).sum())
    if img.layout == "folder" and hits == 0:
        for i in ids.head(50).to_list():
            if any((img.where / c).is_file() for c in {i, i.replace("/", "_"), i.replace("_", "/")}):
                hits += 1
    return hits


def detect(root: Path, metadata: str = "auto", images: Layout = "auto", ids: pl.Series | None = None) -> Release:
    """Find the MP-16 release under ``root`` (the release root or the folder above it).

    A layout whose images meet none of the metadata ids is never chosen while another meets
    some; two layouts that both do are an error listing what was found.
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"mp16: root {root} is not a directory; point MP16_ROOT (or --root) at the MP-16 folder")
    if _metadata_in(root) or (metadata != "auto" and (root / metadata).is_file()):
        bases = [root]
    else:
        bases = [c for c in sorted(root.iterdir()) if c.is_dir() and _metadata_in(c)]
        if len(bases) > 1:
            raise SourceError(
                f"mp16: {root} holds several releases ({', '.join(b.name + '/' for b in bases)}); "
                "set MP16_ROOT to one of them"
            )
    if not bases and any(root.glob("shard_*.msg")) and _metadata_in(root.parent.parent):
        raise SourceError(
            f"mp16: {root} is GeoEstimation's shard folder; set MP16_ROOT to the release root {root.parent.parent}"
        )
    if not bases:
        raise SourceError(
            f"mp16: no metadata under {root} (expected one of {', '.join(METADATA_FILES)}, "
            f"directly, under metadata/ or one folder down, e.g. resources/); set MP16_ROOT or run `geodata sample-data`"
        )
    base = bases[0]
    if metadata != "auto":
        cands = [p for p in (base / metadata, base / "metadata" / metadata) if p.is_file()]
        if not cands:
            raise SourceError(f"mp16: metadata file {base / metadata} does not exist")
        meta = cands[0]
    else:
        meta = _metadata_in(base)[0]
    found = [f"metadata: {p.relative_to(root).as_posix()}" for p in _metadata_in(base)]
    rel = Release(root, base, meta, None, found)
    if images == "none":
        return rel
    cands = _image_candidates(base)
    rel.found += [c.describe(root) for c in cands]
    if images != "auto":
        # msgpack / tar also name the released forms of those containers
        alias = {"msgpack": ("msgpack", "geoestimation"), "tar": ("tar", "mp16pro")}.get(images, (images,))
        chosen = sorted((c for c in cands if c.layout in alias), key=lambda c: alias.index(c.layout))
        if not chosen:
            raise SourceError(
                f"mp16: images: {images} but no such layout under {base} (found: {'; '.join(rel.found) or 'nothing'})"
            )
        rel.images = chosen[0]
    else:
        if not cands:
            raise SourceError(
                f"mp16: no images under {base} (expected images/mp16/shard_<N>.msg, mp-16-images.tar or "
                "mp-16-images00.., images/<IMG_ID>, msgpack/*.msg or *.tar); pass images: none for a metadata-only build"
            )
        if ids is None:
            _header(meta)
            ids = read_csv_checked(meta, columns=["IMG_ID"], infer_schema=False)["IMG_ID"].drop_nulls()
        scored = [(c, _probe_hits(c, ids)) for c in cands]
        viable = [c for c, h in scored if h > 0]
        if len(viable) > 1:
            raise SourceError(
                f"mp16: ambiguous root {base}: images of the metadata ids in several layouts "
                f"({'; '.join(c.describe(root) for c in viable)}); pass images: "
                f"{' | '.join(c.layout for c in viable)}"
            )
        if not viable:
            sample = ids.head(3).to_list()
            raise SourceError(
                f"mp16: no image under {base} matches a metadata id (found {'; '.join(rel.found)}; "
                f"ids look like {sample}); pass images: <layout> to read one anyway or images: none"
            )
        rel.images = viable[0]
    if rel.images.layout == "geoestimation":
        vshards = sorted((base / "images" / "yfcc25600").glob("shard_*.msg"), key=_shard_no)
        if vshards and (base / VALIDATION_FILE).is_file():
            rel.validation = (base / VALIDATION_FILE, Images("geoestimation", base / "images" / "yfcc25600", vshards))
            rel.found.append(f"validation: {VALIDATION_FILE} + images/yfcc25600/ ({len(vshards)} shards)")
    return rel


def detect_layout(root: Path) -> str:
    """The image layout ``auto`` picks under ``root`` (``none`` when there is no image)."""
    try:
        rel = detect(root)
    except SourceError:
        return "none"
    return rel.images.layout if rel.images else "none"


# --------------------------------------------------------------------------------------
# Images: index, match to ids
# --------------------------------------------------------------------------------------


def _index(img: Images) -> pl.DataFrame:
    if img.layout == "folder":
        dirs = folder_dirs(img.where)
        return cached_frame("mp16-folder-v2", dirs, lambda: index_folder(img.where), expand=False)
    if img.layout in ("geoestimation", "msgpack"):
        return cached_frame("mp16-msgpack-v2", img.files, lambda: index_msgpack(img.files))
    flat = [p for f in img.files for p in (f if isinstance(f, list) else [f])]
    return cached_frame("mp16-tar-v2", flat, lambda: index_tar(img.files))


def _suffix(col: pl.Expr, depth: pl.Expr | int) -> pl.Expr:
    parts = col.str.split("/")
    return parts.list.slice(-depth if isinstance(depth, int) else -depth, depth).list.join("/")


def _ambiguous(hit: pl.DataFrame, by: str, many: str, one: str) -> tuple[dict, int]:
    """The first group of ``hit`` by ``by`` with several distinct ``many`` (listed; ``one``: its first), and how many such groups."""
    g = hit.group_by(by).agg(pl.col(many).unique(), pl.first(one)).filter(pl.col(many).list.len() > 1)
    return (g.row(0, named=True) if g.height else {}), g.height


def match_images(df: pl.DataFrame, idx: pl.DataFrame, where: str = "mp16") -> pl.DataFrame:
    """Add ``_ref`` and ``_size`` to ``df`` (by ``id``): exact match first, then the ``_``/``/`` form.

    Exact: the id equals the last components of an image key (``34/8d/1.jpg`` meets
    ``mp16/34/8d/1.jpg``). Fallback, for ids without an exact match: both sides spelled with
    ``/`` for ``_``; a fallback that could mean two images, or two ids that would share one,
    is an error naming them.

    Examples
    --------
    >>> idx = pl.DataFrame({"key": ["aa/bb_cc.jpg", "x/34_8d_1.jpg"], "ref": ["r1", "r2"], "size": [1, 2]})
    >>> df = pl.DataFrame({"id": ["aa/bb_cc.jpg", "aa_bb/cc.jpg", "34/8d/1.jpg"]})
    >>> match_images(df, idx)["_ref"].to_list()
    ['r1', None, 'r2']
    """
    idx = idx.filter(pl.col("key").is_not_null()).select("key", "ref", "size")
    idx = idx.with_columns(key=pl.col("key").str.strip_prefix("./"))
    depth = pl.col("id").str.count_matches("/") + 1
    df = df.with_columns(_row=pl.int_range(pl.len(), dtype=pl.UInt32), _d=depth.cast(pl.Int32))
    depths = [d for d in df["_d"].drop_nulls().unique().sort().to_list()]
    long = pl.concat(
        [idx.select(_k=_suffix(pl.col("key"), d), _d=pl.lit(d, pl.Int32), _ref=pl.col("ref"), _size=pl.col("size"))
         for d in depths] or [pl.DataFrame(schema={"_k": pl.String, "_d": pl.Int32, "_ref": pl.String, "_size": pl.Int64})]
    ).unique(["_k", "_d"], keep="first", maintain_order=True)
    ex = df.select("_row", "id", "_d").join(long, left_on=["id", "_d"], right_on=["_k", "_d"], how="inner")
    rest = df.filter(pl.col("id").is_not_null() & ~pl.col("_row").is_in(ex["_row"].implode())).select("_row", "id")
    fb = pl.DataFrame(schema={"_row": pl.UInt32, "_ref": pl.String, "_size": pl.Int64})
    if rest.height:
        rest = rest.with_columns(_n=_norm(pl.col("id"))).with_columns(_nd=(pl.col("_n").str.count_matches("/") + 1).cast(pl.Int32))
        # an image that is some id's exact match is not another id's fallback
        cand_idx = idx.join(ex.select(ref=pl.col("_ref")).unique(), on="ref", how="anti")
        nlong = pl.concat(
            [cand_idx.select(_n=_suffix(_norm(pl.col("key")), d), _nd=pl.lit(d, pl.Int32), _ref="ref", _size="size", key="key")
             for d in rest["_nd"].unique().to_list()]
        )
        hit = rest.join(nlong, on=["_n", "_nd"], how="inner")
        if hit.height:
            r, n = _ambiguous(hit, "_row", "key", "id")
            if n:
                raise SourceError(
                    f"{where}: id '{r['id']}' has no exact image and its '_'/'/' spelling is ambiguous: "
                    f"{sorted(r['key'])[:3]} ({n} ids like this); rename the files or fix the ids"
                )
            r, n = _ambiguous(hit, "_ref", "id", "key")
            if n:
                raise SourceError(
                    f"{where}: ids {sorted(r['id'])[:3]} differ only in '_' vs '/' and none has an exact image; "
                    f"the one image '{r['key']}' cannot be told apart ({n} images like this)"
                )
            fb = hit.select("_row", "_ref", "_size")
    both = pl.concat([ex.select("_row", "_ref", "_size"), fb])
    return df.join(both, on="_row", how="left", maintain_order="left").drop("_row", "_d")


def _attach(ctx: StepContext, out: StepOutput, df: pl.DataFrame, img: Images, root: Path, label: str) -> pl.DataFrame:
    idx = _index(img)
    problems = idx.filter(pl.col("problem").is_not_null())["problem"].to_list()
    if problems:
        out.drop("bad_shard_record", len(problems))
        shown = "; ".join(problems[:5]) + (f"; … {len(problems) - 5} more" if len(problems) > 5 else "")
        out.note(f"mp16.{label}bad_shards", f"{len(problems)} unreadable stretches of shards/archives "
                 f"(an id whose record was there counts as missing_image): {shown}")
    keys = idx.filter(pl.col("key").is_not_null())
    dup = keys.height - keys["key"].n_unique()
    if dup:
        out.note(f"mp16.{label}duplicate_images", f"{dup} image keys occur more than once; the first is used")
    if keys.height == 0:
        raise SourceError(f"mp16: {img.describe(root)} holds no image" + (f" ({problems[0]})" if problems else ""))
    return match_images(df, keys, "mp16")


# --------------------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------------------


def fingerprint_files(
    root: Path, metadata: str = "auto", images: Layout = "auto", validation: bool = False,
) -> list[Path]:
    """Files whose size and mtime decide whether an MP-16 build is up to date."""
    rel = detect(root, metadata, images)
    files = [rel.metadata]
    sets = [rel.images] if rel.images else []
    if validation and rel.validation:
        files.append(rel.validation[0])
        sets.append(rel.validation[1])
    for img in sets:
        if img.layout == "folder":
            files += folder_dirs(img.where)  # directory mtimes change whenever an entry is added or removed
        else:
            files += [p for f in img.files for p in (f if isinstance(f, list) else [f])]
    return files


@source("mp16", env="MP16_ROOT", sample=lambda d: write_sample(d), fingerprint=fingerprint_files)
def read_mp16(
    ctx: StepContext,
    *,
    root: Path,
    metadata: str = "auto",
    images: Layout = "auto",
    validation: bool = False,
) -> StepOutput:
    """Read MP-16 metadata and index its images (GeoEstimation shards, MP16-Pro tars, folders).

    Returns one row per metadata line with every column the file carries (``id``, ``lat``,
    ``lon``, ``author``, the Places365 columns, MP16-Pro's place names as ``pro_*``), a
    ``split`` column (``train``; GeoEstimation's yfcc25600 rows are ``validation`` when
    ``validation`` is true) and ``images``: a one-element list of image references, null
    when the image is missing, empty when ``images="none"`` (metadata-only build).
    Provides the table ``image_sizes`` (``ref``, ``size``: the byte size of each matched
    image, from the index) that the ``exclude_eval`` step takes as ``inputs: {sizes:
    mp16.image_sizes}`` to compare images with a benchmark's without reading every one.
    """
    out = StepOutput()
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"mp16: root {root} is not a directory; point MP16_ROOT (or --root) at the MP-16 folder")
    rel0 = detect(root, metadata, "none")
    df = _read_metadata(rel0.metadata).with_columns(split=pl.lit("train"))
    rel = detect(root, metadata, images, ids=df["id"].drop_nulls()) if images != "none" else rel0
    out.note("mp16.image_layout", rel.describe())
    if rel.images is None:
        df = df.with_columns(_ref=pl.lit(None, pl.String), _size=pl.lit(None, pl.Int64))
    else:
        df = _attach(ctx, out, df, rel.images, root, "")
        if validation:
            if rel.validation is None:
                raise SourceError(f"mp16: validation: true but {rel.base} has no {VALIDATION_FILE} with images/yfcc25600/")
            vdf = _read_metadata(rel.validation[0]).with_columns(split=pl.lit("validation"))
            vdf = _attach(ctx, out, vdf, rel.validation[1], root, "validation.")
            df = pl.concat([df, vdf], how="diagonal_relaxed")
    out.provide("image_sizes", df.select(ref="_ref", size="_size").filter(pl.col("ref").is_not_null())
                .unique("ref", keep="first", maintain_order=True))
    if rel.images is None:
        df = df.with_columns(images=pl.lit([], dtype=pl.List(pl.String)))
    else:
        df = df.with_columns(images=pl.when(pl.col("_ref").is_null()).then(None).otherwise(pl.concat_list("_ref")))
    return out.result(df.drop("_ref", "_size"))


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


def _write_shards(folder: Path, blobs: list[tuple[str, bytes]], per: int) -> None:
    """GeoEstimation's writer: ``shard_<N>.msg`` streams of ``msgpack.packb({"image", "id"})`` + ``writer.log``."""
    import msgpack

    folder.mkdir(parents=True, exist_ok=True)
    for s in range(0, len(blobs), per):
        with open(folder / f"shard_{s // per}.msg", "wb") as fh:
            for img_id, data in blobs[s : s + per]:
                fh.write(msgpack.packb({"image": data, "id": img_id}))
    (folder / "writer.log").write_text(
        f"geodata sample - ImageDownloader - INFO - Sucesfully downloaded {len(blobs)}/{len(blobs)} images (1.000)\n"
    )


def write_sample(
    out: Path,
    n: int = 3000,
    layouts: tuple[str, ...] = ("msgpack",),
    seed: int = 16,
    bad_rows: bool = True,
) -> dict[str, int]:
    """Write an MP-16 release to ``out``: metadata CSV plus images in ``layouts``.

    ``msgpack`` (the default) is GeoEstimation's ``resources/`` form: ``mp16_places365.csv``,
    ``mp16_urls.csv``, ``images/mp16/shard_<N>.msg`` with ``writer.log``, and a small
    validation set (``yfcc25600_places365.csv``, ``images/yfcc25600/``); ``folder`` writes
    ``images/<IMG_ID>``, ``tar`` writes ``mp16-<k>.tar`` archives. With ``bad_rows`` the
    sample also holds what real copies have: rows with NaN, out-of-range, (0, 0) and
    non-numeric coordinates, duplicate ids, ids without an image and one undecodable JPEG.
    Returns the planted counts per drop reason.
    """
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
        # GeoEstimation's download_images.py: mp16_urls.csv (image_id,url; no header) -> shards
        pl.DataFrame({"image_id": ids, "url": [f"https://farm1.staticflickr.com/1/{Path(i).stem}_0.jpg" for i in ids]}).write_csv(
            out / "mp16_urls.csv", include_header=False
        )
        _write_shards(out / "images" / "mp16", blobs, max(1, (len(blobs) + 2) // 3))
        val = sample_frame(max(10, n // 20), seed + 100).with_columns(
            IMG_ID=pl.format("{}/{}", pl.lit("val"), pl.col("IMG_ID").str.split("/").list.last())
        )
        val.write_csv(out / VALIDATION_FILE)
        vblobs = [(i, _jpeg(rng, a, b)) for i, a, b in val.select("IMG_ID", "LAT", "LON").iter_rows()]
        _write_shards(out / "images" / "yfcc25600", vblobs, len(vblobs))
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
