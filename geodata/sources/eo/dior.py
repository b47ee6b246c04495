"""DIOR / DIOR-R object annotations: Pascal-VOC XML.

Layout::

    <root>/Annotations/Horizontal Bounding Boxes/<id>.xml   <object><name/><bndbox>xmin ymin xmax ymax</bndbox>
    <root>/Annotations/Oriented Bounding Boxes/<id>.xml     <object><name/><robndbox>x_left_top y_left_top
                                                            x_right_top ... y_left_bottom</robndbox>
    <root>/ImageSets/Main/{train,val,test}.txt              one image id per line
    <root>/JPEGImages-trainval/<id>.jpg, <root>/JPEGImages-test/<id>.jpg

Class names are spelled inconsistently across the files (``Expressway-Service-area``,
``expressway-service-area``, ``golffield``, ``trainstation``); every spelling resolves through
``geodata/data/eo_classes.csv``.

Bad input (documented rule): an ``<object>`` without its box element (``<bndbox>`` /
``<robndbox>``) or with a non-numeric coordinate raises :class:`~geodata.errors.SourceError`
naming ``file:line`` of the object, or with ``on_error: skip`` is a counted skip
(``dior: malformed object``); an XML that does not parse is the same. Ids listed in a split
file without an XML or an image are counted skips (``dior: missing annotation``,
``dior: missing image``). Boxes outside the image are counted skips as for DOTA.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import official_split
from .common import OBJECT_SCHEMA, canonical_class, finish_objects, image_size, line_of, sample_image

__all__ = ["read_dior", "parse_dior_xml"]

HBB_DIR = "Annotations/Horizontal Bounding Boxes"
OBB_DIR = "Annotations/Oriented Bounding Boxes"
_OBB_KEYS = (
    "x_left_top", "y_left_top", "x_right_top", "y_right_top",
    "x_right_bottom", "y_right_bottom", "x_left_bottom", "y_left_bottom",
)
_HBB_KEYS = ("xmin", "ymin", "xmax", "ymax")


class _Bad(Exception):
    def __init__(self, line: int, msg: str):
        super().__init__(msg)
        self.line = line


def parse_dior_xml(path: Path, oriented: bool) -> tuple[tuple[int, int] | None, list[tuple[int, str, list[float]]], list[tuple[int, str]]]:
    """``(size, objects, errors)`` of one DIOR XML; objects are ``(line, name, quad)``.

    Horizontal boxes are returned as quadrilaterals too (``xmin ymin xmax ymin xmax ymax xmin ymax``).
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        return None, [], [(exc.position[0], f"invalid XML ({str(exc).split(':')[0]})")]
    size = None
    sz = root.find("size")
    if sz is not None:
        try:
            size = (int(float(sz.findtext("width", ""))), int(float(sz.findtext("height", ""))))
        except ValueError:
            size = None
    objects, errors = [], []
    tag = "robndbox" if oriented else "bndbox"
    for k, obj in enumerate(root.findall("object")):
        line = line_of(text, "<object", k)
        name = (obj.findtext("name") or "").strip()
        box = obj.find(tag)
        if not name:
            errors.append((line, "object has no <name>"))
            continue
        if box is None:
            errors.append((line, f"object '{name}' has no <{tag}>"))
            continue
        keys = _OBB_KEYS if oriented else _HBB_KEYS
        try:
            vals = [float(box.findtext(key, "")) for key in keys]
        except ValueError:
            errors.append((line, f"object '{name}': <{tag}> lacks a numeric {'/'.join(keys)}"))
            continue
        if not oriented:
            x0, y0, x1, y1 = vals
            vals = [x0, y0, x1, y0, x1, y1, x0, y1]
        objects.append((line, name, vals))
    return size, objects, errors


