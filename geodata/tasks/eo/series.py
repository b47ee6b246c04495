"""Answer contracts of the image-sequence and land-cover EO tasks (GeoVLM-R1's temporal analysis,
disaster assessment and multi-label land cover), shared by the row builders
(:mod:`geodata.steps.eo_series`), the rewards and the scorers (:mod:`geodata.tasks.eo.temporal`,
:mod:`geodata.tasks.eo.disaster`, :mod:`geodata.tasks.eo.landcover`).

=================  ==================  ==========================================================
task               rows (images)       answer (inside ``<answer>``)
=================  ==================  ==========================================================
temporal_cls       fMoW site, 2–N      the fMoW category as fMoW writes it (``crop_field``)
                   frames in time
                   order
damage_cls         xBD pre / post      xBD's damage subtype of the building boxed in the prompt:
                                       ``no-damage`` | ``minor-damage`` | ``major-damage`` |
                                       ``destroyed``
damage_referring   xBD pre / post      every building of one damage level, GeoChat boxes
                                       (axis-aligned, θ 0) on the 0–100 grid of the post image
landcover_cls      BigEarthNet patch   its BigEarthNet-19 labels, ``; ``-separated (class names
                                       hold commas)
=================  ==================  ==========================================================

Benchmark string rules reproduced here (each cited where it is used):

* :func:`teochat_clean` — TEOChat's ``get_string_cleaner`` (``ermongroup/TEOChat``,
  ``videollava/eval/classification.py``): lower-case, every ``string.punctuation`` character
  removed, nothing else.
* :func:`earthdial_recall` — EarthDial's ``evaluate_f1`` (``hiyamdebary/EarthDial``,
  ``src/earthdial/eval/rs_change_detection/eval_classification.py``, the same function in
  ``src/earthdial/eval/rs_classification/eval.py``).
* :func:`earthdial_boxes` — EarthDial's ``parse_bboxes``
  (``src/earthdial/eval/rs_change_detection/eval_detection.py``).
"""

from __future__ import annotations

import re
import string
from typing import Sequence

__all__ = [
    "SERIES_TASKS",
    "FAMILY_TASKS",
    "FMOW_CLASSES",
    "XBD_DAMAGE",
    "XBD_UNSCORED",
    "DAMAGE_NAMES",
    "BIGEARTHNET19",
    "THINK",
    "pick_frames",
    "teochat_clean",
    "earthdial_recall",
    "earthdial_boxes",
    "damage_key",
    "landcover_labels",
    "format_landcover",
]

#: Tasks of each family (``eo_family`` of the reader table).
FAMILY_TASKS: dict[str, tuple[str, ...]] = {
    "temporal": ("temporal_cls",),
    "disaster": ("damage_cls", "damage_referring", "change_caption"),
    "multilabel": ("landcover_cls",),
}
#: The new task names (``change_caption`` already exists: LEVIR-CC's task, reward and scorer).
SERIES_TASKS: tuple[str, ...] = ("temporal_cls", "damage_cls", "damage_referring", "landcover_cls")

#: fMoW's 62 categories as the release names them (fMoW-RGB ``category``; the same list
#: EarthDial's FMoW prompt gives, ``src/earthdial/eval/rs_change_detection/results/FMoW.jsonl``).
FMOW_CLASSES: tuple[str, ...] = (
    "airport", "airport_hangar", "airport_terminal", "amusement_park", "aquaculture", "archaeological_site",
    "barn", "border_checkpoint", "burial_site", "car_dealership", "construction_site", "crop_field", "dam",
    "debris_or_rubble", "educational_institution", "electric_substation", "factory_or_powerplant",
    "fire_station", "flooded_road", "fountain", "gas_station", "golf_course", "ground_transportation_station",
    "helipad", "hospital", "impoverished_settlement", "interchange", "lake_or_pond", "lighthouse",
    "military_facility", "multi-unit_residential", "nuclear_powerplant", "office_building",
    "oil_or_gas_facility", "park", "parking_lot_or_garage", "place_of_worship", "police_station", "port",
    "prison", "race_track", "railway_bridge", "recreational_facility", "road_bridge", "runway", "shipyard",
    "shopping_mall", "single-unit_residential", "smokestack", "solar_farm", "space_facility", "stadium",
    "storage_tank", "surface_mine", "swimming_pool", "toll_booth", "tower", "tunnel_opening",
    "waste_disposal", "water_treatment_facility", "wind_farm", "zoo",
)

#: xBD's ``subtype`` values of a building, in order of severity (xView2 labels' ``properties.subtype``;
#: EarthDial's xBD region-classification prompt lists the same four).
XBD_DAMAGE: tuple[str, ...] = ("no-damage", "minor-damage", "major-damage", "destroyed")
#: How a damage level is written in answers (``damage_names`` of ``eo_tasks``): xBD's / EarthDial's
#: subtype names, or TEOChat's class names (its ``xbd_dmg_cls`` scorer reads only these).
DAMAGE_NAMES: dict[str, dict[str, str]] = {
    "xbd": {d: d for d in XBD_DAMAGE},
    "teochat": dict(zip(XBD_DAMAGE, ("No damage", "Minor damage", "Major damage", "Destroyed"))),
}
#: A building xBD could not assess: no gold answer (TEOChat skips it as ``unclassified``).
XBD_UNSCORED = "un-classified"

#: BigEarthNet's 19-class nomenclature (Sumbul et al. 2020; torchgeo ``BigEarthNet.class_sets[19]``).
BIGEARTHNET19: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)

