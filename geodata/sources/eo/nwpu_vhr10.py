"""NWPU VHR-10: 650 positive images with horizontal boxes of ten object classes (+150 negatives).

Layout (the release's ``NWPU VHR-10 dataset`` folder; its readme.txt, and microsoft/torchgeo
``torchgeo/datasets/vhr10.py`` which reads ``<split> image set/<NNN>.jpg``)::

    <root>/NWPU VHR-10 dataset/positive image set/<NNN>.jpg
    <root>/NWPU VHR-10 dataset/negative image set/<NNN>.jpg          (no objects: not read)
    <root>/NWPU VHR-10 dataset/ground truth/<NNN>.txt                 one box a line: (x1,y1),(x2,y2),a
        (x1,y1) top-left, (x2,y2) bottom-right pixel corner, a the class
        (1 airplane, 2 ship, 3 storage tank, 4 baseball diamond, 5 tennis court, 6 basketball court,
         7 ground track field, 8 harbor, 9 bridge, 10 vehicle)

The root may also be the ``NWPU VHR-10 dataset`` folder itself. Boxes become grid boxes with
θ = 0 (:func:`~geodata.sources.eo.common.finish_objects`).

Bad input (documented rule): a ground-truth line that does not parse, or whose class is not 1–10,
is a counted skip (``nwpu_vhr10: malformed line``); a ground-truth file without its image is a
counted skip (``nwpu_vhr10: missing image``); boxes outside the image / degenerate boxes are
counted skips as for DOTA. No ground-truth file is an error.

Output (one row per object, the object schema of :mod:`geodata.sources.eo.common`):
``eo_family='objects'``, ``dataset``, ``split`` (``train``: the release ships no split),
``image_id``, ``image``, ``width``, ``height``, ``raw_category``, ``category``, ``difficult``,
``where`` (``<NNN>.txt:<line>``), ``box``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root
from .common import canonical_class, finish_objects, image_size, sample_image

__all__ = ["VHR10_CLASSES", "read_nwpu_vhr10"]

#: Class ids of the ground-truth files (the release's readme.txt).
VHR10_CLASSES = {1: "airplane", 2: "ship", 3: "storage tank", 4: "baseball diamond", 5: "tennis court",
                 6: "basketball court", 7: "ground track field", 8: "harbor", 9: "bridge", 10: "vehicle"}
_DIR = "NWPU VHR-10 dataset"
_LINE = re.compile(r"^\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)\s*,\s*\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)\s*,\s*(\d+)\s*$")


def _probe(p: Path) -> bool:
    return (p / "ground truth").is_dir() or (p / _DIR / "ground truth").is_dir()


@source("nwpu_vhr10", env="NWPU_VHR10_ROOT", sample=lambda d: write_nwpu_vhr10_sample(d))
def read_nwpu_vhr10(ctx: StepContext, *, root: Path, outside_tol_px: float = 2.0) -> StepOutput:
    """NWPU VHR-10 (3,775 objects in 650 positive images), one row per object with its grid box."""
    out = StepOutput()
    root = find_root(Path(root), _probe, f"'{_DIR}/ground truth/'")
    base = root if (root / "ground truth").is_dir() else root / _DIR
    gts = sorted((base / "ground truth").glob("*.txt"))
    if not gts:
        raise SourceError(f"{base / 'ground truth'}: no ground-truth .txt file")
    rows: list[dict] = []
    quads: list[list[float]] = []
    for gt in gts:
        img = base / "positive image set" / f"{gt.stem}.jpg"
        if not img.is_file():
            out.drop("nwpu_vhr10: missing image", 1)
            continue
        w, h = image_size(img)
        for ln, line in enumerate(gt.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            m = _LINE.match(line)
            if m is None or int(m.group(5)) not in VHR10_CLASSES:
                out.drop("nwpu_vhr10: malformed line", 1)
                continue
            x0, y0, x1, y1 = (float(m.group(k)) for k in range(1, 5))
            name = VHR10_CLASSES[int(m.group(5))]
            rows.append({"eo_family": "objects", "dataset": "nwpu_vhr10", "split": "train", "image_id": gt.stem,
                         "image": str(img.resolve()), "width": w, "height": h, "raw_category": name,
                         "category": canonical_class(name, strict=True, where=f"{gt}:{ln}"), "difficult": False,
                         "where": f"{gt.name}:{ln}"})
            quads.append([x0, y0, x1, y0, x1, y1, x0, y1])
    out.note("nwpu_vhr10.image_layout", f"{base.name}/ground truth/*.txt + positive image set/*.jpg (no official split: train)")
    if not rows:
        raise SourceError(f"{base}: no object in {len(gts)} ground-truth file(s) has a readable line and its image "
                          "in 'positive image set/'")
    return out.result(finish_objects(ctx, out, "nwpu_vhr10", rows, quads, outside_tol_px=outside_tol_px))


def write_nwpu_vhr10_sample(d: Path) -> None:
    """Two positive 64×64 images with their ground truth, one negative image, and one malformed
    line (a counted skip)."""
    base = Path(d) / _DIR
    gts = {"001": ["(5,6),(30,28),1", "(40,40),(60,58),10"],
           "002": ["(2,2),(20,15),3", "(10,30),(50,60),7", "(1,2),(3,4)"]}
    for i, (n, lines) in enumerate(gts.items()):
        sample_image(base / "positive image set" / f"{n}.jpg", (64, 64), 1800 + i, "JPEG")
        (base / "ground truth").mkdir(parents=True, exist_ok=True)
        (base / "ground truth" / f"{n}.txt").write_text("\n".join(lines) + "\n")
    sample_image(base / "negative image set" / "001.jpg", (64, 64), 1899, "JPEG")
