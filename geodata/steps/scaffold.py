"""Geo-R1's scaffolding stage: synthetic chain-of-thought exemplars from MP-16 metadata.

Geo-R1 (arXiv 2510.00072) first fine-tunes on reasoning *scaffolds* that tie visual cues
to geographic priors, made without human reasoning annotations. :func:`geo_r1_scaffold`
writes one per photo, walking cue → prior → inference:

1. **scene** — the Places365 category (``S365_Label``), its coarse group (``S16_Label``,
   used only where it agrees with the indoor/natural/urban label) and the
   indoor/natural/urban probabilities of ``mp16_places365.csv``;
2. **what the setting lets one read** — indoor: text and décor; natural: vegetation and
   terrain; urban: roads, traffic, signs and architecture;
3. **climate band and hemisphere** from the latitude (tropical < 23.44° ≤ subtropical <
   35° ≤ temperate < 55° ≤ subpolar < 66.56° ≤ polar);
4. **driving side** (outdoor scenes only) and **continent** of the true country, from
   ``geodata/data/country_cues.csv`` (UN M49 continents; documented sources);
5. **languages and scripts** of the true country from CLDR (via ``babel``): its official
   languages, most spoken first, and each language's usual script;
6. the **Chain-of-Region** country → admin1 → city of the reverse geocoder, ending in the
   same answer line and solution keys as the ``chain_of_region`` rows, so the
   ``geolocation`` reward scores both alike.

Each sentence has several wordings, chosen per row from the build's seeded generator, so
a model does not learn one sentence.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import polars as pl

from ..context import Context
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
from .mp16 import COR_QUESTION, cor_answer_expr

__all__ = [
    "geo_r1_scaffold",
    "country_cues",
    "places365_names",
    "climate_band_expr",
    "S3_NAMES",
    "S16_NAMES",
    "TEMPLATES",
]

#: GeoEstimation's S3_Label (argmax of Prob_indoor, Prob_natural, Prob_urban).
S3_NAMES = ("indoor", "natural", "urban")

#: Places365 scene hierarchy, level 2 (GeoEstimation's S16_Label), with its level-1 group.
S16_NAMES = (
    ("shopping and dining", 0),
    ("workplace", 0),
    ("home or hotel", 0),
    ("transportation interior", 0),
    ("sports and leisure", 0),
    ("cultural venue", 0),
    ("water, ice and snow", 1),
    ("mountains, hills, desert and sky", 1),
    ("forest, field and jungle", 1),
    ("natural landscape with man-made elements", 1),
    ("transportation", 2),
    ("cultural or historical place", 2),
    ("sports fields, parks and leisure spaces", 2),
    ("industrial and construction", 2),
    ("houses, cabins, gardens and farms", 2),
    ("commercial buildings, shops, markets, cities and towns", 2),
)

#: Wordings per sentence slot; ``{name}`` reads the column ``_name``.
TEMPLATES: dict[str, list[str]] = {
    "scene": [
        "The image shows {art} {scene}{group}; the scene looks {pu}% urban, {pn}% natural and {pi}% indoor.",
        "First, the scene: {art} {scene}{group}, in a mostly {s3} setting ({top}% {s3}).",
        "What I see is {art} {scene}{group}. Judged as a whole the setting is mostly {s3} ({top}%).",
    ],
    "setting_indoor": [
        "Indoors, landscape clues are scarce, so writing, décor and building style carry most of the evidence.",
        "An interior hides climate and roads, so I rely on text, furnishing and architecture.",
    ],
    "setting_natural": [
        "In a natural scene, vegetation, terrain and the quality of light are the main clues.",
        "With little built environment, plants, landforms and sunlight say the most about the place.",
    ],
    "setting_urban": [
        "In a built-up scene, road markings, traffic, signs and architecture are the strongest clues.",
        "Streets and buildings carry many clues: traffic direction, signage and construction style.",
    ],
    "climate": [
        "The vegetation and light fit a {band} climate in the {hemi} hemisphere, around {alat}° {ns}.",
        "Climate-wise this reads as {band}, which places it in the {hemi} hemisphere near {alat}° {ns}.",
        "Everything points to a {band} setting, so roughly {alat}° {ns}, in the {hemi} hemisphere.",
    ],
    "climate_indoor": [
        "Clothing, light through the windows and décor suggest a {band} climate in the {hemi} hemisphere, around {alat}° {ns}.",
        "Even indoors, the furnishing and what little outside light there is fit a {band} place, roughly {alat}° {ns}.",
    ],
    "drive_left": [
        "Traffic keeps to the left, a minority rule found mainly in the UK, Ireland, Japan and former British territories.",
        "Vehicles drive on the left, which rules out most of continental Europe and the Americas.",
    ],
    "drive_right": [
        "Traffic keeps to the right, as in most of the world, so this narrows things only a little.",
        "Vehicles drive on the right, the common rule outside the UK, Japan and the former British territories.",
    ],
    "language": [
        "Written signs would be in {langs}, which fits {continent}.",
        "Any text here would likely be {langs}; that points towards {continent}.",
        "The language cue is {langs}, consistent with {continent}.",
    ],
    "continent": [
        "Taken together these cues point to {continent}.",
        "All of this is consistent with {continent}.",
    ],
    "region": [
        "Within {continent}, {country} fits best; inside {country} the region is {admin1}, and the nearest city is {city}.",
        "Narrowing down: the country is {country}, the state or region {admin1}, and the city {city}.",
        "From country to region to city: {country}, then {admin1}, then close to {city}.",
    ],
    "conclusion": [
        "So the photo was most likely taken near {city}, {country}, at about ({lat}, {lon}).",
        "My estimate is therefore ({lat}, {lon}), near {city} in {country}.",
    ],
}


def _data_path(name: str) -> str:
    return str(resources.files("geodata") / "data" / name)


@functools.lru_cache(maxsize=1)
def places365_names() -> pl.DataFrame:
    """The 365 Places365 categories: ``s365_label`` (0–364) and readable ``scene`` name.

    Examples
    --------
    >>> places365_names().filter(pl.col("s365_label") == 15)["scene"].item()
    'arena (hockey)'
    """
    df = pl.read_csv(_data_path("places365.csv"), comment_prefix="#")
    return df.select(pl.col("index").cast(pl.Int32).alias("s365_label"), pl.col("name").alias("scene"))


@functools.lru_cache(maxsize=1)
def country_cues() -> pl.DataFrame:
    """Per ISO alpha-2 code: continent, driving side, and CLDR languages with their scripts.

    ``languages`` is e.g. ``"German, French or Italian (Latin script)"``; null where CLDR
    lists no official language.

    Examples
    --------
    >>> row = country_cues().filter(pl.col("country_code") == "JP").row(0, named=True)
    >>> row["continent"], row["driving_side"], row["languages"]
    ('Asia', 'left', 'Japanese (Japanese script)')
    """
    from babel.core import Locale, get_global
    from babel.languages import get_official_languages

    table = pl.read_csv(_data_path("country_cues.csv"), comment_prefix="#")
    en = Locale("en")
    likely = get_global("likely_subtags")
    terr = get_global("territory_languages")
    langs: list[str | None] = []
    for cc in table["country_code"].to_list():  # ~250 countries, not rows
        codes = list(get_official_languages(cc, de_facto=True))
        if not codes:
            info = terr.get(cc, {})
            codes = sorted(info, key=lambda c: -info[c].get("population_percent", 0))[:1]
        codes = codes[:3]
        names, scripts = [], []
        for code in codes:
            name = en.languages.get(code)
            if not name:
                continue
            names.append(name)
            sub = likely.get(code, "")
            parts = sub.split("_")
            script = en.scripts.get(parts[1]) if len(parts) > 1 else None
            if script in ("Simplified", "Traditional"):  # CLDR's short names for Hans / Hant
                script = f"{script} Chinese"
            if script and script not in scripts:
                scripts.append(script)
        if not names:
            langs.append(None)
            continue
        lang = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        if scripts:
            scr = " or ".join(scripts)
            lang += f" ({scr} script{'s' if len(scripts) > 1 else ''})"
        langs.append(lang)
    return table.with_columns(pl.Series("languages", langs, dtype=pl.String))


def climate_band_expr(lat: str = "lat") -> pl.Expr:
    """Latitude band: tropical, subtropical, temperate, subpolar or polar.

    Examples
    --------
    >>> pl.DataFrame({"lat": [1.0, -30.0, 48.0, 60.0, -80.0]}).select(climate_band_expr())["band"].to_list()
    ['tropical', 'subtropical', 'temperate', 'subpolar', 'polar']
    """
    a = pl.col(lat).abs()
    return (
        pl.when(a < 23.44).then(pl.lit("tropical"))
        .when(a < 35.0).then(pl.lit("subtropical"))
        .when(a < 55.0).then(pl.lit("temperate"))
        .when(a < 66.56).then(pl.lit("subpolar"))
        .otherwise(pl.lit("polar"))
        .alias("band")
    )


def _choose(slot: str, pick: pl.Expr) -> pl.Expr:
    return choose_template_expr(TEMPLATES[slot], pick)


@step("geo_r1_scaffold")
def geo_r1_scaffold(
    df: pl.DataFrame,
    ctx: Context,
    *,
    source: str = "mp16",
    task: str = "geolocation",
    question: str = COR_QUESTION,
    system_prompt: str | None = None,
    decimals: int = 6,
) -> pl.DataFrame:
    """Scaffold rows: ``<think>`` cue → prior → inference, then the Chain-of-Region answer.

    Needs the MP-16 columns (``s3_label``, ``s16_label``, ``s365_label``, ``prob_*``) and
    the ``reverse_geocode`` columns. The completion ends in the ``chain_of_region`` answer
    line and the solution has its keys (lat, lon, country_code, country, admin1, city).
    """
    _need(df, ctx, "id", "lat", "lon", "country_code", "country", "admin1", "city",
          "s365_label", "prob_indoor", "prob_natural", "prob_urban")
    n = df.height
    rng = ctx.rng("scaffold")
    picks = {slot: rng.integers(0, len(TEMPLATES[slot]), n) for slot in TEMPLATES}
    cues = country_cues().select("country_code", "continent", "driving_side", "languages")
    s16 = pl.DataFrame(
        {"s16_label": np.arange(len(S16_NAMES), dtype=np.int32),
         "_s16": [s for s, _ in S16_NAMES],
         "_s16_top": np.array([g for _, g in S16_NAMES], dtype=np.int32)}
    )
    probs = pl.concat_list("prob_indoor", "prob_natural", "prob_urban")
    x = (
        df.with_columns(pl.col("s365_label").cast(pl.Int32))
        .join(places365_names(), on="s365_label", how="left", maintain_order="left")
        .join(cues, on="country_code", how="left", maintain_order="left")
    )
    if "s16_label" in x.columns:
        x = x.with_columns(pl.col("s16_label").cast(pl.Int32)).join(s16, on="s16_label", how="left", maintain_order="left")
    else:
        x = x.with_columns(_s16=pl.lit(None, dtype=pl.String), _s16_top=pl.lit(None, dtype=pl.Int32))
    x = x.with_columns(
        _s3i=probs.list.arg_max().cast(pl.Int32),
        _top=(probs.list.max() * 100).round(0).cast(pl.Int32),
    )
    pct = lambda c: (pl.col(c).fill_null(0) * 100).round(0).cast(pl.Int32)  # noqa: E731
    scene = pl.col("scene").fill_null("outdoor scene")
    x = x.with_columns(
        _scene=scene,
        _art=pl.when(scene.str.contains(r"^[aeiouAEIOU]")).then(pl.lit("an")).otherwise(pl.lit("a")),
        _group=pl.when(pl.col("_s16").is_not_null() & (pl.col("_s16_top") == pl.col("_s3i")))
        .then(pl.lit(" in the ") + pl.col("_s16") + pl.lit(" group")).otherwise(pl.lit("")),
        _s3=pl.col("_s3i").replace_strict(list(range(3)), list(S3_NAMES), default="outdoor"),
        _pu=pct("prob_urban"), _pn=pct("prob_natural"), _pi=pct("prob_indoor"),
        _band=climate_band_expr("lat"),
        _hemi=pl.when(pl.col("lat") >= 0).then(pl.lit("northern")).otherwise(pl.lit("southern")),
        _ns=pl.when(pl.col("lat") >= 0).then(pl.lit("N")).otherwise(pl.lit("S")),
        _alat=((pl.col("lat").abs() / 5).round(0) * 5).cast(pl.Int32),
        _continent=pl.col("continent").fill_null("this part of the world"),
        _langs=pl.col("languages"),
        _country=pl.col("country"),
        _admin1=pl.when(pl.col("admin1").fill_null("") == "").then(pl.col("city")).otherwise(pl.col("admin1")),
        _city=pl.col("city"),
        _lat=decimal_expr("lat", decimals),
        _lon=decimal_expr("lon", decimals),
        **{f"_p_{slot}": pl.Series(p, dtype=pl.Int32) for slot, p in picks.items()},
    )
    setting = (
        pl.when(pl.col("_s3i") == 0).then(_choose("setting_indoor", pl.col("_p_setting_indoor")))
        .when(pl.col("_s3i") == 1).then(_choose("setting_natural", pl.col("_p_setting_natural")))
        .otherwise(_choose("setting_urban", pl.col("_p_setting_urban")))
    )
    drive = (
        pl.when(pl.col("_s3i") == 0).then(pl.lit(None, dtype=pl.String))
        .when(pl.col("driving_side") == "left").then(_choose("drive_left", pl.col("_p_drive_left")))
        .when(pl.col("driving_side") == "right").then(_choose("drive_right", pl.col("_p_drive_right")))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    language = pl.when(pl.col("_langs").is_not_null()).then(_choose("language", pl.col("_p_language")))
    continent = pl.when(pl.col("_langs").is_null()).then(_choose("continent", pl.col("_p_continent")))
    think = pl.concat_str(
        [
            _choose("scene", pl.col("_p_scene")),
            setting,
            pl.when(pl.col("_s3i") == 0)
            .then(_choose("climate_indoor", pl.col("_p_climate_indoor")))
            .otherwise(_choose("climate", pl.col("_p_climate"))),
            drive,
            language,
            continent,
            _choose("region", pl.col("_p_region")),
            _choose("conclusion", pl.col("_p_conclusion")),
        ],
        separator=" ",
        ignore_nulls=True,
    )
    text = pl.concat_str([pl.lit("<think>"), think, pl.lit("</think><answer>"), cor_answer_expr(), pl.lit("</answer>")])
    out = x.with_columns(
        source=pl.lit(source),
        task=pl.lit(task),
        prompt=prompt_expr(f"{question} {THINK_ANSWER_SUFFIX}", n_images=1, system=system_prompt),
        completion=completion_expr(text),
        solution=solution_expr(
            lat=pl.col("lat"), lon=pl.col("lon"), country_code=pl.col("country_code"),
            country=pl.col("country"), admin1=pl.col("_admin1"), city=pl.col("city"),
        ),
        climate_band=pl.col("_band"),
    )
    n_nocue = int(out["continent"].is_null().sum())
    if n_nocue:
        ctx.note(f"{ctx.current_step}.rows_without_country_cues", n_nocue)
    ctx.note(f"{ctx.current_step}.wordings", {k: len(v) for k, v in TEMPLATES.items()})
    return out.drop([c for c in out.columns if c.startswith("_")])
