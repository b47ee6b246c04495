"""GeoChat-Instruct (LLaVA ``conversations``) passed through into the EO tasks.

Layout: ``<root>/GeoChat_Instruct.json`` (a list of ``{"id", "image", "conversations":
[{"from": "human", "value": "<image>\\n[refer] ..."}, {"from": "gpt", "value": "..."}, ...]}``)
and the images. The release's ``images.zip`` (Hugging Face ``MBZUAI/GeoChat_Instruct``) unpacks
to ``share/softwares/kartik/GeoChat_finetuning/final_images_llava/<image>`` — the path the
GeoChat training scripts (mbzuai-oryx/GeoChat ``scripts/finetune_lora.sh``) and third-party
loaders pass as ``--image_folder``. ``image_dir: auto`` looks for the images in
:data:`IMAGE_DIRS` (under the root and under ``<root>/images``) and settles on the folder that
holds the most of the records' images; none holding any is an error naming every folder
looked at.

Every (human, gpt) turn pair becomes one row; ``<image>`` is removed from the question, which is
otherwise kept verbatim (task token included). Boxes are GeoChat's own
``{<x1><y1><x2><y2>|<θ>}`` on the 0–100 grid, which is the project convention already.

Task of a pair (documented rule):

* ``[refer]`` → ``referring`` (the boxes in the answer are the gold; an answer without a box is a
  counted skip ``geochat: refer without box``);
* ``[grounding]`` → ``image_caption`` (a grounded description; the caption reward ignores the
  box tokens);
* ``[identify]`` → ``region_caption``;
* ``[vqa]`` → ``vqa``;
* no token: a question asking to *classify* the image into given classes → ``scene_cls``; an
  answer of at most four words → ``vqa``; anything longer → ``image_caption``.

When no folder holds the images (``image_dir: auto``), the release's archive is read in place:
the Hub's ``images_partaa``, ``images_partab``, ``images_partac`` chunks (or ``images.zip`` /
``images.tar``), a zip or a plain tar recognised by its bytes; rows then carry ``tar://`` /
``deflate://`` references (:mod:`geodata.images`) instead of paths.

A record without ``image`` or ``conversations`` is an error naming its index; a missing image is
a counted skip (``geochat: missing image``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .captions import load_json
from .._layout import find_root
from .common import parse_boxes, sample_image

__all__ = ["read_geochat", "geochat_task", "IMAGE_DIRS"]

#: Where ``image_dir: auto`` looks, relative to the root (first the unpacked images.zip).
IMAGE_DIRS = (
    "share/softwares/kartik/GeoChat_finetuning/final_images_llava",
    "images/share/softwares/kartik/GeoChat_finetuning/final_images_llava",
    "final_images_llava",
    "images/final_images_llava",
    "images",
)

GEOCHAT_SCHEMA = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "key": pl.String,
    "image": pl.String,
    "question": pl.String,
    "answer": pl.String,
    "task": pl.String,
    "tag": pl.String,
}

_TAG = re.compile(r"\[(refer|grounding|identify|vqa)\]", re.I)
_CLASSIFY = re.compile(r"\bclassif(y|ication)\b.*\bclass", re.I | re.S)


def geochat_task(question: str, answer: str) -> tuple[str, str]:
    """``(task, tag)`` of one GeoChat turn pair (see the module docstring).

    Examples
    --------
    >>> geochat_task("[refer] where is the ship?", "{<1><2><3><4>|<0>}")
    ('referring', 'refer')
    >>> geochat_task("Classify the given image in one of the following classes. Classes: forest, river", "Forest")
    ('scene_cls', '')
    >>> geochat_task("Is there a bridge?", "Yes")
    ('vqa', '')
    """
    m = _TAG.search(question)
    tag = m.group(1).lower() if m else ""
    if tag == "refer":
        return "referring", tag
    if tag == "grounding":
        return "image_caption", tag
    if tag == "identify":
        return "region_caption", tag
    if tag == "vqa":
        return "vqa", tag
    if _CLASSIFY.search(question):
        return "scene_cls", tag
    return ("vqa" if len(answer.split()) <= 4 else "image_caption"), tag


@source("geochat_instruct", env="GEOCHAT_ROOT", sample=lambda d: write_geochat_sample(d))
def read_geochat(ctx: StepContext, *, root: Path, json_name: str = "GeoChat_Instruct.json", image_dir: str = "auto") -> StepOutput:
    """GeoChat-Instruct (~318 k instruction turns over DOTA, DIOR, FAIR1M, FloodNet, RSVQA, NWPU, UCM)."""
    out = StepOutput()
    root = find_root(Path(root), lambda p: (p / json_name).is_file(), json_name)
    path = root / json_name
    data = load_json(path)
    if not isinstance(data, list):
        raise SourceError(f"{path}: expected a list of conversations")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or "image" not in rec or not isinstance(rec.get("conversations"), list):
            raise SourceError(f"{path}: [{i}]: record lacks 'image' or 'conversations'")
    names = [str(r["image"]) for r in data]
    archive = None
    try:
        img_root = _image_root(root, image_dir, names)
        out.note("geochat_instruct.image_layout", str(img_root.relative_to(root)) if img_root != root else ".")
    except SourceError:
        archive = _archive_index(root) if image_dir == "auto" else None
        if archive is None:
            raise
        what, archive = archive
        out.note("geochat_instruct.image_layout", what)
    rows = []
    for i, rec in enumerate(data):
        if archive is not None:
            ref = archive.get(str(rec["image"]).lstrip("/"))
            if ref is None:
                out.drop("geochat: missing image", 1)
                continue
        else:
            img = img_root / rec["image"]
            if not img.exists():
                out.drop("geochat: missing image", 1)
                continue
            ref = str(img.resolve())
        conv = rec["conversations"]
        for t in range(0, len(conv) - 1, 2):
            h, g = conv[t], conv[t + 1]
            if h.get("from") != "human" or g.get("from") != "gpt":
                raise SourceError(f"{path}: [{i}].conversations[{t}]: expected a human turn followed by a gpt turn")
            q = re.sub(r"\s*<image>\s*", " ", str(h.get("value", ""))).strip()
            a = str(g.get("value", "")).strip()
            if not q or not a:
                out.drop("geochat: empty turn", 1)
                continue
            task, tag = geochat_task(q, a)
            if task == "referring" and not parse_boxes(a):
                out.drop("geochat: refer without box", 1)
                continue
            rows.append({"eo_family": "geochat", "dataset": "geochat_instruct", "split": "train",
                         "key": f"{rec.get('id', i)}-{t // 2}", "image": ref,
                         "question": q, "answer": a, "task": task, "tag": tag})
    return out.result(pl.DataFrame(rows, schema=GEOCHAT_SCHEMA))


#: The images archive of the Hub release, as ``split`` chunks (``images_partaa`` …) or whole.
ARCHIVE_STEM = "images_part"


def _archive_index(root: Path) -> tuple[str, dict[str, str]] | None:
    """``(layout note, image name → reference)`` of the release's images archive read in place —
    the Hub's ``images_partaa``, ``images_partab`` … chunks or ``images.zip`` / ``images.tar`` —
    or None when there is none. Zip (stored or deflated members) and plain tar are recognised by
    their bytes; a member's name is its path after ``final_images_llava/`` (else its file name)."""
    from ..._cache import cached_frame
    from ...images import archive_chunks, index_tar, index_zip

    parts = archive_chunks(root, ARCHIVE_STEM)
    if not parts:
        parts = next(([root / n] for n in ("images.zip", "images.tar") if (root / n).is_file()), [])
    if not parts:
        return None
    with open(parts[0], "rb") as fh:
        head = fh.read(512)
    if head[:4] == b"PK\x03\x04":  # the index is cached by the chunks' size and mtime (one pass)
        kind, idx = "zip", cached_frame("geochat-zip-v1", parts, lambda: index_zip(parts), expand=False)
    elif head[257:262] == b"ustar":
        kind, idx = "tar", cached_frame("geochat-tar-v1", parts, lambda: index_tar([parts]), expand=False)
    else:
        raise SourceError(f"{parts[0]}: neither a zip nor a plain tar archive (first bytes {head[:4]!r})")
    idx = idx.filter(pl.col("key").is_not_null())
    keys = [k.split("final_images_llava/", 1)[1] if "final_images_llava/" in k else k.rsplit("/", 1)[-1]
            for k in idx["key"].to_list()]
    label = parts[0].name if len(parts) == 1 else f"{parts[0].name}..{parts[-1].name}"
    return f"{label} ({kind}, read in place)", dict(zip(keys, idx["ref"].to_list()))


