"""``parquet`` (the default output format): Hub-layout zstd Parquet shards with embedded images.

The shards follow the Hugging Face Hub's layout (``<prefix>/<split>-NNNNN-of-MMMMM.parquet``),
which :class:`~geodata.dataset.Dataset`, ``geodata sql``, ``publish`` and the training
backends read; the writing itself is :func:`geodata.dataset.writer.write_partition`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import polars as pl

from ..dataset.writer import PartitionResult, write_partition
from ..registry import output_format
from ..spec import OutputSpec

__all__ = ["write_parquet"]


@output_format("parquet")
def write_parquet(
    df: pl.DataFrame, root: Path, prefix: str, *, config: str, split: str, output: OutputSpec,
    max_image_pixels: int | None = None, on_rows: Callable[[int], None] | None = None, runner: Any = None,
) -> PartitionResult:
    """Hub-layout zstd Parquet shards with embedded images (``output.shard_max_mb``, ``row_group_rows``)."""
    return write_partition(
        df, root, prefix, config=config, split=split,
        shard_max_mb=output.shard_max_mb, row_group_rows=output.row_group_rows,
        check_images=output.check_images, max_image_pixels=max_image_pixels,
        on_rows=on_rows, runner=runner,
    )
