"""Steps that make Geo-R's Chain-of-Region rows: reverse geocoding and the CoR template."""

from __future__ import annotations

import polars as pl

from ..context import StepContext, StepOutput
from ..geocode import reverse_geocode as _reverse_geocode
from ..registry import step
from ..schema import (
    THINK_ANSWER_SUFFIX,
    choose_template_expr,
    completion_expr,
    decimal_expr,
    prompt_expr,
    solution_expr,
)
from .core import _need

__all__ = ["reverse_geocode", "chain_of_region", "COR_QUESTION", "cor_answer_expr"]

COR_QUESTION = (
    "Where was this photo taken? Using only what the image shows, reason from the country to "
    "the state or administrative region and then the city, and estimate the coordinates. "
    "Give the answer as: Country: ...; State: ...; City: ...; Coordinates: (latitude, longitude)."
)

# Reasoning walks country -> admin1 -> city; the wording varies so a model does not learn one sentence.
_THINK_TEMPLATES = [
    "The scene points to {country}. Within {country}, the most likely region is {admin1}. "
    "Inside {admin1}, the nearest city is {city}. So the photo was taken near ({lat}, {lon}).",
    "Country first: {country}. Narrowing to the state or region: {admin1}. "
    "At city level this is {city}, which puts the location at about ({lat}, {lon}).",
    "Looking at the view, I place it in {country}, then in the region of {admin1}, and "
    "finally close to the city of {city}. The coordinates are roughly ({lat}, {lon}).",
]


def cor_answer_expr() -> pl.Expr:
    """``Country: …; State: …; City: …; Coordinates: (lat, lon)`` from the ``_``-prefixed text columns."""
    return pl.concat_str(
        [
            pl.lit("Country: "), pl.col("_country"), pl.lit("; State: "), pl.col("_admin1"),
            pl.lit("; City: "), pl.col("_city"), pl.lit("; Coordinates: ("), pl.col("_lat"),
            pl.lit(", "), pl.col("_lon"), pl.lit(")"),
        ]
    )


@step("reverse_geocode", kind="map")
def reverse_geocode(df: pl.DataFrame, ctx: StepContext, *, lat: str = "lat", lon: str = "lon") -> StepOutput:
    """Label each row with the great-circle nearest GeoNames place.

    Adds country_code, country (English name), admin1, admin2, city and city_km.
    """
    _need(df, ctx, lat, lon)
    labels = _reverse_geocode(df[lat].to_numpy(), df[lon].to_numpy())
    return StepOutput(df.drop([c for c in labels.columns if c in df.columns]).hstack(labels))


@step("chain_of_region", kind="map")
def chain_of_region(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    source: str = "mp16",
    task: str = "geolocation",
    question: str = COR_QUESTION,
    system_prompt: str | None = None,
    decimals: int = 6,
) -> StepOutput:
    """Geo-R's Chain-of-Region rows: prompt, ``<think>`` country → admin1 → city, answer.

    The completion is ``<think>…</think><answer>Country: …; State: …; City: …;
    Coordinates: (lat, lon)</answer>`` with ``decimals`` places; the solution holds lat,
    lon, country_code, country, admin1 and city. An empty admin1 (GeoNames has a few) is
    written as the city name.
    """
    _need(df, ctx, "id", "lat", "lon", "country", "admin1", "city", "country_code")
    k = len(_THINK_TEMPLATES)
    pick = ctx.rng("templates").integers(0, k, df.height)
    tmp = df.with_columns(
        _country=pl.col("country"),
        _admin1=pl.when(pl.col("admin1").fill_null("") == "").then(pl.col("city")).otherwise(pl.col("admin1")),
        _city=pl.col("city"),
        _lat=decimal_expr("lat", decimals),
        _lon=decimal_expr("lon", decimals),
        _t=pl.Series(pick, dtype=pl.Int32),
    )
    think = choose_template_expr(_THINK_TEMPLATES, pl.col("_t"))
    text = pl.concat_str([pl.lit("<think>"), think, pl.lit("</think><answer>"), cor_answer_expr(), pl.lit("</answer>")])
    out = tmp.with_columns(
        source=pl.lit(source),
        task=pl.lit(task),
        prompt=prompt_expr(f"{question} {THINK_ANSWER_SUFFIX}", n_images=1, system=system_prompt),
        completion=completion_expr(text),
        solution=solution_expr(
            lat=pl.col("lat"), lon=pl.col("lon"), country_code=pl.col("country_code"),
            country=pl.col("country"), admin1=pl.col("_admin1"), city=pl.col("city"),
        ),
    )
    return StepOutput(out.drop([c for c in out.columns if c.startswith("_")]))
