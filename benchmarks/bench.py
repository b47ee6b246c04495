"""Benchmarks (``make bench``): not tests. Prints rows/s beside the peer measured in the same run.

Run: ``python -m benchmarks.bench [--rows 4720000] [--skip-build] [--skip-hard] [--stat-files N] [--only-stat]``.
Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

MP16_ROWS = 4_720_000


def synthetic_mp16(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MP-16-like coordinates: heavy-tailed clusters around GeoNames places, 15 % scattered."""
    from geodata.geocode import gazetteer

    rng = np.random.default_rng(seed)
    cities = gazetteer().cities
    hubs = rng.choice(cities.height, 5000, replace=False)
    w = 1.0 / np.arange(1, hubs.size + 1) ** 1.1  # Zipf-like popularity
    k = int(n * 0.85)
    pick = hubs[rng.choice(hubs.size, k, p=w / w.sum())]
    lat = np.concatenate([cities["lat"].to_numpy()[pick] + rng.normal(0, 0.05, k),
                          cities["lat"].to_numpy()[rng.integers(0, cities.height, n - k)] + rng.normal(0, 0.3, n - k)])
    lon = np.concatenate([cities["lon"].to_numpy()[pick] + rng.normal(0, 0.07, k),
                          cities["lon"].to_numpy()[rng.integers(0, cities.height, n - k)] + rng.normal(0, 0.3, n - k)])
    perm = rng.permutation(n)
    return np.clip(lat[perm], -89.99, 89.99), (lon[perm] + 180.0) % 360.0 - 180.0


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_haversine(n: int = 20_000_000) -> None:
    from geodata.geo import haversine

    rng = np.random.default_rng(1)
    a = rng.uniform(-90, 90, (4, n))
    dt = _best(lambda: haversine(a[0], a[1] * 2, a[2], a[3] * 2))
    naive = _best(lambda: _numpy_haversine(a[0], a[1] * 2, a[2], a[3] * 2), repeat=1)
    print(f"| haversine, {n / 1e6:.0f} M pairs | {n / dt / 1e6:.1f} M pairs/s | plain numpy: {n / naive / 1e6:.1f} M pairs/s |")


def _numpy_haversine(lat1, lon1, lat2, lon2, r=6371.0):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(a))


def bench_geocode(n: int) -> None:
    import reverse_geocoder as rg

    from geodata.geo import haversine
    from geodata.geocode import gazetteer, nearest_city

    lat, lon = synthetic_mp16(n)
    gazetteer()
    dt = _best(lambda: nearest_city(lat, lon))
    idx, km = nearest_city(lat, lon)
    # reverse_geocoder's own search (its default use: a list of (lat, lon) tuples; a KD-tree
    # over raw degrees, single process)
    coords = list(zip(lat.tolist(), lon.tolist()))
    rg.search(coords[:10], mode=1, verbose=False)  # load its table once, outside the timing
    t = time.perf_counter()
    res = rg.search(coords, mode=1, verbose=False)
    rg_dt = time.perf_counter() - t
    rg_lat = np.array([float(r["lat"]) for r in res])
    rg_lon = np.array([float(r["lon"]) for r in res])
    rg_km = haversine(lat, lon, rg_lat, rg_lon)
    wrong = rg_km > km + 1e-6
    band = (np.abs(lat) >= 50) & (np.abs(lat) < 60)
    print(f"| reverse geocoding, {n / 1e6:.2f} M rows (great-circle KD-tree) | {n / dt / 1e6:.2f} M rows/s ({dt:.2f} s) "
          f"| reverse_geocoder search: {n / rg_dt / 1e6:.2f} M rows/s ({rg_dt:.2f} s); not the nearest city for "
          f"{wrong.mean():.1%} of rows, {wrong[band].mean():.1%} at 50-60° |")


def _write_metadata(path: Path, n: int) -> None:
    lat, lon = synthetic_mp16(n, seed=2)
    rng = np.random.default_rng(3)
    ids = pl.Series(np.arange(n) + 10**9).cast(pl.String)
    pl.DataFrame({
        "IMG_ID": ("ab/cd/" + ids + ".jpg"),
        "AUTHOR": "1234@N00",
        "LAT": np.round(lat, 6),
        "LON": np.round(lon, 6),
        "S3_Label": rng.integers(0, 3, n).astype(np.int32),
        "S16_Label": rng.integers(0, 16, n).astype(np.int32),
        "S365_Label": rng.integers(0, 365, n).astype(np.int32),
        "Prob_indoor": rng.random(n).round(4),
        "Prob_natural": rng.random(n).round(4),
        "Prob_urban": rng.random(n).round(4),
    }).write_csv(path / "mp16_places365.csv")


