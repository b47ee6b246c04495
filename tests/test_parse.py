"""The coordinate parser: every supported shape, edge cases, never an exception."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from geodata.tasks.geolocation.parse import answer_bodies, completion_texts, parse_coords


@pytest.mark.parametrize(
    "text, lat, lon",
    [
        ("<think>x</think><answer>(48.8566, 2.3522)</answer>", 48.8566, 2.3522),
        ("<answer>Country: France; City: Paris; Coordinates: (48.85, 2.35)</answer>", 48.85, 2.35),
        ("Coordinates: (-33.87, 151.21)", -33.87, 151.21),
        ("coordinates: 10.5, -20.25", 10.5, -20.25),
        ('{"latitude": 40.7128, "longitude": -74.006}', 40.7128, -74.006),
        ('<answer>{"lat": "1.5", "lng": 2.5}</answer>', 1.5, 2.5),
        ("I think it is [35.68, 139.65].", 35.68, 139.65),
        ("(33.87° S, 151.21° E)", -33.87, 151.21),
        ("(40.7128°N, 74.0060°W)", 40.7128, -74.006),
        ("(+1e1, -2.5e1)", 10.0, -25.0),
        ("(-90, 180)", -90.0, 180.0),
        ("(.5, -.25)", 0.5, -0.25),
        ("Île-de-France (48.8566, 2.3522)", 48.8566, 2.3522),
    ],
)
def test_shapes(text, lat, lon):
    p = parse_coords([text])
    assert p.ok.tolist() == [True]
    assert p.lat[0] == pytest.approx(lat) and p.lon[0] == pytest.approx(lon)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "I cannot tell.",
        "(91.0, 10.0)",
        "(-90.0001, 0)",
        "(10, 180.5)",
        "Coordinates: (nan, 5)",
        "(inf, 3)",
        "lat 5 lon 6",
        "<answer>somewhere in Europe</answer>",
        '{"latitude": 12.0}',
        "(1e400, 2)",
    ],
)
def test_unparsed(text):
    p = parse_coords([text])
    assert p.ok.tolist() == [False] and math.isnan(p.lat[0]) and math.isnan(p.lon[0])
    assert p.n_unparsed == 1


def test_answer_block_wins_over_reasoning():
    # numbers in <think> are ignored when an answer exists, even without coordinates in it
    p = parse_coords([
        "<think>maybe (1, 2)</think><answer>(3, 4)</answer>",
        "<think>maybe (1, 2)</think><answer>no idea</answer>",
        "<answer>(1, 2)</answer><answer>(5, 6)</answer>",
        "<answer>(7, 8)</answer> trailing (9, 9)",
    ])
    assert p.lat[0] == 3 and np.isnan(p.lat[1]) and p.lat[2] == 5 and p.lat[3] == 7


def test_preference_and_last_match():
    p = parse_coords(["(1, 2) then Coordinates: (3, 4)", "(1, 2) and later (5, 6)", "[1, 2] (7, 8)"])
    assert p.lat.tolist() == [3.0, 5.0, 7.0]


def test_message_lists_and_garbage_types():
    msgs = [{"role": "assistant", "content": [{"type": "text", "text": "<answer>(3, 4)</answer>"}]}]
    p = parse_coords([msgs, 12345, {"a": 1}, [{"no": "content"}]])
    assert p.ok.tolist() == [True, False, False, False]
    assert completion_texts(pl.Series([None, None])).dtype == pl.String


def test_batch_shapes_and_empty():
    assert parse_coords([]).lat.size == 0
    p = parse_coords(pl.Series(["(1, 2)"] * 5 + ["x"] * 5))
    assert p.ok.sum() == 5 and p.lat.dtype == np.float64


def test_answer_bodies_byte_offsets_with_unicode():
    s = pl.Series(["ééé<answer>Zürich (47.37, 8.54)</answer>", "<answer>open ended"])
    assert answer_bodies(s).to_list() == ["Zürich (47.37, 8.54)", "open ended"]
