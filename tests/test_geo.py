import numpy as np
import pytest

from geodata.geo import (
    EARTH_RADIUS_KM,
    chord_to_km,
    from_unit,
    haversine,
    haversine_matrix,
    km_to_chord,
    to_unit,
    valid_coords,
)


def test_reference_distances():
    assert haversine(0, 0, 0, 180) == pytest.approx(np.pi * EARTH_RADIUS_KM)
    assert haversine(90, 0, -90, 0) == pytest.approx(np.pi * EARTH_RADIUS_KM)
    # one degree of latitude anywhere, one of longitude on the equator
    assert haversine(10, 20, 11, 20) == pytest.approx(2 * np.pi * EARTH_RADIUS_KM / 360)
    assert haversine(0, 0, 0, 1) == pytest.approx(2 * np.pi * EARTH_RADIUS_KM / 360)
    assert haversine(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.56, abs=0.01)


def test_radius_parameter_scales_linearly():
    assert haversine(0, 0, 0, 90, r=1.0) == pytest.approx(np.pi / 2)


def test_antimeridian_and_poles():
    assert haversine(0, 179.9, 0, -179.9) == pytest.approx(haversine(0, 0, 0, 0.2))
    # all meridians meet at the pole
    assert haversine(90, 0, 90, 123) == pytest.approx(0, abs=1e-9)
    assert haversine(89.9, 0, 89.9, 180) == pytest.approx(haversine(0, 0, 0.2, 0), rel=1e-6)


def test_identical_points_and_broadcasting():
    lat = np.array([10.0, -33.9, 64.1])
    lon = np.array([20.0, 18.4, -21.9])
    assert np.all(haversine(lat, lon, lat, lon) == 0)
    d = haversine(lat, lon, 0.0, 0.0)
    assert d.shape == (3,)
    m = haversine_matrix(lat, lon, lat, lon)
    assert m.shape == (3, 3) and np.allclose(np.diag(m), 0) and np.allclose(m, m.T)


def test_matches_geopy_great_circle():
    from geopy.distance import great_circle

    rng = np.random.default_rng(0)
    a = rng.uniform(-90, 90, (50, 2)) * [1, 2]
    b = rng.uniform(-90, 90, (50, 2)) * [1, 2]
    ours = haversine(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    ref = [great_circle(tuple(p), tuple(q), radius=EARTH_RADIUS_KM).km for p, q in zip(a, b)]
    assert np.allclose(ours, ref, rtol=1e-9, atol=1e-6)


def test_valid_coords_rules():
    lat = [0.0, 0.0, 90.0, -90.0, 90.0001, np.nan, 45.0, 45.0, 1e-9]
    lon = [0.0, 1.0, 180.0, -180.0, 0.0, 10.0, np.inf, -180.0001, 0.0]
    assert valid_coords(lat, lon).tolist() == [False, True, True, True, False, False, False, False, True]
    assert valid_coords([], []).tolist() == []


def test_unit_vector_round_trip_and_chords():
    rng = np.random.default_rng(1)
    lat = rng.uniform(-89, 89, 100)
    lon = rng.uniform(-179, 179, 100)
    v = to_unit(lat, lon)
    assert np.allclose(np.linalg.norm(v, axis=1), 1)
    la, lo = from_unit(v)
    assert np.allclose(la, lat) and np.allclose(lo, lon)
    chord = np.linalg.norm(v[:50] - v[50:], axis=1)
    assert np.allclose(chord_to_km(chord), haversine(lat[:50], lon[:50], lat[50:], lon[50:]), atol=1e-6)
    assert np.allclose(km_to_chord(chord_to_km(chord)), chord)
