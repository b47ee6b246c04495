"""Helpers shared by the cross-view source readers (CVUSA, CVACT, VIGOR, CV-Cities).

Every cross-view reader returns the same frame, one row per ground/satellite pair:

===========  =======  ==========================================================
column       type     meaning
===========  =======  ==========================================================
id           string   ``<source>/<native id>``, unique within the source
source       string   ``cvusa``, ``cvact``, ``vigor``, ``cvcities``
city         string   city of the pair (null where the set has none: CVUSA)
split        string   the set's own split name (``train``, ``val``, ``test``)
lat, lon     float64  where the ground image was taken (null if the copy lacks it)
sat_lat      float64  centre of the satellite tile (equal to ``lat`` where the set
sat_lon      float64  aligns them: CVUSA without locations, CVACT, CV-Cities)
ground       string   absolute path of the ground image
satellite    string   absolute path of the satellite tile
===========  =======  ==========================================================

VIGOR adds ``semi_positives`` (list of satellite paths that also cover the panorama).

Bad input follows one rule in all four readers:

* *structural* faults of an index file (a line with the wrong number of fields, a number
  that does not parse, a satellite name without coordinates, an unreadable ``.mat``) raise
  :class:`~geodata.errors.SourceError` naming the file and the 1-based line, unless the
  source is given ``on_bad_line: skip``, which counts such lines as ``malformed_line`` drops;
* a *missing image file* (real copies of these sets have holes) is always a counted skip
  (``missing_ground_image`` / ``missing_satellite_image``), never an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import polars as pl

from ...context import StepContext, StepOutput
from ...errors import SourceError

__all__ = [
    "CROSSVIEW_COLUMNS",
    "BadLine",
    "read_fields",
    "first_bad",
    "drop_bad_rows",
    "drop_missing_images",
    "finish",
    "tiny_image",
]

CROSSVIEW_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.String(),
    "source": pl.String(),
    "city": pl.String(),
    "split": pl.String(),
    "lat": pl.Float64(),
    "lon": pl.Float64(),
    "sat_lat": pl.Float64(),
    "sat_lon": pl.Float64(),
    "ground": pl.String(),
    "satellite": pl.String(),
}

BadLine = Literal["error", "skip"]


def read_fields(
    path: Path,
    n_fields: int,
    *,
    sep: str = ",",
    on_bad_line: BadLine = "error",
    ctx: StepContext | None = None, out: StepOutput | None = None,
    min_fields: int | None = None,
) -> pl.DataFrame:
    """Split a header-less text index into string columns ``f0 … f{n-1}`` plus ``line``.

    Blank lines are ignored; ``line`` is the 1-based line number in ``path``. A line whose
    field count is not ``n_fields`` (or below ``min_fields`` when given; extra fields are
    then ignored) raises, or is dropped and counted when ``on_bad_line`` is ``"skip"``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
    >>> _ = p.write_text("a,b,c\\n\\nd,e,f\\n")
    >>> read_fields(p, 3).to_dicts()[1]
    {'f0': 'd', 'f1': 'e', 'f2': 'f', 'line': 3}
    >>> _ = p.write_text("a,b,c\\nd,e\\n")
    >>> read_fields(p, 3)
    Traceback (most recent call last):
    geodata.errors.SourceError: ...s.csv:2: expected 3 comma-separated fields, found 2
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SourceError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: unreadable ({exc})") from None
    lines = pl.Series("text", text.splitlines(), dtype=pl.String)
    df = pl.DataFrame({"text": lines}).with_row_index("line", offset=1)
    df = df.with_columns(pl.col("line").cast(pl.Int64), pl.col("text").str.strip_chars())
    df = df.filter(pl.col("text") != "")
    if sep == " ":
        parts = pl.col("text").str.replace_all(r"\s+", " ").str.split(" ")
    else:
        parts = pl.col("text").str.split(sep).list.eval(pl.element().str.strip_chars())
    df = df.with_columns(parts.alias("parts"))
    n = pl.col("parts").list.len()
    ok = (n >= min_fields) if min_fields is not None else (n == n_fields)
    df = df.with_columns(ok.alias("_ok"))
    bad = df.filter(~pl.col("_ok"))
    if bad.height:
        if on_bad_line == "error":
            row = bad.row(0, named=True)
            what = "space" if sep == " " else "comma"
            want = f"at least {min_fields}" if min_fields is not None else str(n_fields)
            raise SourceError(
                f"{path}:{row['line']}: expected {want} {what}-separated fields, "
                f"found {len(row['parts'])}"
            )
        if out is not None:
            out.drop("malformed_line", bad.height)
        df = df.filter(pl.col("_ok"))
    cols = [pl.col("parts").list.get(i, null_on_oob=True).alias(f"f{i}") for i in range(n_fields)]
    return df.select(*cols, "line")


