"""Geo-R1 scaffolding chain-of-thought rows from MP-16 metadata."""

from __future__ import annotations

import json
import re

import polars as pl
import pycountry
import pytest

from geodata.context import StepContext
from geodata.sources.mp16 import read_mp16, write_sample
from geodata.steps.core import dedupe, validate_coords
from geodata.steps.mp16 import chain_of_region, reverse_geocode
from geodata.steps.scaffold import TEMPLATES, climate_band_expr, country_cues, geo_r1_scaffold, places365_names


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    d = tmp_path_factory.mktemp("mp16")
    write_sample(d, n=300, layouts=("folder",), bad_rows=False)
    ctx = StepContext()
    df = read_mp16(ctx, root=d).rows
    return reverse_geocode(dedupe(validate_coords(df, ctx).rows, ctx).rows, ctx).rows


def _scaffold(base: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    return geo_r1_scaffold(base, StepContext(seed=seed, name="geo_r1_scaffold")).rows


def _text(df: pl.DataFrame) -> list[str]:
    return [c[0]["content"][0]["text"] for c in df["completion"]]


def test_rows_share_the_chain_of_region_answer_and_solution(base: pl.DataFrame) -> None:
    out = _scaffold(base)
    cor = chain_of_region(base, StepContext(name="chain_of_region")).rows
    assert out["task"].unique().to_list() == ["geolocation"]
    assert out["solution"].to_list() == cor["solution"].to_list()
    for a, b in zip(_text(out), _text(cor)):
        assert a.rsplit("<answer>", 1)[1] == b.rsplit("<answer>", 1)[1]
        assert re.fullmatch(r"<think>[^<>]+</think><answer>[^<>]+</answer>", a)
    assert out["prompt"].to_list() == cor["prompt"].to_list()


def test_think_walks_cue_prior_inference(base: pl.DataFrame) -> None:
    out = _scaffold(base)
    for r, text in zip(out.iter_rows(named=True), _text(out)):
        think = text.split("</think>")[0]
        assert r["scene"] in think
        assert r["country"] in think and r["city"] in think
        assert r["climate_band"] in think
        # the country's continent is named unless CLDR gives no language (then the continent
        # sentence names it instead)
        assert r["continent"] in think
        if r["languages"]:
            assert r["languages"] in think
        indoor = max(r["prob_indoor"], r["prob_natural"], r["prob_urban"]) == r["prob_indoor"]
        side = [t[:25] for t in TEMPLATES[f"drive_{r['driving_side']}"]]
        other = [t[:25] for t in TEMPLATES["drive_right" if r["driving_side"] == "left" else "drive_left"]]
        assert any(p in think for p in side) != indoor  # the driving side is a cue only outdoors
        assert not any(p in think for p in other)
        # order: scene first, the coordinates last
        assert think.index(r["scene"]) < think.index(r["country"]) < think.rindex(f"{r['lat']:.6f}"[:6])


def test_wordings_vary_and_are_seeded(base: pl.DataFrame) -> None:
    a, b, c = _scaffold(base, 1), _scaffold(base, 1), _scaffold(base, 2)
    assert _text(a) == _text(b)
    assert _text(a) != _text(c)
    firsts = {t.split(".")[0].split(":")[0][:20] for t in _text(a)}
    assert len(firsts) >= len(TEMPLATES["scene"])
    assert len(set(_text(a))) == a.height


def test_country_cues_table() -> None:
    cues = country_cues()
    codes = {c.alpha_2 for c in pycountry.countries}
    assert codes <= set(cues["country_code"])
    get = {r["country_code"]: r for r in cues.iter_rows(named=True)}
    assert (get["GB"]["driving_side"], get["GB"]["continent"]) == ("left", "Europe")
    assert (get["US"]["driving_side"], get["US"]["continent"]) == ("right", "North America")
    assert (get["BR"]["continent"], get["AU"]["continent"], get["ZA"]["driving_side"]) == (
        "South America", "Oceania", "left")
    assert get["RU"]["languages"] == "Russian (Cyrillic script)"
    assert "Arabic" in get["EG"]["languages"]
    assert set(cues["driving_side"]) == {"left", "right"}


def test_places365_and_climate() -> None:
    p = places365_names()
    assert p.height == 365 and p["s365_label"].to_list() == list(range(365))
    assert p.filter(pl.col("s365_label") == 48)["scene"].item() == "beach"
    bands = pl.DataFrame({"lat": [0.0, 23.5, -40.0, 66.0, 89.0]}).select(climate_band_expr())["band"]
    assert bands.to_list() == ["tropical", "subtropical", "temperate", "subpolar", "polar"]


def test_missing_columns_named(base: pl.DataFrame) -> None:
    from geodata.errors import BuildError

    with pytest.raises(BuildError, match="s365_label"):
        _scaffold(base.drop("s365_label"))


def test_three_doc_rows_match(base: pl.DataFrame, repo) -> None:
    """docs/geo-r1.md shows rows of this exact generator (not hand-written text)."""
    doc = (repo / "docs/geo-r1.md").read_text()
    shown = re.findall(r"<think>[^<>]+</think><answer>Country:[^<>]+</answer>", doc)
    assert len(shown) >= 3
    for t in shown[:3]:
        assert re.fullmatch(r"<think>[^<>]+</think><answer>Country: [^<>]+; Coordinates: \([^<>]+\)</answer>", t)
        think = t.split("</think>")[0]
        first = think[len("<think>"):].split(" ")[0]
        assert any(w.startswith(first) for w in TEMPLATES["scene"])  # written by the generator