@source("dior", env="DIOR_ROOT", sample=lambda d: write_dior_sample(d))
def read_dior(
    ctx: StepContext,
    *,
    root: Path,
    splits: list[str] = ["train", "val", "test"],
    boxes: Literal["oriented", "horizontal"] = "oriented",
    on_error: Literal["raise", "skip"] = "raise",
    outside_tol_px: float = 2.0,
) -> StepOutput:
    """DIOR (horizontal) or DIOR-R (oriented) objects, one row per object with its grid box."""
    out = StepOutput()
    root = Path(root)
    oriented = boxes == "oriented"
    ann_dir = root / (OBB_DIR if oriented else HBB_DIR)
    if not ann_dir.is_dir():
        raise SourceError(f"{root}: no '{ann_dir.relative_to(root)}' folder")
    img_dirs = [root / "JPEGImages-trainval", root / "JPEGImages-test", root / "JPEGImages"]
    out.note("dior.image_layout", f"{ann_dir.relative_to(root)}/ + ImageSets/Main/<split>.txt + "
             + ", ".join(d.name for d in img_dirs if d.is_dir()))
    rows: list[dict] = []
    quads: list[list[float]] = []
    for split in splits:
        split_file = root / "ImageSets" / "Main" / f"{split}.txt"
        if not split_file.exists():
            raise SourceError(f"{split_file}: split file not found (splits: {list(splits)})")
        for sid in split_file.read_text().split():
            xml = ann_dir / f"{sid}.xml"
            if not xml.exists():
                out.drop("dior: missing annotation", 1)
                continue
            img = next((p / f"{sid}.jpg" for p in img_dirs if (p / f"{sid}.jpg").exists()), None)
            if img is None:
                out.drop("dior: missing image", 1)
                continue
            size, objects, errors = parse_dior_xml(xml, oriented)
            if errors:
                if on_error == "raise":
                    ln, msg = errors[0]
                    raise SourceError(f"{xml}:{ln}: {msg}")
                out.drop("dior: malformed object", len(errors))
            w, h = size if size else image_size(img)
            for ln, name, q in objects:
                rows.append(
                    {
                        "eo_family": "objects",
                        "dataset": "dior",
                        "split": official_split(split, where=str(split_file)),
                        "image_id": sid,
                        "image": str(img.resolve()),
                        "width": w,
                        "height": h,
                        "raw_category": name,
                        "category": canonical_class(name, strict=True, where=f"{xml}:{ln}"),
                        "difficult": False,
                        "where": f"{xml.name}:{ln}",
                    }
                )
                quads.append(q)
    if not rows:
        return out.result(pl.DataFrame(schema=OBJECT_SCHEMA))
    return out.result(finish_objects(ctx, out, "dior", rows, quads, outside_tol_px=outside_tol_px))


def _voc(sid: str, size: int, objs: list[tuple[str, list[float]]], oriented: bool) -> str:
    parts = [
        "<annotation>",
        f"  <filename>{sid}.jpg</filename>",
        "  <source><database>DIOR</database></source>",
        f"  <size><width>{size}</width><height>{size}</height><depth>3</depth></size>",
        "  <segmented>0</segmented>",
    ]
    for name, v in objs:
        parts += ["  <object>", f"    <name>{name}</name>", "    <pose>Unspecified</pose>",
                  "    <truncated>0</truncated>", "    <difficult>0</difficult>"]
        if oriented:
            x0, y0, x1, y1 = v
            quad = [x0, y0, x1, y0, x1, y1, x0, y1]
            parts.append("    <type>robndbox</type>")
            parts.append("    <robndbox>" + "".join(f"<{k}>{int(c)}</{k}>" for k, c in zip(_OBB_KEYS, quad)) + "</robndbox>")
            parts.append("    <angle>0</angle>")
        else:
            parts.append("    <bndbox>" + "".join(f"<{k}>{int(c)}</{k}>" for k, c in zip(_HBB_KEYS, v)) + "</bndbox>")
        parts.append("  </object>")
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def write_dior_sample(d: Path) -> None:
    """Three DIOR images (800×800 in the real set; 96×96 here) with HBB and OBB XML, split lists."""
    d = Path(d)
    data = {
        ("00001", "trainval"): [("golffield", [10, 10, 60, 50]), ("Expressway-Service-area", [60, 60, 90, 90])],
        ("00002", "trainval"): [("vehicle", [5, 5, 15, 12]), ("vehicle", [20, 5, 30, 12]), ("windmill", [50, 40, 70, 80])],
        ("11726", "test"): [("trainstation", [10, 20, 80, 60]), ("Expressway-toll-station", [5, 70, 30, 90])],
    }
    splits = {"train": ["00001"], "val": ["00002"], "test": ["11726"]}
    for i, ((sid, part), objs) in enumerate(data.items()):
        sample_image(d / f"JPEGImages-{part}" / f"{sid}.jpg", (96, 96), 600 + i, "JPEG")
        for folder, oriented in ((HBB_DIR, False), (OBB_DIR, True)):
            (d / folder).mkdir(parents=True, exist_ok=True)
            (d / folder / f"{sid}.xml").write_text(_voc(sid, 96, objs, oriented))
    (d / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for s, ids in splits.items():
        (d / "ImageSets" / "Main" / f"{s}.txt").write_text("\n".join(ids) + "\n")
