"""Benchmark truth files on disk and the CSV rule shared by readers and steps.

IM2GPS3K / YFCC4K come as a truth CSV (``IMG_ID,…,LAT,LON``) with an optional image folder
(:func:`eval_files` finds both); Flickr photos are matched across datasets by the photo id in
their file name (:func:`photo_id_expr`). The MP-16 and IM2GPS3K readers and the
``exclude_eval`` step all read them, so they live here, below both rooms.
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from .errors import SourceError

__all__ = ["read_csv_checked", "photo_id_expr", "eval_files"]


def _locate_csv_problem(path: Path) -> str:
    """Find the first line of ``path`` that is not well-formed CSV (slow path: errors only)."""
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = raw[max(0, exc.start - 8): exc.end + 8]
                return f"line {i}: bytes that are not UTF-8 ({bad!r}); re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, strict=True)
        width = None
        line = 1
        try:
            for row in reader:
                if width is None:
                    width = len(row)
                elif row and len(row) != width:
                    return f"line {line}: {len(row)} fields where the header has {width}"
                line = reader.line_num + 1
        except csv.Error as exc:
            return f"line {line}: {exc} (an unterminated or stray quote)"
    return "malformed CSV"


def read_csv_checked(path: Path, **kwargs: object) -> pl.DataFrame:
    """``pl.read_csv`` whose failures are one-line errors naming the file and line.

    An empty or header-only file is an error.
    """
    path = Path(path)
    try:
        df = pl.read_csv(path, **kwargs)  # type: ignore[arg-type]
    except pl.exceptions.NoDataError:
        raise SourceError(f"{path}: the file is empty (no header, no rows)") from None
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError, UnicodeDecodeError):
        raise SourceError(f"{path}: {_locate_csv_problem(path)}") from None
    if kwargs.get("n_rows") != 0 and df.height == 0:
        raise SourceError(f"{path}: header only, no rows (columns {df.columns})")
    return df


def photo_id_expr(col: pl.Expr) -> pl.Expr:
    """The Flickr photo id in an image id: the leading digits of its file name.

    ``34/8d/9055806529.jpg``, ``34_8d_9055806529.jpg``, ``9055806529.jpg`` and
    ``9055806529_e60e9cdfb4_1125_78841376@N00.jpg`` all give ``9055806529``.

    Examples
    --------
    >>> ids = ["34/8d/9055806529.jpg", "34_8d_9055806529.jpg", "1000269685_e6_1125_7884@N00.jpg", "x.jpg"]
    >>> pl.DataFrame({"i": ids}).select(photo_id_expr(pl.col("i")))["i"].to_list()
    ['9055806529', '9055806529', '1000269685', None]
    """
    name = col.str.split("/").list.last()
    # MP-16 names are <hh>_<hh>_<photo id>.jpg in MP16-Pro; IM2GPS names are <photo id>_<secret>_...
    pro = name.str.extract(r"^[0-9a-f]{2}_[0-9a-f]{2}_(\d+)\.", 1)
    return pl.coalesce(pro, name.str.extract(r"^(\d+)(?:[_.]|$)", 1))


def eval_files(path: Path) -> tuple[Path, Path | None]:
    """(truth CSV, image folder or None) of a benchmark given as its CSV or its folder.

    Both the G3 form (``im2gps3k/im2gps3k_places365.csv`` + ``im2gps3k/images/``) and the
    GeoEstimation README's (``images/im2gps3k_places365.csv`` beside ``images/im2gps3k/``).
    """
    if path.is_file():
        for d in (path.parent / "images", path.parent / path.stem.removesuffix("_places365")):
            if d.is_dir():
                return path, d
        return path, None
    if not path.is_dir():
        raise SourceError(f"mp16: exclude_eval: {path} is neither a truth CSV nor a folder")
    csvs = sorted(path.glob("*.csv")) or sorted((path / "metadata").glob("*.csv"))
    if not csvs and (path.parent / f"{path.name}_places365.csv").is_file():
        return path.parent / f"{path.name}_places365.csv", path
    if len(csvs) != 1:
        raise SourceError(
            f"mp16: exclude_eval: {path} must hold exactly one truth CSV (found {[c.name for c in csvs] or 'none'}); "
            "give the CSV's path"
        )
    imgs = path / "images"
    return csvs[0], imgs if imgs.is_dir() else None
