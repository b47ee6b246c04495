"""Write rows to a Hugging Face-layout folder of zstd Parquet shards with embedded images.

Images are read from their references and embedded one row group at a time, so peak
memory is one row group of images, whatever the dataset size. Shards roll over before they
pass ``shard_max_mb``; names follow the Hub convention ``<split>-00000-of-00003.parquet``.
Output is deterministic: the same rows give byte-identical files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .._cache import file_sha256 as _sha256
from ..images import image_problem, read_ref, ref_name

__all__ = ["embed_images", "ShardFile", "PartitionResult", "write_partition", "normalize_arrow", "features_for"]

IMAGE_COLUMNS = ("images",)


@dataclass
class ShardFile:
    path: str  # relative to the dataset folder
    rows: int
    bytes: int
    sha256: str


@dataclass
class PartitionResult:
    config: str
    split: str
    files: list[ShardFile] = field(default_factory=list)
    rows: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    features: Any = None  # datasets.Features
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> up to 3 row ids


def _norm_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return pa.list_(_norm_type(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(_norm_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _norm_type(f.type)) for f in t])
    if pa.types.is_dictionary(t):
        return _norm_type(t.value_type)
    return t


def normalize_arrow(table: pa.Table) -> pa.Table:
    """Cast polars' large/view Arrow types to the plain ones the Hub and ``datasets`` expect."""
    schema = pa.schema([pa.field(f.name, _norm_type(f.type)) for f in table.schema])
    return table.cast(schema)


def features_for(schema: pa.Schema) -> Any:
    """``datasets.Features`` for a normalized schema, with ``images`` as a list of Image."""
    from datasets import Features, Image, List

    feats = Features.from_arrow_schema(pa.schema([f for f in schema if f.name not in IMAGE_COLUMNS]))
    ordered = {}
    for f in schema:
        ordered[f.name] = List(Image()) if f.name in IMAGE_COLUMNS else feats[f.name]
    return Features(ordered)


def embed_images(
    refs: list[list[str] | None], check: bool, max_pixels: int | None = None
) -> tuple[list[list[dict[str, Any]]], list[str | None]]:
    """Read image bytes for each row; the second list gives a drop reason per row (or None).

    Reasons: ``missing_image`` (the reference cannot be read), ``image_too_large`` (more than
    ``max_pixels`` pixels) and ``undecodable_image`` (see :func:`geodata.images.check_image`).
    """
    out: list[list[dict[str, Any]]] = []
    why: list[str | None] = []
    for row in refs:
        items: list[dict[str, Any]] = []
        reason = None
        for ref in row or []:
            try:
                data = read_ref(ref)
            except (OSError, ValueError):
                reason = "missing_image"
                break
            if check:
                reason = image_problem(data, max_pixels)
                if reason is not None:
                    break
            items.append({"bytes": data, "path": ref_name(ref)})
        out.append(items)
        why.append(reason)
    return out, why


def _describe_group(df: pl.DataFrame, config: str, split: str, i: int, rows: int, refs: list) -> str:
    """Row group ``i`` of a partition in words, for an error that must name it (its rows, ids, first image)."""
    start = i * rows
    part = df.slice(start, rows)
    ids = ""
    if "id" in part.columns and part.height:
        ids = f", ids {part['id'][0]} … {part['id'][-1]}"
    first = next((r[0] for r in refs if r), None)
    return (f"writing {config}/{split} row group {i}: rows {start}..{start + part.height - 1}{ids}"
            + (f", first image {first}" if first else ""))


