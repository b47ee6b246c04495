"""geodata report: figures beside the dataset, linked from the card; the Hard-200K exclusion is drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dataset_fixture import FEATURES, make_dataset, make_rows, write_dataset
from geodata.cli import app
from geodata.geo import haversine
from geodata.report import (
    REPORT_START,
    circle_lonlat,
    exclusion_radius_km,
    land_polygons,
    make_report,
)

HOTSPOTS = [(48.85, 2.35), (51.5, -0.12), (35.7, 139.7)]


def _hard_set(root: Path, radius_km: float = 200.0, n: int = 400, planted_inside: bool = False) -> Path:
    """A small Hard-200K look-alike: rows farther than ``radius_km`` from every hotspot."""
    rng = np.random.default_rng(0)
    rows = []
    while len(rows) < n:
        lat, lon = float(rng.uniform(30, 60)), float(rng.uniform(-15, 30))
        if min(haversine(lat, lon, a, b) for a, b in HOTSPOTS) <= radius_km:
            continue
        r = make_rows(1, start=len(rows))[0]
        r.update(lat=lat, lon=lon)
        rows.append(r)
    if planted_inside:
        rows[0].update(lat=48.9, lon=2.4)  # 6 km from the Paris hotspot
    hot = [{"id": f"h{k}", "lat": a, "lon": b} for k, (a, b) in enumerate(HOTSPOTS)]
    from datasets import Features, Value

    feats = {"default": FEATURES, "hotspots": Features({"id": Value("string"), "lat": Value("float64"), "lon": Value("float64")})}
    steps = [{"step": "find_hotspots"}, {"step": "exclude_near_hotspots", "radius_km": radius_km}]
    return write_dataset(root, "mp16-hard-200k", {"default": {"train": [rows]}, "hotspots": {"train": [hot]}}, feats, steps)


def _red_pixels(path: Path) -> int:
    a = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((a[..., 0] > 180) & (a[..., 1] < 110) & (a[..., 2] < 110)).sum())


def test_report_of_a_hard_set(tmp_path: Path) -> None:
    folder = _hard_set(tmp_path, radius_km=150.0)
    rep = make_report(folder)
    names = [p.name for p in rep.figures]
    assert names == ["density_map.png", "hotspots_map.png", "countries.png", "tasks.png", "answer_length.png"]
    for p in rep.figures:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width >= 800 and im.height >= 300
    exc = rep.facts["exclusion"]
    assert exc["hotspots"] == 3 and exc["radius_km"] == 150.0  # radius from the resolved spec
    assert exc["kept_within_radius"] == 0 and 150.0 < exc["closest_kept_km"] < 200.0
    assert "3 hotspots with 150 km exclusion zones" in rep.summary and "none inside a zone" in rep.summary
    # the zones are drawn: their red outlines and markers are on the map
    assert _red_pixels(folder / "report/hotspots_map.png") > 200
    assert (folder / "report/summary.md").read_text() == rep.summary
    # linked from the card, once, also after a second run
    make_report(folder)
    card = (folder / "README.md").read_text()
    assert card.count(REPORT_START) == 1
    for n in names:
        assert f"(report/{n})" in card
    assert card.startswith("---\n")  # the YAML header is untouched


def test_planted_row_inside_a_zone_is_called_out(tmp_path: Path) -> None:
    rep = make_report(_hard_set(tmp_path, planted_inside=True))
    assert rep.facts["exclusion"]["kept_within_radius"] == 1
    assert rep.facts["exclusion"]["closest_kept_km"] < 10
    assert "1 INSIDE a zone" in rep.summary


def test_report_without_hotspots_and_counts(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path, n=10, shards=1)
    rep = make_report(folder)
    assert [p.name for p in rep.figures] == ["density_map.png", "countries.png", "tasks.png", "answer_length.png"]
    assert rep.facts["countries"]["countries"] == 5
    assert rep.facts["tasks"] == {"tasks": {"fixture_echo": 10}, "sources": {"fixture": 10}}
    assert rep.facts["density"]["geo_rows"] == 10 and rep.facts["density"]["h3_resolution"] == 1
    a = rep.facts["answers"]["fixture_echo"]
    assert a["without_answer_tag"] == 0 and a["median_answer_chars"] == pytest.approx(11.0, abs=1)


def test_exclusion_radius_default_and_spec() -> None:
    assert exclusion_radius_km({"spec": {"steps": [{"step": "exclude_near_hotspots"}]}}) == 200.0
    assert exclusion_radius_km({"spec": {"steps": [{"step": "exclude_near_hotspots", "radius_km": 50}]}}) == 50.0


def test_circle_is_at_the_radius() -> None:
    ring = circle_lonlat(48.85, 2.35, 200.0)
    d = haversine(np.full(len(ring), 48.85), np.full(len(ring), 2.35), ring[:, 1], ring[:, 0])
    assert np.allclose(d, 200.0, atol=1e-6)
    polar = circle_lonlat(89.0, 170.0, 500.0)  # crosses the antimeridian and nears the pole
    assert np.all(np.abs(polar[:, 0]) <= 180)


def test_land_outlines_ship_with_a_package() -> None:
    rings = land_polygons()
    assert len(rings) > 200
    lon = np.concatenate([r[:, 0] for r in rings])
    lat = np.concatenate([r[:, 1] for r in rings])
    assert lon.min() < -170 and lon.max() > 170 and lat.min() < -80 and lat.max() > 80


def test_cli_report(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path, n=6, shards=1)
    res = CliRunner().invoke(app, ["report", str(folder)])
    assert res.exit_code == 0, res.output
    assert "density_map.png" in res.output and "6 rows" in res.output
    missing = CliRunner().invoke(app, ["report", "nope", "--datasets", str(tmp_path)])
    assert missing.exit_code == 2 and "no built dataset 'nope'" in missing.output


def test_report_of_real_sample_build(tmp_path: Path) -> None:
    from geodata.engine import build

    res = build("mp16-rand-500k", sets=["sample.n=40"], out=tmp_path / "mp16-rand-500k")
    rep = make_report(res.path)
    assert rep.facts["rows"] == 40 and rep.facts["density"]["geo_rows"] == 40
    assert rep.facts["countries"]["countries"] >= 2
    man = json.loads((res.path / "manifest.json").read_text())
    assert all((res.path / f).is_file() for f in man["files"])  # the report touched no shard


def test_many_tasks_get_box_plots(tmp_path: Path) -> None:
    rows = make_rows(8)
    for i, r in enumerate(rows):
        r["task"] = f"task_{i % 4}"
        r["completion"][0]["content"][0]["text"] = "<think>" + "word " * (i + 1) + "</think><answer>" + "x" * (i + 1) + "</answer>"
    folder = write_dataset(tmp_path, "multi", {"default": {"train": [rows]}}, {"default": FEATURES})
    rep = make_report(folder)
    answers = rep.facts["answers"]
    assert sorted(answers) == ["task_0", "task_1", "task_2", "task_3"]
    assert answers["task_3"]["median_answer_chars"] == 6.0  # rows 3 and 7: 4 and 8 characters
    with Image.open(folder / "report/answer_length.png") as im:
        assert im.height >= 400
