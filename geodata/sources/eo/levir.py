"""Bi-temporal change sources: LEVIR-CD (change masks) and LEVIR-CC (change captions).

LEVIR-CD layouts (auto-detected, noted as ``levir_cd.image_layout``): the release's
``<root>/{train,val,test}/{A,B,label}/<name>.png``, or the torchgeo / Hugging Face copy
(``satellite-image-deep-learning/LEVIR-CD``'s train.zip, val.zip, test.zip unpacked into one
folder, as microsoft/torchgeo ``torchgeo/datasets/levircd.py`` reads it)
``<root>/{A,B,label}/<split>_<N>.png`` — ``A`` before, ``B`` after, ``label`` a binary
building-change mask (0 / 255). A root holding both forms is an error. A pair *has changed* when more than
``min_changed_frac`` of the mask's pixels are non-zero. A pair lacking ``B`` or ``label`` is a
counted skip (``levir_cd: incomplete pair``).

LEVIR-CC layout::

    <root>/LevirCCcaptions.json   {"images": [{"filepath": "train", "filename": "train_000001.png", "imgid",
                                               "split", "changeflag": 0|1, "sentids",
                                               "sentences": [{"raw", "tokens", ...}] (five)}]}
    <root>/images/{train,val,test}/{A,B}/<filename>

An entry with an empty caption list is a counted skip (``levir_cc: no captions``); a missing
image is a counted skip.

Output (one row per pair): ``eo_family='change'``, ``dataset``, ``split``, ``key``,
``image_a``, ``image_b``, ``changed`` (bool), ``changed_frac`` (LEVIR-CD), ``captions``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root, official_split
from .captions import load_json, unique_captions
from .common import sample_image

__all__ = ["read_levir_cd", "read_levir_cc", "CHANGE_SCHEMA"]

CHANGE_SCHEMA = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "key": pl.String,
    "image_a": pl.String,
    "image_b": pl.String,
    "changed": pl.Boolean,
    "changed_frac": pl.Float64,
    "captions": pl.List(pl.String),
}


def mask_fraction(path: Path) -> float:
    """Fraction of non-zero pixels of a change mask."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L"))
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"{path}: cannot read change mask ({type(exc).__name__})") from None
    return float((arr > 0).mean()) if arr.size else 0.0


def _levir_cd_layout(root: Path) -> str | None:
    release = any((root / s / "A").is_dir() for s in ("train", "val", "test"))
    torchgeo = (root / "A").is_dir()
    if release and torchgeo:
        raise SourceError(f"{root}: ambiguous LEVIR-CD root, both <split>/A/ and A/ found; point the root at one")
    return "release" if release else "torchgeo" if torchgeo else None


@source("levir_cd", env="LEVIR_CD_ROOT", sample=lambda d: write_levir_cd_sample(d))
def read_levir_cd(ctx: StepContext, *, root: Path, splits: list[str] = ["train", "val", "test"],
                  min_changed_frac: float = 0.0) -> StepOutput:
    """LEVIR-CD (637 pairs of 1024×1024 Google Earth images) with a change flag from the mask."""
    out = StepOutput()
    root = find_root(Path(root), lambda p: _levir_cd_layout(p) is not None, "LEVIR-CD's <split>/A/ or A/ folder")
    layout = _levir_cd_layout(root)
    out.note("levir_cd.image_layout", layout)
    rows = []
    for split in splits:
        hf = official_split(split, where="levir_cd splits")
        if layout == "release":
            base, pattern = root / split, "*.png"
            if not (base / "A").is_dir():
                raise SourceError(f"{base / 'A'}: folder not found (splits: {list(splits)})")
        else:
            base, pattern = root, f"{split}_*.png"
        for a in sorted((base / "A").glob(pattern)):
            b, lab = base / "B" / a.name, base / "label" / a.name
            if not b.exists() or not lab.exists():
                out.drop("levir_cd: incomplete pair", 1)
                continue
            frac = mask_fraction(lab)
            rows.append({"eo_family": "change", "dataset": "levir_cd", "split": hf, "key": f"{split}/{a.name}",
                         "image_a": str(a.resolve()), "image_b": str(b.resolve()),
                         "changed": frac > min_changed_frac, "changed_frac": frac, "captions": []})
    if not rows:
        where = root / "A" if layout == "torchgeo" else root
        raise SourceError(f"{where}: no LEVIR-CD pair of splits {list(splits)} found ({layout} layout)")
    return out.result(pl.DataFrame(rows, schema=CHANGE_SCHEMA))


