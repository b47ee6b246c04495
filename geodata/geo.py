"""Geo core: vectorized great-circle distance, coordinate validation, unit vectors.

All angles are degrees; distances are kilometres on a sphere of radius ``r``
(default 6371.0 km, as Geo-R and GeoEstimation use).
"""

from __future__ import annotations

import numexpr as ne
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "EARTH_RADIUS_KM",
    "haversine",
    "haversine_matrix",
    "valid_coords",
    "to_unit",
    "from_unit",
    "chord_to_km",
    "km_to_chord",
]

EARTH_RADIUS_KM = 6371.0


def _f64(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def haversine(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike, r: float = EARTH_RADIUS_KM
) -> NDArray[np.float64]:
    """Great-circle distance in km between points, element-wise with broadcasting.

    Examples
    --------
    >>> round(float(haversine(0, 0, 0, 180)), 3)
    20015.087
    >>> round(float(haversine(48.8566, 2.3522, 51.5074, -0.1278)), 1)
    343.6
    """
    # numexpr evaluates the whole expression in one multi-threaded, cache-blocked pass.
    a1, o1, a2, o2 = _f64(lat1), _f64(lon1), _f64(lat2), _f64(lon2)
    k = np.pi / 360.0  # half a degree in radians
    h = ne.evaluate(
        "sin((a2 - a1) * k) ** 2 + cos(a1 * 2 * k) * cos(a2 * 2 * k) * sin((o2 - o1) * k) ** 2"
    )
    return ne.evaluate("2.0 * r * arcsin(sqrt(where(h > 1.0, 1.0, h)))")


def haversine_matrix(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike, r: float = EARTH_RADIUS_KM
) -> NDArray[np.float64]:
    """All-pairs distances: shape ``(len(lat1), len(lat2))``."""
    return haversine(
        _f64(lat1)[:, None], _f64(lon1)[:, None], _f64(lat2)[None, :], _f64(lon2)[None, :], r
    )


def valid_coords(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.bool_]:
    """True where a coordinate is usable: finite, in range, and not exactly (0, 0).

    (0, 0) is the value broken GPS tags take, not a place photos are taken.

    Examples
    --------
    >>> valid_coords([0.0, 90.0, 91.0, float("nan"), 10.0], [0.0, 180.0, 0.0, 0.0, -180.0]).tolist()
    [False, True, False, False, True]
    """
    la = _f64(lat)
    lo = _f64(lon)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90.0) & (np.abs(lo) <= 180.0)
    return ok & ~((la == 0.0) & (lo == 0.0))


def to_unit(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors (n, 3) on the sphere for degree coordinates."""
    la = np.radians(_f64(lat))
    lo = np.radians(_f64(lon))
    out = np.empty(la.shape + (3,), dtype=np.float64)
    ne.evaluate("cos(la) * cos(lo)", out=out[..., 0])
    ne.evaluate("cos(la) * sin(lo)", out=out[..., 1])
    ne.evaluate("sin(la)", out=out[..., 2])
    return out


def from_unit(xyz: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Degree (lat, lon) of (n, 3) vectors (need not be unit length)."""
    v = _f64(xyz)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    lon = np.degrees(np.arctan2(y, x))
    return lat, lon


def chord_to_km(chord: ArrayLike, r: float = EARTH_RADIUS_KM) -> NDArray[np.float64]:
    """Great-circle km for a chord length between unit vectors."""
    return 2.0 * r * np.arcsin(np.clip(_f64(chord) * 0.5, 0.0, 1.0))


def km_to_chord(km: ArrayLike, r: float = EARTH_RADIUS_KM) -> NDArray[np.float64]:
    """Chord length between unit vectors that are ``km`` apart on the sphere."""
    return 2.0 * np.sin(np.clip(_f64(km) / (2.0 * r), 0.0, np.pi / 2))
