"""Geolocation rewards (Geo-R): great-circle distance, answer format, and their product.

All three take a batch of completions (strings or chat message lists) and the rows'
``solution`` JSON strings (``{"lat": …, "lon": …, …}``) and return one float per completion.
The work is vectorized: polars string kernels for parsing, numpy for the distance, so a
million completions score in about a second on one core (see ``docs/benchmarks.md``).

* ``geo_distance`` — piecewise linear in the great-circle error ``d`` (haversine,
  R = 6371 km): ``1 - 0.5 d/750`` up to 750 km, ``0.5 - 0.3 (d-750)/1750`` up to 2500 km,
  ``0.2 - 0.2 (d-2500)/17500`` beyond, floored at 0 (so 0 from 20 000 km on). The
  breakpoints and the scores at them are parameters. An unparsed prediction scores 0.
* ``geo_format`` — 1 only for ``<think>…</think><answer>…</answer>`` (each tag once, in this
  order, nothing but whitespace around them) whose answer holds exactly one
  ``(latitude, longitude)`` pair of plain numbers in parentheses, comma-separated, in range —
  or, with no such pair, exactly one ``{'LOC': [lat, lon]}`` (the answer form of Geo-R's
  released code, ``aialt/geo-r`` ``src/open-r1-multimodal/src/open_r1/vlm_modules/
  qwen_module.py`` ``extract_loc_from_string``).

``curve="paper"`` (default) is the paper's 750 / 2500 / 20000 km curve; ``curve="released"``
is the released code's ``distance_to_reward`` (middle breakpoint 3000 km, rounded to 4
decimals).
* ``geolocation`` — ``geo_distance × geo_format`` (the reward of ``task: geolocation`` rows).

Examples
--------
>>> sol = ['{"lat": 48.8566, "lon": 2.3522}']
>>> gold = "<think>Paris.</think><answer>Coordinates: (48.8566, 2.3522)</answer>"
>>> float(geolocation([gold], sol)[0])
1.0
>>> float(geo_format(["<answer>(48.8566, 2.3522)</answer>"], sol)[0])
0.0
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ...errors import SpecError
from ...geo import EARTH_RADIUS_KM, haversine
from .parse import NUMBER, PAIR_IN_PARENS, completion_texts, parse_coords
from ...registry import reward

__all__ = [
    "geo_distance",
    "geo_format",
    "geolocation",
    "distance_score",
    "solution_coords",
    "DEFAULT_BREAKPOINTS_KM",
    "DEFAULT_SCORES",
    "RELEASED_BREAKPOINTS_KM",
    "curve_score",
]

#: Geo-R's breakpoints (km) and the reward at each; linear in between, 0 beyond the last.
DEFAULT_BREAKPOINTS_KM = (0.0, 750.0, 2500.0, 20000.0)
DEFAULT_SCORES = (1.0, 0.5, 0.2, 0.0)
#: Geo-R's released code (``qwen_module.py`` ``distance_to_reward``): 3000 km, not the paper's 2500
RELEASED_BREAKPOINTS_KM = (0.0, 750.0, 3000.0, 20000.0)
CURVES = ("paper", "released")
#: ``{'LOC': [lat, lon]}`` (quotes either way), capture-free
LOC_PAIR = rf"\{{\s*['\"]LOC['\"]\s*:\s*\[\s*{NUMBER}\s*,\s*{NUMBER}\s*\]\s*\}}"
_TAGS = "<think></think><answer></answer>"


def curve_score(d_km: Any, curve: str = "paper") -> NDArray[np.float64]:
    """Geo-R's distance reward on the paper's curve or the released code's.

    Examples
    --------
    >>> curve_score([2500, 3000], "paper").round(4).tolist(), curve_score([2500, 3000], "released").round(4).tolist()
    ([0.2, 0.1943], [0.2667, 0.2])
    """
    if curve not in CURVES:
        raise SpecError(f"geo_distance: curve must be paper or released, got {curve!r}")
    if curve == "released":
        return np.round(distance_score(d_km, RELEASED_BREAKPOINTS_KM, DEFAULT_SCORES), 4)
    return distance_score(d_km)


def _curve(d: Any, curve: str, breakpoints_km: Sequence[float], scores: Sequence[float]) -> NDArray[np.float64]:
    if curve not in CURVES:
        raise SpecError(f"geo_distance: curve must be paper or released, got {curve!r}")
    if curve == "released":
        if tuple(breakpoints_km) != DEFAULT_BREAKPOINTS_KM or tuple(scores) != DEFAULT_SCORES:
            raise SpecError("geo_distance: curve: released sets the breakpoints; drop breakpoints_km / scores")
        return curve_score(d, "released")
    return distance_score(d, breakpoints_km, scores)


def distance_score(
    d_km: Any,
    breakpoints_km: Sequence[float] = DEFAULT_BREAKPOINTS_KM,
    scores: Sequence[float] = DEFAULT_SCORES,
) -> NDArray[np.float64]:
    """Piecewise-linear reward of a great-circle error; NaN (unparsed) scores 0.

    Examples
    --------
    >>> distance_score([0, 375, 750, 1625, 2500, 11250, 20000, 20015, float("nan")]).round(3).tolist()
    [1.0, 0.75, 0.5, 0.35, 0.2, 0.1, 0.0, 0.0, 0.0]
    """
    bp = np.asarray(breakpoints_km, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    if bp.ndim != 1 or bp.size < 2 or bp.size != sc.size:
        raise SpecError(
            f"geo_distance: breakpoints_km and scores must be lists of the same length >= 2 "
            f"(got {bp.size} and {sc.size})"
        )
    if not (np.all(np.diff(bp) > 0) and bp[0] >= 0):
        raise SpecError(f"geo_distance: breakpoints_km must start at >= 0 and increase, got {bp.tolist()}")
    d = np.asarray(d_km, dtype=np.float64)
    out = np.interp(np.nan_to_num(d, nan=np.inf), bp, sc, left=sc[0], right=sc[-1])
    out = np.maximum(out, 0.0)
    out[np.isnan(d)] = 0.0
    return out


_SOL_LAT = r'"lat(?:itude)?"\s*:\s*' + NUMBER
_SOL_LON = r'"(?:lon|lng|longitude)"\s*:\s*' + NUMBER


def _key_number(col: pl.Expr, pattern: str) -> pl.Expr:
    # capture-free match of '"key": number', then the text after the colon
    m = col.str.extract_all(pattern).list.first()
    return m.str.split_exact(":", 1).struct.field("field_1").str.strip_chars().cast(pl.Float64, strict=False)


def solution_coords(solutions: Sequence[str] | pl.Series) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(lat, lon) from solution JSON strings (keys ``lat``/``lon`` or ``latitude``/``longitude``).

    A solution without usable coordinates gives NaN (its completions then score 0). The keys
    are read with a capture-free regex (3x faster than a JSON path over a million rows).

    Examples
    --------
    >>> solution_coords(['{"lat": 1.5, "lon": -2}', '{"latitude": 3, "longitude": 4}', "bad"])
    (array([1.5, 3. , nan]), array([-2.,  4., nan]))
    """
    s = pl.Series("s", solutions, dtype=pl.String) if not isinstance(solutions, pl.Series) else solutions.cast(pl.String)
    df = pl.DataFrame({"s": s}).select(lat=_key_number(pl.col("s"), _SOL_LAT), lon=_key_number(pl.col("s"), _SOL_LON))
    lat = df["lat"].fill_null(np.nan).to_numpy().astype(np.float64, copy=True)
    lon = df["lon"].fill_null(np.nan).to_numpy().astype(np.float64, copy=True)
    return lat, lon


