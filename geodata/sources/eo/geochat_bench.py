"""GeoChat-Bench as GeoChat released it (Hugging Face ``MBZUAI/GeoChat-Bench``): scene classification.

The release is a folder of question files, one JSON object per line (``UCmerced.jsonl``,
``aid.jsonl``, ``lrben.jsonl``, ``hrben.jsonl``, ``referring.jsonl``, ``region_captioning.jsonl``,
``grounding_description.jsonl``); the images come from each source dataset. This reader builds
the two scene-classification sets, whose layout and scoring GeoChat's code fixes
(mbzuai-oryx/GeoChat ``geochat/eval/batch_geochat_scene.py``, ``docs/Evaluation.md``)::

    $GEOCHAT_BENCH_ROOT/
      UCmerced.jsonl               {"question_id": "<class>/<file>", "image": <path under the image folder>,
      aid.jsonl                     "text": <question>, "ground_truth": ...}
      images/UCmerced/<image>      UC Merced Land Use images (UCMerced_LandUse/Images)
      images/aid/<image>           AID images

(``image_dirs`` maps a file's stem to another folder.) Each line becomes one ``scene_cls`` row
of the ``test`` split in the ``geochat`` family that ``eo_tasks`` already builds: the question
is ``text`` followed by the sentence GeoChat appends at evaluation ("Classify the image from
the following classes. Answer in one word or a short phrase."), the gold label the class
GeoChat's scorer compares with, ``question_id.split('/')[0]`` lower-cased. A line without
``question_id`` / ``image`` / ``text`` is an error naming its line; a missing image is a counted
``geochat_bench: missing image``. The other files (VQA with the RSVQA truth, referring, region
captioning, grounding) are not read: see ``catalogs/geochat_bench.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root
from .common import sample_image
from .geochat import GEOCHAT_SCHEMA

__all__ = ["read_geochat_bench", "SCENE_FILES", "SCENE_SUFFIX", "write_geochat_bench_sample"]

#: the scene-classification question files of the release
SCENE_FILES = ("UCmerced.jsonl", "aid.jsonl")
#: what GeoChat appends to each scene question at evaluation (docs/Evaluation.md)
SCENE_SUFFIX = "Classify the image from the following classes. Answer in one word or a short phrase."


def _lines(path: Path) -> list[dict]:
    recs = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise SourceError(f"{path}:{i}: not a JSON object ({exc.msg})") from None
        missing = [k for k in ("question_id", "image", "text") if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise SourceError(f"{path}:{i}: lacks {', '.join(missing)} (GeoChat-Bench scene lines hold question_id, image, text)")
        recs.append(rec)
    return recs


@source("geochat_bench", env="GEOCHAT_BENCH_ROOT", sample=lambda d: write_geochat_bench_sample(d))
def read_geochat_bench(ctx: StepContext, *, root: Path, files: list[str] = list(SCENE_FILES),  # noqa: B006
                       image_dirs: dict[str, str] = {}) -> StepOutput:  # noqa: B006
    """GeoChat-Bench's scene-classification questions (UCmerced.jsonl, aid.jsonl) with their images."""
    out = StepOutput()
    root = find_root(Path(root), lambda p: any((p / f).is_file() for f in files), " or ".join(files))
    rows = []
    for name in files:
        path = root / name
        if not path.is_file():
            out.note(f"geochat_bench.{Path(name).stem}", "absent")
            continue
        stem = Path(name).stem
        img_dir = root / image_dirs.get(stem, f"images/{stem}")
        if not img_dir.is_dir():
            raise SourceError(f"geochat_bench: {name}: image folder {img_dir} not found "
                              f"(unpack the {stem} images there or set image_dirs.{stem})")
        n = 0
        for rec in _lines(path):
            img = img_dir / str(rec["image"])
            if not img.is_file():
                out.drop("geochat_bench: missing image", 1)
                continue
            label = str(rec["question_id"]).split("/")[0].lower()
            rows.append({"eo_family": "geochat", "dataset": f"geochat_bench_{stem.lower()}", "split": "test",
                         "key": f"{stem.lower()}-{rec['question_id']}", "image": str(img.resolve()),
                         "question": f"{str(rec['text']).strip()}\n{SCENE_SUFFIX}", "answer": label,
                         "task": "scene_cls", "tag": ""})
            n += 1
        out.note(f"geochat_bench.{stem}", n)
    if not rows:
        raise SourceError(f"geochat_bench: {root}: none of {', '.join(files)} holds a question with its image")
    return out.result(pl.DataFrame(rows, schema=GEOCHAT_SCHEMA))


def write_geochat_bench_sample(d: Path) -> None:
    """``UCmerced.jsonl`` and ``aid.jsonl`` with three questions each and their images in ``images/<stem>/``."""
    d = Path(d)
    sets = {"UCmerced": (["agricultural", "airplane", "beach"], "tif", "TIFF"),
            "aid": (["Airport", "BareLand", "Beach"], "jpg", "JPEG")}
    for k, (stem, (classes, ext, fmt)) in enumerate(sets.items()):
        lines = []
        for i, c in enumerate(classes):
            rel = f"{c}/{c.lower()}_{i:02d}.{ext}"
            sample_image(d / "images" / stem / rel, (32, 32), 3100 + 10 * k + i, fmt)
            lines.append(json.dumps({"question_id": rel, "image": rel, "ground_truth": c,
                                     "text": f"Classify the given image in one of the following classes. Classes: {', '.join(classes)}."}))
        (d / f"{stem}.jsonl").write_text("\n".join(lines) + "\n")