def _count_present(folder: Path, names: list[str]) -> int:
    """How many of ``names`` exist under ``folder`` (one listing for flat names)."""
    import os

    listing = set(os.listdir(folder))
    return sum(1 for n in names if (n in listing) if "/" not in n) + sum(
        1 for n in names if "/" in n and (folder / n).is_file())


def _image_root(root: Path, image_dir: str, names: list[str]) -> Path:
    """The image folder: ``image_dir`` itself, or (``auto``) the candidate holding most images."""
    cands = [root / image_dir] if image_dir != "auto" else [root / c for c in IMAGE_DIRS]
    found = {c: _count_present(c, names) for c in cands if c.is_dir()}
    if not found or max(found.values()) == 0:
        looked = ", ".join(f"{c} ({'0 images' if c in found else 'absent'})" for c in cands)
        raise SourceError(f"{root}: none of the {len(names)} GeoChat images found (looked in {looked})")
    best = max(found.values())
    top = [c for c, n in found.items() if n == best]
    if len(top) > 1:
        raise SourceError(f"{root}: ambiguous image folder, {best} images in each of {', '.join(map(str, top))}; set image_dir")
    return top[0]


def write_geochat_sample(d: Path) -> None:
    """``GeoChat_Instruct.json`` with one record per task token plus two untagged ones.

    The images lie where the release's ``images.zip`` unpacks them:
    ``share/softwares/kartik/GeoChat_finetuning/final_images_llava/``.
    """
    d = Path(d)
    recs = [
        {"id": "P0003_0002", "image": "P0003_0002.png", "conversations": [
            {"from": "human", "value": "<image>\n[refer] give me the location of <p>the large vehicle on the left</p>"},
            {"from": "gpt", "value": "<p>the large vehicle on the left</p> {<8><20><30><41>|<-45>}"},
            {"from": "human", "value": "[identify] {<60><62><90><92>|<0>}"},
            {"from": "gpt", "value": "A roundabout at the bottom right of the image."}]},
        {"id": "P0001_0000", "image": "P0001_0000.png", "conversations": [
            {"from": "human", "value": "<image>\n[grounding] Describe the image in detail"},
            {"from": "gpt", "value": "The image shows two <p>planes</p> {<10><13><30><27>|<0>} {<50><13><70><27>|<0>} parked near a <p>storage tank</p> {<5><67><25><93>|<0>}."}]},
        {"id": "UCM_airplane00", "image": "airplane00.png", "conversations": [
            {"from": "human", "value": "<image>\nClassify the given image in one of the following classes. Classes: airplane, beach, forest, river. \nAnswer in one word or a short phrase."},
            {"from": "gpt", "value": "airplane"},
            {"from": "human", "value": "Is there any vegetation in the image?"},
            {"from": "gpt", "value": "No"}]},
        {"id": "missing", "image": "not_there.png", "conversations": [
            {"from": "human", "value": "<image>\nIs there a road?"}, {"from": "gpt", "value": "Yes"}]},
    ]
    for i, r in enumerate(recs[:3]):
        sample_image(d / IMAGE_DIRS[0] / r["image"], (48, 48), 1100 + i, "PNG")
    (d / "GeoChat_Instruct.json").write_text(json.dumps(recs, indent=1))
