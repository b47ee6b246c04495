"""DOTA (v1.0 / v1.5 / v2.0) oriented object annotations: ``labelTxt/*.txt``.

Layout: ``<root>/<split>/labelTxt/<id>.txt`` with images ``<root>/<split>/images/<id>.png``
(or a flat ``<root>/labelTxt`` + ``<root>/images``, read as split ``train``).

A label file starts with optional header lines ``imagesource:GoogleEarth`` and
``gsd:0.146343590398`` (``gsd:null`` too); every other non-blank line is one object
``x1 y1 x2 y2 x3 y3 x4 y4 category difficult`` in pixels (``difficult`` may be missing).

Bad input (documented rule): a line that is not 8 numbers + a category (+ a 0/1 flag) — e.g.
a line with 9 numbers — raises :class:`~geodata.errors.SourceError` naming ``file:line``, or with
``on_error: skip`` is skipped and counted (``dota: malformed line``). An unknown category is an
error naming ``file:line``. A box outside the image and a degenerate box are counted skips
(see :func:`~geodata.sources.eo.common.finish_objects`); a label file without its image is a
counted skip (``dota: missing image``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from ...context import Context
from ...errors import SourceError
from ...registry import source
from .common import OBJECT_SCHEMA, canonical_class, finish_objects, image_size, sample_image

__all__ = ["parse_dota_label", "read_dota"]

_HEADERS = ("imagesource", "gsd")


def parse_dota_label(path: Path, text: str | None = None) -> tuple[dict[str, str], list[tuple[int, list[float], str, bool]], list[tuple[int, str]]]:
    """Parse one label file: ``(headers, objects, errors)``.

    ``objects`` holds ``(line, [x1..y4], category, difficult)``; ``errors`` holds
    ``(line, message)`` for malformed lines.

    Examples
    --------
    >>> h, objs, errs = parse_dota_label(Path("P1.txt"), "imagesource:GoogleEarth\\ngsd:0.5\\n"
    ...     "1 1 9 1 9 5 1 5 plane 0\\n1 2 3 4 5 6 7 8 9 ship 0\\n")
    >>> h["gsd"], objs[0][2], errs
    ('0.5', 'plane', [(4, 'expected 8 coordinates, a category and a difficult flag, got 9 numbers')])
    """
    if text is None:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    headers: dict[str, str] = {}
    objects: list[tuple[int, list[float], str, bool]] = []
    errors: list[tuple[int, str]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        head, sep, val = line.partition(":")
        if sep and head.strip().lower() in _HEADERS and " " not in head.strip():
            headers[head.strip().lower()] = val.strip()
            continue
        tok = line.split()
        nums = 0
        for t in tok:
            try:
                float(t)
            except ValueError:
                break
            nums += 1
        rest = tok[nums:]
        if nums != 8 or len(rest) not in (1, 2) or (len(rest) == 2 and rest[1] not in ("0", "1")):
            what = f"{nums} numbers" if nums != 8 else f"{len(tok)} fields"
            errors.append((lineno, f"expected 8 coordinates, a category and a difficult flag, got {what}"))
            continue
        objects.append((lineno, [float(t) for t in tok[:8]], rest[0], len(rest) == 2 and rest[1] == "1"))
    return headers, objects, errors


def _label_dirs(root: Path, splits: list[str]) -> list[tuple[str, Path, Path]]:
    if (root / "labelTxt").is_dir():
        return [("train", root / "labelTxt", root / "images")]
    out = []
    for s in splits:
        if (root / s / "labelTxt").is_dir():
            out.append((s, root / s / "labelTxt", root / s / "images"))
    return out


@source("dota", env="DOTA_ROOT", sample=lambda d: write_dota_sample(d))
def read_dota(
    ctx: Context,
    *,
    root: Path,
    splits: list[str] = ["train", "val"],
    on_error: Literal["raise", "skip"] = "raise",
    outside_tol_px: float = 2.0,
    include_difficult: bool = True,
) -> pl.DataFrame:
    """DOTA oriented objects, one row per object with its grid box (see ``common``)."""
    root = Path(root)
    dirs = _label_dirs(root, list(splits))
    if not dirs:
        raise SourceError(f"{root}: no DOTA labelTxt folder (expected <split>/labelTxt or labelTxt)")
    rows: list[dict] = []
    quads: list[list[float]] = []
    for split, label_dir, image_dir in dirs:
        for lf in sorted(label_dir.glob("*.txt")):
            headers, objects, errors = parse_dota_label(lf)
            if errors:
                if on_error == "raise":
                    ln, msg = errors[0]
                    raise SourceError(f"{lf}:{ln}: {msg}")
                ctx.drop("dota: malformed line", len(errors))
            img = next((image_dir / f"{lf.stem}{ext}" for ext in (".png", ".jpg", ".tif") if (image_dir / f"{lf.stem}{ext}").exists()), None)
            if img is None:
                ctx.drop("dota: missing image", 1)
                continue
            w, h = image_size(img)
            for ln, q, cat, diff in objects:
                if diff and not include_difficult:
                    ctx.drop("dota: difficult object", 1)
                    continue
                canon = canonical_class(cat, strict=True, where=f"{lf}:{ln}")
                rows.append(
                    {
                        "eo_family": "objects",
                        "dataset": "dota",
                        "split": split,
                        "image_id": lf.stem,
                        "image": str(img.resolve()),
                        "width": w,
                        "height": h,
                        "raw_category": cat,
                        "category": canon,
                        "difficult": diff,
                        "where": f"{lf.name}:{ln}",
                    }
                )
                quads.append(q)
    if not rows:
        return pl.DataFrame(schema=OBJECT_SCHEMA)
    return finish_objects(ctx, "dota", rows, quads, outside_tol_px=outside_tol_px)


def write_dota_sample(d: Path) -> None:
    """Three tiny DOTA tiles (real DOTA tiles are 800–4000 px) in ``<split>/{images,labelTxt}``."""
    d = Path(d)
    files = {
        ("train", "P0001", (200, 150)): (
            "imagesource:GoogleEarth\ngsd:0.146343590398\n"
            "20 20 60 20 60 40 20 40 plane 0\n"
            "100 20 140 20 140 40 100 40 plane 0\n"
            "120 90 150 110 140 125 110 105 ship 0\n"
            "10 100 50 100 50 140 10 140 storage-tank 1\n"
        ),
        ("train", "P0002", (160, 160)): (
            "imagesource:GoogleEarth\ngsd:null\n"
            "30 30 90 30 90 70 30 70 tennis-court 0\n"
            "100 100 120 100 120 110 100 110 small-vehicle 0\n"
            "125 100 145 100 145 110 125 110 small-vehicle 0\n"
            "100 130 120 130 120 140 100 140 small-vehicle 0\n"
        ),
        ("val", "P0003", (120, 120)): (
            "10 60 50 20 70 40 30 80 large-vehicle 0\n"
            "80 80 110 80 110 110 80 110 roundabout 0\n"
        ),
    }
    for i, ((split, stem, size), text) in enumerate(files.items()):
        sample_image(d / split / "images" / f"{stem}.png", size, 500 + i, "PNG")
        (d / split / "labelTxt").mkdir(parents=True, exist_ok=True)
        (d / split / "labelTxt" / f"{stem}.txt").write_text(text)
