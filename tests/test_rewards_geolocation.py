"""Geolocation rewards: reference values of the Geo-R formula, format rules, product."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geodata.errors import SpecError
from geodata.geo import haversine
from geodata.registry import get_reward, reward_for_task
from geodata.tasks.geolocation.rewards import (
    distance_score,
    format_ok,
    geo_distance,
    geo_format,
    geolocation,
    solution_coords,
)


def _at_km(km):
    """A point on the equator ``km`` east of (0, 0)."""
    return 0.0, float(np.degrees(km / 6371.0))


@pytest.mark.parametrize(
    "km, expect",
    [(0, 1.0), (375, 0.75), (750, 0.5), (1625, 0.35), (2500, 0.2), (11250, 0.1), (20000, 0.0), (20015, 0.0)],
)
def test_reference_values(km, expect):
    lat, lon = _at_km(km)
    c = [f"<think>.</think><answer>({lat:.10f}, {lon:.10f})</answer>"]
    s = [json.dumps({"lat": 0.0, "lon": 0.0})]
    assert float(haversine(0, 0, lat, lon)[()]) == pytest.approx(km, abs=1e-6)
    assert geo_distance(c, s)[0] == pytest.approx(expect, abs=1e-9)
    assert geolocation(c, s)[0] == pytest.approx(expect, abs=1e-9)


def test_formula_pieces_match_the_issue():
    d = np.array([100.0, 1000.0, 5000.0, 19999.0, 30000.0])
    expect = np.where(d <= 750, 1 - 0.5 * d / 750,
                      np.where(d <= 2500, 0.5 - 0.3 * (d - 750) / 1750, np.maximum(0.2 - 0.2 * (d - 2500) / 17500, 0)))
    assert np.allclose(distance_score(d), expect)


def test_breakpoints_are_parameters():
    assert distance_score([100.0], [0, 200], [1.0, 0.0])[0] == pytest.approx(0.5)
    assert geo_distance(["(0, 0)"], ['{"lat": 0, "lon": 0}'], breakpoints_km=[0, 10], scores=[2.0, 0.0])[0] == 2.0
    with pytest.raises(SpecError):
        distance_score([1.0], [0, 750, 700], [1, 0.5, 0])
    with pytest.raises(SpecError):
        distance_score([1.0], [0, 750], [1, 0.5, 0])


GOLD = ("<think>The scene points to France. Within France, the most likely region is Île-de-France. "
        "So the photo was taken near (48.856600, 2.352200).</think><answer>Country: France; "
        "State: Île-de-France; City: Paris; Coordinates: (48.856600, 2.352200)</answer>")
SOL = json.dumps({"lat": 48.8566, "lon": 2.3522, "country": "France", "city": "Paris"})


def test_gold_scores_one_in_every_reward():
    for fn in (geo_distance, geo_format, geolocation):
        assert fn([GOLD], [SOL])[0] == 1.0
    assert reward_for_task("geolocation").name == "geolocation"
    assert get_reward("geolocation").fn([GOLD], [SOL])[0] == 1.0


@pytest.mark.parametrize(
    "text, ok",
    [
        (GOLD, True),
        ("  <think>a</think>\n<answer>(1.5, -2)</answer>\n", True),
        ("<think>a</think><answer>Frankfurt (Oder); (52.3, 14.5)</answer>", True),
        ("<answer>(1, 2)</answer>", False),  # no think
        ("<think>a</think><answer>(1, 2) or (3, 4)</answer>", False),  # two pairs
        ("<think>a</think><answer>1, 2</answer>", False),  # no parentheses
        ("<think>a</think><answer>(1; 2)</answer>", False),  # not comma-separated
        ("<think>a</think><answer>(91, 2)</answer>", False),  # out of range
        ("<think>a</think><answer>(1, 181)</answer>", False),
        ("<think>a</think>extra<answer>(1, 2)</answer>", False),  # text between blocks
        ("<think>a</think><answer>(1, 2)</answer> trailing", False),
        ("<think>a<think>b</think><answer>(1, 2)</answer>", False),  # tag twice
        ("<answer>(1, 2)</answer><think>a</think>", False),  # wrong order
        ("<think>a</think><answer>(1, 2)</answer></answer>", False),
        ("<think>a</think><answer>[1, 2]</answer>", False),
        ("", False),
    ],
)
def test_format_rules(text, ok):
    assert format_ok([text]).tolist() == [ok]
    assert geo_format([text], [SOL]).tolist() == [float(ok)]


def test_product_and_unparsed():
    near = "<think>.</think><answer>(48.86, 2.35)</answer>"
    bad_format_but_close = "(48.8566, 2.3522)"
    unparsed = "<think>.</think><answer>no idea</answer>"
    r = geolocation([near, bad_format_but_close, unparsed], [SOL] * 3)
    assert r[0] > 0.99 and r[1] == 0.0 and r[2] == 0.0
    d = geo_distance([near, bad_format_but_close, unparsed], [SOL] * 3)
    assert d[1] == 1.0 and d[2] == 0.0
    f = geo_format([near, bad_format_but_close, unparsed], [SOL] * 3)
    assert np.allclose(r, d * f)


def test_without_think_requirement():
    assert geo_format(["<answer>(1, 2)</answer>"], [SOL], require_think=False)[0] == 1.0
    assert geo_format(["<think>a</think><answer>(1, 2)</answer>"], [SOL], require_think=False)[0] == 0.0


def test_chat_messages_and_bad_solutions():
    msgs = [{"role": "assistant", "content": [{"type": "text", "text": GOLD}]}]
    assert geolocation([msgs], [SOL])[0] == 1.0
    assert geolocation([GOLD, GOLD], ["not json", '{"lat": null}']).tolist() == [0.0, 0.0]
    lat, lon = solution_coords(['{"latitude": 3, "longitude": -4}', '{"lon": 1, "lat": 2}'])
    assert lat.tolist() == [3.0, 2.0] and lon.tolist() == [-4.0, 1.0]
    with pytest.raises(ValueError, match="completions for"):
        geolocation([GOLD], [SOL, SOL])


def test_batch_is_vectorized_and_consistent():
    rng = np.random.default_rng(0)
    n = 2000
    tl, to = rng.uniform(-80, 80, n), rng.uniform(-180, 180, n)
    pl_, po = rng.uniform(-80, 80, n), rng.uniform(-180, 180, n)
    comps = [f"<think>.</think><answer>({a:.6f}, {b:.6f})</answer>" for a, b in zip(pl_, po)]
    sols = [json.dumps({"lat": a, "lon": b}) for a, b in zip(tl, to)]
    r = geolocation(comps, sols)
    d = haversine(np.round(pl_, 6), np.round(po, 6), tl, to)
    assert np.allclose(r, distance_score(d))
    assert r.dtype == np.float64 and r.shape == (n,)
