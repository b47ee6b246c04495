"""Exact exclusion of every point within a great-circle radius of any hotspot, H3-indexed.

Geo-R's *hard* set drops every training image that lies within ``radius_km`` (200 km) of a
*hotspot*, an image the base model already localizes. A brute-force test is
``n_rows x n_hotspots`` haversines (4.72 M x 100 k = 4.7e11); this module decides the same
thing exactly while touching almost every row only through its H3 cell:

1. every row gets its H3 cell at a resolution chosen from the radius
   (:func:`choose_resolution`: the coarsest whose cells fit in ``radius / 8``);
2. for each *distinct* cell, the great-circle distance ``d`` from its centre to the nearest
   hotspot is found with a k-d tree over hotspot unit vectors (chord distance is monotone in
   great-circle distance, so the nearest by chord is the nearest on the sphere);
3. with ``rho`` a proven bound on the distance from a cell's centre to any point of the cell
   (:func:`cell_radius_km`), the triangle inequality classifies the cell:
   ``d + rho <= radius`` - every row of the cell is within the radius (excluded at once);
   ``d - rho > radius`` - no row of the cell can be (kept at once); otherwise the cell is a
   *boundary* cell;
4. rows of boundary cells are decided one by one: nearest hotspot by chord, then the exact
   haversine (R = 6371 km) against ``radius_km``; rows whose nearest hotspot lies within a
   micrometre of the radius are re-checked against every hotspot in reach.

The result equals the brute-force rule ``any(haversine(row, h) <= radius_km)`` on every row,
including rows at 199.9/200.1 km, at the poles and across the antimeridian (tests compare
both on randomized and adversarial sets). Rows with non-finite or out-of-range coordinates
are never excluded (their haversine is NaN, which is not ``<= radius``).

Examples
--------
>>> import numpy as np
>>> res = exclude_near(np.array([48.85, 48.85, -33.9]), np.array([2.35, 5.1, 151.2]),
...                    np.array([48.86]), np.array([2.34]), radius_km=200.0)
>>> res.mask.tolist()
[True, False, False]
>>> res.hotspot.tolist()
[0, -1, -1]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import h3
import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from .geo import EARTH_RADIUS_KM, chord_to_km, haversine, km_to_chord, to_unit, valid_coords

__all__ = [
    "Exclusion",
    "exclude_near",
    "brute_force_near",
    "choose_resolution",
    "cell_radius_km",
    "latlng_to_cells",
    "cell_centers",
    "cell_resolution",
]

#: Largest great-circle distance (km) from an H3 cell's centre to one of its vertices, over
#: *every* cell of resolutions 0-5 (measured by enumerating all cells with h3 4.5:
#: ``max(haversine(cell_to_latlng(c), v) for v in cell_to_boundary(c))``). Cells are
#: spherical polygons with great-circle edges (straight in H3's gnomonic face projection) whose
#: vertices lie inside a cap smaller than a hemisphere, so the whole cell lies within this
#: distance of its centre.
_MAX_CIRCUMRADIUS_KM = (1382.851319458319, 529.8097362279714, 200.64578429785482,
                        75.85847588515699, 28.672970308266912, 10.837426829649576)
#: Aperture-7 refinement shrinks cells by 1/sqrt(7) per level; the measured ratio of
#: successive maxima is 0.3783-0.3831, so finer levels use 0.3785 and a 2 % margin.
_RATIO = 0.3785
#: Safety margin on the bound (relative, plus an absolute 1 m) for floating-point noise in
#: point-in-cell assignment; it only moves rows from "decided at once" to "checked exactly".
_MARGIN_REL, _MARGIN_ABS_KM = 0.02, 0.001
#: Rows whose nearest hotspot is within this band above the radius are re-checked exactly
#: against every hotspot in reach (guards chord-vs-haversine rounding at the boundary).
_TIE_KM = 1e-6


def cell_radius_km(res: int) -> float:
    """An upper bound (km) on the distance from an H3 cell's centre to any point of the cell.

    Examples
    --------
    >>> round(cell_radius_km(4), 2)
    29.25
    >>> cell_radius_km(6) < cell_radius_km(5) < 12
    True
    """
    if not 0 <= res <= 15:
        raise ValueError(f"h3 resolution must be 0-15, got {res}")
    if res < len(_MAX_CIRCUMRADIUS_KM):
        base = _MAX_CIRCUMRADIUS_KM[res]
    else:
        base = _MAX_CIRCUMRADIUS_KM[-1] * _RATIO ** (res - len(_MAX_CIRCUMRADIUS_KM) + 1)
    return base * (1.0 + _MARGIN_REL) + _MARGIN_ABS_KM


def choose_resolution(radius_km: float, cells_per_radius: float = 8.0) -> int:
    """The coarsest H3 resolution whose cells fit within ``radius_km / cells_per_radius``.

    Coarser cells mean fewer distinct cells to classify; finer cells mean fewer rows in
    boundary cells. With the default, 200 km gives resolution 5 (cells of at most ~11 km).

    Examples
    --------
    >>> choose_resolution(200.0)
    5
    >>> choose_resolution(25.0)
    7
    """
    target = float(radius_km) / cells_per_radius
    for res in range(16):
        if cell_radius_km(res) <= target:
            return res
    return 15


def _as_f64(x: ArrayLike) -> NDArray[np.float64]:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64).ravel())


def latlng_to_cells(lat: ArrayLike, lon: ArrayLike, res: int) -> NDArray[np.uint64]:
    """H3 cells (as uint64) of degree coordinates; 0 where the coordinate is invalid.

    One call into the H3 C library per row (about 0.4-0.6 us); the rest of the exclusion is
    per distinct cell.

    Examples
    --------
    >>> c = latlng_to_cells([48.8566, float("nan")], [2.3522, 0.0], 5)
    >>> h3.int_to_str(int(c[0])), int(c[1])
    ('851fb467fffffff', 0)
    """
    la = _as_f64(lat)
    lo = _as_f64(lon)
    ok = valid_coords(la, lo) | ((la == 0.0) & (lo == 0.0))
    out = np.zeros(la.shape[0], dtype=np.uint64)
    if ok.any():
        f = h3.api.basic_int.latlng_to_cell
        idx = np.flatnonzero(ok)
        out[idx] = np.fromiter(
            (f(a, b, res) for a, b in zip(la[idx].tolist(), lo[idx].tolist())),
            dtype=np.uint64,
            count=idx.size,
        )
    return out


def cell_resolution(cells: NDArray[np.uint64]) -> NDArray[np.int64]:
    """Resolution field of H3 cell integers (bits 52-55), vectorized."""
    return ((np.asarray(cells, dtype=np.uint64) >> np.uint64(52)) & np.uint64(0xF)).astype(np.int64)


def cell_centers(cells: NDArray[np.uint64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Degree (lat, lon) of the centres of H3 cell integers."""
    f = h3.api.basic_int.cell_to_latlng
    n = len(cells)
    flat = np.fromiter(
        (x for c in np.asarray(cells).tolist() for x in f(c)), dtype=np.float64, count=2 * n
    )
    return flat[0::2], flat[1::2]


