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

:func:`teacher_rationale` (step id ``teacher`` in ``pipelines/geo-r1-scaffold.yaml``) replaces
the templated ``<think>`` with one a served model writes (see ``docs/inference.md``): the
teacher sees the photo and the true place, and its rationale is kept only when its own
answer scores at least ``min_reward`` under the ``geolocation`` reward and it does not
quote the coordinates before its last sentence (:func:`coordinate_leak`). Without a
``base_url`` the step passes the templated rows through.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from importlib import resources
from typing import Sequence

import numpy as np
import polars as pl

from ..context import StepContext, StepOutput
from ..errors import BuildError
from ..registry import get_reward, step
from ..schema import (
    THINK_ANSWER_SUFFIX,
    choose_template_expr,
    completion_expr,
    decimal_expr,
    prompt_expr,
    solution_expr,
    template_expr,
)
from .core import _need
from .mp16 import COR_QUESTION, cor_answer_expr

log = logging.getLogger("geodata")

__all__ = [
    "geo_r1_scaffold",
    "teacher_rationale",
    "coordinate_leak",
    "TEACHER_PROMPT",
    "TEACHER_SYSTEM",
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


@step("geo_r1_scaffold", kind="map")
def geo_r1_scaffold(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    source: str = "mp16",
    task: str = "geolocation",
    question: str = COR_QUESTION,
    system_prompt: str | None = None,
    decimals: int = 6,
) -> StepOutput:
    """Scaffold rows: ``<think>`` cue → prior → inference, then the Chain-of-Region answer.

    Needs the MP-16 columns (``s3_label``, ``s16_label``, ``s365_label``, ``prob_*``) and
    the ``reverse_geocode`` columns. The completion ends in the ``chain_of_region`` answer
    line and the solution has its keys (lat, lon, country_code, country, admin1, city).
    """
    out = StepOutput()
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
    kept = x.with_columns(
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
    n_nocue = int(kept["continent"].is_null().sum())
    if n_nocue:
        out.note(f"{ctx.name}.rows_without_country_cues", n_nocue)
    out.note(f"{ctx.name}.wordings", {k: len(v) for k, v in TEMPLATES.items()})
    return out.result(kept.drop([c for c in kept.columns if c.startswith("_")]))


# -- the teacher: a served model writes the rationale -------------------------------------

TEACHER_SYSTEM = (
    "You are an expert at geolocating photographs. You write the step-by-step reasoning that "
    "leads from what a photo shows to where it was taken."
)

#: The teacher's user turn (after the image); ``{name}`` slots are filled per row.
TEACHER_PROMPT = (
    "This photo was taken at a known place.\n"
    "Country: {country} ({continent}); state or region: {admin1}; nearest city: {city}; "
    "coordinates: ({lat}, {lon}).\n"
    "Places365 scene: {scene}; climate band: {climate_band}; driving side: {driving_side}; "
    "languages: {languages}.\n\n"
    "Write the reasoning an expert would give who sees only the photo. Name the cues that are "
    "visible in it (vegetation, terrain, light, architecture, road markings, vehicles, signs "
    "and scripts, clothing) and tie each to a geographic prior, narrowing from continent to "
    "country, region and city. Never say that you were told the place, and do not write the "
    "coordinates before the final sentence of the reasoning. Reply with exactly\n"
    "<think>the reasoning</think><answer>Country: {country}; State: {admin1}; City: {city}; "
    "Coordinates: ({lat}, {lon})</answer>"
)

_TEACHER_FIELDS = ("country", "continent", "admin1", "city", "lat", "lon", "scene", "climate_band",
                   "driving_side", "languages")


def coordinate_leak(
    texts: Sequence[str | None], lat: Sequence[float], lon: Sequence[float], min_decimals: int = 2
) -> np.ndarray:
    """True where a ``<think>`` quotes the given coordinates before its last sentence.

    The leak check of :func:`teacher_rationale`: the reasoning may *arrive* at the
    coordinates (in its final sentence) but not start from them. A number with at least
    ``min_decimals`` decimals anywhere before the last sentence of the ``<think>`` (sentences
    end at ``.``, ``!`` or ``?`` followed by white space, so decimal points do not split
    them) leaks when it equals the given ``|lat|`` or ``|lon|`` rounded or truncated to its
    own number of decimals. Signs and hemisphere letters are ignored, so ``48.86° N``
    counts.

    Examples
    --------
    >>> t = ["<think>Gothic spires. So about (48.86, 2.35).</think><answer>x</answer>",
    ...      "<think>At 48.856 N this is Paris. Spires.</think><answer>x</answer>",
    ...      "<think>Latitude near 48.9. Spires, so (48.86, 2.35).</think>"]
    >>> coordinate_leak(t, [48.8566] * 3, [2.3522] * 3).tolist()
    [False, True, False]
    """
    n = len(texts)
    df = pl.DataFrame(
        {"t": pl.Series(list(texts), dtype=pl.String), "lat": pl.Series(list(lat), dtype=pl.Float64),
         "lon": pl.Series(list(lon), dtype=pl.Float64)}
    ).with_row_index("i")
    think = pl.col("t").str.extract(r"(?s)<think>(.*?)</think>", 1).fill_null("")
    head = think.str.extract(r"(?s)^(.*[.!?])\s+\S", 1).fill_null("")
    nums = (
        df.select("i", "lat", "lon", n=head.str.extract_all(r"\d+\.\d+"))
        .explode("n")
        .drop_nulls("n")
        .with_columns(d=pl.col("n").str.split(".").list.get(1).str.len_chars(), x=pl.col("n").cast(pl.Float64))
        .filter(pl.col("d") >= min_decimals)
    )
    tol = pl.lit(10.0).pow(-pl.col("d").cast(pl.Float64)) * 1.000001
    hit = nums.filter(((pl.col("x") - pl.col("lat").abs()).abs() < tol) | ((pl.col("x") - pl.col("lon").abs()).abs() < tol))
    out = np.zeros(n, dtype=bool)
    out[hit["i"].unique().to_numpy()] = True
    return out


@step("teacher_rationale", kind="map", parallel=False)
def teacher_rationale(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key_env: str | None = None,
    temperature: float = 0.7,
    max_tokens: int = 1024,
    top_p: float | None = None,
    seed: int | None = None,
    concurrency: int = 8,
    timeout: float = 120.0,
    max_retries: int = 5,
    backoff: float = 1.0,
    prompt_template: str = TEACHER_PROMPT,
    system_prompt: str | None = TEACHER_SYSTEM,
    min_reward: float = 0.95,
    leak_decimals: int = 2,
    decimals: int = 6,
) -> StepOutput:
    """Replace templated rationales by a served teacher's, kept when they score and do not leak.

    Without ``base_url`` the rows pass through unchanged (templated rationales). With it, each
    row's image(s) and the filled ``prompt_template`` (slots: country, continent, admin1,
    city, lat, lon, scene, climate_band, driving_side, languages) go to the OpenAI-compatible
    endpoint (:mod:`geodata.inference`; the key is read from ``$<api_key_env>``). The reply
    becomes the completion when it has the ``<think>…</think><answer>…</answer>`` format
    (else ``unparsed``), does not quote the coordinates before reasoning to them
    (:func:`coordinate_leak`, else ``coordinate_leak``) and scores ``>= min_reward`` under the
    ``geolocation`` reward (else ``low_reward``); failed requests count as ``teacher_error``.
    With ``seed`` unset each request gets a seed from the build seed and the row id, so a
    rebuild asks the same questions and is answered from the response cache.

    It runs on the driver over the whole frame (``parallel=False``), not in chunks on the
    runner: it is I/O-bound on a remote server, and all its requests share one concurrency
    bound and one response cache.
    """
    out = StepOutput()
    if base_url is None:
        out.note(f"{ctx.name}.rationales", "templates (no base_url set)")
        return out.result(df)
    from ..inference import ChatRequest, chat, endpoint_from_params

    _need(df, ctx, "id", "lat", "lon", "country", "admin1", "city", "images", "solution", "completion")
    ep = endpoint_from_params(
        ctx.name, base_url=base_url, model=model, api_key_env=api_key_env, temperature=temperature,
        max_tokens=max_tokens, top_p=top_p, seed=seed, concurrency=concurrency, timeout=timeout,
        max_retries=max_retries, backoff=backoff,
    )
    unknown = pl.lit("unknown")
    fields = {}
    for name in _TEACHER_FIELDS:
        if name in ("lat", "lon"):
            fields[f"_{name}"] = decimal_expr(name, decimals)
        elif name == "admin1":
            fields["_admin1"] = (pl.when(pl.col("admin1").fill_null("") == "").then(pl.col("city"))
                                 .otherwise(pl.col("admin1")))
        else:
            fields[f"_{name}"] = pl.col(name).cast(pl.String).fill_null("unknown") if name in df.columns else unknown
    try:
        texts = df.with_columns(**fields).select(t=template_expr(prompt_template).fill_null(""))["t"]
    except pl.exceptions.ColumnNotFoundError as exc:
        raise BuildError(f"step '{ctx.name}': prompt_template names an unknown slot ({exc})") from None
    if seed is None:
        base = int(ctx.rng("teacher").integers(0, 2**31 - 1))
        seeds = [int.from_bytes(hashlib.sha256(f"{base}/{i}".encode()).digest()[:4], "little") >> 1
                 for i in df["id"].cast(pl.String).to_list()]
    else:
        seeds = [None] * df.height
    requests = [
        ChatRequest(text=t, images=tuple(imgs or ()), system=system_prompt, seed=s)
        for t, imgs, s in zip(texts.to_list(), df["images"].to_list(), seeds)
    ]
    try:
        results, stats = chat(requests, ep, label=ctx.name, progress=ctx.progress)
    except BuildError as exc:
        raise BuildError(f"step '{ctx.name}': {exc}") from None
    answers = [r.text.strip() if r.text is not None else None for r in results]
    skipped = np.array([r.skipped for r in results], dtype=bool)  # an image failed the decode check: never sent
    error = np.array([a is None for a in answers], dtype=bool) & ~skipped
    if df.height and (error | skipped).all():
        raise BuildError(
            f"step '{ctx.name}': all {df.height} requests to {base_url} failed (e.g. {results[0].error})"
        )
    filled = [a or "" for a in answers]
    solutions = df["solution"].to_list()  # scored by name: steps never import the rewards
    fmt = (np.asarray(get_reward("geo_format").fn(filled, solutions)) > 0) & ~error & ~skipped
    leak = coordinate_leak(filled, df["lat"].to_numpy(), df["lon"].to_numpy(), leak_decimals) & fmt
    score = get_reward("geolocation").fn(filled, solutions)
    low = fmt & ~leak & (score < min_reward)
    keep = fmt & ~leak & ~low
    out.drop("teacher_error", int(error.sum()))
    for reason, n in stats.skipped.items():
        out.drop(reason, n)
    out.drop("unparsed", int((~error & ~skipped & ~fmt).sum()))
    out.drop("coordinate_leak", int(leak.sum()))
    out.drop("low_reward", int(low.sum()))
    sampling = ep.sampling()
    if seed is None:
        sampling["seed"] = "per row (build seed, id)"
    out.note(f"{ctx.name}.inference", stats.note(sampling))
    out.note(f"{ctx.name}.rationales", f"teacher ({stats.model}), min_reward {min_reward}")
    if stats.failed:  # dropped for this build, never silently for good: the next build sends them again
        msg = f"{stats.failed} requests failed ({stats.cause()}); the next build sends them again"
        log.warning("step '%s': %s", ctx.name, msg)
        out.note(f"{ctx.name}.incomplete", msg)
    if not keep.any():
        raise BuildError(
            f"step '{ctx.name}': no rationale passed the checks ({out.drops})"
        )
    kept = df.with_columns(_teacher=pl.Series(answers, dtype=pl.String)).filter(pl.Series(keep))
    return out.result(kept.with_columns(completion=completion_expr(pl.col("_teacher"))).drop("_teacher"))
