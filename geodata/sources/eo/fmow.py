"""fMoW-RGB (Functional Map of the World): one temporal image sequence per site.

Layout (fMoW-rgb ``train`` / ``val`` as shipped on ``s3://spacenet-dataset/Hosted-Datasets/fmow/fmow-rgb``
and in the ``fMoW-rgb_trainval_v1.0.0`` torrent; fMoW/baseline ``code/data_ml_functions/dataFunctions.py``
walks it)::

    <root>/{train,val}/<category>/<category>_<site>/<category>_<site>_<k>_rgb.jpg
    <root>/{train,val}/<category>/<category>_<site>/<category>_<site>_<k>_rgb.json
        {"bounding_boxes": [{"category", "box": [x, y, w, h], "ID"}] (or one such mapping),
         "timestamp": "2015-03-11T10:44:52Z", "gsd", "utm", "cloud_cover", "img_width", "img_height", ...}
    (``*_msrgb.jpg`` / ``*_msrgb.json`` beside them are the multispectral-to-RGB copies: not read)

The site's category is its folder name (one of the 62 fMoW categories, checked against the
JSON's ``bounding_boxes[].category``). ``test`` / ``seq`` hold no category (the ground-truth
archive must first be joined): a ``test`` folder is left out and noted.

Bad input (documented rule): an image without its JSON, or a JSON that does not parse or lacks a
``timestamp``, is a counted skip (``fmow_rgb: bad metadata``); a JSON whose category differs from
its folder is a counted skip (``fmow_rgb: category mismatch``); a site left without an image is a
counted skip (``fmow_rgb: site without images``). No site at all is an error naming the root.

Output (one row per site; the sequence in time order): ``eo_family='temporal'``, ``dataset``
(``fmow_rgb``), ``split`` (``train`` / ``validation``), ``key`` (``<split>/<category>/<site>``),
``images`` (list of absolute image paths, oldest first), ``timestamps`` (list of ISO-8601 strings,
same order), ``boxes`` (list of ``[x, y, w, h]`` pixel boxes of the site in each image),
``category`` (raw fMoW name, e.g. ``airport_hangar``), ``label`` (``airport hangar``),
``n_images``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root, official_split
from .common import sample_image

__all__ = ["FMOW_CATEGORIES", "TEMPORAL_SCHEMA", "read_fmow"]

#: The 62 categories, as fMoW/dataset README.md lists them.
FMOW_CATEGORIES = (
    "airport airport_hangar airport_terminal amusement_park aquaculture archaeological_site barn "
    "border_checkpoint burial_site car_dealership construction_site crop_field dam debris_or_rubble "
    "educational_institution electric_substation factory_or_powerplant fire_station flooded_road "
    "fountain gas_station golf_course ground_transportation_station helipad hospital "
    "impoverished_settlement interchange lake_or_pond lighthouse military_facility "
    "multi-unit_residential nuclear_powerplant office_building oil_or_gas_facility park "
    "parking_lot_or_garage place_of_worship police_station port prison race_track railway_bridge "
    "recreational_facility road_bridge runway shipyard shopping_mall single-unit_residential "
    "smokestack solar_farm space_facility stadium storage_tank surface_mine swimming_pool toll_booth "
    "tower tunnel_opening waste_disposal water_treatment_facility wind_farm zoo"
).split()

TEMPORAL_SCHEMA = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "key": pl.String,
    "images": pl.List(pl.String),
    "timestamps": pl.List(pl.String),
    "boxes": pl.List(pl.List(pl.Float64)),
    "category": pl.String,
    "label": pl.String,
    "n_images": pl.Int64,
}


def _meta(path: Path) -> tuple[str, str, list[float]] | None:
    """``(timestamp, category, box)`` of one ``*_rgb.json``, or None when unusable."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        ts = datetime.fromisoformat(str(meta["timestamp"]).replace("Z", "+00:00"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    bbs = meta.get("bounding_boxes") or []
    bbs = [bbs] if isinstance(bbs, dict) else bbs
    cat, box = "", []
    if bbs and isinstance(bbs[0], dict):
        cat = str(bbs[0].get("category", ""))
        box = [float(v) for v in (bbs[0].get("box") or [])][:4]
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ"), cat, box


