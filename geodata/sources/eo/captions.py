"""Image captioning sources in the Karpathy ``dataset_*.json`` form: RSICD, UCM-captions, Sydney-captions.

Layout::

    <root>/<json_name>     {"images": [{"filename", "imgid", "split", "sentids",
                                        "sentences": [{"raw", "tokens", "imgid", "sentid"}]}], "dataset": ...}
    <root>/<image_dir>/<filename>

Defaults: RSICD ``dataset_rsicd.json`` + ``RSICD_images``; UCM-captions and Sydney-captions
``dataset.json`` + ``imgs``. Captions are cleaned (:func:`~geodata.sources.eo.common.clean_caption`)
and de-duplicated per image (RSICD repeats sentences to reach five).

Bad input (documented rule): an entry whose caption list is empty (or holds only blank
captions) is a counted skip (``<dataset>: no captions``); an entry without ``filename`` or
``sentences`` is an error naming the file and entry index; a missing image is a counted skip.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import official_split
from .common import clean_caption, sample_image

__all__ = ["read_karpathy_captions", "load_json"]

CAPTION_SCHEMA = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "key": pl.String,
    "image": pl.String,
    "captions": pl.List(pl.String),
}


def load_json(path: Path):
    """Parse a JSON file; errors name the file and line."""
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg.lower()})") from None


def unique_captions(sentences: list) -> list[str]:
    """Cleaned, de-duplicated ``raw`` captions (blank ones left out)."""
    seen: dict[str, str] = {}
    for s in sentences:
        raw = s.get("raw") if isinstance(s, dict) else s
        if raw is None and isinstance(s, dict) and s.get("tokens"):
            raw = " ".join(s["tokens"])
        text = clean_caption(raw or "")
        if re.search(r"[A-Za-z0-9]", text):
            seen.setdefault(text.lower(), text)
    return list(seen.values())


def read_karpathy_captions(ctx: StepContext, out: StepOutput, root: Path, dataset: str, json_name: str, image_dir: str, splits: list[str] | None) -> pl.DataFrame:
    """One row per image with its list of reference captions."""
    root = Path(root)
    path = root / json_name
    data = load_json(path)
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise SourceError(f"{path}: expected a mapping with an 'images' list")
    rows = []
    for i, ent in enumerate(images):
        if not isinstance(ent, dict) or "filename" not in ent or "sentences" not in ent:
            raise SourceError(f"{path}: images[{i}]: entry lacks 'filename' or 'sentences'")
        split = str(ent.get("split", "train"))
        if splits and split not in splits:
            continue
        caps = unique_captions(ent["sentences"] or [])
        if not caps:
            out.drop(f"{dataset}: no captions", 1)
            continue
        img = root / image_dir / ent["filename"]
        if not img.exists():
            out.drop(f"{dataset}: missing image", 1)
            continue
        rows.append({"eo_family": "caption", "dataset": dataset, "split": official_split(split, where=f"{path}: images[{i}]"), "key": ent["filename"],
                     "image": str(img.resolve()), "captions": caps})
    out.note(f"{dataset}.image_layout", f"{json_name} + {image_dir}/")
    return pl.DataFrame(rows, schema=CAPTION_SCHEMA)


def _write_sample(d: Path, dataset: str, json_name: str, image_dir: str, names: list[str], fmt: str, caps: list[list[str]]) -> None:
    d = Path(d)
    images, sid = [], 0
    for i, (name, cs) in enumerate(zip(names, caps)):
        sample_image(d / image_dir / name, (32, 32), 800 + i + len(dataset), fmt)
        sents = []
        for c in cs:
            sents.append({"tokens": c.strip(" .").split(), "raw": c, "imgid": i, "sentid": sid})
            sid += 1
        images.append({"filename": name, "imgid": i, "split": ["train", "train", "val", "test"][i % 4],
                       "sentids": [s["sentid"] for s in sents], "sentences": sents})
    (d / json_name).write_text(json.dumps({"images": images, "dataset": dataset}))


def write_rsicd_sample(d: Path) -> None:
    """RSICD layout: ``dataset_rsicd.json`` + ``RSICD_images/<name>.jpg`` (224×224 in the real set)."""
    _write_sample(d, "rsicd", "dataset_rsicd.json", "RSICD_images", ["airport_1.jpg", "beach_12.jpg", "00015.jpg"], "JPEG", [
        ["many planes are parked next to a long building in an airport .", "many planes are parked next to a long building in an airport .",
         "several aircraft are parked around the terminal ."],
        ["yellow beach is near a piece of green ocean .", "waves crash on a sandy beach ."],
        [],  # an empty caption list: a counted skip
    ])


def write_ucm_captions_sample(d: Path) -> None:
    """UCM-captions layout: ``dataset.json`` + ``imgs/<n>.tif``."""
    _write_sample(d, "ucm", "dataset.json", "imgs", ["1.tif", "2.tif"], "TIFF", [
        ["There is a piece of farmland .", "There is a piece of cropland .", "It is a piece of farmland ."],
        ["An airplane is stopped at the airport .", "There is an airplane at the airport ."],
    ])


def write_sydney_captions_sample(d: Path) -> None:
    """Sydney-captions layout: ``dataset.json`` + ``imgs/<n>.tif``."""
    _write_sample(d, "sydney", "dataset.json", "imgs", ["1.tif", "2.tif"], "TIFF", [
        ["A residential area with houses arranged neatly .", "Many houses are arranged in lines ."],
        ["A river goes through this area with some green plants .", "A wide river with lawns on both sides ."],
    ])


@source("rsicd", env="RSICD_ROOT", sample=write_rsicd_sample)
def read_rsicd(ctx: StepContext, *, root: Path, json_name: str = "dataset_rsicd.json", image_dir: str = "RSICD_images",
               splits: list[str] | None = None) -> StepOutput:
    """RSICD (10,921 images, five captions each)."""
    out = StepOutput()
    return out.result(read_karpathy_captions(ctx, out, root, "rsicd", json_name, image_dir, splits))


@source("ucm_captions", env="UCM_CAPTIONS_ROOT", sample=write_ucm_captions_sample)
def read_ucm_captions(ctx: StepContext, *, root: Path, json_name: str = "dataset.json", image_dir: str = "imgs",
                      splits: list[str] | None = None) -> StepOutput:
    """UCM-captions (2,100 UC Merced images, five captions each)."""
    out = StepOutput()
    return out.result(read_karpathy_captions(ctx, out, root, "ucm_captions", json_name, image_dir, splits))


@source("sydney_captions", env="SYDNEY_CAPTIONS_ROOT", sample=write_sydney_captions_sample)
def read_sydney_captions(ctx: StepContext, *, root: Path, json_name: str = "dataset.json", image_dir: str = "imgs",
                         splits: list[str] | None = None) -> StepOutput:
    """Sydney-captions (613 images, five captions each)."""
    out = StepOutput()
    return out.result(read_karpathy_captions(ctx, out, root, "sydney_captions", json_name, image_dir, splits))
