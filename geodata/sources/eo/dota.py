"""DOTA (v1.0 / v1.5 / v2.0) oriented object annotations, raw or split into windows.

Layouts (``$DOTA_ROOT``: the release root or the folder above it), auto-detected and noted as
``dota.image_layout``:

* the release: ``<split>/images/<id>.png`` + ``<split>/labelTxt/<id>.txt`` (or flat
  ``images/`` + ``labelTxt/``, read as split ``train``);
* DOTA_devkit ``ImgSplit.py`` output: the same folders, window files named
  ``<id>__<rate>__<left>___<up>``;
* mmrotate ``tools/data/dota/split/img_split.py`` output: ``<split>/images/`` +
  ``<split>/annfiles/`` (windows named ``<id>__<size>__<left>___<up>``).

A folder holding both ``labelTxt/`` and ``annfiles/`` is an error. Image sizes come from the
file header with Pillow's decompression-bomb guard lifted for the call (DOTA-v2 images reach
about 20000×20000 px); nothing is decoded.

A label file starts with optional header lines ``imagesource:GoogleEarth`` and
``gsd:0.146343590398`` (``gsd:null`` too); every other non-blank line is one object
``x1 y1 x2 y2 x3 y3 x4 y4 category difficult`` in pixels (``difficult`` may be missing: 0).
``difficult`` is kept as ``difficulty`` (0, 1, or 2): both split tools write ``2`` for an
object the window cut (the devkit when less than its 0.7 threshold of the object remains,
mmrotate for every truncated object); such objects are kept and flagged ``truncated``.
``difficult`` (bool) is ``difficulty == 1``.

Bad input (documented rule): a line that is not 8 numbers + a category (+ a 0/1/2 flag) — e.g.
a line with 9 numbers — raises :class:`~geodata.errors.SourceError` naming ``file:line``, or with
``on_error: skip`` is skipped and counted (``dota: malformed line``). An unknown category is an
error naming ``file:line``. A box outside the image and a degenerate box are counted skips
(see :func:`~geodata.sources.eo.common.finish_objects`); a label file without its image is a
counted skip (``dota: missing image``); an image whose header cannot be read is the same
error, or with ``on_error: skip`` a counted skip of its objects (``dota: undecodable image``,
up to three files in the note ``dota.undecodable_examples``).

Raw images are cut into windows by the ``eo_tiles`` step (:mod:`geodata.steps.eo_tiles`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError
from ...registry import source
from .._layout import find_root, official_split
from ...image_geometry import WINDOW_RE
from .common import OBJECT_SCHEMA, canonical_class, finish_objects, image_size, sample_image

__all__ = ["parse_dota_label", "read_dota", "DOTA_SCHEMA", "WINDOW_RE"]

_HEADERS = ("imagesource", "gsd")
_EXTS = (".png", ".jpg", ".tif", ".bmp")
_LABEL_DIRS = ("labelTxt", "annfiles")

#: The reader's columns: the object table plus the DOTA flags and the pixel quadrilateral.
DOTA_SCHEMA: dict[str, pl.DataType] = {**OBJECT_SCHEMA, "difficulty": pl.Int8, "truncated": pl.Boolean,
                                       "quad": pl.List(pl.Float64)}


def parse_dota_label(path: Path, text: str | None = None) -> tuple[dict[str, str], list[tuple[int, list[float], str, int]], list[tuple[int, str]]]:
    """Parse one label file: ``(headers, objects, errors)``.

    ``objects`` holds ``(line, [x1..y4], category, difficulty)`` with difficulty 0, 1 or 2;
    ``errors`` holds ``(line, message)`` for malformed lines.

    Examples
    --------
    >>> h, objs, errs = parse_dota_label(Path("P1.txt"), "imagesource:GoogleEarth\\ngsd:0.5\\n"
    ...     "1 1 9 1 9 5 1 5 plane 0\\n1 2 3 4 5 6 7 8 9 ship 0\\n1.0 1.0 9.0 1.0 9.0 5.0 1.0 5.0 ship 2\\n")
    >>> h["gsd"], objs[0][2], errs
    ('0.5', 'plane', [(4, 'expected 8 coordinates, a category and a difficult flag, got 9 numbers')])
    >>> objs[1][2:]
    ('ship', 2)
    """
    if text is None:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    headers: dict[str, str] = {}
    objects: list[tuple[int, list[float], str, int]] = []
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
        if nums != 8 or len(rest) not in (1, 2) or (len(rest) == 2 and rest[1] not in ("0", "1", "2")):
            what = f"{nums} numbers" if nums != 8 else f"{len(tok)} fields"
            errors.append((lineno, f"expected 8 coordinates, a category and a difficult flag, got {what}"))
            continue
        objects.append((lineno, [float(t) for t in tok[:8]], rest[0], int(rest[1]) if len(rest) == 2 else 0))
    return headers, objects, errors


def _label_dir(base: Path) -> Path | None:
    found = [base / n for n in _LABEL_DIRS if (base / n).is_dir()]
    if len(found) > 1:
        raise SourceError(f"{base}: both labelTxt/ and annfiles/ found; point the root at one split output")
    return found[0] if found else None


def _label_dirs(root: Path, splits: list[str]) -> list[tuple[str, Path, Path]]:
    flat = _label_dir(root)
    if flat is not None:
        return [("train", flat, root / "images")]
    out = []
    for s in splits:
        ld = _label_dir(root / s)
        if ld is not None:
            out.append((s, ld, root / s / "images"))
    return out


def _has_labels(p: Path, splits: list[str]) -> bool:
    return any((b / n).is_dir() for b in (p, *[p / s for s in splits]) for n in _LABEL_DIRS)


@source("dota", env="DOTA_ROOT", sample=lambda d: write_dota_sample(d))
def read_dota(
    ctx: StepContext,
    *,
    root: Path,
    splits: list[str] = ["train", "val"],
    on_error: Literal["raise", "skip"] = "raise",
    outside_tol_px: float = 2.0,
    include_difficult: bool = True,
) -> StepOutput:
    """DOTA oriented objects, one row per object with its grid box (see ``common``)."""
    out = StepOutput()
    splits = list(splits)
    root = find_root(Path(root), lambda p: _has_labels(p, splits), "DOTA's labelTxt/ or annfiles/ folder")
    dirs = _label_dirs(root, splits)
    if not dirs:
        raise SourceError(f"{root}: no DOTA labelTxt folder (expected <split>/labelTxt or labelTxt)")
    rows: list[dict] = []
    quads: list[list[float]] = []
    layouts: set[str] = set()
    n_windows = 0
    for split, label_dir, image_dir in dirs:
        listing = {p.name for p in image_dir.iterdir()} if image_dir.is_dir() else set()
        for lf in sorted(label_dir.glob("*.txt")):
            headers, objects, errors = parse_dota_label(lf)
            if errors:
                if on_error == "raise":
                    ln, msg = errors[0]
                    raise SourceError(f"{lf}:{ln}: {msg}")
                out.drop("dota: malformed line", len(errors))
            img = next((image_dir / f"{lf.stem}{ext}" for ext in _EXTS if f"{lf.stem}{ext}" in listing), None)
            if img is None:
                out.drop("dota: missing image", 1)
                continue
            n_windows += bool(WINDOW_RE.match(lf.stem))
            try:
                w, h = image_size(img)
            except SourceError:  # a broken header: with on_error: skip, its objects are a counted drop
                if on_error == "raise":
                    raise
                out.drop("dota: undecodable image", len(objects))
                out.note("dota.undecodable_examples", [*out.notes.get("dota.undecodable_examples", []), str(img)][:3])
                continue
            for ln, q, cat, flag in objects:
                if flag == 1 and not include_difficult:
                    out.drop("dota: difficult object", 1)
                    continue
                canon = canonical_class(cat, strict=True, where=f"{lf}:{ln}")
                rows.append(
                    {
                        "eo_family": "objects",
                        "dataset": "dota",
                        "split": official_split(split, where=str(label_dir)),
                        "image_id": lf.stem,
                        "image": str(img.resolve()),
                        "width": w,
                        "height": h,
                        "raw_category": cat,
                        "category": canon,
                        "difficult": flag == 1,
                        "where": f"{lf.name}:{ln}",
                        "difficulty": flag,
                        "truncated": flag == 2,
                    }
                )
                quads.append(q)
                rows[-1]["quad"] = q
        kind = "mmrotate split (annfiles)" if label_dir.name == "annfiles" else "labelTxt"
        layouts.add(f"{label_dir.relative_to(root)}: {kind}")
    if n_windows:
        layouts.add(f"{n_windows} window files (<id>__<scale>__<left>___<up>)")
    out.note("dota.image_layout", "; ".join(sorted(layouts)))
    if not rows:
        looked = ", ".join(str(d[1]) for d in dirs)
        raise SourceError(f"{root}: no DOTA object with an image found (label folders: {looked})")
    df = finish_objects(ctx, out, "dota", rows, quads, outside_tol_px=outside_tol_px)
    flags = pl.DataFrame(
        [{k: r[k] for k in ("split", "image_id", "where", "difficulty", "truncated", "quad")} for r in rows],
        schema={"split": pl.String, "image_id": pl.String, "where": pl.String, "difficulty": pl.Int8,
                "truncated": pl.Boolean, "quad": pl.List(pl.Float64)},
    )
    return out.result(df.join(flags, on=["split", "image_id", "where"], how="left", maintain_order="left"))


def write_dota_sample(d: Path) -> None:
    """Three tiny DOTA images (real ones are 800–20000 px).

    ``train`` is in the release form (``train/{images,labelTxt}``, header lines), ``val`` in
    mmrotate's split form (``val/{images,annfiles}``, a window ``P0003__1024__0___0``, no
    header, float coordinates as ``str(np.float32)`` writes them).
    """
    d = Path(d)
    files = {
        ("train", "P0001", (200, 150)): (
            "imagesource:GoogleEarth\ngsd:0.146343590398\n"
            "20 20 60 20 60 40 20 40 plane 0\n"
            "100 20 140 20 140 40 100 40 plane 0\n"
            "120 90 150 110 140 125 110 105 ship 0\n"
            "10 100 50 100 50 140 10 140 storage-tank 1\n"
            "185 60 200 60 200 80 185 80 helicopter 2\n"  # cut by a window edge (split output flag)
        ),
        ("train", "P0002", (160, 160)): (
            "imagesource:GoogleEarth\ngsd:null\n"
            "30 30 90 30 90 70 30 70 tennis-court 0\n"
            "100 100 120 100 120 110 100 110 small-vehicle 0\n"
            "125 100 145 100 145 110 125 110 small-vehicle 0\n"
            "100 130 120 130 120 140 100 140 small-vehicle 0\n"
        ),
        ("val", "P0003__1024__0___0", (120, 120)): (
            "10.0 60.0 50.0 20.0 70.0 40.0 30.0 80.0 large-vehicle 0\n"
            "80.0 80.0 110.0 80.0 110.0 110.0 80.0 110.0 roundabout 0\n"
        ),
    }
    for i, ((split, stem, size), text) in enumerate(files.items()):
        labels = "labelTxt" if split == "train" else "annfiles"
        sample_image(d / split / "images" / f"{stem}.png", size, 500 + i, "PNG")
        (d / split / labels).mkdir(parents=True, exist_ok=True)
        (d / split / labels / f"{stem}.txt").write_text(text)
