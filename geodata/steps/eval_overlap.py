"""Benchmark hygiene: drop rows that are evaluation test photos (IM2GPS3K, YFCC4K).

A training set must not hold the photos it is scored on. ``exclude_eval`` compares every row
with each benchmark's truth CSV (same Flickr photo id) and, when the benchmark's images are
there, its images (byte-identical, found by size first, then sha256). It runs right after the
reader, on the image references the reader made, and takes the reader's ``image_sizes``
table so that only images of a benchmark image's size are read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

from .._cache import cached_frame
from ..context import StepContext, StepOutput
from ..errors import BuildError, SourceError
from ..images import folder_dirs, index_folder, read_ref
from ..registry import step
from ..truth_files import eval_files, photo_id_expr, read_csv_checked

__all__ = ["exclude_eval", "benchmark_files"]

#: the note of the overlap per benchmark (the MP-16 pipelines' rows; kept under its first name)
NOTE = "mp16.eval_overlap"


def benchmark_files(benchmarks: dict[str, str | None]) -> list[Path]:
    """The truth CSVs and image folders of the given benchmarks: the step's fingerprint files."""
    files: list[Path] = []
    for where in benchmarks.values():
        if where:
            truth, img_dir = eval_files(Path(where).expanduser())
            files.append(truth)
            if img_dir is not None:
                files += folder_dirs(img_dir)  # a folder's mtime changes when an entry is added or removed
    return files


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _eval_hashes(folder: Path) -> pl.DataFrame:
    def make() -> pl.DataFrame:
        idx = index_folder(folder)
        hashes = [_sha256(Path(r).read_bytes()) for r in idx["ref"].to_list()]
        return idx.select("key", "size").with_columns(sha256=pl.Series(hashes, dtype=pl.String))

    return cached_frame("eval-sha256", folder_dirs(folder), make, expand=False)


def _with_sizes(df: pl.DataFrame, ctx: StepContext, sizes: pl.DataFrame) -> pl.DataFrame:
    """``df`` with ``_ref`` (its first image reference) and ``_size`` (that image's bytes, from ``sizes``)."""
    if "images" not in df.columns or df.schema["images"] != pl.List(pl.String):
        got = df.schema.get("images", "no column")
        raise BuildError(
            f"step '{ctx.name}': compares images by their references (images: list of strings), got images: {got}; "
            "place it right after the reader, before any step that loads the images"
        )
    sizes = sizes.select(_ref=pl.col("ref"), _size=pl.col("size").cast(pl.Int64)).unique("_ref", keep="first")
    return df.with_columns(_ref=pl.col("images").list.first()).join(sizes, on="_ref", how="left", maintain_order="left")


@step("exclude_eval", kind="join", fingerprint=benchmark_files)
def exclude_eval(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    benchmarks: dict[str, str | None],
    sizes: pl.DataFrame | None = None,
) -> StepOutput:
    """Drop rows that are benchmark test photos: same Flickr photo id, or byte-identical image.

    ``benchmarks`` maps a benchmark's name to its truth CSV or folder (empty: not checked;
    the pipelines pass ``IM2GPS3K_ROOT`` / ``YFCC4K_ROOT``); the files are part of the build's
    fingerprint. With ``inputs: {sizes: <source>.image_sizes}`` (``ref``, ``size``) and a
    benchmark image folder, rows whose image has a benchmark image's size are hashed and
    compared. Counted as ``eval_overlap``; the note ``mp16.eval_overlap`` gives the overlap per
    benchmark.
    """
    out = StepOutput()
    given = {k: v for k, v in benchmarks.items() if v}
    if not given:
        out.note(NOTE, f"not checked: no truth given for {', '.join(sorted(benchmarks))} "
                 f"(set {', '.join(k.upper() + '_ROOT' for k in sorted(benchmarks))})")
        return out.result(df)
    images = sizes is not None
    if images:
        df = _with_sizes(df, ctx, sizes)
    pid = df.select(p=photo_id_expr(pl.col("id")))["p"]
    drop = pl.Series(np.zeros(df.height, dtype=bool))
    report = []
    for name, where in sorted(given.items()):
        truth, img_dir = eval_files(Path(where).expanduser())
        header = read_csv_checked(truth, n_rows=0).columns
        idc = next((c for c in header if c.lower() in ("img_id", "id")), None)
        if idc is None:
            raise SourceError(f"mp16: exclude_eval: {truth}: no IMG_ID column (found {header})")
        tids = read_csv_checked(truth, columns=[idc], infer_schema=False)[idc].drop_nulls()
        tp = tids.to_frame("i").select(p=photo_id_expr(pl.col("i")))["p"].drop_nulls()
        by_id = pid.is_in(tp.implode()).fill_null(False) | df["id"].is_in(tids.implode()).fill_null(False)
        by_hash = pl.Series(np.zeros(df.height, dtype=bool))
        n_hashed = 0
        if images and img_dir is not None:
            eh = _eval_hashes(img_dir)
            cand = df.select(pl.int_range(pl.len()).alias("i"), "_ref", "_size").filter(
                pl.col("_size").is_in(eh["size"].implode()) & pl.col("_ref").is_not_null() & ~by_id
            )
            hits = []
            for i, ref in zip(cand["i"].to_list(), cand["_ref"].to_list()):
                try:
                    hits.append((i, _sha256(read_ref(ref))))
                except (OSError, ValueError):
                    continue
            n_hashed = len(hits)
            hs = set(eh["sha256"].to_list())
            bad = [i for i, h in hits if h in hs]
            if bad:
                mask = np.zeros(df.height, dtype=bool)
                mask[bad] = True
                by_hash = pl.Series(mask)
        this = by_id | by_hash
        report.append(
            f"{name}: {int(this.sum())} rows ({int(by_id.sum())} by photo id, {int((by_hash & ~by_id).sum())} by identical image"
            + (f", {n_hashed} same-size images hashed" if img_dir is not None and images else ", no images compared") + ")"
        )
        drop = drop | this
    out.drop("eval_overlap", int(drop.sum()))
    out.note(NOTE, "; ".join(report))
    return out.result(df.filter(~drop).drop("_ref", "_size", strict=False))