#: Gold ``<think>`` text per task.
THINK: dict[str, str] = {
    "temporal_cls": "I follow the site through the acquisitions in time order and compare its structures and "
                    "their changes with the candidate categories.",
    "damage_cls": "I compare the boxed building in the pre-disaster and post-disaster images and judge how much "
                  "of its structure is damaged.",
    "damage_referring": "I compare the two images building by building and box every building with the "
                        "requested damage level in the post-disaster image.",
    "landcover_cls": "I scan the patch for each land-cover class of the nomenclature and keep the classes present.",
}


def pick_frames(n: int, k: int) -> list[int]:
    """Indices of at most ``k`` of ``n`` time-ordered frames, evenly spaced, first and last kept.

    Examples
    --------
    >>> pick_frames(10, 4), pick_frames(3, 4), pick_frames(5, 1)
    ([0, 3, 6, 9], [0, 1, 2], [4])
    """
    if n <= k:
        return list(range(n))
    if k == 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


_PUNCT = str.maketrans("", "", string.punctuation)


def teochat_clean(text: str) -> str:
    """TEOChat's answer cleaning: lower-case, ``string.punctuation`` removed (spaces kept).

    Examples
    --------
    >>> teochat_clean("Multi-unit_Residential."), teochat_clean("no damage")
    ('multiunitresidential', 'no damage')
    """
    return str(text).lower().translate(_PUNCT)


def _word_tokenize(text: str) -> list[str]:
    """nltk's ``word_tokenize``; without the punkt data, the Treebank word tokenizer on the whole
    string (``preserve_line=True``) — the same tokens for a string without line breaks."""
    from nltk.tokenize import word_tokenize

    try:
        return word_tokenize(text)
    except LookupError:  # punkt / punkt_tab not installed (no downloads here)
        return word_tokenize(text, preserve_line=True)


def earthdial_recall(reference: str, candidate: str) -> float:
    """EarthDial's classification score of one answer (its ``evaluate_f1``, which returns a recall).

    Both strings are stripped, lower-cased and every space removed; nltk tokenizes them; the score
    is ``|set(ref tokens) ∩ set(cand tokens)| / len(ref tokens)`` (0 without a common token).
    Separators left after removing spaces (``,``, ``;``) are tokens too, and a repeated
    reference token counts in the denominator once per occurrence, exactly as there.

    Examples
    --------
    >>> earthdial_recall("police_station", "police_station"), earthdial_recall("no-damage", "destroyed")
    (1.0, 0.0)
    >>> earthdial_recall("Pastures; Arable land", "arable land")  # ['pastures', ';', 'arableland']
    0.3333333333333333
    """
    ref = reference.strip().lower().replace(" ", "")
    cand = candidate.strip().lower().replace(" ", "")
    ref_tokens = _word_tokenize(ref.strip().lower())
    cand_tokens = _word_tokenize(cand.strip().lower())
    common = set(ref_tokens) & set(cand_tokens)
    if not common:
        return 0.0
    return len(common) / len(ref_tokens)


_ED_BOX = re.compile(r"\[\s*(\d+(?:,\s*\d+)*)\s*\]")


def earthdial_boxes(text: str) -> list[list[int]]:
    """EarthDial's ``parse_bboxes``: integer lists in brackets, ``][`` read as ``], [``.

    Examples
    --------
    >>> earthdial_boxes("[[95, 16, 99, 20, 0]][[1, 2, 3, 4, 0]]")
    [[95, 16, 99, 20, 0], [1, 2, 3, 4, 0]]
    """
    return [list(map(int, m.split(","))) for m in _ED_BOX.findall(text.replace("][", "], ["))]


def damage_key(text: str) -> str | None:
    """The xBD damage level an answer names (``minor damage``, ``Minor-Damage.`` → ``minor-damage``).

    Examples
    --------
    >>> damage_key("Minor damage."), damage_key("destroyed"), damage_key("severe")
    ('minor-damage', 'destroyed', None)
    """
    t = " ".join(re.sub(r"[-_]", " ", str(text).lower()).translate(_PUNCT).split())
    for level in XBD_DAMAGE:
        if t == level.replace("-", " "):
            return level
    return None


def _lc_key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


_LC_KEYS = sorted(((_lc_key(c), c) for c in BIGEARTHNET19), key=lambda kv: -len(kv[0]))


def landcover_labels(text: str) -> set[str]:
    """The BigEarthNet-19 classes an answer names, found by name (longest first), whatever the
    separator; case, punctuation and spacing are ignored. Class names hold commas, so an answer
    is never split on them.

    Examples
    --------
    >>> sorted(landcover_labels("Transitional woodland, shrub; pastures"))
    ['Pastures', 'Transitional woodland, shrub']
    """
    rest = f" {_lc_key(text)} "
    found = set()
    for key, name in _LC_KEYS:
        probe = f" {key} "
        if probe in rest:
            found.add(name)
            rest = rest.replace(probe, " | ")
    return found


def format_landcover(labels: Sequence[str]) -> str:
    """The gold answer: labels in nomenclature order, ``; ``-separated.

    Examples
    --------
    >>> format_landcover(["Pastures", "Urban fabric"])
    'Urban fabric; Pastures'
    """
    order = {c: i for i, c in enumerate(BIGEARTHNET19)}
    return "; ".join(sorted(labels, key=lambda c: order[c]))
