"""BigEarthNet-S2 (v1.0 per-patch folders, and BigEarthNet v2.0 / reBEN with ``metadata.parquet``).

Two release layouts, detected automatically (noted as ``bigearthnet_s2.image_layout``):

``v1`` — BigEarthNet-S2-v1.0.tar.gz as microsoft/torchgeo ``torchgeo/datasets/bigearthnet.py``
(``BigEarthNet``) reads it::

    <root>/BigEarthNet-v1.0/<patch>/<patch>_B01.tif ... <patch>_B12.tif, <patch>_B8A.tif   (uint16 GeoTIFF)
    <root>/BigEarthNet-v1.0/<patch>/<patch>_labels_metadata.json   {"labels": [43-class CLC names], "coordinates",
                                                                     "projection", "tile_source", "acquisition_date"}
    <root>/bigearthnet-{train,val,test}.csv   (optional) "<S2 patch>,<S1 patch>" per line: the official
                                              BigEarthNet-MM_19-classes_models splits; without them every patch is train

``v2`` — BigEarthNet v2.0 (reBEN) as torchgeo ``BigEarthNetV2`` reads it::

    <root>/metadata.parquet                 patch_id, labels (19-class names), split (train|validation|test), ...
    <root>/BigEarthNet-S2/<tile>/<patch_id>/<patch_id>_B02.tif ...   (<tile> = patch_id without its last two
                                                                       ``_``-separated fields)

Labels: the 19-class nomenclature (:data:`BEN19`). v1's 43 CORINE names are mapped with
:data:`CLC43_TO_19` (torchgeo ``BigEarthNet.label_converter``, from the TU Berlin
``label_indices.json``); the 11 CLC classes without a 19-class counterpart (road and rail,
ports, airports, mines, dumps, construction, green urban, sport, bare rock, burnt areas,
intertidal flats) are left out. A patch left without a label is a counted skip
(``bigearthnet_s2: no 19-class label``); an unknown label name is an error naming the patch.

Image: the RGB bands B04 / B03 / B02 (10 m, 120×120) composed into an 8-bit PNG — reflectance
scaled by ``255 / rgb_max`` and clipped — written once into geodata's cache
(``$GEODATA_CACHE/bigearthnet_rgb/<h>/<patch>.png``: the folder ``<h>`` keys the entry by the band
files' path, size and mtime, the file name is the patch id and the PNG encoder settings are fixed, so the
same release in two folders gives byte-identical images and shards). A patch lacking
one of the three bands is a counted skip (``bigearthnet_s2: missing band``); v2 rows whose patch
folder is absent likewise.

Output (one row per patch): ``eo_family='multilabel'``, ``dataset`` (``bigearthnet_s2``), ``split``,
``key`` (patch id), ``image`` (the RGB PNG), ``rgb_bands`` (``[B04, B03, B02]`` TIF paths),
``labels`` (list of 19-class names, in nomenclature order), ``labels_43`` (v1's CLC names; empty for v2).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from ...paths import cache_dir
from .._layout import find_root, official_split

__all__ = ["BEN19", "CLC43", "CLC43_TO_19", "MULTILABEL_SCHEMA", "read_bigearthnet", "compose_rgb"]

#: The 19-class nomenclature (Sumbul et al., IGARSS 2019), in its official order.
BEN19 = (
    "Urban fabric", "Industrial or commercial units", "Arable land", "Permanent crops", "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest",
    "Natural grassland and sparsely vegetated areas", "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub", "Beaches, dunes, sands", "Inland wetlands", "Coastal wetlands",
    "Inland waters", "Marine waters",
)
#: The 43 CLC level-3 names of BigEarthNet v1.0's ``labels_metadata.json``, in index order.
CLC43 = (
    "Continuous urban fabric", "Discontinuous urban fabric", "Industrial or commercial units",
    "Road and rail networks and associated land", "Port areas", "Airports", "Mineral extraction sites",
    "Dump sites", "Construction sites", "Green urban areas", "Sport and leisure facilities",
    "Non-irrigated arable land", "Permanently irrigated land", "Rice fields", "Vineyards",
    "Fruit trees and berry plantations", "Olive groves", "Pastures",
    "Annual crops associated with permanent crops", "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest", "Natural grassland",
    "Moors and heathland", "Sclerophyllous vegetation", "Transitional woodland/shrub", "Beaches, dunes, sands",
    "Bare rock", "Sparsely vegetated areas", "Burnt areas", "Inland marshes", "Peatbogs", "Salt marshes",
    "Salines", "Intertidal flats", "Water courses", "Water bodies", "Coastal lagoons", "Estuaries",
    "Sea and ocean",
)
_IDX_43_TO_19 = {0: 0, 1: 0, 2: 1, 11: 2, 12: 2, 13: 2, 14: 3, 15: 3, 16: 3, 18: 3, 17: 4, 19: 5, 20: 6,
                 21: 7, 22: 8, 23: 9, 24: 10, 25: 11, 31: 11, 26: 12, 27: 12, 28: 13, 29: 14, 33: 15, 34: 15,
                 35: 16, 36: 16, 38: 17, 39: 17, 40: 18, 41: 18, 42: 18}
#: 43-class name → 19-class name (None: no counterpart in the 19-class nomenclature).
CLC43_TO_19: dict[str, str | None] = {n: (BEN19[_IDX_43_TO_19[i]] if i in _IDX_43_TO_19 else None) for i, n in enumerate(CLC43)}

MULTILABEL_SCHEMA = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "key": pl.String,
    "image": pl.String,
    "rgb_bands": pl.List(pl.String),
    "labels": pl.List(pl.String),
    "labels_43": pl.List(pl.String),
}
_RGB = ("B04", "B03", "B02")
#: bumped when the composite's pixels or encoding change (a new cache folder)
_COMPOSITE_VERSION = 2


def _read_band(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad band file
        raise SourceError(f"{path}: cannot read the band ({type(exc).__name__}: {exc})") from None


def compose_rgb(bands: list[Path], rgb_max: float = 3000.0) -> "Image.Image":  # noqa: F821
    """An 8-bit RGB image of the three single-band TIFs ``bands`` (R, G, B): ``clip(v * 255 / rgb_max)``."""
    from PIL import Image

    arrs = [_read_band(Path(b)) for b in bands]
    shape = arrs[0].shape
    if any(a.shape != shape for a in arrs) or len(shape) != 2:
        raise SourceError(f"{bands[0].parent}: RGB bands differ in shape ({[a.shape for a in arrs]})")
    rgb = np.clip(np.stack(arrs, -1) * (255.0 / rgb_max), 0, 255).round().astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def _rgb_png(bands: list[Path], key: str, rgb_max: float) -> str:
    """The cached RGB PNG of ``bands`` (written when absent): ``<cache>/bigearthnet_rgb/<h>/<patch>.png``.

    The folder ``<h>`` keys the cache entry by the band files' resolved path, size and mtime (a moved or
    edited release gets a fresh composite); the file name is only the patch id, so the image ``path`` a
    shard stores — and, with the fixed PNG settings of :func:`write_png`, its bytes — do not depend on where
    the release sits.
    """
    h = hashlib.sha256(f"{_COMPOSITE_VERSION}\0{rgb_max}".encode())
    for b in bands:
        st = b.stat()
        h.update(f"{b.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    out = cache_dir() / "bigearthnet_rgb" / h.hexdigest()[:16] / f"{key}.png"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        write_png(compose_rgb(bands, rgb_max), tmp)
        os.replace(tmp, out)
    return str(out)


def write_png(img: "Image.Image", path: Path) -> None:  # noqa: F821
    """``img`` as a PNG with fixed encoder settings (zlib level 6, no optimisation, no metadata chunks),
    so the same pixels give the same bytes."""
    img.save(path, format="PNG", optimize=False, compress_level=6)


def _layout(root: Path) -> str | None:
    if (root / "metadata.parquet").is_file() and (root / "BigEarthNet-S2").is_dir():
        return "v2"
    if (root / "BigEarthNet-v1.0").is_dir():
        return "v1"
    return None


def _v1_splits(root: Path) -> dict[str, str]:
    """patch → HF split from ``bigearthnet-{train,val,test}.csv`` (empty when absent)."""
    out: dict[str, str] = {}
    for name in ("train", "val", "test"):
        p = root / f"bigearthnet-{name}.csv"
        if p.is_file():
            for line in p.read_text().split():
                out[line.split(",")[0].strip()] = official_split(name)
    return out


@source("bigearthnet_s2", env="BIGEARTHNET_ROOT", sample=lambda d: write_bigearthnet_sample(d))
def read_bigearthnet(ctx: StepContext, *, root: Path, splits: list[str] | None = None, rgb_max: float = 3000.0) -> StepOutput:
    """BigEarthNet-S2 (v1.0: 590,326 patches per torchgeo; v2.0 / reBEN), multi-label 19-class land cover on RGB."""
    out = StepOutput()
    root = find_root(Path(root), lambda p: _layout(p) is not None, "BigEarthNet-v1.0/ or metadata.parquet + BigEarthNet-S2/")
    layout = _layout(root)
    want = None if splits is None else {official_split(s, where="bigearthnet_s2 splits") for s in splits}
    rows: list[dict] = []
    if layout == "v1":
        split_of = _v1_splits(root)
        base = root / "BigEarthNet-v1.0"
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            pid = folder.name
            split = split_of.get(pid, "train" if not split_of else "")
            if not split:
                continue  # not in any official split file
            if want is not None and split not in want:
                continue
            meta = folder / f"{pid}_labels_metadata.json"
            try:
                names = json.loads(meta.read_text(encoding="utf-8"))["labels"]
            except (OSError, ValueError, KeyError, TypeError):
                out.drop("bigearthnet_s2: bad label file", 1)
                continue
            unknown = [n for n in names if n not in CLC43_TO_19]
            if unknown:
                raise SourceError(f"{meta}: unknown CLC label(s) {unknown} (expected BigEarthNet's 43 names)")
            rows.append({"split": split, "key": pid, "folder": folder, "labels_43": list(names),
                         "labels": [CLC43_TO_19[n] for n in names if CLC43_TO_19[n]]})
    else:
        meta = pl.read_parquet(root / "metadata.parquet")
        miss = [c for c in ("patch_id", "labels", "split") if c not in meta.columns]
        if miss:
            raise SourceError(f"{root / 'metadata.parquet'}: lacks column(s) {miss} (found {meta.columns})")
        for pid, names, split in zip(meta["patch_id"].to_list(), meta["labels"].to_list(), meta["split"].to_list()):
            hf = official_split(split, where=f"{root / 'metadata.parquet'}: {pid}")
            if want is not None and hf not in want:
                continue
            unknown = [n for n in (names or []) if n not in BEN19]
            if unknown:
                raise SourceError(f"{root / 'metadata.parquet'}: {pid}: unknown 19-class label(s) {unknown}")
            tile = "_".join(pid.split("_")[:-2])
            rows.append({"split": hf, "key": pid, "folder": root / "BigEarthNet-S2" / tile / pid,
                         "labels_43": [], "labels": list(names or [])})
    final, todo = [], []
    for r in rows:
        labels = [n for n in BEN19 if n in set(r["labels"])]
        if not labels:
            out.drop("bigearthnet_s2: no 19-class label", 1)
            continue
        bands = [r["folder"] / f"{r['key']}_{b}.tif" for b in _RGB]
        if not all(b.is_file() for b in bands):
            out.drop("bigearthnet_s2: missing band", 1)
            continue
        todo.append((bands, r["key"]))
        final.append({"eo_family": "multilabel", "dataset": "bigearthnet_s2", "split": r["split"], "key": r["key"],
                      "image": None, "rgb_bands": [str(b.resolve()) for b in bands],
                      "labels": labels, "labels_43": r["labels_43"]})
    # the composites (cached; written once) on a thread pool: decoding and PNG encoding release the GIL
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for row, png in zip(final, pool.map(lambda t: _rgb_png(t[0], t[1], rgb_max), todo)):
            row["image"] = png
    if not final:
        raise SourceError(f"{root}: no BigEarthNet patch with labels and its B04/B03/B02 bands ({layout} layout)")
    out.note("bigearthnet_s2.image_layout", "v1: BigEarthNet-v1.0/<patch>/<patch>_B*.tif + _labels_metadata.json"
             if layout == "v1" else "v2: metadata.parquet + BigEarthNet-S2/<tile>/<patch>/<patch>_B*.tif")
    return out.result(pl.DataFrame(final, schema=MULTILABEL_SCHEMA))


def write_band(path: Path, value: np.ndarray) -> None:
    """A single-band uint16 TIFF (as BigEarthNet ships its bands)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(value.astype(np.uint16)).save(path, format="TIFF")


