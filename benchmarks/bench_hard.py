"""Benchmark of the MP16-Hard-200K exclusion: H3 path vs scikit-learn BallTree, same run.

Synthetic MP-16-scale data: ``--rows`` photos (default 4.72 M) clustered like Flickr around
GeoNames places (Zipf weights, 1-50 km jitter), and ``--hotspots`` (default 100 k) drawn
from the photos of the most-photographed places (what a base model solves). Prints the time
to index rows by H3 (paid once per dataset), the exclusion given that index, their total,
and ``BallTree(metric="haversine")`` nearest-hotspot queries on ``--balltree-rows`` rows
(default all: about five minutes here; fewer rows give a linear extrapolation, labelled as
such), the speed-up, and whether both agree on every row BallTree saw. Then the reward
throughput (completions per second of ``geolocation``).

    python -m benchmarks.bench_hard                       # full run (BallTree ~300 s)
    python -m benchmarks.bench_hard --balltree-rows 200000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from geodata.geo import EARTH_RADIUS_KM
from geodata.hotspots import choose_resolution, exclude_near, latlng_to_cells

__all__ = ["synthetic_rows", "main"]


def synthetic_rows(n: int, n_hot: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lat, lon, hot_lat, hot_lon): clustered photos and hotspots drawn from popular places."""
    from geodata.geocode import gazetteer

    rng = np.random.default_rng(seed)
    cities = gazetteer().cities
    clat, clon = cities["lat"].to_numpy(), cities["lon"].to_numpy()
    m = clat.size
    perm = rng.permutation(m)
    w = 1.0 / np.arange(1, m + 1) ** 1.1
    w /= w.sum()
    rank = rng.choice(m, n, p=w)  # popularity rank of each photo's place
    k = perm[rank]
    sigma = rng.choice([0.01, 0.1, 0.45], n, p=[0.5, 0.35, 0.15])
    lat = np.clip(clat[k] + rng.normal(0, 1, n) * sigma, -90, 90)
    lon = (clon[k] + rng.normal(0, 1, n) * sigma + 180.0) % 360.0 - 180.0
    # hotspots: photos of the 1000 most popular places
    pool = np.flatnonzero(rank < 1000)
    hot = rng.choice(pool, size=min(n_hot, pool.size), replace=False)
    return lat, lon, lat[hot], lon[hot]


def _fmt(s: float) -> str:
    return f"{s:8.2f} s"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4_720_000)
    ap.add_argument("--hotspots", type=int, default=100_000)
    ap.add_argument("--radius-km", type=float, default=200.0)
    ap.add_argument("--balltree-rows", type=int, default=None, help="rows BallTree queries (default all)")
    ap.add_argument("--reward-n", type=int, default=1_000_000, help="completions for the reward throughput (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    print(f"\n## Hard-200K exclusion ({os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
    t = time.perf_counter()
    lat, lon, hla, hlo = synthetic_rows(args.rows, args.hotspots, args.seed)
    print(f"synthetic data: {lat.size:,} rows, {hla.size:,} hotspots, radius {args.radius_km:g} km "
          f"({time.perf_counter() - t:.1f} s to generate)")
    res = choose_resolution(args.radius_km)

    t = time.perf_counter()
    cells = latlng_to_cells(lat, lon, res)
    t_index = time.perf_counter() - t
    t = time.perf_counter()
    ex = exclude_near(lat, lon, hla, hlo, args.radius_km, cells=cells)
    t_excl = time.perf_counter() - t
    st = ex.stats
    print(f"H3 res {res}: {st['cells']:,} distinct cells ({st['cells_inside']:,} inside, "
          f"{st['cells_boundary']:,} boundary, {st['cells_outside']:,} outside); "
          f"{st['rows_checked_exactly']:,} rows checked by exact haversine; "
          f"{st['rows_excluded']:,} rows excluded, {lat.size - st['rows_excluded']:,} remain")

    from sklearn.neighbors import BallTree

    nb = lat.size if args.balltree_rows is None else min(args.balltree_rows, lat.size)
    sub = np.sort(np.random.default_rng(args.seed + 1).choice(lat.size, nb, replace=False)) if nb < lat.size else np.arange(lat.size)
    t = time.perf_counter()
    tree = BallTree(np.radians(np.c_[hla, hlo]), metric="haversine")
    d, _ = tree.query(np.radians(np.c_[lat[sub], lon[sub]]), k=1)
    bt_mask = d[:, 0] * EARTH_RADIUS_KM <= args.radius_km
    t_bt = time.perf_counter() - t
    t_bt_full = t_bt * lat.size / nb
    agree = int((bt_mask == ex.mask[sub]).sum())

    total = t_index + t_excl
    label = "measured" if nb == lat.size else f"extrapolated from {nb:,} rows"
    print()
    print("| method | rows | time | speed-up vs BallTree |")
    print("|---|---|---|---|")
    print(f"| H3 index of rows (latlng_to_cell, once per dataset) | {lat.size:,} | {_fmt(t_index)} | |")
    print(f"| H3 exclusion given the index (exact) | {lat.size:,} | {_fmt(t_excl)} | {t_bt_full / t_excl:,.0f}x |")
    print(f"| H3 total (index + exclusion) | {lat.size:,} | {_fmt(total)} | {t_bt_full / total:,.0f}x |")
    print(f"| sklearn BallTree(metric='haversine'), k=1 | {nb:,} | {_fmt(t_bt)} | |")
    print(f"| BallTree, all rows ({label}) | {lat.size:,} | {_fmt(t_bt_full)} | 1x |")
    print(f"agreement with BallTree on the rows it queried: {agree:,}/{nb:,}")

    if args.reward_n:
        import polars as pl

        from geodata.tasks.geolocation.rewards import geolocation

        rng = np.random.default_rng(args.seed + 2)
        n = args.reward_n
        tl = rng.uniform(-60, 70, n)
        to = rng.uniform(-180, 180, n)
        pl_ = np.clip(tl + rng.normal(0, 5, n), -90, 90)
        po = (to + rng.normal(0, 5, n) + 180) % 360 - 180
        comp = pl.select(
            pl.format("<think>The scene points to France. Within France, the most likely region is "
                      "Île-de-France; the nearest city is Paris.</think><answer>Country: France; State: "
                      "Île-de-France; City: Paris; Coordinates: ({}, {})</answer>",
                      pl.Series(pl_).round(6), pl.Series(po).round(6))
        ).to_series()
        sol = pl.select(pl.concat_str([pl.lit('{"lat":'), pl.Series(tl).round(6), pl.lit(',"lon":'),
                                       pl.Series(to).round(6), pl.lit("}")])).to_series()
        t = time.perf_counter()
        r = geolocation(comp, sol)
        dt = time.perf_counter() - t
        print(f"\nreward `geolocation` (format x distance) on {n:,} completions: {dt:.2f} s = "
              f"{n / dt / 1e6:.2f} M completions/s (mean reward {r.mean():.3f})")


if __name__ == "__main__":
    main()