@source("fmow_rgb", env="FMOW_ROOT", sample=lambda d: write_fmow_sample(d))
def read_fmow(ctx: StepContext, *, root: Path, splits: list[str] = ["train", "val"]) -> StepOutput:
    """fMoW-RGB (62 categories; one image sequence per site, train and val)."""
    out = StepOutput()
    root = find_root(Path(root), lambda p: any((p / s).is_dir() for s in ("train", "val")), "fMoW's train/ or val/ folder")
    rows: list[dict] = []
    for split in splits:
        base = root / split
        if not base.is_dir():
            raise SourceError(f"{base}: folder not found (splits: {list(splits)})")
        hf = official_split(split, where="fmow_rgb splits")
        for cat_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            cat = cat_dir.name
            if cat not in FMOW_CATEGORIES:
                raise SourceError(f"{cat_dir}: '{cat}' is not an fMoW category (see fMoW/dataset README.md)")
            for site in sorted(p for p in cat_dir.iterdir() if p.is_dir()):
                seq = []
                for img in sorted(site.glob("*_rgb.jpg")):
                    m = _meta(img.with_suffix(".json"))
                    if m is None:
                        out.drop("fmow_rgb: bad metadata", 1)
                        continue
                    if m[1] and m[1] != cat:
                        out.drop("fmow_rgb: category mismatch", 1)
                        continue
                    seq.append((m[0], str(img.resolve()), m[2]))
                if not seq:
                    out.drop("fmow_rgb: site without images", 1)
                    continue
                seq.sort()
                rows.append({"eo_family": "temporal", "dataset": "fmow_rgb", "split": hf,
                             "key": f"{split}/{cat}/{site.name}", "images": [s[1] for s in seq],
                             "timestamps": [s[0] for s in seq], "boxes": [s[2] for s in seq],
                             "category": cat, "label": cat.replace("_", " "), "n_images": len(seq)})
    if (root / "test").is_dir():
        out.note("fmow_rgb.test", "test/ left out: it holds no category (join the seq-and-gt mapping first)")
    if not rows:
        raise SourceError(f"{root}: no fMoW site with an image and its metadata in splits {list(splits)} "
                          "(expected <split>/<category>/<category>_<site>/*_rgb.jpg + *_rgb.json)")
    out.note("fmow_rgb.image_layout", "<split>/<category>/<category>_<site>/<category>_<site>_<k>_rgb.{jpg,json}")
    return out.result(pl.DataFrame(rows, schema=TEMPORAL_SCHEMA))


def write_fmow_sample(d: Path) -> None:
    """Three sites (two train, one val) of 2–3 dates each, plus one image without its JSON."""
    d = Path(d)
    sites = [("train", "airport_hangar", 0, ["2016-05-02T10:00:00Z", "2014-01-20T09:30:00Z", "2017-08-11T11:15:00Z"]),
             ("train", "crop_field", 3, ["2015-06-01T10:00:00Z", "2016-06-01T10:00:00Z"]),
             ("val", "flooded_road", 7, ["2017-09-01T12:00:00Z", "2017-09-20T12:00:00Z"])]
    for si, (split, cat, n, stamps) in enumerate(sites):
        folder = d / split / cat / f"{cat}_{n}"
        for k, ts in enumerate(stamps):
            stem = folder / f"{cat}_{n}_{k}_rgb"
            sample_image(stem.with_suffix(".jpg"), (40, 32), 1300 + 10 * si + k, "JPEG")
            stem.with_suffix(".json").write_text(json.dumps({
                "bounding_boxes": [{"category": cat, "box": [4, 5, 20, 16], "ID": 10 * si + k}],
                "timestamp": ts, "gsd": 0.5, "utm": "31U", "cloud_cover": 0, "img_width": 40, "img_height": 32}))
    sample_image(d / "train" / "crop_field" / "crop_field_3" / "crop_field_3_2_rgb.jpg", (40, 32), 1399, "JPEG")
