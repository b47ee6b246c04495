"""WHU-RS19 scene classification (19 classes of Google Earth scenes).

Layout (the release's ``WHU-RS19.zip`` from captain-whu.github.io/BED4RS, unpacked)::

    <root>/<Class>/<class>_NN.jpg      e.g. Airport/airport_01.jpg, footballField/footballField_12.jpg

One folder per class; the class is the folder name, normalized with ``geodata/data/eo_classes.csv``
(``footballField`` → ``football field``, ``railwayStation`` → ``railway station``). A folder whose
name is not in the table is an error naming the folder; a file that is not a readable image is a
counted skip (``whu_rs19: unreadable image``). No (readable) image at all is an error.

Output (one row per image, the scene schema of :mod:`geodata.sources.eo.scene`):
``eo_family='scene'``, ``dataset``, ``split`` (``train``: the release ships no split), ``key``,
``image``, ``raw_label``, ``label``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root
from .common import image_size, sample_image
from .scene import read_scene_folders

__all__ = ["WHU_RS19_CLASSES", "read_whu_rs19"]

WHU_RS19_CLASSES = (
    "Airport Beach Bridge Commercial Desert Farmland footballField Forest Industrial Meadow Mountain "
    "Park Parking Pond Port railwayStation Residential River Viaduct"
).split()


_LOWER = {c.lower() for c in WHU_RS19_CLASSES}


def _probe(p: Path) -> bool:
    """A folder holding at least one WHU-RS19 class folder (any capitalisation: copies differ)."""
    return any(c.is_dir() and c.name.lower() in _LOWER for c in p.iterdir())


@source("whu_rs19", env="WHU_RS19_ROOT", sample=lambda d: write_whu_rs19_sample(d))
def read_whu_rs19(ctx: StepContext, *, root: Path) -> StepOutput:
    """WHU-RS19 (19 classes) from ``<Class>/*.jpg``."""
    out = StepOutput()
    root = find_root(Path(root), _probe, "a WHU-RS19 class folder (Airport/, Beach/, ...)")
    df = read_scene_folders(root, "whu_rs19", "*/*.jpg")
    ok = []
    for p in df["image"].to_list():
        try:
            image_size(Path(p))
            ok.append(True)
        except Exception:  # noqa: BLE001 - SourceError: not an image
            ok.append(False)
    keep = pl.Series(ok, dtype=pl.Boolean)
    out.drop("whu_rs19: unreadable image", int((~keep).sum()))
    if not keep.any():
        raise SourceError(f"{root}: none of the {df.height} WHU-RS19 images is readable")
    out.note("whu_rs19.image_layout", "<Class>/*.jpg (no official split: train)")
    return out.result(df.filter(keep))


def write_whu_rs19_sample(d: Path) -> None:
    """Three classes × two 32×32 images plus one truncated file."""
    d = Path(d)
    for ci, c in enumerate(("Airport", "footballField", "railwayStation")):
        for i in range(1, 3):
            sample_image(d / c / f"{c.lower() if c == 'Airport' else c}_{i:02d}.jpg", (32, 32), 1500 + 10 * ci + i, "JPEG")
    (d / "Airport" / "airport_99.jpg").write_bytes(b"\xff\xd8\xff")  # a truncated JPEG: a counted skip