def write_partition(
    df: pl.DataFrame,
    root: Path,
    prefix: str,
    *,
    config: str,
    split: str,
    shard_max_mb: float = 500,
    row_group_rows: int = 256,
    check_images: bool = True,
    max_image_pixels: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    runner: Any = None,
) -> PartitionResult:
    """Write one (config, split) of rows under ``root/prefix`` and return what was written.

    ``df`` may hold an ``images`` column of image references (``list[str]``); they are
    embedded as ``datasets.Image`` structs. Rows whose image cannot be read, is larger than
    ``max_image_pixels`` or does not decode are dropped and counted (``missing_image``,
    ``image_too_large``, ``undecodable_image``); ``examples`` keeps up to three ids per reason. ``runner``
    (a :class:`geodata.runners.Runner`; default: this process) embeds the row groups, in order.
    """
    res = PartitionResult(config, split)
    has_images = "images" in df.columns
    any_images = has_images and int(df["images"].list.len().fill_null(0).sum()) > 0
    if not any_images:
        # no image bytes to stream (metadata-only rows): large row groups, no per-row work
        row_group_rows = max(row_group_rows, 100_000)
    plain = df.drop("images") if has_images else df
    base_schema = normalize_arrow(plain.head(0).to_arrow()).schema
    if has_images:
        img_type = pa.list_(pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())]))
        fields = []
        for name in df.columns:
            fields.append(pa.field("images", img_type) if name == "images" else base_schema.field(name))
        schema = pa.schema(fields)
    else:
        schema = base_schema
    feats = features_for(schema)
    schema = feats.arrow_schema
    res.features = feats
    limit = int(shard_max_mb * 1024 * 1024)
    (root / prefix).mkdir(parents=True, exist_ok=True)

    tmp_files: list[tuple[Path, int]] = []
    writer: pq.ParquetWriter | None = None
    cur_path: Path | None = None
    cur_rows = 0
    cur_bytes = 0

    def close() -> None:
        nonlocal writer, cur_path
        if writer is not None and cur_path is not None:
            writer.close()
            tmp_files.append((cur_path, cur_rows))
        writer, cur_path = None, None

    def open_new() -> None:
        nonlocal writer, cur_path, cur_rows, cur_bytes
        cur_path = root / prefix / f".{split}-{len(tmp_files):05d}.parquet"
        writer = pq.ParquetWriter(
            cur_path, schema, compression="zstd", use_dictionary=True, write_statistics=True
        )
        cur_rows, cur_bytes = 0, 0

    starts = range(0, max(df.height, 1), row_group_rows)
    if any_images:  # the image plane: one embed_images per row group, in order, on the runner
        from ..runners import InProcess

        jobs = ((df.slice(s, row_group_rows)["images"].to_list(), check_images, max_image_pixels) for s in starts)
        embedded = (runner or InProcess()).imap(
            embed_images, jobs, describe=lambda i, a: _describe_group(df, config, split, i, row_group_rows, a[0]))
    for start in starts:
        chunk = df.slice(start, row_group_rows)
        if chunk.height == 0 and (start > 0 or tmp_files or writer is not None):
            break
        table = normalize_arrow(chunk.drop("images").to_arrow()) if has_images else normalize_arrow(chunk.to_arrow())
        est = table.nbytes
        if has_images and not any_images:
            table = pa.Table.from_arrays(
                [pa.array([[]] * table.num_rows, type=schema.field("images").type) if name == "images"
                 else table.column(name) for name in schema.names],
                schema=schema,
            )
        elif has_images:
            imgs, why = next(embedded)
            keep = [w is None for w in why]
            ids = chunk["id"].to_list() if "id" in chunk.columns and not all(keep) else []
            for i, w in enumerate(why):
                if w is not None:
                    res.drops[w] = res.drops.get(w, 0) + 1
                    ex = res.examples.setdefault(w, [])
                    if len(ex) < 3 and ids:
                        ex.append(str(ids[i]))
            if not all(keep):
                mask = pa.array(keep)
                table = table.filter(mask)
                imgs = [im for im, k in zip(imgs, keep) if k]
            est += sum(len(i["bytes"]) for row in imgs for i in row)
            cols = []
            for name in schema.names:
                cols.append(pa.array(imgs, type=schema.field("images").type) if name == "images" else table.column(name))
            table = pa.Table.from_arrays(cols, schema=schema)
        else:
            table = table.cast(schema)
        if writer is not None and cur_rows > 0 and cur_bytes + est > limit:
            close()
        if writer is None:
            open_new()
        assert writer is not None
        if table.num_rows:  # an empty row group makes datasets' parquet reader fail (batch size 0)
            writer.write_table(table, row_group_size=table.num_rows)
        cur_rows += table.num_rows
        cur_bytes += est
        res.rows += table.num_rows
        if on_rows:
            on_rows(chunk.height)
    if writer is None:
        open_new()  # an empty split still gets one (empty) shard with the schema
    close()

    n = len(tmp_files)
    for i, (tmp, rows) in enumerate(tmp_files):
        final = root / prefix / f"{split}-{i:05d}-of-{n:05d}.parquet"
        os.replace(tmp, final)
        res.files.append(
            ShardFile(final.relative_to(root).as_posix(), rows, final.stat().st_size, _sha256(final))
        )
    return res
