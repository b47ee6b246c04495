"""RSVQA low-resolution (Sentinel-2) and high-resolution (USGS) question answering.

Layout (per split ``S``; syvlo/RSVQA and the Zenodo records 6344334 / 6344367)::

    <root>/<prefix>_S_questions.json   {"questions": [{"id", "img_id", "type", "question", "answers_ids", "active", ...}]}
    <root>/<prefix>_S_answers.json     {"answers":   [{"id", "question_id", "answer", "active", ...}]}
    <root>/<prefix>_S_images.json      {"images":    [{"id", "questions_ids", "active", ...}]}
    <root>/<image_dir>/<img_id>.tif

``prefix`` is ``LR_split`` with ``Images_LR`` for RSVQA-LR (splits train, val, test) and
``USGS_split`` with ``Data`` for RSVQA-HR (train, val, test and ``test_phili``, the second test
set over Philadelphia). ``splits`` defaults to every split whose three files are present;
``val`` becomes the ``validation`` split and ``test_phili`` a second ``test`` set (its ``qid``
keeps the name).

Ids are global: each split file holds the entries of its own split and, at the other splits'
ids, stubs ``{"id": k, "active": false}``. Stubs are not data: they are ignored (their count is
noted as ``<dataset>.stubs``), never counted as drops. An active question without text or
without an active answer, or of an image that is not active in the split, is a counted skip;
a missing JSON file is an error naming it.

Question types become the VQA subtypes ``presence``, ``comparison`` (``comp``),
``rural_urban``, ``count`` and ``area``.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root, official_split
from .common import sample_image

__all__ = ["read_rsvqa", "QTYPES"]

QTYPES = {"presence": "presence", "comp": "comparison", "comparison": "comparison",
          "rural_urban": "rural_urban", "count": "count", "area": "area"}

VQA_SCHEMA = {
    "eo_family": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "qid": pl.String,
    "image": pl.String,
    "question": pl.String,
    "answer": pl.String,
    "qtype": pl.String,
}


def _load(path: Path, key: str) -> list[dict]:
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg.lower()})") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise SourceError(f"{path}: expected a mapping with a '{key}' list")
    return data[key]


ALL_SPLITS = ("train", "val", "test", "test_phili")


def read_rsvqa(ctx: StepContext, out: StepOutput, root: Path, dataset: str, prefix: str, image_dir: str, splits: list[str] | None) -> pl.DataFrame:
    """Join questions, answers and images of every split into one row per active question."""
    root = find_root(Path(root), lambda p: any(p.glob(f"{prefix}_*_questions.json")), f"{prefix}_<split>_questions.json")
    if splits is None:
        splits = [s for s in ALL_SPLITS if all((root / f"{prefix}_{s}_{k}.json").is_file()
                                               for k in ("questions", "answers", "images"))]
        if not splits:
            raise SourceError(f"{root}: no complete {prefix}_<split>_{{questions,answers,images}}.json set "
                              f"(splits looked for: {', '.join(ALL_SPLITS)})")
    else:
        splits = list(splits)
    rows: list[dict] = []
    stubs = 0
    for split in splits:
        hf_split = official_split(split, where=f"{dataset} splits")
        qs = _load(root / f"{prefix}_{split}_questions.json", "questions")
        ans = _load(root / f"{prefix}_{split}_answers.json", "answers")
        imgs = _load(root / f"{prefix}_{split}_images.json", "images")
        stubs += sum(1 for e in (*qs, *ans, *imgs) if not e.get("active", True))
        active_img = {im["id"] for im in imgs if im.get("active", True)}
        ans_by_id = {a["id"]: a for a in ans if a.get("active", True)}
        for q in qs:
            if not q.get("active", True):
                continue  # a stub of another split's entry
            if q.get("img_id") not in active_img:
                out.drop(f"{dataset}: question of an inactive image", 1)
                continue
            text = (q.get("question") or "").strip()
            answers = [ans_by_id[i]["answer"] for i in q.get("answers_ids", []) if i in ans_by_id]
            if not text or not answers or not str(answers[0]).strip():
                out.drop(f"{dataset}: question without text or answer", 1)
                continue
            img = root / image_dir / f"{q['img_id']}.tif"
            if not img.exists():
                out.drop(f"{dataset}: missing image", 1)
                continue
            qtype = QTYPES.get(str(q.get("type", "")).lower())
            if qtype is None:
                raise SourceError(f"{root / f'{prefix}_{split}_questions.json'}: question {q.get('id')}: unknown type '{q.get('type')}'")
            rows.append({
                "eo_family": "vqa", "dataset": dataset, "split": hf_split, "qid": f"{split}-{q['id']}",
                "image": str(img.resolve()), "question": text, "answer": str(answers[0]).strip(), "qtype": qtype,
            })
    out.note(f"{dataset}.stubs", stubs)
    out.note(f"{dataset}.splits", list(splits))
    out.note(f"{dataset}.image_layout", f"{prefix}_<split>_{{questions,answers,images}}.json + {image_dir}/<id>.tif")
    if not rows:
        raise SourceError(f"{root}: no usable question in {list(splits)} (images looked for in {root / image_dir})")
    return pl.DataFrame(rows, schema=VQA_SCHEMA)


def _write_sample(d: Path, prefix: str, image_dir: str, qa: list[tuple[int, str, str, str, str]], n_img: int) -> None:
    """Write ``<prefix>_<split>_*.json`` in the release's form: global ids, stubs for other splits."""
    d = Path(d)
    for i in range(n_img):
        sample_image(d / image_dir / f"{i}.tif", (32, 32), 7000 + i + 10 * len(prefix), "TIFF")
    img_split: dict[int, str] = {}
    for img, _, _, _, split in qa:
        img_split.setdefault(img, split)
    for split in sorted({q[4] for q in qa}):
        questions, answers = [], []
        by_img: dict[int, list[int]] = {}
        for k, (img, qtype, question, answer, s) in enumerate(qa):
            if s != split:
                questions.append({"id": k, "active": False})
                answers.append({"id": k, "active": False})
                continue
            questions.append({"id": k, "date_added": 1577836800.0, "img_id": img, "people_id": 0, "type": qtype,
                              "question": question, "answers_ids": [k], "active": True})
            answers.append({"id": k, "date_added": 1577836800.0, "question_id": k, "people_id": 0,
                            "answer": answer, "active": True})
            by_img.setdefault(img, []).append(k)
        images = [{"id": i, "date_added": 1577836800.0, "people_id": 0, "questions_ids": by_img[i], "active": True}
                  if img_split.get(i) == split else {"id": i, "active": False} for i in range(n_img)]
        for name, obj in (("questions", questions), ("answers", answers), ("images", images)):
            (d / f"{prefix}_{split}_{name}.json").write_text(json.dumps({name: obj}))


