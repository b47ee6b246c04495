"""xBD (xView2): pre / post disaster image pairs with per-building polygons and damage levels.

Layout (the xView2 challenge archives ``train_images_labels_targets.tar.gz``,
``test_images_labels_targets.tar.gz``, ``tier3.tar.gz``, ``hold_images_labels_targets.tar.gz``
unpacked side by side, as microsoft/torchgeo ``torchgeo/datasets/xview.py`` and
DIUx-xView/xView2_baseline ``utils/mask_polygons.py`` read them)::

    <root>/{train,tier3,hold,test}/images/<disaster>_<NNNNNNNN>_{pre,post}_disaster.png
    <root>/{train,tier3,hold,test}/labels/<disaster>_<NNNNNNNN>_{pre,post}_disaster.json
        {"features": {"lng_lat": [...], "xy": [{"properties": {"feature_type": "building",
                       "subtype": "no-damage" | "minor-damage" | "major-damage" | "destroyed" | "un-classified",
                       "uid": ...}, "wkt": "POLYGON ((x y, x y, ...))"}]},
         "metadata": {"disaster", "disaster_type", "img_name", "width", "height", ...}}
    (``targets/`` masks beside them are not read: the polygons are the labels)

The damage levels come from the **post** JSON (the pre JSON carries the same buildings without a
``subtype``). Split names: ``train`` and ``tier3`` → ``train``, ``hold`` → ``validation``,
``test`` → ``test``.

Bad input (documented rule): a pair lacking one of its two images or its post JSON is a counted
skip (``xbd: incomplete pair``); a post JSON that does not parse is a counted skip
(``xbd: bad label file``); a building whose WKT is not a polygon with at least three points is a
counted skip (``xbd: bad polygon``); an ``un-classified`` building is a counted skip
(``xbd: un-classified building``: it has no damage level). No pair at all is an error.

Output (one row per pair): ``eo_family='disaster'``, ``dataset`` (``xbd``), ``split``, ``key``
(``<folder>/<disaster>_<NNNNNNNN>``), ``images`` (``[pre, post]`` absolute paths, pre first),
``image_pre``, ``image_post``, ``disaster``, ``disaster_type``, ``width``, ``height``,
``building_uids`` (list), ``polygons`` (list of flat pixel ``[x1, y1, x2, y2, ...]`` outer rings,
one per building), ``bboxes`` (each polygon's pixel ``[xmin, ymin, xmax, ymax]``), ``damage``
(list of ``no-damage`` / ``minor-damage`` / ``major-damage`` /
``destroyed``, one per building), ``n_buildings``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root
from .common import image_size, sample_image

__all__ = ["DAMAGE_LEVELS", "XBD_SPLITS", "DISASTER_SCHEMA", "read_xbd", "parse_wkt_polygon"]

#: The four damage levels of the Joint Damage Scale, in increasing order.
DAMAGE_LEVELS = ("no-damage", "minor-damage", "major-damage", "destroyed")
#: Release folder → HF split name.
XBD_SPLITS = {"train": "train", "tier3": "train", "hold": "validation", "test": "test"}

DISASTER_SCHEMA = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "key": pl.String,
    "images": pl.List(pl.String),
    "image_pre": pl.String,
    "image_post": pl.String,
    "disaster": pl.String,
    "disaster_type": pl.String,
    "width": pl.Int64,
    "height": pl.Int64,
    "building_uids": pl.List(pl.String),
    "polygons": pl.List(pl.List(pl.Float64)),
    "bboxes": pl.List(pl.List(pl.Float64)),
    "damage": pl.List(pl.String),
    "n_buildings": pl.Int64,
}

_POLY = re.compile(r"^\s*POLYGON\s*\(\s*\(([^()]*)\)", re.I)


def parse_wkt_polygon(wkt: str) -> list[float] | None:
    """The outer ring of a WKT ``POLYGON`` as a flat ``[x1, y1, ...]`` list (closing point dropped).

    Examples
    --------
    >>> parse_wkt_polygon("POLYGON ((1 2, 5 2, 5 6, 1 2))")
    [1.0, 2.0, 5.0, 2.0, 5.0, 6.0]
    >>> parse_wkt_polygon("POINT (1 2)") is None
    True
    """
    m = _POLY.match(str(wkt))
    if m is None:
        return None
    try:
        pts = [tuple(float(v) for v in p.split()[:2]) for p in m.group(1).split(",")]
    except ValueError:
        return None
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts = pts[:-1]
    if len(pts) < 3 or any(len(p) != 2 for p in pts):
        return None
    return [c for p in pts for c in p]


@source("xbd", env="XBD_ROOT", sample=lambda d: write_xbd_sample(d))
def read_xbd(ctx: StepContext, *, root: Path, splits: list[str] = ["train", "tier3", "hold", "test"]) -> StepOutput:
    """xBD / xView2 pre / post disaster pairs with building polygons and damage levels."""
    out = StepOutput()
    root = find_root(Path(root), lambda p: any((p / s / "labels").is_dir() for s in XBD_SPLITS), "xBD's <split>/labels/ folder")
    rows: list[dict] = []
    present = []
    for folder in splits:
        if folder not in XBD_SPLITS:
            raise SourceError(f"xbd: unknown split folder '{folder}' (known: {', '.join(XBD_SPLITS)})")
        base = root / folder
        if not (base / "labels").is_dir():
            continue
        present.append(folder)
        for post_json in sorted((base / "labels").glob("*_post_disaster.json")):
            stem = post_json.name[: -len("_post_disaster.json")]
            pre_img = base / "images" / f"{stem}_pre_disaster.png"
            post_img = base / "images" / f"{stem}_post_disaster.png"
            if not pre_img.is_file() or not post_img.is_file():
                out.drop("xbd: incomplete pair", 1)
                continue
            try:
                lab = json.loads(post_json.read_text(encoding="utf-8"))
                feats = lab["features"]["xy"]
                meta = lab.get("metadata") or {}
            except (OSError, ValueError, KeyError, TypeError):
                out.drop("xbd: bad label file", 1)
                continue
            uids, polys, damage = [], [], []
            for f in feats:
                props = f.get("properties") or {}
                if props.get("feature_type", "building") != "building":
                    continue
                sub = str(props.get("subtype", ""))
                if sub not in DAMAGE_LEVELS:
                    out.drop("xbd: un-classified building", 1)
                    continue
                poly = parse_wkt_polygon(f.get("wkt", ""))
                if poly is None:
                    out.drop("xbd: bad polygon", 1)
                    continue
                uids.append(str(props.get("uid", len(uids))))
                polys.append(poly)
                damage.append(sub)
            dis = str(meta.get("disaster") or stem.rsplit("_", 1)[0])
            try:
                size = (int(meta["width"]), int(meta["height"]))
            except (KeyError, TypeError, ValueError):
                size = image_size(post_img)  # the label file does not say: the image header does
            rows.append({"eo_family": "disaster", "dataset": "xbd", "split": XBD_SPLITS[folder],
                         "key": f"{folder}/{stem}", "images": [str(pre_img.resolve()), str(post_img.resolve())],
                         "image_pre": str(pre_img.resolve()), "image_post": str(post_img.resolve()),
                         "disaster": dis, "disaster_type": str(meta.get("disaster_type") or ""),
                         "width": size[0], "height": size[1],
                         "building_uids": uids, "polygons": polys,
                         "bboxes": [[min(p[0::2]), min(p[1::2]), max(p[0::2]), max(p[1::2])] for p in polys],
                         "damage": damage, "n_buildings": len(uids)})
    # pairs whose post label is missing are incomplete too
    for folder in present:
        for pre in (root / folder / "images").glob("*_pre_disaster.png"):
            if not (root / folder / "labels" / pre.name.replace("_pre_disaster.png", "_post_disaster.json")).is_file():
                out.drop("xbd: incomplete pair", 1)
    if not rows:
        raise SourceError(f"{root}: no xBD pair (<split>/images/*_{{pre,post}}_disaster.png + "
                          f"<split>/labels/*_post_disaster.json) in splits {list(splits)}")
    out.note("xbd.image_layout", f"{{{','.join(present)}}}/{{images,labels}}/<disaster>_<id>_{{pre,post}}_disaster.{{png,json}}")
    return out.result(pl.DataFrame(rows, schema=DISASTER_SCHEMA))


def _label(stem: str, phase: str, disaster: str, dtype: str, blds: list[tuple[str, str, list[tuple[int, int]]]]) -> dict:
    feats = []
    for uid, sub, pts in blds:
        props = {"feature_type": "building", "uid": uid}
        if phase == "post":
            props["subtype"] = sub
        ring = ", ".join(f"{x} {y}" for x, y in pts + [pts[0]])
        feats.append({"properties": props, "wkt": f"POLYGON (({ring}))"})
    return {"features": {"lng_lat": [], "xy": feats},
            "metadata": {"disaster": disaster, "disaster_type": dtype, "img_name": f"{stem}_{phase}_disaster.png",
                         "width": 48, "height": 48}}


def write_xbd_sample(d: Path) -> None:
    """Two train pairs and one test pair (48×48 images), every damage level,
    one ``un-classified`` building (a counted skip)."""
    d = Path(d)
    pairs = [
        ("train", "hurricane-michael_00000105", "hurricane-michael", "wind",
         [("a1", "no-damage", [(2, 2), (12, 2), (12, 10)]), ("a2", "destroyed", [(20, 20), (30, 20), (30, 32), (20, 32)]),
          ("a3", "un-classified", [(40, 40), (44, 40), (44, 44)])]),
        ("train", "santa-rosa-wildfire_00000007", "santa-rosa-wildfire", "fire",
         [("b1", "minor-damage", [(5, 5), (15, 5), (15, 15), (5, 15)]), ("b2", "major-damage", [(25, 5), (35, 5), (35, 12)])]),
        ("test", "palu-tsunami_00000002", "palu-tsunami", "tsunami",
         [("c1", "no-damage", [(1, 1), (9, 1), (9, 9), (1, 9)])]),
    ]
    for i, (folder, stem, dis, dtype, blds) in enumerate(pairs):
        for j, phase in enumerate(("pre", "post")):
            sample_image(d / folder / "images" / f"{stem}_{phase}_disaster.png", (48, 48), 1400 + 2 * i + j, "PNG")
            (d / folder / "labels").mkdir(parents=True, exist_ok=True)
            (d / folder / "labels" / f"{stem}_{phase}_disaster.json").write_text(json.dumps(_label(stem, phase, dis, dtype, blds)))
