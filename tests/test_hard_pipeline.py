"""MP16-Hard-200K end to end on the sample: predictions -> hotspots -> exclusion -> sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from geodata.context import StepContext
from geodata.engine import build
from geodata.errors import BuildError, SourceError
from geodata.geo import haversine
from geodata.sources.predictions import load_predictions
from geodata.steps.hard import diverse_sample, join_predictions, mine_hotspots, round_robin_order


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("hard") / "mp16-hard-200k"
    res = build("mp16-hard-200k", out=out)
    return res, out


def _read(out: Path, prefix: str) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(f) for f in sorted((out / prefix).glob("train-*.parquet"))])


def test_builds_rows_and_hotspots(built):
    res, out = built
    rows = _read(out, "data")
    hot = _read(out, "hotspots")
    assert rows.height == res.rows and rows.height > 100 and hot.height > 100
    for c in ("id", "source", "task", "images", "prompt", "completion", "solution", "lat", "lon",
              "country", "h3", "pred_lat", "error_km"):
        assert c in rows.columns
    assert set(rows["task"]) == {"geolocation"}
    # no kept row is within 200 km of any hotspot (brute force on the output)
    d = haversine(rows["lat"].to_numpy()[:, None], rows["lon"].to_numpy()[:, None],
                  hot["lat"].to_numpy()[None, :], hot["lon"].to_numpy()[None, :])
    assert d.min() > 200.0
    # hotspots were solved (<= 25 km) and explain the exclusion count
    assert (hot["error_km"] <= 25.0).all()
    assert int(hot["rows_excluded"].sum()) == res.drops["near_hotspot"]
    assert set(hot["id"]).isdisjoint(set(rows["id"]))
    sol = json.loads(rows["solution"][0])
    assert {"lat", "lon", "country", "city"} <= set(sol)


def test_stats_and_card_say_what_happened(built):
    res, out = built
    manifest = json.loads((out / "manifest.json").read_text())
    notes = manifest["stats"]["notes"]
    assert notes["predictions.unparsed"] == 13
    assert "kept all" in notes["sample.short"]
    assert notes["exclude.exclusion"]["rows_excluded"] == res.drops["near_hotspot"]
    assert "hotspots" in manifest["configs"]
    card = (out / "README.md").read_text()
    assert "kept all" in card


def test_gold_completions_score_one(built):
    from geodata.tasks.geolocation.rewards import geolocation
    from geodata.schema import messages_text

    _, out = built
    rows = _read(out, "data").head(200)
    texts = [messages_text(m) for m in rows["completion"].to_list()]
    assert np.all(geolocation(texts, rows["solution"].to_list()) == 1.0)


def test_sample_n_override_spreads_over_cells(tmp_path):
    res = build("mp16-hard-200k", sets=["sample.n=50", "exclude.radius_km=100"], out=tmp_path / "h")
    assert res.rows == 50 - res.drops.get("undecodable_image", 0)
    assert res.notes["sample.cells"] >= 50
    assert res.notes["sample.max_per_cell"] == 1


def _join(rows: pl.DataFrame, preds: pl.DataFrame, raw: pl.DataFrame, **kw):
    return join_predictions(rows, StepContext(seed=1, name="join_predictions"), predictions=preds, raw=raw, **kw)


def _rows():
    return pl.DataFrame({"id": ["a", "b", "c"], "lat": [0.0, 10.0, 20.0], "lon": [0.0, 10.0, 20.0]})


def test_join_predictions_errors_and_counts():
    rows = _rows()
    raw = pl.concat([rows, pl.DataFrame({"id": ["gone"], "lat": [1.0], "lon": [1.0]})])
    preds = pl.DataFrame({"id": ["a", "b", "gone", "zzz"], "pred_lat": [0.0, None, 1.0, 1.0],
                          "pred_lon": [0.1, None, 1.0, 1.0], "parsed": [True, False, True, True]})
    with pytest.raises(BuildError, match="not in the source.*zzz"):
        _join(rows, preds, raw)
    res = _join(rows, preds, raw, unknown_ids="drop")
    out = res.rows
    assert res.drops == {"prediction_for_dropped_row": 1, "prediction_unknown_id": 1}
    assert out["pred_parsed"].to_list() == [True, False, False]
    assert out["error_km"][0] == pytest.approx(11.1195, abs=1e-3) and out["error_km"][1] is None
    assert res.notes["join_predictions.unparsed_predictions"] == 1
    with pytest.raises(BuildError, match="no prediction id matches"):
        _join(rows, preds.with_columns(id=pl.lit("x") + pl.col("id")), raw, unknown_ids="drop")
    dup = pl.concat([preds.head(1), preds.head(1)])
    with pytest.raises(BuildError, match="duplicate id 'a'"):
        _join(rows, dup, raw)


def test_mine_hotspots_threshold_and_cap():
    df = pl.DataFrame({"id": [f"r{i}" for i in range(10)], "error_km": [0.0, 5.0, 25.0, 25.0001, None, 1.0, 2.0, 3.0, 4.0, 100.0]})
    ctx = StepContext(seed=3, name="hotspots")
    out = mine_hotspots(df, ctx).rows
    assert out["is_hotspot"].to_list() == [True, True, True, False, False, True, True, True, True, False]
    res = mine_hotspots(df, ctx, n=3)
    a = res.rows["is_hotspot"]
    b = mine_hotspots(df, ctx, n=3).rows["is_hotspot"]
    assert a.sum() == 3 and a.to_list() == b.to_list()
    assert "capped" in " ".join(res.notes)


def test_round_robin_and_cap():
    rng = np.random.default_rng(0)
    cells = np.array([1] * 50 + [2] * 3 + [3] * 1)
    order, rank = round_robin_order(cells, rng)
    first3 = set(cells[order[:3]].tolist())
    assert first3 == {1, 2, 3}
    assert sorted(order.tolist()) == list(range(cells.size))
    lat = np.r_[np.full(50, 48.85), np.full(3, -33.9), 64.1]
    lon = np.r_[np.full(50, 2.35), np.full(3, 151.2), -21.9]
    df = pl.DataFrame({"id": [f"{i:03d}" for i in range(lat.size)], "lat": lat, "lon": lon})
    ctx = StepContext(seed=0, name="sample")
    out = diverse_sample(df, ctx, n=6).rows
    assert out.height == 6 and set(out["lat"].round(2)) == {48.85, -33.9, 64.1}
    capped = diverse_sample(df, ctx, n=None, cap_per_cell=2)
    assert capped.rows.height == 5 and capped.drops["cell_cap"] == 49
    short = diverse_sample(df, ctx, n=1000)
    assert short.rows.height == df.height and "kept all" in short.notes["sample.short"]
    with pytest.raises(BuildError):
        diverse_sample(df, ctx, n=-1)


def test_predictions_reader_rejects_bad_tables(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("id,pred_lat,pred_lon\na,1,2\na,3,4\n")
    with pytest.raises(SourceError, match="duplicate ids.*'a'"):
        load_predictions(p)
    p.write_text("img,pred_lat,pred_lon\na,1,2\n")
    with pytest.raises(SourceError, match="no 'id' column"):
        load_predictions(p)
    p.write_text("id,foo\na,1\n")
    with pytest.raises(SourceError, match="pred_lat and pred_lon, or completion"):
        load_predictions(p)
    p.write_text("id,pred_lat,pred_lon,completion\na,abc,2,<answer>(5; 6)</answer>\nb,,,\"(7, 8)\"\nc,95,1,\nd,1.5,-2,\n")
    df = load_predictions(p)
    assert df["parsed"].to_list() == [False, True, False, True]
    assert df["pred_lat"].to_list() == [None, 7.0, None, 1.5]
    q = tmp_path / "p.parquet"
    pl.DataFrame({"id": [1, 2], "pred_lat": [1.0, 2.0], "pred_lon": [3.0, 4.0]}).write_parquet(q)
    assert load_predictions(q)["id"].to_list() == ["1", "2"]
