"""Read latitude/longitude out of model completions, a whole batch at a time.

A geolocation completion puts its estimate in one of a few shapes; in order of preference:

1. ``Coordinates: (48.8566, 2.3522)`` (Geo-R's Chain-of-Region answer; parentheses optional);
2. JSON keys ``{"latitude": 48.85, "longitude": 2.35}`` (also ``lat`` / ``lon`` / ``lng``);
3. a parenthesized pair ``(48.8566, 2.3522)``;
4. a bracketed pair ``[48.8566, 2.3522]``.

When the text has ``<answer>…</answer>`` only the last answer block is searched (so numbers in
the reasoning are ignored); otherwise the whole text is. Within a block the *last* pair of a
shape is taken. Numbers may carry a degree sign and a hemisphere letter
(``(33.87° S, 151.21° E)``: S and W negate). A completion yields NaN coordinates
("unparsed") when nothing matches, a value is not finite, or it is out of range
(``|lat| > 90`` or ``|lon| > 180``); parsing never raises.

The work is a handful of polars regex passes over the whole batch (Rust, multi-threaded), so
a million completions take well under a second.

Examples
--------
>>> p = parse_coords(["<think>…</think><answer>Coordinates: (48.8566, 2.3522)</answer>",
...                   '{"latitude": -33.87, "longitude": 151.21}',
...                   "somewhere [10, 200]", None])
>>> p.lat.tolist()[:2], p.lon.tolist()[:2], p.ok.tolist()
([48.8566, -33.87], [2.3522, 151.21], [True, True, False, False])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .schema import messages_text

__all__ = ["ParsedCoords", "parse_coords", "completion_texts", "NUMBER", "ANSWER_RE", "PAIR_IN_PARENS"]

#: A decimal number: sign, digits with an optional fraction (or a bare fraction), exponent.
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
# number, optional degree sign and hemisphere letter
_COORD = rf"({NUMBER})\s*°?\s*(?:([NSEWnsew])\b)?"
#: The content of an ``<answer>`` block.
ANSWER_RE = r"(?s)<answer>(.*?)</answer>"
#: One ``(lat, lon)`` pair in parentheses (plain numbers).
PAIR_IN_PARENS = rf"\(\s*{NUMBER}\s*,\s*{NUMBER}\s*\)"

# Each pattern captures (lat, lat-hemisphere, lon, lon-hemisphere); the leading greedy ``.*``
# makes the match the last one in the text.
_PATTERNS = [
    rf"(?is).*coordinates?\s*[:=]?\s*[\(\[]?\s*{_COORD}\s*[,;]\s*{_COORD}",
    rf"(?s).*\(\s*{_COORD}\s*,\s*{_COORD}\s*\)",
    rf"(?s).*\[\s*{_COORD}\s*,\s*{_COORD}\s*\]",
]
_JSON_LAT = rf"(?is).*[\"']lat(?:itude)?[\"']\s*:\s*[\"']?({NUMBER})"
_JSON_LON = rf"(?is).*[\"'](?:lon|lng|long|longitude)[\"']\s*:\s*[\"']?({NUMBER})"


@dataclass
class ParsedCoords:
    """Coordinates read from a batch: ``lat``/``lon`` (NaN where unparsed) and ``ok``."""

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]

    @property
    def ok(self) -> NDArray[np.bool_]:
        return np.isfinite(self.lat) & np.isfinite(self.lon)

    @property
    def n_unparsed(self) -> int:
        return int((~self.ok).sum())


def completion_texts(completions: Sequence[Any] | pl.Series) -> pl.Series:
    """A string Series from completions given as strings or chat message lists (None kept).

    Examples
    --------
    >>> completion_texts(["a", [{"role": "assistant", "content": "b"}], None]).to_list()
    ['a', 'b', None]
    """
    if isinstance(completions, pl.Series):
        if completions.dtype == pl.String:
            return completions
        if completions.dtype == pl.Null:
            return completions.cast(pl.String)
        completions = completions.to_list()
    out: list[str | None] = []
    for c in completions:
        if c is None or isinstance(c, str):
            out.append(c)
        elif isinstance(c, (list, tuple)):
            try:
                out.append(messages_text(c))
            except (AttributeError, TypeError):
                out.append(None)
        else:
            out.append(None)
    return pl.Series("completion", out, dtype=pl.String)


def _signed(num: pl.Expr, hemi: pl.Expr, neg: str) -> pl.Expr:
    v = num.cast(pl.Float64, strict=False)
    return pl.when(hemi.str.to_uppercase() == neg).then(-v.abs()).otherwise(v)


def _answer_or_all(text: pl.Expr) -> pl.Expr:
    # last <answer> block when there is one, else the whole text
    last = text.str.extract_all(ANSWER_RE).list.last().str.slice(8).str.strip_suffix("</answer>")
    return pl.coalesce(last, text)


def parse_coords_expr(text: pl.Expr) -> pl.Expr:
    """A polars expression: struct ``{lat, lon}`` (null where unparsed) from completion text."""
    body = _answer_or_all(text)
    lats: list[pl.Expr] = []
    lons: list[pl.Expr] = []
    for pat in _PATTERNS[:1]:
        lats.append(_signed(body.str.extract(pat, 1), body.str.extract(pat, 2), "S"))
        lons.append(_signed(body.str.extract(pat, 3), body.str.extract(pat, 4), "W"))
    jlat = body.str.extract(_JSON_LAT, 1).cast(pl.Float64, strict=False)
    jlon = body.str.extract(_JSON_LON, 1).cast(pl.Float64, strict=False)
    both = jlat.is_not_null() & jlon.is_not_null()
    lats.append(pl.when(both).then(jlat))
    lons.append(pl.when(both).then(jlon))
    for pat in _PATTERNS[1:]:
        lats.append(_signed(body.str.extract(pat, 1), body.str.extract(pat, 2), "S"))
        lons.append(_signed(body.str.extract(pat, 3), body.str.extract(pat, 4), "W"))
    # take the first shape that gave both numbers
    lat = pl.coalesce([pl.when(la.is_not_null() & lo.is_not_null()).then(la) for la, lo in zip(lats, lons)])
    lon = pl.coalesce([pl.when(la.is_not_null() & lo.is_not_null()).then(lo) for la, lo in zip(lats, lons)])
    good = lat.is_finite() & lon.is_finite() & (lat.abs() <= 90.0) & (lon.abs() <= 180.0)
    return pl.struct(lat=pl.when(good).then(lat), lon=pl.when(good).then(lon))


def parse_coords(completions: Sequence[Any] | pl.Series) -> ParsedCoords:
    """Parse one (lat, lon) per completion; NaN where missing or out of range. Never raises.

    Parameters
    ----------
    completions
        Strings, chat message lists (their text parts are joined) or None.

    Examples
    --------
    >>> p = parse_coords(["(12.5, -70.0)", "Coordinates: (91.0, 10.0)", "(33.87°S, 151.21°E)"])
    >>> p.lat.tolist(), p.n_unparsed
    ([12.5, nan, -33.87], 1)
    """
    s = completion_texts(completions)
    if s.len() == 0:
        e = np.empty(0, dtype=np.float64)
        return ParsedCoords(e, e.copy())
    out = pl.DataFrame({"t": s}).select(c=parse_coords_expr(pl.col("t"))).unnest("c")
    lat = out["lat"].fill_null(np.nan).to_numpy().astype(np.float64, copy=True)
    lon = out["lon"].fill_null(np.nan).to_numpy().astype(np.float64, copy=True)
    return ParsedCoords(lat, lon)