def write_bigearthnet_sample(d: Path) -> None:
    """BigEarthNet v1.0 layout: three patches (one whose only label has no 19-class counterpart),
    official split files; 120×120 bands in the real set, 12×12 here."""
    d = Path(d)
    patches = [
        ("S2A_MSIL2A_20170613T101031_61_39", ["Non-irrigated arable land", "Broad-leaved forest", "Water courses"], "train"),
        ("S2A_MSIL2A_20170613T101031_61_40", ["Discontinuous urban fabric", "Pastures", "Sea and ocean"], "test"),
        ("S2A_MSIL2A_20170613T101031_61_41", ["Airports"], "train"),
    ]
    rng = np.random.default_rng(7)
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for pid, labels, split in patches:
        folder = d / "BigEarthNet-v1.0" / pid
        for b in ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"):
            write_band(folder / f"{pid}_{b}.tif", rng.integers(0, 4000, (12, 12)))
        (folder / f"{pid}_labels_metadata.json").write_text(json.dumps(
            {"labels": labels, "coordinates": {"ulx": 0, "uly": 0, "lrx": 0, "lry": 0}, "projection": "",
             "tile_source": "", "acquisition_date": "2017-06-13 10:10:31"}, indent=4))
        lines[split].append(f"{pid},S1A_IW_GRDH_1SDV_20170613T165043_33UUP_{pid[-5:]}")
    for split, ls in lines.items():
        (d / f"bigearthnet-{split}.csv").write_text("".join(f"{x}\n" for x in ls))
