import numpy as np
import pytest

from geodata.geo import haversine
from geodata.geocode import country_name, gazetteer, reverse_geocode


def test_known_places():
    out = reverse_geocode([48.8566, 40.7128, -33.8688, 64.1466], [2.3522, -74.0060, 151.2093, -21.9426])
    assert out["country"].to_list() == ["France", "United States", "Australia", "Iceland"]
    assert out["country_code"].to_list() == ["FR", "US", "AU", "IS"]
    assert out["city"][0] == "Paris" and out["city"][1] == "New York City"
    assert out.columns == ["country_code", "country", "admin1", "admin2", "city", "city_km"]


def test_country_names_are_full_english_names():
    assert country_name("GB") == "United Kingdom"
    assert country_name("KR") == "South Korea"
    assert country_name("XK") == "Kosovo"


def test_empty_input():
    out = reverse_geocode(np.array([]), np.array([]))
    assert out.height == 0 and "city" in out.columns


def test_labels_are_great_circle_nearest_by_brute_force():
    rng = np.random.default_rng(7)
    cities = gazetteer().cities
    clat = cities["lat"].to_numpy()
    clon = cities["lon"].to_numpy()
    # high latitudes (where degree-space search errs most), the antimeridian, and random points
    lat = np.concatenate([rng.uniform(50, 70, 60), rng.uniform(-60, 60, 60), rng.uniform(-20, 20, 20)])
    lon = np.concatenate([rng.uniform(-180, 180, 60), rng.uniform(-180, 180, 60), rng.choice([-179.95, 179.95], 20)])
    out = reverse_geocode(lat, lon)
    for i in range(lat.size):
        d = haversine(lat[i], lon[i], clat, clon)
        best = d.min()
        assert out["city_km"][i] == pytest.approx(best, abs=1e-6)


def test_fixes_reverse_geocoders_degree_space_error():
    # At 60°N a degree of longitude is half a degree of latitude on the ground; the
    # Euclidean-in-degrees search of reverse_geocoder picks a farther city for many points.
    import reverse_geocoder as rg

    rng = np.random.default_rng(3)
    lat = rng.uniform(55, 62, 300)
    lon = rng.uniform(5, 40, 300)
    ours = reverse_geocode(lat, lon)
    theirs = rg.search(list(zip(lat.tolist(), lon.tolist())), mode=1, verbose=False)
    their_km = haversine(lat, lon, [float(t["lat"]) for t in theirs], [float(t["lon"]) for t in theirs])
    assert np.all(ours["city_km"].to_numpy() <= their_km + 1e-6)
    assert np.mean(ours["city_km"].to_numpy() < their_km - 1e-6) > 0.02
