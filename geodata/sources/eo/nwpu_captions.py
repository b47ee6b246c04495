"""NWPU-Captions: the 31,500 NWPU-RESISC45 images with five captions each.

Layout (HaiyanHuang98/NWPU-Captions: ``NWPU_images.tar.gz`` and ``dataset_nwpu.json``, read this
way by the public loaders that cite it)::

    <root>/dataset_nwpu.json       {"<class>": [{"filename": "<class>_NNN.jpg", "split": "train"|"val"|"test",
                                                 "raw", "raw_1", "raw_2", "raw_3", "raw_4", "imgid", "sentids", ...}]}
    <root>/NWPU_images/<class>/<filename>

Captions are the entry's ``raw`` and ``raw_1`` … ``raw_4`` (cleaned, de-duplicated); the class is
the JSON key (normalized with ``geodata/data/eo_classes.csv``). Bad input (documented rule): an
entry without a caption is a counted skip (``nwpu_captions: no captions``); a missing image is a
counted skip (``nwpu_captions: missing image``); an entry without ``filename`` is an error naming
its class and index; a JSON that is not a class → list mapping is an error. No row is an error.

Output (one row per image): ``eo_family='caption'``, ``dataset``, ``split``, ``key``, ``image``,
``captions`` (list), ``raw_label``, ``label``.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root, official_split
from .captions import CAPTION_SCHEMA, load_json, unique_captions
from .common import canonical_class, sample_image

__all__ = ["read_nwpu_captions"]

_RAW_KEYS = ("raw", "raw_1", "raw_2", "raw_3", "raw_4")


@source("nwpu_captions", env="NWPU_CAPTIONS_ROOT", sample=lambda d: write_nwpu_captions_sample(d))
def read_nwpu_captions(ctx: StepContext, *, root: Path, json_name: str = "dataset_nwpu.json", image_dir: str = "NWPU_images",
                       splits: list[str] | None = None) -> StepOutput:
    """NWPU-Captions (31,500 images, 45 classes, five captions each)."""
    out = StepOutput()
    root = find_root(Path(root), lambda p: (p / json_name).is_file(), json_name)
    path = root / json_name
    data = load_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise SourceError(f"{path}: expected a mapping of class name → list of entries")
    rows = []
    for cls, ents in data.items():
        label = canonical_class(cls, strict=True, where=f"{path}: class '{cls}'")
        for i, ent in enumerate(ents):
            if not isinstance(ent, dict) or "filename" not in ent:
                raise SourceError(f"{path}: {cls}[{i}]: entry lacks 'filename'")
            split = str(ent.get("split", "train"))
            if splits and split not in splits:
                continue
            caps = unique_captions([ent[k] for k in _RAW_KEYS if isinstance(ent.get(k), str)])
            if not caps:
                out.drop("nwpu_captions: no captions", 1)
                continue
            img = root / image_dir / cls / ent["filename"]
            if not img.is_file():
                out.drop("nwpu_captions: missing image", 1)
                continue
            rows.append({"eo_family": "caption", "dataset": "nwpu_captions",
                         "split": official_split(split, where=f"{path}: {cls}[{i}]"), "key": f"{cls}/{ent['filename']}",
                         "image": str(img.resolve()), "captions": caps, "raw_label": cls, "label": label})
    if not rows:
        raise SourceError(f"{path}: no entry with captions and an image under {image_dir}/<class>/ (splits {splits})")
    out.note("nwpu_captions.image_layout", f"{json_name} + {image_dir}/<class>/")
    return out.result(pl.DataFrame(rows, schema={**CAPTION_SCHEMA, "raw_label": pl.String, "label": pl.String}))


def write_nwpu_captions_sample(d: Path) -> None:
    """``dataset_nwpu.json`` + ``NWPU_images/<class>/``: two classes, four entries (one without
    captions: a counted skip)."""
    d = Path(d)
    data: dict[str, list[dict]] = {"airplane": [], "sea_ice": []}
    ents = [("airplane", "airplane_001.jpg", "train", ["An airplane is parked on the apron .", "A white plane is on the ground .",
                                                         "An airplane is parked on the apron .", "", "There is a plane ."]),
            ("airplane", "airplane_002.jpg", "test", ["Two planes are near the terminal ."] * 5),
            ("sea_ice", "sea_ice_001.jpg", "val", ["Some white ice floats on the dark sea ."] * 5),
            ("sea_ice", "sea_ice_002.jpg", "train", [""] * 5)]
    for i, (cls, name, split, caps) in enumerate(ents):
        sample_image(d / "NWPU_images" / cls / name, (32, 32), 1700 + i, "JPEG")
        ent = {"filename": name, "split": split, "imgid": i, "sentids": list(range(5 * i, 5 * i + 5))}
        ent.update({k: c for k, c in zip(_RAW_KEYS, caps)})
        data[cls].append(ent)
    (d / "dataset_nwpu.json").write_text(json.dumps(data))