def first_bad(df: pl.DataFrame, ok: pl.Expr) -> dict | None:
    """The first row (as a dict) where ``ok`` is false or null, else None."""
    bad = df.filter(~ok.fill_null(False))
    return bad.row(0, named=True) if bad.height else None


def drop_bad_rows(
    df: pl.DataFrame,
    ok: pl.Expr,
    *,
    path: Path,
    message: str,
    on_bad_line: BadLine,
    ctx: StepContext, out: StepOutput,
) -> pl.DataFrame:
    """Raise naming ``path`` and the row's ``line`` where ``ok`` fails, or drop and count.

    ``message`` is formatted with the offending row's columns (``"bad latitude {f1!r}"``).
    """
    row = first_bad(df, ok)
    if row is None:
        return df
    if on_bad_line == "error":
        raise SourceError(f"{path}:{row['line']}: " + message.format(**row))
    keep = df.filter(ok.fill_null(False))
    out.drop("malformed_line", df.height - keep.height)
    return keep


def _existing(paths: pl.Series) -> pl.Series:
    """True where the file exists; one directory listing per distinct parent folder."""
    frame = pl.DataFrame({"path": paths}).with_columns(
        pl.col("path").str.replace(r"/[^/]*$", "").alias("dir"),
        pl.col("path").str.extract(r"([^/]*)$", 1).alias("name"),
    )
    dirs = frame["dir"].drop_nulls().unique().to_list()
    listed_dirs: list[str] = []
    listed_names: list[str] = []
    for d in dirs:  # one syscall per folder, not per file
        try:
            with os.scandir(d) as it:
                names = [e.name for e in it]
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        listed_dirs.extend([d] * len(names))
        listed_names.extend(names)
    listing = pl.DataFrame(
        {"dir": listed_dirs, "name": listed_names, "_hit": [True] * len(listed_names)},
        schema={"dir": pl.String, "name": pl.String, "_hit": pl.Boolean},
    )
    hit = frame.join(listing, on=["dir", "name"], how="left", maintain_order="left")["_hit"]
    return hit.fill_null(False).alias("exists")


def drop_missing_images(df: pl.DataFrame, ctx: StepContext, out: StepOutput, columns: dict[str, str]) -> pl.DataFrame:
    """Drop rows whose image file (by column) is missing; count each under its reason.

    ``columns`` maps column name to drop reason, checked in order, so a row missing both
    images is counted once, under the first reason. When not one image of a column exists,
    the index points at the wrong place: that is an error naming where it looked.
    """
    for col, reason in columns.items():
        ok = _existing(df[col])
        if df.height and not ok.any():
            dirs = df[col].str.replace(r"/[^/]*$", "").unique(maintain_order=True).head(3).to_list()
            raise SourceError(
                f"none of the {df.height} {col} images exists (looked in {', '.join(dirs)}; "
                f"e.g. {df[col][0]})"
            )
        out.drop(reason, int((~ok).sum()))
        df = df.filter(ok)
    return df


def finish(df: pl.DataFrame, source: str, ctx: StepContext, out: StepOutput, extra: tuple[str, ...] = ()) -> pl.DataFrame:
    """Cast to the common cross-view frame (plus ``extra`` columns), in column order."""
    kept = df.select(
        *[pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c)
          for c, t in CROSSVIEW_COLUMNS.items()],
        *extra,
    )
    dup = kept["id"].is_duplicated()
    if dup.any():
        out.drop("duplicate_id", int(dup.sum()) - kept.filter(dup)["id"].n_unique())
        kept = kept.unique("id", keep="first", maintain_order=True)
    out.note(f"{source}.pairs", kept.height)
    return kept


def tiny_image(path: Path, size: tuple[int, int], seed: int) -> None:
    """Write a small deterministic RGB image (JPEG or PNG by suffix) for sample data."""
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    r, g, b = (seed * 67) % 256, (seed * 131 + 40) % 256, (seed * 29 + 90) % 256
    im = Image.new("RGB", size, (r, g, b))
    draw = ImageDraw.Draw(im)
    w, h = size
    draw.rectangle([w // 4, h // 4, w // 4 + (seed % (w // 2 or 1)), 3 * h // 4], fill=(b, r, g))
    draw.line([0, h - 1 - seed % h, w - 1, seed % h], fill=(g, b, r), width=1)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    im.save(path, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
