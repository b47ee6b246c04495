"""RSITMD (Remote Sensing Image-Text Match Dataset): images with five captions and keywords each.

Layout (the release's archive, xiaoyuan1996/AMFMN ``RSITMD/README.md`` "File Structure")::

    <root>/images/<name>.tif
    <root>/dataset_RSITMD.json   {"images": [{"filename", "imgid", "split", "sentids",
                                              "sentences": [{"raw", "tokens", "imgid", "sentid"}],
                                              "keywords": [...]}], ...}

The Karpathy ``dataset_*.json`` form of :mod:`geodata.sources.eo.captions` (RSICD's), plus a
``keywords`` list per image. Captions are cleaned and de-duplicated per image. Bad input (the
documented rule of :func:`~geodata.sources.eo.captions.read_karpathy_captions`): an empty caption
list is a counted skip (``rsitmd: no captions``), a missing image is a counted skip
(``rsitmd: missing image``), an entry without ``filename`` / ``sentences`` is an error naming the
entry. A file without any usable entry is an error.

Output (one row per image): ``eo_family='caption'``, ``dataset``, ``split``, ``key``, ``image``,
``captions`` (list), ``keywords`` (list).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root
from .captions import load_json, read_karpathy_captions
from .common import sample_image

__all__ = ["read_rsitmd"]


@source("rsitmd", env="RSITMD_ROOT", sample=lambda d: write_rsitmd_sample(d))
def read_rsitmd(ctx: StepContext, *, root: Path, json_name: str = "dataset_RSITMD.json", image_dir: str = "images",
                splits: list[str] | None = None) -> StepOutput:
    """RSITMD (scene images, five captions and keywords each)."""
    out = StepOutput()
    root = find_root(Path(root), lambda p: (p / json_name).is_file(), json_name)
    df = read_karpathy_captions(ctx, out, root, "rsitmd", json_name, image_dir, splits)
    if df.is_empty():
        raise SourceError(f"{root / json_name}: no entry with captions and an image under {image_dir}/ (splits {splits})")
    kw = {str(e.get("filename")): [str(k) for k in (e.get("keywords") or [])]
          for e in load_json(root / json_name)["images"]}
    df = df.with_columns(keywords=pl.Series([kw.get(k, []) for k in df["key"].to_list()], dtype=pl.List(pl.String)))
    return out.result(df)


def write_rsitmd_sample(d: Path) -> None:
    """``dataset_RSITMD.json`` + ``images/*.tif``: three 32×32 images, one with no caption, and one
    entry whose image is missing."""
    d = Path(d)
    ents = [("airport_1.tif", "train", ["A plane is parked at the airport .", "a plane is parked at the airport ."], ["plane", "airport"]),
            ("baseballfield_7.tif", "test", ["Two baseball fields are next to a road ."], ["baseball", "road"]),
            ("beach_3.tif", "train", [], ["beach"]),
            ("bridge_2.tif", "train", ["A bridge crosses the river ."], ["bridge"])]
    images, sid = [], 0
    for i, (name, split, caps, kws) in enumerate(ents):
        if name != "bridge_2.tif":  # its image is missing: a counted skip
            sample_image(d / "images" / name, (32, 32), 1600 + i, "TIFF")
        sents = []
        for c in caps:
            sents.append({"tokens": c.strip(" .").lower().split(), "raw": c, "imgid": i, "sentid": sid})
            sid += 1
        images.append({"filename": name, "imgid": i, "split": split, "sentids": [s["sentid"] for s in sents],
                       "sentences": sents, "keywords": kws})
    (d / "dataset_RSITMD.json").write_text(json.dumps({"images": images, "dataset": "rsitmd"}))
