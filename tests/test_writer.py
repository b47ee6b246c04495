"""The writer: drops counted per reason, shards rolled over at shard_max_mb, empty and metadata-only partitions."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from PIL import Image

from geodata.dataset.writer import write_partition


def _png(seed: int, size: int = 64) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def rows(tmp_path: Path) -> pl.DataFrame:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    refs = []
    for i in range(40):
        p = imgs / f"{i:03d}.png"
        p.write_bytes(_png(i) if i != 7 else b"\x89PNG\r\n\x1a\n truncated")  # row 7 does not decode
        refs.append([str(p)])
    refs[11] = [str(imgs / "missing.png")]  # row 11 has no file
    return pl.DataFrame({"id": [f"r{i:03d}" for i in range(40)], "n": list(range(40)), "images": refs})


def test_drops_are_counted_and_shards_roll_over_in_row_order(rows: pl.DataFrame, tmp_path: Path) -> None:
    res = write_partition(rows, tmp_path / "out", "data", config="default", split="train",
                          shard_max_mb=0.05, row_group_rows=5)
    assert res.drops == {"undecodable_image": 1, "missing_image": 1}
    assert res.examples == {"undecodable_image": ["r007"], "missing_image": ["r011"]}
    assert res.rows == 38 and sum(f.rows for f in res.files) == 38
    assert len(res.files) > 2  # ~12 KB a row, 50 KB shards
    names = [Path(f.path).name for f in res.files]
    assert names == [f"train-{i:05d}-of-{len(names):05d}.parquet" for i in range(len(names))]
    back = pl.concat([pl.read_parquet(tmp_path / "out" / f.path) for f in res.files])
    assert back["id"].to_list() == [f"r{i:03d}" for i in range(40) if i not in (7, 11)]
    first = back["images"][0][0]
    assert first["bytes"] == _png(0) and first["path"] == "000.png"
    for f in res.files:  # every shard below the limit, each row group one probe chunk (minus drops)
        meta = pq.ParquetFile(tmp_path / "out" / f.path).metadata
        assert all(meta.row_group(g).num_rows <= 5 for g in range(meta.num_row_groups))
    assert not list((tmp_path / "out" / "data").glob(".*"))  # no temporary shard left


def test_empty_and_metadata_only_partitions(tmp_path: Path) -> None:
    empty = pl.DataFrame({"id": [], "images": []}, schema={"id": pl.String, "images": pl.List(pl.String)})
    res = write_partition(empty, tmp_path / "e", "data", config="default", split="test")
    assert res.rows == 0 and len(res.files) == 1  # one shard with the schema, as the Hub expects
    assert pq.read_schema(tmp_path / "e" / res.files[0].path).names == ["id", "images"]
    meta = pl.DataFrame({"id": ["a", "b"], "images": [[], []]}, schema={"id": pl.String, "images": pl.List(pl.String)})
    res = write_partition(meta, tmp_path / "m", "data", config="default", split="train")
    assert res.rows == 2 and pl.read_parquet(tmp_path / "m" / res.files[0].path)["images"].to_list() == [[], []]
