"""Write rows to a Hugging Face-layout folder of zstd Parquet shards with embedded images.

A partition is written in two passes over row groups of ``row_group_rows`` rows, both on the
build's runner (:mod:`geodata.runners`):

1. **probe** (one task per row group): read every image reference and check that it
   decodes; return only a drop reason and the byte count per row. From these the driver
   counts the drops and fixes the shard boundaries (shards roll over before they pass
   ``shard_max_mb``), in row order — so the plan, never the timing, decides them;
2. **write** (one task per shard): read the kept images again (without decoding), embed them
   as ``datasets.Image`` structs and write the shard, one row group at a time, returning its
   rows, size and sha256. A file whose size changed between the passes fails the build.

No image bytes pass between processes, peak memory is one row group of images per worker,
and shards are written in parallel. Names follow the Hub convention
``<split>-00000-of-00003.parquet``. Output is deterministic: the same rows give
byte-identical files, whatever the runner or worker count.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .images import image_problem, read_ref, ref_name
from .schema import CORE_COLUMNS

__all__ = ["embed_images", "probe_images", "write_shard", "ShardFile", "PartitionResult", "write_partition",
           "normalize_arrow", "features_for"]

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


def probe_images(
    refs: list[list[str] | None], check: bool, max_pixels: int | None = None
) -> tuple[list[str | None], list[int]]:
    """The first pass over one row group: per row, a drop reason (or None) and its image bytes.

    The same reasons as :func:`embed_images`, which it calls; only the counts leave the worker.
    """
    imgs, why = embed_images(refs, check, max_pixels)
    return why, [sum(len(i["bytes"]) for i in row) for row in imgs]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class _Part:
    """One row group of a shard, as the first pass left it: kept rows only."""

    meta: pa.Table  # the normalized columns but ``images``
    refs: list[list[str] | None] | None = None  # image references per row (None: no images column)
    sizes: list[int] | None = None  # image bytes per row, from the first pass


def write_shard(path: str, schema: pa.Schema, parts: list[_Part], images: str) -> tuple[int, int, str]:
    """The second pass: write one shard from its row groups; return (rows, bytes, sha256).

    ``images`` is ``embed`` (read the references again and embed their bytes), ``empty`` (an
    ``images`` column of empty lists: a metadata-only build) or ``none`` (no such column).
    """
    from .errors import BuildError

    img_type = schema.field("images").type if images != "none" else None
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=True, write_statistics=True) as writer:
        for part in parts:
            table = part.meta
            if images == "none":
                table = table.cast(schema)
            else:
                if images == "embed":
                    imgs, why = embed_images(part.refs or [], check=False)
                    got = [sum(len(i["bytes"]) for i in row) for row in imgs]
                    for k, (w, n, want) in enumerate(zip(why, got, part.sizes or [])):
                        if w is not None or n != want:
                            raise BuildError(
                                f"image {', '.join((part.refs or [])[k] or [])} changed or vanished while the build read it "
                                f"({want} bytes, then {'unreadable' if w else n}); rebuild"
                            )
                    col = pa.array(imgs, type=img_type)
                else:
                    col = pa.array([[]] * table.num_rows, type=img_type)
                table = pa.Table.from_arrays(
                    [col if name == "images" else table.column(name) for name in schema.names], schema=schema
                )
            writer.write_table(table, row_group_size=max(table.num_rows, 1))
            rows += table.num_rows
    return rows, Path(path).stat().st_size, _sha256(Path(path))


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
    ``image_too_large``, ``undecodable_image``); ``examples`` keeps up to three ids per reason.
    ``runner`` (a :class:`geodata.runners.Runner`; default: this process) runs both passes
    (see the module doc), in order.
    """
    from .errors import BuildError
    from .runners import InProcess

    run = runner or InProcess()
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

    # pass 1: drops and shard boundaries, in row order
    starts = range(0, max(df.height, 1), row_group_rows)
    probes = None
    if any_images:
        jobs = ((df.slice(s, row_group_rows)["images"].to_list(), check_images, max_image_pixels) for s in starts)
        probes = run.imap(probe_images, jobs)
    shards: list[list[_Part]] = []
    cur_rows = cur_bytes = 0
    for start in starts:
        chunk = df.slice(start, row_group_rows)
        if chunk.height == 0 and (start > 0 or shards):
            break
        meta = normalize_arrow((chunk.drop("images") if has_images else chunk).to_arrow())
        est = meta.nbytes
        part = _Part(meta)
        if probes is not None:
            why, sizes = next(probes)
            refs = chunk["images"].to_list()
            keep = [w is None for w in why]
            if not all(keep):
                ids = chunk["id"].to_list() if "id" in chunk.columns else []
                for i, w in enumerate(why):
                    if w is not None:
                        res.drops[w] = res.drops.get(w, 0) + 1
                        ex = res.examples.setdefault(w, [])
                        if len(ex) < 3 and ids:
                            ex.append(str(ids[i]))
                meta = meta.filter(pa.array(keep))
                refs = [r for r, k in zip(refs, keep) if k]
                sizes = [n for n, k in zip(sizes, keep) if k]
            est += sum(sizes)
            part = _Part(meta, refs, sizes)
        if shards and cur_rows > 0 and cur_bytes + est > limit:
            shards.append([])
            cur_rows = cur_bytes = 0
        if not shards:
            shards.append([])
        shards[-1].append(part)
        cur_rows += part.meta.num_rows
        cur_bytes += est
        res.rows += part.meta.num_rows
        if on_rows:
            on_rows(chunk.height)

    # pass 2: one task per shard; temporary names until every shard is written
    mode = "embed" if any_images else "empty" if has_images else "none"
    tmp = [root / prefix / f".{split}-{i:05d}.parquet" for i in range(len(shards))]
    written = list(run.imap(write_shard, ((str(t), schema, parts, mode) for t, parts in zip(tmp, shards))))
    n = len(shards)
    for i, (t, (rows, nbytes, sha)) in enumerate(zip(tmp, written)):
        final = root / prefix / f"{split}-{i:05d}-of-{n:05d}.parquet"
        if not t.is_file():
            raise BuildError(
                f"{t}: a worker wrote this shard but this process cannot see it; on a Ray cluster the "
                "dataset folder must be on a file system every node shares (docs/scale.md)"
            )
        os.replace(t, final)
        res.files.append(ShardFile(final.relative_to(root).as_posix(), rows, nbytes, sha))
    return res