def write_lr_sample(d: Path) -> None:
    """RSVQA-LR layout: ``LR_split_{train,test}_*.json`` and ``Images_LR/<id>.tif`` (256×256 in the real set)."""
    _write_sample(d, "LR_split", "Images_LR", [
        (0, "presence", "Is there a building?", "yes", "train"),
        (0, "comp", "Are there more water areas than buildings?", "no", "train"),
        (0, "rural_urban", "Is it a rural or an urban area", "rural", "train"),
        (1, "count", "How many roads are there?", "12", "train"),
        (2, "presence", "Is there a road?", "yes", "test"),
        (2, "count", "How many buildings are there?", "3", "test"),
    ], 3)


def write_hr_sample(d: Path) -> None:
    """RSVQA-HR layout: ``USGS_split_{train,test,test_phili}_*.json`` and ``Data/<id>.tif`` (512×512 in the real set)."""
    _write_sample(d, "USGS_split", "Data", [
        (0, "presence", "Is there a residential building?", "yes", "train"),
        (0, "area", "What is the area covered by buildings?", "1234m2", "train"),
        (1, "count", "How many small roads are present in the image?", "4", "train"),
        (1, "comp", "Is the number of roads equal to the number of buildings?", "no", "train"),
        (2, "area", "What is the area covered by commercial buildings?", "0m2", "test"),
        (3, "presence", "Is there a road?", "yes", "test_phili"),
    ], 4)


@source("rsvqa_lr", env="RSVQA_LR_ROOT", sample=write_lr_sample)
def read_rsvqa_lr(ctx: StepContext, *, root: Path, splits: list[str] | None = None, image_dir: str = "Images_LR") -> StepOutput:
    """RSVQA-LR (Sentinel-2, 772 images, ~77 k questions): presence, comparison, rural/urban, count."""
    out = StepOutput()
    return out.result(read_rsvqa(ctx, out, root, "rsvqa_lr", "LR_split", image_dir, splits))


@source("rsvqa_hr", env="RSVQA_HR_ROOT", sample=write_hr_sample)
def read_rsvqa_hr(ctx: StepContext, *, root: Path, splits: list[str] | None = None, image_dir: str = "Data") -> StepOutput:
    """RSVQA-HR (USGS 15 cm, 10,659 images, ~1 M questions): presence, comparison, count, area."""
    out = StepOutput()
    return out.result(read_rsvqa(ctx, out, root, "rsvqa_hr", "USGS_split", image_dir, splits))