@source("levir_cc", env="LEVIR_CC_ROOT", sample=lambda d: write_levir_cc_sample(d))
def read_levir_cc(ctx: StepContext, *, root: Path, json_name: str = "LevirCCcaptions.json",
                  splits: list[str] | None = None) -> StepOutput:
    """LEVIR-CC (10,077 pairs, five change captions each, a change flag)."""
    out = StepOutput()
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
        split = str(ent.get("split") or ent.get("filepath") or "train")
        if splits and split not in splits:
            continue
        folder = str(ent.get("filepath") or split)
        caps = unique_captions(ent["sentences"] or [])
        if not caps:
            out.drop("levir_cc: no captions", 1)
            continue
        a = root / "images" / folder / "A" / ent["filename"]
        b = root / "images" / folder / "B" / ent["filename"]
        if not a.exists() or not b.exists():
            out.drop("levir_cc: missing image", 1)
            continue
        flag = ent.get("changeflag")
        if flag not in (0, 1, True, False):
            raise SourceError(f"{path}: images[{i}]: changeflag must be 0 or 1, got {flag!r}")
        rows.append({"eo_family": "change", "dataset": "levir_cc", "split": official_split(split, where=str(path)), "key": f"{folder}/{ent['filename']}",
                     "image_a": str(a.resolve()), "image_b": str(b.resolve()), "changed": bool(flag),
                     "changed_frac": None, "captions": caps})
    out.note("levir_cc.image_layout", f"{json_name} + images/<split>/{{A,B}}/")
    return out.result(pl.DataFrame(rows, schema=CHANGE_SCHEMA))


def write_levir_cd_sample(d: Path) -> None:
    """LEVIR-CD in the torchgeo / Hub form ``{A,B,label}/<split>_<N>.png``: three 32×32 pairs
    (1024×1024 in the real set), one per split."""
    from PIL import Image

    d = Path(d)
    for i, (split, changed) in enumerate((("train", True), ("val", False), ("test", True))):
        name = f"{split}_{i + 1}.png"
        sample_image(d / "A" / name, (32, 32), 900 + i, "PNG")
        sample_image(d / "B" / name, (32, 32), 950 + i if changed else 900 + i, "PNG")
        mask = np.zeros((32, 32), np.uint8)
        if changed:
            mask[8:20, 10:24] = 255
        (d / "label").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask, "L").save(d / "label" / name)


def write_levir_cc_sample(d: Path) -> None:
    """LEVIR-CC layout: ``LevirCCcaptions.json`` + ``images/<split>/{A,B}/<name>.png``."""
    d = Path(d)
    ents = [
        ("train", "train_000001.png", 1, [" many buildings are constructed along the road . ",
                                           " a row of houses appears on the bare land . "]),
        ("train", "train_000002.png", 0, [" the scene is the same as before . ", " there is no difference . "]),
        ("val", "val_000001.png", 1, []),  # empty caption list: a counted skip
    ]
    images, sid = [], 0
    for i, (split, name, flag, caps) in enumerate(ents):
        sample_image(d / "images" / split / "A" / name, (32, 32), 1000 + i, "PNG")
        sample_image(d / "images" / split / "B" / name, (32, 32), 1050 + i if flag else 1000 + i, "PNG")
        sents = []
        for c in caps:
            sents.append({"tokens": c.strip(" .").split(), "raw": c, "imgid": i, "sentid": sid})
            sid += 1
        images.append({"filepath": split, "filename": name, "imgid": i, "split": split, "changeflag": flag,
                       "sentids": [s["sentid"] for s in sents], "sentences": sents})
    (d / "LevirCCcaptions.json").write_text(json.dumps({"images": images}))
