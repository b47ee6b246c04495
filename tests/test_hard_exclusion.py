"""The H3-indexed exclusion equals brute force on every row (randomized and adversarial)."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from geodata.geo import haversine
from geodata.hotspots import (
    brute_force_near,
    cell_centers,
    cell_radius_km,
    cell_resolution,
    choose_resolution,
    exclude_near,
    latlng_to_cells,
)


def _destination(lat, lon, km, bearing_deg):
    """Point ``km`` along the great circle from (lat, lon) at ``bearing_deg`` (R = 6371 km)."""
    d = np.asarray(km, dtype=float) / 6371.0
    b = np.radians(bearing_deg)
    p1, l1 = np.radians(lat), np.radians(lon)
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(b))
    l2 = l1 + np.arctan2(np.sin(b) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
    return np.degrees(p2), (np.degrees(l2) + 180.0) % 360.0 - 180.0


def _check(lat, lon, hla, hlo, radius, **kw):
    ex = exclude_near(lat, lon, hla, hlo, radius, **kw)
    bf = brute_force_near(lat, lon, hla, hlo, radius)
    bad = np.flatnonzero(ex.mask != bf)
    assert bad.size == 0, f"{bad.size} rows differ, e.g. row {bad[:3]}"
    # every excluded row names a hotspot that is really within the radius
    hit = np.flatnonzero(ex.mask)
    d = haversine(lat[hit], lon[hit], hla[ex.hotspot[hit]], hlo[ex.hotspot[hit]])
    assert (d <= radius).all()
    assert (ex.hotspot[~ex.mask] == -1).all()
    return ex


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_uniform_and_clustered(seed):
    rng = np.random.default_rng(seed)
    # uniform on the sphere plus clusters
    n = 6000
    z = rng.uniform(-1, 1, n)
    lat = np.degrees(np.arcsin(z))
    lon = rng.uniform(-180, 180, n)
    centers = rng.integers(0, n, 20)
    clat = np.clip(lat[centers][rng.integers(0, 20, 3000)] + rng.normal(0, 2, 3000), -90, 90)
    clon = (lon[centers][rng.integers(0, 20, 3000)] + rng.normal(0, 2, 3000) + 180) % 360 - 180
    lat = np.concatenate([lat, clat])
    lon = np.concatenate([lon, clon])
    hot = rng.choice(lat.size, 150, replace=False)
    ex = _check(lat, lon, lat[hot], lon[hot], 200.0)
    assert 0 < ex.stats["rows_excluded"] < lat.size
    assert ex.stats["cells_inside"] > 0 and ex.stats["cells_boundary"] > 0


@pytest.mark.parametrize("radius", [25.0, 200.0, 750.0])
def test_other_radii_and_resolutions(radius):
    rng = np.random.default_rng(7)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 4000)))
    lon = rng.uniform(-180, 180, 4000)
    hla, hlo = lat[:60], lon[:60]
    _check(lat, lon, hla, hlo, radius)
    _check(lat, lon, hla, hlo, radius, res=2)


def test_points_at_199_9_and_200_1_km():
    rng = np.random.default_rng(3)
    hla = np.array([48.8566, 0.0, -33.87, 64.1, 10.0])
    hlo = np.array([2.3522, 179.95, 151.21, -21.9, -179.99])
    rows_lat, rows_lon, expect = [], [], []
    for i in range(hla.size):
        for km, inside in ((199.9, True), (200.1, False), (199.999, True), (200.001, False), (200.0000005, False)):
            b = rng.uniform(0, 360, 16)
            la, lo = _destination(np.full(16, hla[i]), np.full(16, hlo[i]), np.full(16, km), b)
            rows_lat.append(la)
            rows_lon.append(lo)
            expect.append(np.full(16, inside))
    lat, lon = np.concatenate(rows_lat), np.concatenate(rows_lon)
    # keep each hotspot's ring points: far from the other hotspots
    expect = np.concatenate(expect)
    ex = _check(lat, lon, hla, hlo, 200.0)
    assert (ex.mask == expect).all()


def test_poles_and_antimeridian():
    hla = np.array([89.9, -88.0, 0.0, 45.0])
    hlo = np.array([0.0, 120.0, 180.0, -179.9])
    rng = np.random.default_rng(5)
    lat = np.concatenate([rng.uniform(86, 90, 2000), rng.uniform(-90, -86, 2000),
                          rng.uniform(-3, 3, 2000), rng.uniform(42, 48, 2000)])
    lon = np.concatenate([rng.uniform(-180, 180, 4000), rng.uniform(176, 180, 1000),
                          rng.uniform(-180, -176, 1000), rng.choice([-1, 1], 2000) * rng.uniform(176, 180, 2000)])
    lat = np.append(lat, [90.0, -90.0, 0.0, 0.0])
    lon = np.append(lon, [0.0, 45.0, 180.0, -180.0])
    ex = _check(lat, lon, hla, hlo, 200.0)
    assert ex.mask[-4:].tolist() == [True, False, True, True]


def test_exactly_on_the_radius_is_excluded():
    # same meridian: (0,0) to (lat,0) is exactly lat degrees of arc
    lat = np.array([np.degrees(200.0 / 6371.0)])
    r = float(haversine(0.0, 0.0, lat[0], 0.0)[()])
    ex = exclude_near(lat, np.array([0.0]), [0.0], [0.0], r)
    assert ex.mask.tolist() == [True]
    ex = exclude_near(lat, np.array([0.0]), [0.0], [0.0], np.nextafter(r, 0))
    assert ex.mask.tolist() == brute_force_near(lat, [0.0], [0.0], [0.0], np.nextafter(r, 0)).tolist()


def test_empty_and_invalid_inputs():
    ex = exclude_near([], [], [1.0], [1.0], 200.0)
    assert ex.mask.size == 0
    ex = exclude_near([1.0, 2.0], [1.0, 2.0], [], [], 200.0)
    assert not ex.mask.any() and (ex.hotspot == -1).all()
    # NaN / out-of-range rows are never excluded; invalid hotspots are ignored
    ex = exclude_near([np.nan, 95.0, 1.0], [1.0, 1.0, 1.0], [1.0, np.nan], [1.0, 5.0], 200.0)
    assert ex.mask.tolist() == [False, False, True]
    assert brute_force_near([np.nan, 95.0, 1.0], [1.0, 1.0, 1.0], [1.0, np.nan], [1.0, 5.0], 200.0).tolist() == [False, False, True]
    with pytest.raises(ValueError, match="radius_km"):
        exclude_near([1.0], [1.0], [1.0], [1.0], -1.0)
    with pytest.raises(ValueError, match="differ in length"):
        exclude_near([1.0, 2.0], [1.0], [1.0], [1.0], 10.0)


def test_precomputed_cells_are_used_and_checked():
    rng = np.random.default_rng(11)
    lat = rng.uniform(-60, 60, 3000)
    lon = rng.uniform(-180, 180, 3000)
    cells = latlng_to_cells(lat, lon, 4)
    a = exclude_near(lat, lon, lat[:30], lon[:30], 300.0, cells=cells)
    assert a.stats["res"] == 4
    assert (a.mask == brute_force_near(lat, lon, lat[:30], lon[:30], 300.0)).all()
    with pytest.raises(ValueError, match="resolution"):
        exclude_near(lat, lon, lat[:30], lon[:30], 300.0, cells=cells, res=5)
    with pytest.raises(ValueError, match="entries"):
        exclude_near(lat, lon, lat[:30], lon[:30], 300.0, cells=cells[:10])


def test_cell_radius_bound_holds_on_random_cells():
    rng = np.random.default_rng(13)
    for res in (3, 5, 6, 8):
        lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 400)))
        lon = rng.uniform(-180, 180, 400)
        cells = np.unique(latlng_to_cells(lat, lon, res))
        clat, clon = cell_centers(cells)
        worst = 0.0
        for c, a, b in zip(cells.tolist(), clat, clon):
            v = np.array(h3.api.basic_int.cell_to_boundary(c))
            worst = max(worst, float(haversine(a, b, v[:, 0], v[:, 1]).max()))
        assert worst <= cell_radius_km(res)
    # pentagons are included in the bound
    for p in h3.get_pentagons(6):
        c = h3.str_to_int(p)
        a, b = h3.cell_to_latlng(p)
        v = np.array(h3.cell_to_boundary(p))
        assert haversine(a, b, v[:, 0], v[:, 1]).max() <= cell_radius_km(6)
        assert cell_resolution(np.array([c], dtype=np.uint64))[0] == 6


def test_latlng_to_cells_matches_h3():
    lat = np.array([48.8566, -33.87, 89.99, np.nan])
    lon = np.array([2.3522, 151.21, 10.0, 3.0])
    got = latlng_to_cells(lat, lon, 7)
    for i in range(3):
        assert int(got[i]) == h3.str_to_int(h3.latlng_to_cell(lat[i], lon[i], 7))
    assert got[3] == 0
    assert choose_resolution(200.0) == 5 and choose_resolution(2000.0) == 2