@dataclass
class Exclusion:
    """Result of :func:`exclude_near`.

    Attributes
    ----------
    mask
        True where the row is within ``radius_km`` of some hotspot.
    hotspot
        For an excluded row, the index of a hotspot within the radius (for a row of a cell
        decided at once: the hotspot nearest the cell's centre; for a boundary row: its own
        nearest hotspot); -1 for rows kept.
    stats
        Counts and timings: rows, hotspots, resolution, distinct cells, cells inside /
        boundary / outside, rows decided exactly.
    """

    mask: NDArray[np.bool_]
    hotspot: NDArray[np.int64]
    stats: dict[str, Any] = field(default_factory=dict)


def _dense_codes(cells: NDArray[np.uint64]) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """Distinct values and, per row, the index of its value (hash-based via polars)."""
    s = pl.Series("c", cells, dtype=pl.UInt64)
    uniq = s.unique()
    lut = pl.DataFrame({"c": uniq, "k": np.arange(uniq.len(), dtype=np.int64)})
    codes = pl.DataFrame({"c": s}).join(lut, on="c", how="left", maintain_order="left")["k"]
    return uniq.to_numpy(), codes.to_numpy()


def exclude_near(
    lat: ArrayLike,
    lon: ArrayLike,
    hot_lat: ArrayLike,
    hot_lon: ArrayLike,
    radius_km: float,
    *,
    res: int | None = None,
    cells: ArrayLike | None = None,
    workers: int = -1,
    r: float = EARTH_RADIUS_KM,
) -> Exclusion:
    """Mark the rows within ``radius_km`` (great circle) of any hotspot; exact.

    Parameters
    ----------
    lat, lon
        Row coordinates in degrees.
    hot_lat, hot_lon
        Hotspot coordinates in degrees (invalid ones are ignored).
    radius_km
        Exclusion radius; a row at exactly this distance is excluded (``<=``).
    res
        H3 resolution of the row index (default :func:`choose_resolution`).
    cells
        Precomputed H3 cells of the rows at ``res`` (uint64, 0 for invalid rows), e.g. a
        cached column; computed when omitted.
    workers
        Threads for the k-d tree queries (-1: all cores).
    r
        Sphere radius, km.

    Examples
    --------
    >>> ex = exclude_near([0.0, 0.0], [179.9, -177.9], [0.0], [-179.9], radius_km=200.0)
    >>> ex.mask.tolist(), ex.stats["rows_excluded"]
    ([True, False], 1)
    """
    la = _as_f64(lat)
    lo = _as_f64(lon)
    if la.shape != lo.shape:
        raise ValueError(f"lat and lon differ in length ({la.size} vs {lo.size})")
    hla = _as_f64(hot_lat)
    hlo = _as_f64(hot_lon)
    hok = valid_coords(hla, hlo) | ((hla == 0.0) & (hlo == 0.0))
    hidx = np.flatnonzero(hok)
    n = la.size
    radius_km = float(radius_km)
    if not np.isfinite(radius_km) or radius_km < 0:
        raise ValueError(f"radius_km must be a finite non-negative number, got {radius_km}")
    mask = np.zeros(n, dtype=bool)
    by = np.full(n, -1, dtype=np.int64)
    stats: dict[str, Any] = {"rows": n, "hotspots": int(hidx.size), "radius_km": radius_km}
    if n == 0 or hidx.size == 0:
        stats.update(rows_excluded=0, rows_checked_exactly=0)
        return Exclusion(mask, by, stats)

    if cells is not None:
        cl = np.asarray(cells, dtype=np.uint64).ravel()
        if cl.shape != la.shape:
            raise ValueError(f"cells has {cl.size} entries for {n} rows")
        nz = cl[cl != 0]
        got = np.unique(cell_resolution(nz)) if nz.size else np.array([], dtype=np.int64)
        if got.size > 1 or (res is not None and got.size == 1 and int(got[0]) != res):
            raise ValueError(f"cells mix or mismatch resolutions: found {got.tolist()}, res={res}")
        if res is None:
            res = int(got[0]) if got.size else choose_resolution(radius_km)
    else:
        if res is None:
            res = choose_resolution(radius_km)
        cl = latlng_to_cells(la, lo, res)
    # scale the cell bound to the sphere radius in use (the table is for 6371 km)
    rho = cell_radius_km(res) * (r / EARTH_RADIUS_KM)
    stats["res"] = res
    stats["cell_radius_km"] = rho

    tree = cKDTree(to_unit(hla[hidx], hlo[hidx]))
    uniq, code = _dense_codes(cl)
    valid_cell = uniq != 0
    ulat = np.full(uniq.size, np.nan)
    ulon = np.full(uniq.size, np.nan)
    ulat[valid_cell], ulon[valid_cell] = cell_centers(uniq[valid_cell])
    reach = radius_km + rho + 2 * _TIE_KM
    bound = float(km_to_chord(reach, r)) * (1 + 1e-9)
    dist = np.full(uniq.size, np.inf)
    near = np.full(uniq.size, hidx.size, dtype=np.int64)
    if valid_cell.any():
        dc, ic = tree.query(to_unit(ulat[valid_cell], ulon[valid_cell]), k=1,
                            distance_upper_bound=bound, workers=workers)
        dist[valid_cell] = np.where(np.isfinite(dc), chord_to_km(np.minimum(dc, 2.0), r), np.inf)
        near[valid_cell] = ic
    inside = valid_cell & (dist + rho <= radius_km - _TIE_KM)
    boundary = valid_cell & ~inside & (dist - rho <= radius_km + _TIE_KM)
    stats["cells"] = int(valid_cell.sum())
    stats["cells_inside"] = int(inside.sum())
    stats["cells_boundary"] = int(boundary.sum())
    stats["cells_outside"] = int(valid_cell.sum() - inside.sum() - boundary.sum())

    # 1. rows of cells wholly inside: excluded at once
    row_inside = inside[code]
    mask[row_inside] = True
    by[row_inside] = hidx[near[code[row_inside]]]

    # 2. rows of boundary cells: exact haversine to the nearest hotspot
    rows_b = np.flatnonzero(boundary[code])
    stats["rows_checked_exactly"] = int(rows_b.size)
    if rows_b.size:
        bound_b = float(km_to_chord(radius_km + _TIE_KM, r)) * (1 + 1e-9)
        db, ib = tree.query(to_unit(la[rows_b], lo[rows_b]), k=1,
                            distance_upper_bound=bound_b, workers=workers)
        found = np.isfinite(db)
        fb = rows_b[found]
        hb = hidx[ib[found]]
        d = haversine(la[fb], lo[fb], hla[hb], hlo[hb], r)
        ok = d <= radius_km
        mask[fb[ok]] = True
        by[fb[ok]] = hb[ok]
        # nearest by chord lies just above the radius: check every hotspot in reach
        tie = fb[~ok]
        if tie.size:
            lists = tree.query_ball_point(to_unit(la[tie], lo[tie]), r=bound_b, workers=workers)
            for row, cand in zip(tie.tolist(), lists):
                if not cand:
                    continue
                hc = hidx[np.asarray(cand, dtype=np.int64)]
                dd = haversine(la[row], lo[row], hla[hc], hlo[hc], r)
                j = int(np.argmin(dd))
                if dd[j] <= radius_km:
                    mask[row] = True
                    by[row] = hc[j]
    stats["rows_excluded"] = int(mask.sum())
    return Exclusion(mask, by, stats)


