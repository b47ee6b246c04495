"""Building MP16-Rand-500K from MP-16-format folders: layouts, drops, fingerprints, atomicity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from geodata.engine import build
from geodata.errors import SourceError, SpecError
from geodata.geocode import reverse_geocode

PIPE = "mp16-rand-500k"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


@pytest.mark.parametrize("layout", ["folder", "msgpack", "tar"])
def test_builds_from_each_image_layout(layout, mp16_small, tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / layout))
    res = build(PIPE, sets=["sample.n=1000"], out=tmp_path / "ds")
    # 400 rows + 6 bad coordinates + 4 duplicates; 6 without image, 1 undecodable
    assert res.drops["invalid_coordinates"] == 6
    assert res.drops["duplicate_id"] == 4
    assert res.drops["missing_image"] == 6
    assert res.drops["undecodable_image"] == 1
    assert res.rows == 400 - 6 - 1
    assert "sample.short" in res.notes

    import datasets

    ds = datasets.load_dataset(str(tmp_path / "ds"), split="train")
    assert ds.num_rows == res.rows
    row = ds[0]
    assert row["images"][0].size == (32, 32)
    assert row["prompt"][0]["content"][0]["type"] == "image"
    text = row["completion"][0]["content"][0]["text"]
    assert text.startswith("<think>") and "</think><answer>Country: " in text and text.endswith(")</answer>")
    sol = json.loads(row["solution"])
    assert f"({sol['lat']:.6f}, {sol['lon']:.6f})" in text

    n = duckdb.sql(f"SELECT count(*) FROM '{tmp_path}/ds/data/*.parquet'").fetchall()[0][0]
    assert n == res.rows


def test_labels_equal_great_circle_nearest_city(mp16_small, tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    build(PIPE, sets=["sample.n=150"], out=tmp_path / "ds")
    df = pl.read_parquet(tmp_path / "ds" / "data" / "*.parquet")
    ref = reverse_geocode(df["lat"].to_numpy(), df["lon"].to_numpy())
    assert df["city"].to_list() == ref["city"].to_list()
    assert df["country"].to_list() == ref["country"].to_list()
    assert np.allclose(df["city_km"].to_numpy(), ref["city_km"].to_numpy())
    assert df["id"].n_unique() == df.height == 150


def test_up_to_date_force_and_deterministic(mp16_small, tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "msgpack"))
    out = tmp_path / "ds"
    first = build(PIPE, sets=["sample.n=120"], out=out)
    assert first.status == "built"
    assert build(PIPE, sets=["sample.n=120"], out=out).status == "up to date"
    a = _files(out)
    again = build(PIPE, sets=["sample.n=120"], out=out, force=True)
    assert again.status == "built"
    assert _files(out) == a
    assert (out / "README.md").read_text() == (out / "README.md").read_text()
    # another sample size or seed is another dataset
    assert build(PIPE, sets=["sample.n=121"], out=out).status == "built"
    assert build(PIPE, sets=["sample.n=121", "seed=1"], out=out).status == "built"
    other = _files(out)
    assert other != a


def test_changed_input_rebuilds(mp16_small, tmp_path, monkeypatch):
    root = tmp_path / "mp16"
    shutil.copytree(mp16_small / "folder", root)
    monkeypatch.setenv("MP16_ROOT", str(root))
    out = tmp_path / "ds"
    assert build(PIPE, sets=["sample.n=50"], out=out).status == "built"
    csv = root / "mp16_places365.csv"
    csv.write_text(csv.read_text() + "ff/ff/1234567890.jpg,x,10.0,10.0,0,0,0,0.1,0.1,0.8\n")
    assert build(PIPE, sets=["sample.n=50"], out=out).status == "built"


def test_killed_build_leaves_previous_dataset_in_place(mp16_small, tmp_path, monkeypatch):
    import geodata.formats.parquet as parquet_format  # the default output format's writer

    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    out = tmp_path / "ds"
    build(PIPE, sets=["sample.n=40"], out=out)
    before = _files(out)

    real = parquet_format.write_partition

    def dies(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt  # killed after shards were written, before the swap

    monkeypatch.setattr(parquet_format, "write_partition", dies)
    with pytest.raises(KeyboardInterrupt):
        build(PIPE, sets=["sample.n=60"], out=out)
    assert _files(out) == before
    assert json.loads((out / "manifest.json").read_text())["configs"]["default"]["train"]["num_rows"] == 40
    assert not list(tmp_path.glob(".ds.*")), "no temp folder may remain"


def test_stale_temp_folder_from_a_killed_process_is_cleaned(mp16_small, tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    from geodata.dataset.ownership import TEMP_MARKER

    stale = tmp_path / ".ds.tmp-999999999"
    (stale / "data").mkdir(parents=True)
    (stale / TEMP_MARKER).write_text("999999999\n")  # geodata marks the temp folders it writes
    lookalike = tmp_path / ".ds.tmp-999999998"  # same name pattern, no marker: not geodata's
    (lookalike / "data").mkdir(parents=True)
    build(PIPE, sets=["sample.n=10"], out=tmp_path / "ds")
    assert not stale.exists()
    assert (lookalike / "data").is_dir()


def test_small_shards_roll_over_and_sum_up(mp16_small, tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    res = build(PIPE, sets=["sample.n=300", "output.shard_max_mb=0.05", "output.row_group_rows=20"], out=tmp_path / "ds")
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    files = manifest["configs"]["default"]["train"]["files"]
    assert len(files) > 2
    n = len(files)
    assert files[0] == f"data/train-00000-of-{n:05d}.parquet"
    assert sum(manifest["files"][f]["rows"] for f in files) == res.rows
    # the writer decodes every image: an undecodable one that was sampled is dropped and counted
    assert res.rows + res.drops.get("undecodable_image", 0) == 300
    import hashlib

    for f in files:
        assert hashlib.sha256((tmp_path / "ds" / f).read_bytes()).hexdigest() == manifest["files"][f]["sha256"]


def test_metadata_only_build(mp16_small, tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    res = build(PIPE, sets=["sample.n=25", "sources.mp16.images=none"], out=tmp_path / "ds")
    assert res.rows == 25 and "missing_image" not in res.drops


def test_mp16_pro_metadata_matches_folder_images(mp16_small, tmp_path, monkeypatch):
    root = tmp_path / "pro"
    shutil.copytree(mp16_small / "folder" / "images", root / "images")
    src = pl.read_csv(mp16_small / "folder" / "mp16_places365.csv", infer_schema=False)
    pro = src.select(
        pl.col("IMG_ID").str.replace_all("/", "_"), "LAT", "LON",
        neighbourhood=pl.lit("n"), city=pl.lit("c"), county=pl.lit(""), state=pl.lit("s"),
        region=pl.lit(""), country=pl.lit("x"), continent=pl.lit("y"),
    )
    pro.write_csv(root / "MP16_Pro_places365.csv")
    monkeypatch.setenv("MP16_ROOT", str(root))
    res = build(PIPE, sets=["sample.n=1000"], out=tmp_path / "ds")
    assert res.drops["missing_image"] == 6 and res.rows == 393


def test_missing_column_is_an_error_listing_expected_and_found(tmp_path, monkeypatch):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "images").mkdir()
    (root / "mp16_places365.csv").write_text("IMG_ID,LAT\n1/2/3.jpg,1.0\n")
    monkeypatch.setenv("MP16_ROOT", str(root))
    with pytest.raises(SourceError, match=r"mp16_places365.csv: missing columns \['LON'\].*found \['IMG_ID', 'LAT'\]"):
        build(PIPE, out=tmp_path / "ds")


def test_missing_root_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(SourceError, match="MP16_ROOT"):
        build(PIPE, out=tmp_path / "ds")


def test_default_root_is_the_embedded_sample(datasets_tmp, monkeypatch, tmp_path):
    monkeypatch.setenv("GEODATA_DATA", str(tmp_path / "data"))
    res = build(PIPE, sets=["sample.n=30"])
    assert res.path == datasets_tmp / PIPE and res.rows == 30
    assert (tmp_path / "data" / "samples" / "mp16" / "mp16_places365.csv").exists()


def test_multi_config_output(mp16_small, tmp_path, monkeypatch):
    monkeypatch.setenv("MP16_ROOT", str(mp16_small / "folder"))
    build(PIPE, sets=["sample.n=80", "output.config_by=country_code"], out=tmp_path / "ds")
    import datasets

    names = datasets.get_dataset_config_names(str(tmp_path / "ds"))
    assert "US" in names and "default" not in names
    us = datasets.load_dataset(str(tmp_path / "ds"), "US", split="train")
    assert set(us["country_code"]) == {"US"}


@pytest.mark.parametrize(
    "sets, message",
    [
        (["sample.size=3"], r"steps\[5\] \(sample\): unknown key 'size' \(allowed: n, sort_by, splits\)"),
        (["sample.n=abc"], r"bad value for 'n'"),
        (["nosuchstep.n=3"], r"'nosuchstep' is neither a top-level key"),
        (["output.shard_max_mb=-1"], r"'output.shard_max_mb'"),
        (["output.colour=red"], r"unknown key 'output.colour'"),
        (["sources.mp16.images=jpeg"], r"sources.mp16: bad value for 'images'"),
    ],
)
def test_spec_errors_name_file_and_key(sets, message):
    with pytest.raises(SpecError, match=message):
        build(PIPE, sets=sets)


def test_unknown_step_and_yaml_errors(tmp_path):
    spec = tmp_path / "x.yaml"
    spec.write_text("name: x\nsources: {mp16: {reader: mp16}}\nsteps:\n  - step: shuffle\n")
    with pytest.raises(SpecError, match=r"x.yaml: steps\[0\]: unknown step 'shuffle' \(allowed: .*dedupe"):
        build(spec)
    spec.write_text("name: x\nsources: {m: {reader: nope}}\n")
    with pytest.raises(SpecError, match="unknown source 'nope'"):
        build(spec)
    spec.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        build(spec)
    with pytest.raises(SpecError, match="unknown pipeline 'no-such-pipeline'"):
        build("no-such-pipeline")


def test_env_interpolation(monkeypatch):
    from geodata.spec import interpolate, load_spec

    assert interpolate({"n": "${N:-5}", "p": "a/${X:-b}/c"}, env={}) == {"n": 5, "p": "a/b/c"}
    assert interpolate("${N:-5}", env={"N": "7"}) == 7
    with pytest.raises(SpecError, match="K is not set"):
        interpolate({"k": "${K}"}, env={}, where="x")
    monkeypatch.setenv("SAMPLE_N", "77")
    spec = load_spec(PIPE)
    assert [s for s in spec.steps if s.key == "sample"][0].params["n"] == 77
    assert load_spec(PIPE, sets=["sample.n=3"]).fingerprint() != spec.fingerprint()


def test_every_catalog_entry_parses_and_names_its_env(repo):
    import yaml

    from geodata.registry import SOURCES, _load_all

    _load_all()
    entries = {}
    for f in sorted((repo / "catalogs").glob("*.yaml")):
        e = yaml.safe_load(f.read_text())
        assert e["name"] == f.stem, f
        assert e["env"].endswith("_ROOT") or e["env"] == "PREDICTIONS", f
        entries[e["name"]] = e
    for name, info in SOURCES.items():
        assert name in entries, f"source '{name}' has no catalogs/{name}.yaml"
        assert entries[name]["env"] == info.env


def test_sample_of_some_splits_keeps_the_others_whole():
    import polars as pl

    from geodata.context import StepContext
    from geodata.errors import BuildError
    from geodata.steps.core import sample

    df = pl.DataFrame({"id": [f"r{i:03d}" for i in range(60)],
                       "split": ["train"] * 40 + ["test"] * 15 + ["validation"] * 5})
    ctx = StepContext(seed=3, name="sample")
    res = sample(df, ctx, n=10, splits=["train"])
    assert res.rows["split"].value_counts().sort("split").rows() == [("test", 15), ("train", 10), ("validation", 5)]
    assert res.drops == {"not_sampled": 30}
    # without splits: the same draw as before over every row
    everything = sample(df, ctx, n=10)
    assert everything.rows.height == 10 and everything.drops == {"not_sampled": 50}
    short = sample(df, ctx, n=100, splits=["train"])
    assert short.rows.height == 60 and "of splits train, 40 available" in short.notes["sample.short"]
    with pytest.raises(BuildError, match=r"needs columns \['split'\]"):
        sample(df.drop("split"), ctx, n=5, splits=["train"])