def _errors_km(completions: Sequence[Any], solutions: Sequence[str]) -> NDArray[np.float64]:
    if len(completions) != len(solutions):
        raise ValueError(f"{len(completions)} completions for {len(solutions)} solutions")
    p = parse_coords(completions)
    slat, slon = solution_coords(solutions)
    return haversine(p.lat, p.lon, slat, slon, EARTH_RADIUS_KM)


def _bytes_between(t: pl.Expr, start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """Bytes ``[start, end)`` of ``t`` as text (offsets from ``str.find`` at ASCII tags)."""
    return t.cast(pl.Binary).bin.slice(start, end - start).cast(pl.String)


def format_check(
    completions: Sequence[Any] | pl.Series, require_think: bool = True
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Format verdict per completion, and the (lat, lon) of its one pair (NaN where not ok).

    The structure is checked with literal searches: each tag exactly once (one regex count of
    all four is 4 and each is found, in order), the stripped text starts with ``<think>`` and
    ends with ``</answer>``, only whitespace between ``</think>`` and ``<answer>``. The answer
    must then hold exactly one ``(number, number)`` in range.
    """
    s = completion_texts(completions)
    n = s.len()
    nan = np.full(n, np.nan)
    if n == 0:
        return np.zeros(0, dtype=bool), nan, nan.copy()
    df = pl.DataFrame({"t": s})
    t = pl.col("t")
    # no stripped copy: anchored regexes allow whitespace before the first and after the last tag
    if require_think:
        pos = df.select(
            n=t.str.count_matches(r"</?(?:think|answer)>"),
            s=t.str.contains(r"^\s*<think>"),
            e=t.str.contains(r"</answer>\s*$"),
            b=t.str.find("</think>", literal=True),
            c=t.str.find("<answer>", literal=True),
            d=t.str.find("</answer>", literal=True),
        )
        b, c, d = pl.col("b"), pl.col("c"), pl.col("d")
        cond = (pl.col("n") == 4) & pl.col("s") & pl.col("e") & (b < c) & (c < d)
    else:
        pos = df.select(
            n=t.str.count_matches(r"</?answer>"),
            s=t.str.contains(r"^\s*<answer>"),
            e=t.str.contains(r"</answer>\s*$"),
            c=t.str.find("<answer>", literal=True),
            d=t.str.find("</answer>", literal=True),
        )
        c, d = pl.col("c"), pl.col("d")
        cond = (pl.col("n") == 2) & pl.col("s") & pl.col("e") & (c < d)
    ok = pos.select(ok=cond)["ok"].fill_null(False).to_numpy().copy()
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return ok, nan, nan.copy()
    cols = ["c", "d", *(["b"] if require_think else [])]
    if idx.size == n:  # common in training: skip the gather
        sub = df.hstack(pos.select(cols))
    else:
        sub = df[idx].hstack(pos[idx].select(cols))
    parts = {
        "body": _bytes_between(t, pl.col("c") + len("<answer>"), pl.col("d")),
    }
    if require_think:
        parts["gap"] = _bytes_between(t, pl.col("b") + len("</think>"), pl.col("c")).str.strip_chars().str.len_bytes() == 0
    sub = sub.select(**parts)
    sub = sub.with_columns(m=pl.col("body").str.extract_all(PAIR_IN_PARENS), k=pl.col("body").str.extract_all(LOC_PAIR))
    # one (lat, lon) pair; else, with none, one {'LOC': [lat, lon]} (Geo-R's released form)
    n_p, n_k = pl.col("m").list.len(), pl.col("k").list.len()
    sub = sub.select(
        one=(n_p == 1) | ((n_p == 0) & (n_k == 1)),
        gap=pl.col("gap") if require_think else pl.lit(True),
        xy=pl.when(n_p > 0).then(pl.col("m").list.first()).otherwise(pl.col("k").list.first())
        .str.extract_all(NUMBER),
    ).select("one", "gap", field_0=pl.col("xy").list.get(0, null_on_oob=True),
             field_1=pl.col("xy").list.get(1, null_on_oob=True))
    la = sub["field_0"].str.strip_chars().cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    lo = sub["field_1"].str.strip_chars().cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90.0) & (np.abs(lo) <= 180.0)
    good = sub["one"].fill_null(False).to_numpy() & sub["gap"].fill_null(False).to_numpy() & valid
    ok[idx] = good
    lat, lon = nan, nan.copy()
    lat[idx[good]] = la[good]
    lon[idx[good]] = lo[good]
    return ok, lat, lon


def format_ok(completions: Sequence[Any] | pl.Series, require_think: bool = True) -> NDArray[np.bool_]:
    """True where a completion has the think/answer structure and one valid (lat, lon) pair.

    Examples
    --------
    >>> format_ok(["<think>x</think> <answer>City: X (Y); (1.5, -2)</answer>",
    ...            "<think>x</think><answer>(1, 2) or (3, 4)</answer>",
    ...            "<think>x</think><answer>(95, 2)</answer>",
    ...            "<think>x</think><answer>1, 2</answer>",
    ...            "<think>x</think>y<answer>(1, 2)</answer>"]).tolist()
    [True, False, False, False, False]
    """
    return format_check(completions, require_think)[0]


@reward("geo_distance")
def geo_distance(
    completions: Sequence[Any],
    solutions: Sequence[str],
    *,
    breakpoints_km: list[float] = list(DEFAULT_BREAKPOINTS_KM),
    scores: list[float] = list(DEFAULT_SCORES),
    curve: Literal["paper", "released"] = "paper",
) -> NDArray[np.float64]:
    """Geo-R distance reward: piecewise linear in the great-circle error, 1 at 0 km.

    ``curve: released`` is the released code's curve (3000 km middle breakpoint).

    Examples
    --------
    >>> sol = ['{"lat": 0.0, "lon": 0.0}'] * 3
    >>> geo_distance(["(0, 0)", "(0, 6.7449)", "no idea"], sol).round(3).tolist()
    [1.0, 0.5, 0.0]
    """
    return _curve(_errors_km(completions, solutions), curve, breakpoints_km, scores)


@reward("geo_format")
def geo_format(
    completions: Sequence[Any],
    solutions: Sequence[str],
    *,
    require_think: bool = True,
) -> NDArray[np.float64]:
    """1 when the completion is ``<think>…</think><answer>…(lat, lon)…</answer>``, else 0."""
    if len(completions) != len(solutions):
        raise ValueError(f"{len(completions)} completions for {len(solutions)} solutions")
    return format_check(completions, require_think)[0].astype(np.float64)


@reward("geolocation", tasks=("geolocation",))
def geolocation(
    completions: Sequence[Any],
    solutions: Sequence[str],
    *,
    breakpoints_km: list[float] = list(DEFAULT_BREAKPOINTS_KM),
    scores: list[float] = list(DEFAULT_SCORES),
    require_think: bool = True,
    curve: Literal["paper", "released"] = "paper",
) -> NDArray[np.float64]:
    """Geo-R reward: distance reward × format reward (0 unless the format holds).

    Both answer forms are read: ``(lat, lon)`` (the paper) and ``{'LOC': [lat, lon]}`` (the
    released code); ``curve`` picks the paper's or the released code's distance curve.

    Examples
    --------
    >>> sol = ['{"lat": 0.0, "lon": 0.0}'] * 2
    >>> geolocation(["<think>.</think><answer>(0, 6.7449)</answer>", "(0, 0)"], sol).round(3).tolist()
    [0.5, 0.0]
    """
    if len(completions) != len(solutions):
        raise ValueError(f"{len(completions)} completions for {len(solutions)} solutions")
    ok, lat, lon = format_check(completions, require_think)
    slat, slon = solution_coords(solutions)
    return _curve(haversine(lat, lon, slat, slon, EARTH_RADIUS_KM), curve, breakpoints_km, scores) * ok
