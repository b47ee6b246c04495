"""Read latitude/longitude out of model completions, a whole batch at a time.

A geolocation completion puts its estimate in one of a few shapes; in order of preference:

1. ``Coordinates: (48.8566, 2.3522)`` (Geo-R's Chain-of-Region answer; parentheses optional);
2. ``[Lat. 48.8566, Long. 2.3522]`` (read by Geo-R's released code, ``aialt/geo-r``
   ``src/open-r1-multimodal/src/open_r1/vlm_modules/qwen_module.py``
   ``extract_coordinates_from_json_block``);
3. JSON keys ``{"latitude": 48.85, "longitude": 2.35}`` (also ``lat`` / ``lon`` / ``lng``);
4. a parenthesized pair ``(48.8566, 2.3522)``;
5. a bracketed pair ``[48.8566, 2.3522]`` — also Geo-R's released answer form
   ``{'LOC': [48.8566, 2.3522]}`` (same file, ``extract_loc_from_string``).

When the text has ``<answer>…</answer>`` only the last answer block is searched (so numbers in
the reasoning are ignored); otherwise the whole text is. Within a block the *last* match of a
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

from ...schema import messages_text

__all__ = ["ParsedCoords", "parse_coords", "completion_texts", "answer_bodies", "NUMBER", "ANSWER_RE", "PAIR_IN_PARENS"]

#: A decimal number: sign, digits with an optional fraction (or a bare fraction), exponent.
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
# number, optional degree sign and hemisphere letter
_COORD = rf"{NUMBER}\s*°?\s*(?:[NSEWnsew](?-u:\b))?"
#: The content of an ``<answer>`` block.
ANSWER_RE = r"(?s)<answer>(.*?)</answer>"
#: One ``(lat, lon)`` pair in parentheses (plain numbers).
PAIR_IN_PARENS = rf"\(\s*{NUMBER}\s*,\s*{NUMBER}\s*\)"

# Each pattern captures (lat, lat-hemisphere, lon, lon-hemisphere); the leading greedy ``.*``
# makes the match the last one in the text.
_PATTERNS = [
    rf"(?i)coordinates?\s*[:=]?\s*[\(\[]?\s*{_COORD}\s*[,;]\s*{_COORD}",
    rf"\(\s*{_COORD}\s*,\s*{_COORD}\s*\)",
    rf"\[\s*{_COORD}\s*,\s*{_COORD}\s*\]",
    rf"(?i)\[\s*lat\.?\s*[:=]?\s*{_COORD}\s*,\s*long?\.?\s*[:=]?\s*{_COORD}\s*\]",
]
_JSON_LAT = rf"(?i)[\"']lat(?:itude)?[\"']\s*:\s*[\"']?({NUMBER})"
_JSON_LON = rf"(?i)[\"'](?:lon|lng|long|longitude)[\"']\s*:\s*[\"']?({NUMBER})"
#: One number with its optional degree sign and hemisphere letter, capture-free.
_TOKEN = rf"{NUMBER}\s*°?\s*(?:[NSEWnsew](?-u:\b))?"
# (pattern, is-json) in order of preference
_SHAPES = [(_PATTERNS[0], False), (_PATTERNS[3], False), ("", True), (_PATTERNS[1], False), (_PATTERNS[2], False)]


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


def _cut_at(text: pl.Expr, tag: str) -> pl.Expr:
    """``text`` up to the first ``tag`` (whole text when absent); byte offsets, ASCII tag."""
    end = text.str.find(tag, literal=True)
    head = text.cast(pl.Binary).bin.head(end.fill_null(0)).cast(pl.String)
    return pl.when(end.is_null()).then(text).otherwise(head)


def _after(text: pl.Expr, tag: str) -> pl.Expr:
    """``text`` after the first ``tag`` (whole text when absent)."""
    pos = text.str.find(tag, literal=True)
    tail = text.cast(pl.Binary).bin.slice(pos.fill_null(0) + len(tag)).cast(pl.String)
    return pl.when(pos.is_null()).then(text).otherwise(tail)


def answer_bodies(texts: pl.Series) -> pl.Series:
    """The last ``<answer>`` block of each text (up to ``</answer>``), or the whole text.

    Byte-offset slicing for the common single-answer case (``str.find`` gives byte offsets;
    the tags are ASCII, so the cuts stay valid UTF-8); a split only for texts with several.

    Examples
    --------
    >>> answer_bodies(pl.Series(["é<answer>x</answer>", "b", "<answer>1</answer><answer>2"])).to_list()
    ['x', 'b', '2']
    """
    df = pl.DataFrame({"t": texts.cast(pl.String)})
    t = pl.col("t")
    # one stage per select: eager polars would evaluate a nested expression once per use
    out = df.select(b=_after(t, "<answer>"), n=t.str.count_matches("<answer>", literal=True))
    out = out.with_columns(b=_cut_at(pl.col("b"), "</answer>"))
    multi = out["n"].fill_null(0) > 1
    if bool(multi.any()):
        idx = np.flatnonzero(multi.to_numpy())
        sub = df[idx].select(_cut_at(t.str.split("<answer>").list.last(), "</answer>"))["t"]
        return out["b"].scatter(idx, sub).rename("t")
    return out["b"].rename("t")


def _token_value(tok: pl.Expr, neg: str) -> pl.Expr:
    """``"33.87° S"`` -> -33.87: the number, negated for hemisphere ``neg`` (S or W).

    ``tok`` must be a column (already stripped), not a long expression: it is used twice.
    """
    v = tok.str.strip_chars_end(" \t\r\n°NSEWnsew").cast(pl.Float64, strict=False)
    is_neg = tok.str.ends_with(neg) | tok.str.ends_with(neg.lower())
    return pl.when(is_neg).then(-v.abs()).otherwise(v)


def _pair(body: pl.Series, pattern: str, json: bool = False) -> pl.DataFrame:
    """(lat, lon) from the last match of ``pattern`` in each body (null where none).

    The match is found with a capture-free regex (polars' fast path); its two numbers are
    then split out of the short match text.
    """
    df = pl.DataFrame({"b": body})
    if json:
        lat = pl.col("b").str.extract_all(_JSON_LAT).list.last().str.extract(_JSON_LAT, 1)
        lon = pl.col("b").str.extract_all(_JSON_LON).list.last().str.extract(_JSON_LON, 1)
        return df.select(lat=lat.cast(pl.Float64, strict=False), lon=lon.cast(pl.Float64, strict=False))
    toks = pl.col("b").str.extract_all(pattern).list.last().str.extract_all(_TOKEN)
    # materialize each stage once (eager polars does not share sub-expressions)
    df = df.select(t=toks).select(
        a=pl.col("t").list.get(0, null_on_oob=True).str.strip_chars(),
        b=pl.col("t").list.get(1, null_on_oob=True).str.strip_chars(),
    )
    return df.select(lat=_token_value(pl.col("a"), "S"), lon=_token_value(pl.col("b"), "W"))


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
    >>> parse_coords(["[Lat. 48.85, Long. 2.35]", "{'LOC': [48.8566, 2.3522]}"]).lon.tolist()
    [2.35, 2.3522]
    """
    s = completion_texts(completions)
    n = s.len()
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    if n == 0:
        return ParsedCoords(lat, lon)
    body = answer_bodies(s)
    todo = np.flatnonzero(body.is_not_null().to_numpy())
    for pattern, json in _SHAPES:
        if todo.size == 0:
            break
        got = _pair(body.gather(todo) if todo.size < n else body, pattern, json)
        la = got["lat"].fill_null(np.nan).to_numpy()
        lo = got["lon"].fill_null(np.nan).to_numpy()
        hit = ~(np.isnan(la) | np.isnan(lo))
        lat[todo[hit]] = la[hit]
        lon[todo[hit]] = lo[hit]
        todo = todo[~hit]
    with np.errstate(invalid="ignore"):
        good = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0)
    lat[~good] = np.nan
    lon[~good] = np.nan
    return ParsedCoords(lat, lon)