def brute_force_near(
    lat: ArrayLike,
    lon: ArrayLike,
    hot_lat: ArrayLike,
    hot_lon: ArrayLike,
    radius_km: float,
    *,
    chunk: int = 2048,
    r: float = EARTH_RADIUS_KM,
) -> NDArray[np.bool_]:
    """Reference rule: ``any(haversine(row, h) <= radius_km for h in hotspots)``, row chunks.

    Quadratic; for tests and spot checks only.

    Examples
    --------
    >>> brute_force_near([0.0, 0.0], [1.0, 3.0], [0.0], [0.0], 200.0).tolist()
    [True, False]
    """
    la = _as_f64(lat)
    lo = _as_f64(lon)
    hla = _as_f64(hot_lat)
    hlo = _as_f64(hot_lon)
    hok = valid_coords(hla, hlo) | ((hla == 0.0) & (hlo == 0.0))
    hla, hlo = hla[hok], hlo[hok]
    out = np.zeros(la.size, dtype=bool)
    if hla.size == 0:
        return out
    for s in range(0, la.size, chunk):
        d = haversine(la[s : s + chunk, None], lo[s : s + chunk, None], hla[None, :], hlo[None, :], r)
        out[s : s + chunk] = (d <= radius_km).any(axis=1)
    return out & (valid_coords(la, lo) | ((la == 0.0) & (lo == 0.0)))
