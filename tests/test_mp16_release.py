"""MP-16 as released: GeoEstimation resources/, MP16-Pro tars (single and chunked), swapped
IM2GPS3K labels, benchmark hygiene and ``geodata check`` — on fixtures from tests/mp16_fixtures.py."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import mp16_fixtures as fx
from geodata.cli import app
from geodata.context import StepContext
from geodata.engine import build
from geodata.errors import SourceError
from geodata.evaluate import evaluate_files, load_truth
from geodata.sources.mp16 import read_mp16

PIPE = "mp16-rand-500k"


def _rows(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "data" / "*.parquet")


@pytest.mark.parametrize("above", [False, True], ids=["resources", "folder-above"])
def test_geoestimation_release_builds(tmp_path, monkeypatch, above):
    res = fx.geoestimation(tmp_path)
    monkeypatch.setenv("MP16_ROOT", str(tmp_path if above else res))
    r = build(PIPE, sets=["sample.n=100"], out=tmp_path / "ds")
    # 10 rows, one image never downloaded; the im2gps/ test images are not mistaken for MP-16
    assert r.rows == 9 and r.drops == {"missing_image": 1}
    assert r.notes["mp16.image_layout"].startswith("geoestimation: ")
    df = _rows(tmp_path / "ds")
    assert df["author"].null_count() == 0
    by_id = dict(zip(fx.ids(), range(10)))
    for rid, imgs in zip(df["id"], df["images"]):
        assert imgs[0]["path"] == rid.rsplit("/", 1)[1]  # the image's own name, not shard_0.msg
        assert imgs[0]["bytes"] == fx.jpeg(by_id[rid])


def test_geoestimation_validation_split(tmp_path):
    res = fx.geoestimation(tmp_path)
    df = read_mp16(StepContext(), root=res, validation=True).rows
    counts = dict(df.group_by("split").len().iter_rows())
    assert counts == {"train": 10, "validation": 2}
    assert df.filter(pl.col("split") == "validation")["images"].null_count() == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["tar", "chunks"])
def test_mp16pro_release_builds_in_place(tmp_path, monkeypatch, chunked):
    root = fx.mp16pro(tmp_path / "hf", chunked=chunked)
    before = sorted(p.name for p in root.iterdir())
    monkeypatch.setenv("MP16_ROOT", str(tmp_path / "hf"))  # the folder above the release
    r = build(PIPE, sets=["sample.n=100"], out=tmp_path / "rand")
    assert r.rows == 8 and "missing_image" not in r.drops  # MP16_Pro_filtered.csv: 8 rows with images
    assert r.notes["mp16.image_layout"].startswith("mp16pro: MP16-Pro/ (")
    # geo-r1-scaffold needs the Places365 columns MP16-Pro carries
    r = build("geo-r1-scaffold", sets=["sample.n=100"], out=tmp_path / "ds")
    assert r.rows == 8
    df = _rows(tmp_path / "ds")
    assert df["author"].null_count() == 0 and df["scene"].null_count() == 0
    for rid, imgs in zip(df["id"], df["images"]):
        i = fx.ids("_").index(rid)
        assert imgs[0]["bytes"] == fx.jpeg(i) and imgs[0]["path"] == rid
    assert sorted(p.name for p in root.iterdir()) == before  # no concatenated copy, nothing written
    assert not (tmp_path / "hf" / "UNPICKLED").exists()  # tar_index.pkl was never unpickled


def test_mp16pro_keeps_every_column_and_matches_slash_ids(tmp_path):
    root = fx.mp16pro(tmp_path, chunked=True, chunk=2048)
    df = read_mp16(StepContext(), root=root, metadata="MP16_Pro_places365.csv").rows
    assert df.height == 10 and df["images"].null_count() == 0  # '/' ids meet './images/aa_bb_id.jpg'
    for c in ("author", "s3_label", "s16_label", "s365_label", "prob_urban", "pro_neighbourhood", "pro_city",
              "pro_country", "pro_continent"):
        assert c in df.columns and df[c].null_count() < df.height, c


def test_ambiguous_root_lists_what_was_found(tmp_path):
    res = fx.geoestimation(tmp_path, missing=())
    for i, img_id in enumerate(fx.ids()):  # the same images again as a folder tree
        p = res / "images" / img_id
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(fx.jpeg(i))
    with pytest.raises(SourceError, match=r"ambiguous root .*geoestimation: images/mp16/ \(2 msgpack shards\).*folder: images/.*pass images: geoestimation \| folder"):
        read_mp16(StepContext(), root=res).rows
    df = read_mp16(StepContext(), root=res, images="folder").rows
    assert df["images"].null_count() == 0
    assert read_mp16(StepContext(), root=res, images="msgpack").rows["images"].to_list()[0][0].startswith("msgpack://")


def _swapped(tmp_path: Path) -> Path:
    # GeoEstimation's meta/im2gps3k_places365.csv before commit 5e091c0: labels LON,LAT over lat,lon values
    t = tmp_path / "im2gps3k_places365.csv"
    t.write_text(
        "IMG_ID,AUTHOR,LON,LAT,S3_Label\n"
        "1000269685_e60e9cdfb4_1125_78841376@N00.jpg,78841376@N00,32.325436,-64.764404,2\n"
        "1_a_1_x@N00.jpg,x@N00,35.6586,139.7454,0\n"
        "2_a_1_x@N00.jpg,x@N00,-33.8568,151.2153,0\n"
        "3_a_1_x@N00.jpg,x@N00,48.8584,2.2945,1\n"
    )
    return t


def test_swapped_truth_labels_are_read_from_the_values(tmp_path, caplog):
    t = _swapped(tmp_path)
    df, drops = load_truth(t)
    assert drops == {"truth_duplicate_id": 0, "truth_invalid": 0, "truth_lat_lon_swapped": 4}
    df = df.select("id", "lat", "lon")
    assert df.row(0) == ("1000269685_e60e9cdfb4_1125_78841376@N00.jpg", 32.325436, -64.764404)
    assert "read swapped" in caplog.text
    p = tmp_path / "p.csv"
    p.write_text("id,pred_lat,pred_lon\n" + "".join(f"{i},{a},{b}\n" for i, a, b in df.iter_rows()))
    r = evaluate_files(p, t, geocode=False).tasks["geolocation"]
    assert r.metrics["acc@1km"] == 1.0 and r.n == 4
    # not swapped: as labelled
    t.write_text("IMG_ID,LAT,LON\na,10,120\nb,20,-170\n")
    assert load_truth(t)[1] == {"truth_duplicate_id": 0, "truth_invalid": 0}
    # one latitude beyond ±90 where the longitudes are longitudes: one unscorable row, not a swap
    # nor a refusal (issue 19 item 6)
    t.write_text("IMG_ID,LAT,LON\na,100,120\nb,20,-170\n")
    assert load_truth(t)[1] == {"truth_duplicate_id": 0, "truth_invalid": 1}


def test_eval_overlap_drops_benchmark_photos(tmp_path, monkeypatch):
    res = fx.geoestimation(tmp_path / "mp16", missing=())
    im = tmp_path / "im2gps3k"
    (im / "images").mkdir(parents=True)
    # one IM2GPS3K photo is MP-16's photo 2372918112 (by its Flickr photo id) ...
    (im / "im2gps3k_places365.csv").write_text(
        "IMG_ID,AUTHOR,LON,LAT\n2372918112_ab12cd34ef_1_1@N00.jpg,1@N00,40.6892,-74.0445\n"
        "999_ab_1_1@N00.jpg,1@N00,1,1\n"
    )
    # ... and another is MP-16's photo #4 under another name (an identical image)
    (im / "images" / "999_ab_1_1@N00.jpg").write_bytes(fx.jpeg(4))
    yf = tmp_path / "yfcc4k.csv"
    yf.write_text("IMG_ID,LAT,LON\n6123450987.jpg,41.89,12.49\n")
    monkeypatch.setenv("MP16_ROOT", str(res))
    monkeypatch.setenv("IM2GPS3K_ROOT", str(im))
    r = build(PIPE, sets=["sample.n=100", f"exclude_eval.benchmarks.yfcc4k={yf}"], out=tmp_path / "ds")
    assert r.drops["eval_overlap"] == 3 and r.rows == 7
    note = r.notes["mp16.eval_overlap"]
    assert "im2gps3k: 2 rows (1 by photo id, 1 by identical image" in note and "yfcc4k: 1 rows (1 by photo id" in note
    kept = set(_rows(tmp_path / "ds")["id"])
    assert not kept & {fx.ids()[2], fx.ids()[4], fx.ids()[5]}
    # the GeoEstimation README's form: resources/images/im2gps3k_places365.csv beside resources/images/im2gps3k/
    shutil.copy(im / "im2gps3k_places365.csv", res / "images" / "im2gps3k_places365.csv")
    shutil.copytree(im / "images", res / "images" / "im2gps3k")
    monkeypatch.setenv("IM2GPS3K_ROOT", str(res / "images" / "im2gps3k"))
    r = build(PIPE, sets=["sample.n=100"], out=tmp_path / "ds1")
    assert r.drops["eval_overlap"] == 2 and "1 by identical image" in r.notes["mp16.eval_overlap"]
    monkeypatch.delenv("IM2GPS3K_ROOT")
    r = build(PIPE, sets=["sample.n=100"], out=tmp_path / "ds2")
    assert "eval_overlap" not in r.drops and "not checked" in r.notes["mp16.eval_overlap"]


def test_exclude_eval_is_a_step_whose_truth_files_are_fingerprinted(tmp_path, monkeypatch):
    res = fx.geoestimation(tmp_path / "mp16", missing=())
    # the reader keeps its columns and offers the image sizes as a table, not a hidden column
    direct = read_mp16(StepContext(), root=res)
    assert not [c for c in direct.rows.columns if c.startswith("_")] and "eval_overlap" not in direct.drops
    sizes = direct.provides["image_sizes"]
    assert sizes.columns == ["ref", "size"] and sizes.height == 10 and sizes["ref"].n_unique() == 10
    assert dict(zip(sizes["ref"], sizes["size"]))[direct.rows["images"][4][0]] == len(fx.jpeg(4))
    yf = tmp_path / "yfcc4k.csv"
    yf.write_text("IMG_ID,LAT,LON\n6123450987.jpg,41.89,12.49\n")
    monkeypatch.setenv("MP16_ROOT", str(res))
    monkeypatch.setenv("YFCC4K_ROOT", str(yf))
    r = build(PIPE, sets=["sample.n=100"], out=tmp_path / "ds")
    steps = {s["step"]: s for s in json.loads((tmp_path / "ds" / "manifest.json").read_text())["stats"]["steps"]}
    assert steps["exclude_eval"]["drops"] == {"eval_overlap": 1} and "eval_overlap" not in steps["read:mp16"]["drops"]
    assert r.status == "built" and r.rows == 9
    assert build(PIPE, sets=["sample.n=100"], out=tmp_path / "ds").status == "up to date"
    # a changed truth file is a changed input: the build is not up to date and drops the new overlap
    yf.write_text(yf.read_text() + f"{fx.ids()[2].rsplit('/', 1)[1]},1,1\n")
    r = build(PIPE, sets=["sample.n=100"], out=tmp_path / "ds")
    assert r.status == "built" and r.drops["eval_overlap"] == 2 and r.rows == 8


def test_exclude_eval_after_images_are_loaded_is_a_clear_error():
    from geodata.errors import BuildError
    from geodata.steps.eval_overlap import exclude_eval

    df = pl.DataFrame({"id": ["1.jpg"], "images": [[{"bytes": b"x", "path": "1.jpg"}]]})
    sizes = pl.DataFrame({"ref": ["r"], "size": [1]})
    with pytest.raises(BuildError, match=r"step 'ev': compares images by their references .*right after the reader"):
        exclude_eval(df, StepContext(name="ev"), benchmarks={"yfcc4k": str(Path(__file__))}, sizes=sizes)


def test_check_reports_layout_rows_images_splits_and_drops(tmp_path):
    res = fx.geoestimation(tmp_path)
    with open(res / "mp16_places365.csv", "a") as fh:
        fh.write(fx._row("ba/d0/1.jpg", 1, 95.0, 1.0) + "\n" + fx._row(fx.ids()[0], 0, 48.0, 2.0) + "\n")
    out = CliRunner().invoke(app, ["check", "mp16", "--root", str(tmp_path)])
    assert out.exit_code == 0, out.output
    text = out.output
    assert re.search(r"layout\s+geoestimation: resources/images/mp16/ \(2 msgpack shards\); metadata resources/mp16_places365.csv", text)
    assert "12 metadata rows, 12 columns: id, author, lat, lon, s3_label" in text
    assert f"10 rows with images found, 2 missing (e.g. '{fx.ids()[9]}', 'ba/d0/1.jpg')" in text
    assert "splits   train 12" in text
    assert re.search(r"invalid_coordinates\s+1 ", text) and re.search(r"duplicate_id\s+1 ", text)
    assert re.search(r"missing_image\s+1 ", text) and "rows left 9" in text
    deep = CliRunner().invoke(app, ["check", "mp16", "--root", str(res), "--deep", "--json", "--param", "validation=true"])
    rep = json.loads(deep.output)
    assert rep["splits"] == {"train": 12, "validation": 2} and rep["rows_after_drops"] == 11 and rep["deep"]


def test_check_works_for_any_source(tmp_path):
    from geodata.sources.crossview.cvusa import write_sample

    write_sample(tmp_path / "cvusa")
    out = CliRunner().invoke(app, ["check", "cvusa", "--root", str(tmp_path / "cvusa")])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("source   cvusa at ") and "metadata rows" in out.output
    bad = CliRunner().invoke(app, ["check", "nosuch"])
    assert bad.exit_code == 2 and "unknown source 'nosuch'" in bad.output


def test_sample_writer_writes_the_geoestimation_layout(tmp_path):
    from geodata.sources.mp16 import write_sample

    write_sample(tmp_path / "resources", n=40)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert "resources/mp16_places365.csv" in names and "resources/mp16_urls.csv" in names
    assert "resources/images/mp16/shard_0.msg" in names and "resources/images/mp16/writer.log" in names
    assert "resources/images/yfcc25600/shard_0.msg" in names and "resources/yfcc25600_places365.csv" in names
    df = read_mp16(StepContext(), root=tmp_path).rows
    assert df.height == 50 and df["images"].null_count() == 6
