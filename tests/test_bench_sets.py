"""Benchmarks as datasets (pipelines/bench/): each builds from a fixture in its release's layout,
keeps only the evaluation split, and its card names the benchmark, paper, protocol and scorer;
`geodata bench list`; `geodata eval --compare` ranks the run's row into the paper's table."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from geodata.cli import app
from geodata.cli.bench import list_benchmarks
from geodata.compare import compare, format_comparison, load_reference
from geodata.dataset import Dataset
from geodata.engine import build
from geodata.errors import GeodataError, SourceError
from geodata.registry import get_source
from geodata.sources.eo.captions import _write_sample
from geodata.sources.eo.common import sample_image
from geodata.sources.im2gps3k import write_benchmark_sample

REPO = Path(__file__).resolve().parent.parent
BENCHES = sorted(p.stem for p in (REPO / "pipelines" / "bench").glob("*.yaml"))


def _captions_fixture(root: Path) -> dict[str, str]:
    """RSICD / UCM / Sydney in the Karpathy layout with a test image each (the samples hold train only)."""
    envs = {}
    for src, json_name, img_dir, fmt, env in (("rsicd", "dataset_rsicd.json", "RSICD_images", "JPEG", "RSICD_ROOT"),
                                              ("ucm", "dataset.json", "imgs", "TIFF", "UCM_CAPTIONS_ROOT"),
                                              ("sydney", "dataset.json", "imgs", "TIFF", "SYDNEY_CAPTIONS_ROOT")):
        d = root / src
        ext = "jpg" if fmt == "JPEG" else "tif"
        _write_sample(d, src, json_name, img_dir, [f"{i}.{ext}" for i in range(4)], fmt,
                      [["a road crosses the farmland ."], ["many planes at an airport ."],
                       ["a river with green banks ."], ["dense houses beside a park ."]])  # image 4: split test
        envs[env] = str(d)
    return envs


def _levir_cc_fixture(d: Path) -> None:
    """LEVIR-CC layout (LevirCCcaptions.json + images/<split>/{A,B}/) with a train and a test pair."""
    images = []
    for i, split in enumerate(("train", "test")):
        name = f"{split}_000001.png"
        sample_image(d / "images" / split / "A" / name, (32, 32), 10 + i, "PNG")
        sample_image(d / "images" / split / "B" / name, (32, 32), 20 + i, "PNG")
        sent = {"tokens": ["new", "houses"], "raw": " new houses appear . ", "imgid": i, "sentid": i}
        images.append({"filepath": split, "filename": name, "imgid": i, "split": split, "changeflag": 1,
                       "sentids": [i], "sentences": [sent]})
    (d / "LevirCCcaptions.json").write_text(json.dumps({"images": images}))


@pytest.mark.parametrize("name", BENCHES)
def test_every_bench_set_builds_its_eval_split_from_a_release_fixture(name, tmp_path, monkeypatch) -> None:
    if name == "bench-eo-captions":
        for k, v in _captions_fixture(tmp_path / "rel").items():
            monkeypatch.setenv(k, v)
    if name == "bench-levir-cc":
        _levir_cc_fixture(tmp_path / "levir_cc")
        monkeypatch.setenv("LEVIR_CC_ROOT", str(tmp_path / "levir_cc"))
    res = build(name, out=tmp_path / name)
    ds = Dataset.open(tmp_path / name)
    splits = {s for cfg in ds.manifest.configs.values() for s in cfg}
    # fMoW-RGB ships labels for train / val only: its benchmark set is val (EarthDial's FMoW_RGB_Valid)
    assert res.rows > 0 and splits == {"validation" if name == "bench-fmow" else "test"}, (name, splits)
    rows = pl.concat([pl.read_parquet(f) for f in ds.files()], how="diagonal_relaxed")
    assert rows["images"].list.len().min() >= 1 and rows["prompt"].null_count() == 0
    card = (tmp_path / name / "README.md").read_text()
    assert "## Benchmark" in card and "- protocol: " in card and "- scorer: " in card and "- paper: " in card


def test_bench_im2gps3k_is_whole_geo_r_prompt_and_images_required(tmp_path, monkeypatch) -> None:
    write_benchmark_sample(tmp_path / "im2gps3k", "im2gps3k", n=30, missing=1)
    monkeypatch.setenv("IM2GPS3K_ROOT", str(tmp_path / "im2gps3k"))
    with pytest.raises(GeodataError, match="missing_image.*max_drop_fraction"):
        build("bench-im2gps3k", out=tmp_path / "a")
    res = build("bench-im2gps3k", out=tmp_path / "b", sets=["max_drop_fraction=0.05"])
    assert res.rows == 29 and res.drops == {"missing_image": 1}  # never sampled: every other photo
    rows = pl.read_parquet(Dataset.open(tmp_path / "b").files())
    train = build("mp16-rand-500k", out=tmp_path / "train", sets=["sample.n=4"])
    trows = pl.read_parquet(Dataset.open(train.path).files())
    assert rows["prompt"][0].to_list()[-1]["content"][-1] == trows["prompt"][0].to_list()[-1]["content"][-1]
    assert not set(rows["id"]) & set(trows["id"])
    (tmp_path / "im2gps3k" / "images").rename(tmp_path / "im2gps3k" / "elsewhere")
    with pytest.raises(SourceError, match="no image folder"):
        build("bench-im2gps3k", out=tmp_path / "c", force=True)


def test_crossview_options_are_fixed_by_the_seed(tmp_path) -> None:
    a = pl.read_parquet(Dataset.open(build("bench-cvusa", out=tmp_path / "a").path).files())
    b = pl.read_parquet(Dataset.open(build("bench-cvusa", out=tmp_path / "b", force=True).path).files())
    assert a.select("id", "answer", "images").equals(b.select("id", "answer", "images"))


def test_bench_list_names_every_benchmark_its_variable_and_paper() -> None:
    entries = {e["pipeline"]: e for e in list_benchmarks()}
    assert set(entries) == set(BENCHES)
    assert entries["bench-im2gps3k"]["env"] == ["IM2GPS3K_ROOT"] and entries["bench-im2gps3k"]["reported_by"] == ["geo-r"]
    assert entries["bench-vigor"]["env"] == [get_source("vigor").env]
    res = CliRunner().invoke(app, ["bench", "list"], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "bench-levir-cc" in res.output and "LEVIR_CC_ROOT" in res.output


def test_reference_holds_geo_r_table_with_sources() -> None:
    ref = load_reference("geo-r")
    main = {(r["method"], r["metric"]): r["value"] for r in ref.rows if r["table"] == "main"}
    assert main[("Geo-R", "acc@2500km")] == 0.8642 and main[("PIGEON", "acc@1km")] == 0.113
    assert ("GLOBE", "acc@1km") not in main  # '-' in the paper: not stored
    assert {r["table"] for r in ref.rows} == {"main", "yfcc4k", "ablation-reasoning", "ablation-rl", "ablation-sft-scale"}
    assert all("arXiv 2601.00388" in r["source"] for r in ref.rows)
    with pytest.raises(SourceError, match="no published number is public"):
        load_reference("geo-r1")


def test_compare_inserts_the_run_where_it_ranks() -> None:
    rep = {"acc_km": {"1": 0.17, "25": 0.5, "200": 0.6, "750": 0.7, "2500": 0.8}}
    res = compare(rep, "geo-r", "datasets/bench-im2gps3k")
    main = next(t for t in res["tables"] if t["table"] == "main")
    order = [r["method"] for r in main["rows"]]
    assert order.index("this run") == order.index("G3") - 1 == 2  # 17.0: after Geo-R (18.10), before G3 (16.65)
    assert order[:2] == ["Geo-Ranker", "Geo-R"] and order[-1] == "GLOBE"  # '-' at 1 km ranks last
    assert all(t["benchmark"] == "im2gps3k" for t in res["tables"])
    text = format_comparison(res)
    assert ">  3  this run" in text and "17.00" in text
    yf = compare({"tasks": {"geolocation": {"metrics": {"acc@1km": 0.2}}}}, "geo-r", "bench-yfcc4k")
    assert [r["method"] for r in yf["tables"][0]["rows"]] == ["this run", "Geo-R"]


def test_eval_compare_prints_the_table_for_bench_predictions(tmp_path) -> None:
    out = build("bench-im2gps3k", out=tmp_path / "my-eval").path  # the manifest's name tells the benchmark
    rows = pl.read_parquet(Dataset.open(out).files())
    sol = [json.loads(s) for s in rows["solution"]]
    preds = pl.DataFrame({"id": rows["id"], "completion": [
        f"<answer>Coordinates: ({s['lat']}, {s['lon']})</answer>" if i % 2 else "no idea" for i, s in enumerate(sol)]})
    p = tmp_path / "preds.parquet"
    preds.write_parquet(p)
    res = CliRunner().invoke(app, ["eval", str(p), "--truth", str(out), "--compare", "geo-r", "--no-geocode"])
    assert res.exit_code == 0, res.output
    assert "IM2GPS3K - main" in res.output and "this run" in res.output and "Geo-Ranker" in res.output
    j = json.loads((tmp_path / "preds.parquet.eval.json").read_text())
    assert j["compare"][0]["method"] == "Geo-R" and j["compare"][0]["ours"] == pytest.approx(0.5)


def test_im2gps3k_reader_reads_swapped_labels_by_the_values(tmp_path) -> None:
    from geodata.context import StepContext
    from geodata.sources.im2gps3k import read_im2gps3k

    write_benchmark_sample(tmp_path / "a", "im2gps3k", n=24)
    good = read_im2gps3k(StepContext(name="im2gps3k"), root=tmp_path / "a").rows
    csv = tmp_path / "a" / "im2gps3k_places365.csv"
    df = pl.read_csv(csv)
    assert (df["LON"].abs() > 90).any()  # the sample holds longitudes beyond ±90 (Tokyo, Sydney ...)
    df.rename({"LAT": "LON", "LON": "LAT"}).write_csv(csv)  # pre-5e091c0 header over the same values
    res = read_im2gps3k(StepContext(name="im2gps3k"), root=tmp_path / "a")
    assert res.rows.select("id", "lat", "lon").equals(good.select("id", "lat", "lon"))
    assert "im2gps3k.lat_lon_swapped" in res.notes
