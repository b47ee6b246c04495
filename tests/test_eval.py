"""`geodata eval`: metric formulas at reference points, truth formats, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from geodata.cli import app
from geodata.errors import SourceError
from geodata.evaluate import evaluate, evaluate_files, load_truth
from geodata.tasks.geolocation.score import metrics


def _east(km):
    return float(np.degrees(km / 6371.0))


def test_accuracy_thresholds_are_inclusive_and_geoscore_formula():
    kms = [0.5, 1.0, 24.0, 25.0, 199.0, 750.0, 2499.0, 2500.0, 3000.0]
    lat = np.zeros(len(kms))
    lon = np.zeros(len(kms))
    plon = np.array([_east(k) for k in kms])
    m = metrics(np.zeros(len(kms)), plon, lat, lon, geocode=False)
    n = len(kms)
    assert m["acc_km"] == {"1": 2 / n, "25": 4 / n, "200": 5 / n, "750": 6 / n, "2500": 8 / n}
    assert m["median_km"] == pytest.approx(199.0)
    expect = np.mean([5000 * math.exp(-k / 1492.7) for k in kms])
    assert m["geoscore_mean"] == pytest.approx(expect)
    assert m["n_unparsed"] == 0


def test_unparsed_count_as_wrong():
    m = metrics(np.array([0.0, np.nan, np.nan]), np.array([0.0, 0.0, 1.0]), np.zeros(3), np.zeros(3), geocode=False)
    assert m["n_unparsed"] == 2
    assert m["acc_km"]["2500"] == pytest.approx(1 / 3)
    assert m["median_km"] is None and m["median_km_parsed"] == 0.0
    assert m["geoscore_mean"] == pytest.approx(5000 / 3)


def test_admin_levels_use_the_reverse_geocoder():
    # Paris vs Versailles (same country and region, other city); Paris vs Lyon; Paris vs Berlin
    tlat = np.array([48.8566, 48.8566, 48.8566, 48.8566])
    tlon = np.array([2.3522, 2.3522, 2.3522, 2.3522])
    plat = np.array([48.8570, 48.8049, 45.7640, 52.5200])
    plon = np.array([2.3520, 2.1204, 4.8357, 13.4050])
    m = metrics(plat, plon, tlat, tlon)
    assert m["country_acc"] == 0.75
    assert m["admin1_acc"] == 0.5
    assert m["city_acc"] == 0.25


def test_im2gps_and_yfcc_csv_layouts(tmp_path):
    im = tmp_path / "im2gps3k_places365.csv"
    im.write_text("IMG_ID,AUTHOR,LAT,LON,S3_Label\n1.jpg,x,48.8566,2.3522,1\n2.jpg,y,-33.87,151.21,0\n")
    yf = tmp_path / "yfcc4k_places365.csv"
    yf.write_text("IMG_ID,LAT,LON\n1.jpg,48.8566,2.3522\n2.jpg,-33.87,151.21\n")
    preds = tmp_path / "preds.csv"
    preds.write_text('id,completion\n1.jpg,"<answer>(48.86, 2.35)</answer>"\n2.jpg,no idea\n')
    for truth in (im, yf):
        r = evaluate_files(preds, truth, geocode=False).tasks["geolocation"]
        assert r.n == 2 and r.n_unparsed == 1 and r.metrics["acc@25km"] == 0.5


def test_built_dataset_truth(tmp_path):
    from geodata.engine import build

    out = tmp_path / "datasets" / "mp16-hard-200k"
    build("mp16-hard-200k", sets=["sample.n=40"], out=out)
    truth, drops = load_truth(out)
    assert truth.height > 30 and drops == {"truth_duplicate_id": 0, "truth_invalid": 0}
    preds = tmp_path / "p.parquet"
    truth.select("id", pred_lat="lat", pred_lon="lon").write_parquet(preds)
    rep = evaluate_files(preds, out, geocode=True)
    assert set(rep.tasks) == {"geolocation"} and "hotspots" in rep.skipped_configs  # issue 22 item 4
    assert any("config 'hotspots' not scored" in n for n in rep.notes)
    r = rep.tasks["geolocation"].metrics
    # one report schema for every truth: a built dataset and a CSV give the same JSON keys
    csv_truth = tmp_path / "truth.csv"
    truth.select(IMG_ID="id", LAT="lat", LON="lon").write_csv(csv_truth)
    keys = []
    for t in (out, csv_truth):
        res = CliRunner().invoke(app, ["eval", str(preds), "--truth", str(t), "--out", str(tmp_path / "r.json"),
                                       "--no-geocode"])
        assert res.exit_code == 0, res.output
        keys.append(sorted(json.loads((tmp_path / "r.json").read_text())))
    assert keys[0] == keys[1]
    assert r["acc@1km"] == 1.0 and r["country_acc"] == 1.0 and r["city_acc"] == 1.0
    assert r["geoscore_mean"] == pytest.approx(5000.0)


def test_bad_input_is_never_silent(tmp_path):
    truth = pl.DataFrame({"id": ["a", "b"], "lat": [1.0, 2.0], "lon": [1.0, 2.0]})
    dup = pl.DataFrame({"id": ["a", "a"], "pred_lat": [1.0, 1.0], "pred_lon": [1.0, 1.0]})
    with pytest.raises(SourceError, match="duplicate prediction id 'a'"):
        evaluate(dup, truth, geocode=False)
    stray = pl.DataFrame({"id": ["a", "zz"], "pred_lat": [1.0, 1.0], "pred_lon": [1.0, 1.0]})
    r = evaluate(stray, truth, geocode=False)
    assert r.tasks["geolocation"].n == 1 and r.n_unknown_ids == 1 and r.n_truth_without_prediction == 1
    with pytest.raises(SourceError, match="not in the truth.*zz"):
        evaluate(stray, truth, unknown_ids="error", geocode=False)
    with pytest.raises(SourceError, match="no prediction id is in the truth"):
        evaluate(stray.filter(pl.col("id") == "zz"), truth, geocode=False)
    # non-numeric and out-of-range coordinates are unparsed, not errors
    p = tmp_path / "p.csv"
    p.write_text("id,pred_lat,pred_lon\na,north,1\nb,95,2\n")
    t = tmp_path / "t.csv"
    t.write_text("IMG_ID,LAT,LON\na,1,1\nb,2,2\nb,2,2\nc,,3\n")
    r = evaluate_files(p, t, geocode=False)
    assert r.tasks["geolocation"].n_unparsed == 2 and r.tasks["geolocation"].metrics["acc@2500km"] == 0.0
    assert r.n_truth_duplicate_id == 1 and r.n_truth_invalid == 1
    with pytest.raises(SourceError, match="no id column"):
        t.write_text("X,LAT,LON\na,1,1\n")
        load_truth(t)
    with pytest.raises(SourceError, match="neither a file"):
        load_truth(tmp_path / "nope")


def test_cli_prints_and_writes_json(tmp_path):
    t = tmp_path / "yfcc4k_places365.csv"
    t.write_text("IMG_ID,LAT,LON\na,48.8566,2.3522\nb,-33.87,151.21\n")
    p = tmp_path / "p.csv"
    p.write_text("id,pred_lat,pred_lon\na,48.8566,2.3522\nb,0,0\n")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", str(p), "--truth", str(t), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "geoscore" in res.output
    r = json.loads(out.read_text())
    g = r["tasks"]["geolocation"]["metrics"]
    assert g["acc@1km"] == 0.5 and g["country_acc"] == 0.5
    p.write_text("id,pred_lat,pred_lon\na,1,1\na,1,1\n")
    res = CliRunner().invoke(app, ["eval", str(p), "--truth", str(t)])
    assert res.exit_code == 2 and "duplicate" in res.output