def bench_build(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mp16"
        root.mkdir()
        _write_metadata(root, n)
        env = {**os.environ, "MP16_ROOT": str(root), "GEODATA_CACHE": str(Path(tmp) / "cache")}
        code = (
            "import resource, time, sys\n"
            "from geodata.engine import build\n"
            "t = time.perf_counter()\n"
            f"r = build('mp16-rand-500k', sets=['sources.mp16.images=none', 'sample.n=500000'], out=sys.argv[1], force=True)\n"
            "dt = time.perf_counter() - t\n"
            "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024\n"
            "print(f'{dt:.2f} {peak:.2f} {r.rows}')\n"
        )
        out = subprocess.run([sys.executable, "-c", code, str(Path(tmp) / "ds")], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-2000:])
            raise SystemExit(1)
        dt, peak, rows = out.stdout.split()[-3:]
        print(f"| whole Rand-500K metadata build, {n / 1e6:.2f} M rows → {int(rows)} rows (CSV read, validate, dedupe, "
              f"geocode, sample, H3, CoR text, Parquet) | {float(dt):.1f} s, peak {float(peak):.2f} GiB | target ≤ 15 s, ≤ 3 GiB |")


def bench_stat(n: int, total: int = MP16_ROWS) -> None:
    """Up-to-date check of a folder-layout build: stat every embedded image file.

    ``n`` small files in MP-16's two-level layout (``ab/cd/ID.jpg``); geodata's
    :func:`~geodata._cache.stat_files` + :func:`~geodata._cache.files_digest` against a plain
    ``os.stat`` loop, both on a warm page cache; the 4.72 M figure is a linear extrapolation.
    """
    from geodata._cache import files_digest, stat_files

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths = []
        for i in range(n):
            d = Path(tmp) / f"{i % 256:02x}" / f"{(i // 256) % 256:02x}"
            if i < 65536:
                d.mkdir(parents=True, exist_ok=True)
            p = d / f"{10**9 + i}.jpg"
            p.write_bytes(b"x")
            paths.append(str(p))
        made = time.perf_counter() - t

        def plain() -> None:
            for p in paths:
                st = os.stat(p)
                _ = (st.st_size, st.st_mtime_ns)

        plain()  # warm the cache for both
        dt_plain = _best(plain, repeat=2)
        dt_one = _best(lambda: files_digest(stat_files(paths, workers=1)), repeat=2)
        dt_pool = _best(lambda: files_digest(stat_files(paths)), repeat=2)
        k = total / n
        print(f"| up-to-date check: stat + digest of {n / 1e3:.0f} k image files (folder layout, warm cache; "
              f"4.72 M extrapolated ×{k:.1f}) | {n / dt_pool / 1e6:.2f} M files/s ({dt_pool:.2f} s; 4.72 M ≈ {dt_pool * k:.0f} s); "
              f"1 thread: {dt_one:.2f} s | plain os.stat loop, no digest: {n / dt_plain / 1e6:.2f} M files/s "
              f"({dt_plain:.2f} s; 4.72 M ≈ {dt_plain * k:.0f} s); creating the files took {made:.1f} s |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=MP16_ROWS)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-hard", action="store_true")
    ap.add_argument("--stat-files", type=int, default=200_000, help="files for the up-to-date check (0 skips)")
    ap.add_argument("--only-stat", action="store_true", help="run only the up-to-date check case")
    args = ap.parse_args(argv)
    print(f"geodata benchmarks on {os.cpu_count()} cores (numpy threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})\n")
    print("| what | geodata | peer, same run |")
    print("|---|---|---|")
    if args.stat_files:
        bench_stat(args.stat_files)
    if args.only_stat:
        return
    bench_haversine()
    bench_geocode(args.rows)
    if not args.skip_build:
        bench_build(args.rows)
    if not args.skip_hard:
        try:
            from . import bench_hard
        except ImportError:
            return
        bench_hard.main([])


if __name__ == "__main__":
    main()
