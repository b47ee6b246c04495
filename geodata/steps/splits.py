"""Split hygiene: no image of a held-out split (validation, test) may appear in a training row.

Readers label rows with their release's official split (``split`` column, see
:mod:`geodata.sources._layout`). Within one source the official splits are disjoint, but
sources share imagery: UC Merced's scene images are the images of UCM-Captions (whose
``test`` split they would leak into a scene-classification ``train`` split), GeoChat-Instruct
reuses DOTA, DIOR, NWPU and UCM images. :func:`split_guard` drops every training row that
uses an image of a held-out row — the same file, or (``content: true``) a file with the same
bytes — and counts the drops as ``held_out_image_in_train``.
"""

from __future__ import annotations

import hashlib
import os

import polars as pl

from ..context import StepContext, StepOutput
from ..errors import BuildError
from ..registry import step

__all__ = ["split_guard", "file_digests"]


def file_digests(paths: list[str]) -> dict[str, str]:
    """sha256 of each file's bytes (read in 1 MiB blocks); unreadable files are left out."""
    out: dict[str, str] = {}
    for p in paths:
        h = hashlib.sha256()
        try:
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            continue
        out[p] = h.hexdigest()
    return out


def _sizes(refs: list[str]) -> pl.DataFrame:
    sizes = []
    for r in refs:  # one stat per distinct image file
        try:
            sizes.append(os.stat(r).st_size if "://" not in r else None)
        except OSError:
            sizes.append(None)
    return pl.DataFrame({"ref": refs, "size": sizes}, schema={"ref": pl.String, "size": pl.Int64})


@step("split_guard", kind="frame")
def split_guard(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    train: list[str] = ["train"],  # noqa: B006
    column: str = "split",
    images: str = "images",
    content: bool = True,
) -> StepOutput:
    """Drop training rows that use an image of a held-out split (same file or same bytes).

    ``train`` names the training splits; every other value of ``column`` is held out. With
    ``content``, files are compared by sha256, hashing only files whose size equals the size
    of a held-out file (references into archives are compared by reference only).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from geodata.context import StepContext
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name, data in (("a.png", b"1"), ("b.png", b"22"), ("copy_of_a.png", b"1")):
    ...     _ = (d / name).write_bytes(data)
    >>> rows = pl.DataFrame({"split": ["test", "train", "train"],
    ...                      "images": [[str(d / "a.png")], [str(d / "b.png")], [str(d / "copy_of_a.png")]]})
    >>> res = split_guard(rows, StepContext(name="split_guard"))
    >>> res.rows.height, res.drops
    (2, {'held_out_image_in_train': 1})
    """
    out = StepOutput()
    for col in (column, images):
        if col not in df.columns:
            raise BuildError(f"split_guard: column '{col}' is not in the rows ({df.columns})")
    flat = (
        df.select(pl.int_range(pl.len()).alias("_row"), pl.col(column).alias("_split"), pl.col(images).alias("ref"))
        .explode("ref")
        .drop_nulls("ref")
    )
    is_train = pl.col("_split").is_in(train)
    held = flat.filter(~is_train)
    trn = flat.filter(is_train)
    if held.height == 0 or trn.height == 0:
        out.note("split_guard", {"held_out_images": held["ref"].n_unique(), "dropped": 0})
        return out.result(df)
    bad = set(trn.filter(pl.col("ref").is_in(held["ref"].unique().implode()))["_row"].to_list())
    if content:
        sizes = _sizes(pl.concat([held["ref"], trn["ref"]]).unique().to_list())
        h = held.select("ref").unique().join(sizes, on="ref").drop_nulls("size")
        t = trn.select("_row", "ref").join(sizes, on="ref").drop_nulls("size")
        t = t.filter(pl.col("size").is_in(h["size"].unique().implode()) & ~pl.col("_row").is_in(list(bad)))
        if t.height:
            hh = h.filter(pl.col("size").is_in(t["size"].unique().implode()))
            dig = file_digests(sorted(set(hh["ref"].to_list()) | set(t["ref"].to_list())))
            held_dig = {dig[r] for r in hh["ref"].to_list() if r in dig}
            bad |= {row for row, r in t.select("_row", "ref").iter_rows() if dig.get(r) in held_dig}
    out.drop("held_out_image_in_train", len(bad))
    out.note("split_guard", {"held_out_images": held["ref"].n_unique(), "dropped": len(bad)})
    if not bad:
        return out.result(df)
    return out.result(df.filter(~pl.int_range(pl.len()).is_in(sorted(bad))))
