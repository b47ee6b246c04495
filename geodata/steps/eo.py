"""Steps of the Earth-observation instruction set: unified task rows, then the task mixture.

``eo_tasks`` turns the tables of the EO readers (:mod:`geodata.sources.eo`) into rows of the
project schema, one ``task`` per unified EO task, every prompt with GeoVLM-R1's system prompt
(:data:`~geodata.sources.eo.common.SYSTEM_EO`) and every gold completion
``<think>…</think>\\n<answer>…</answer>``. ``eo_mix`` applies per-task caps and mixture weights
and records the mixture for the dataset card.

Which task can be built from which family (``eo_family`` column of the reader's table):

=========  ==================================================================================
family     tasks
=========  ==================================================================================
scene      scene_cls
objects    detection (one row per image × category), referring (a category's only instance,
           or its largest when ≥ ``largest_ratio`` × the runner-up), region_caption (the class
           of a boxed object), multilabel_cls (the object classes present)
vqa        vqa (RSVQA presence / comparison / rural_urban / count / area)
caption    image_caption
change     change_caption (two images), change_presence (two images)
temporal   temporal_cls (fMoW: a site's category from its time series, up to ``max_frames`` images)
disaster   damage_cls, damage_referring, change_caption (xBD pre / post pairs; RSCC captions)
landcover  landcover_cls (BigEarthNet-19 labels); the three: :mod:`geodata.steps.eo_series`
geochat    tagged turns by their token (:mod:`geodata.sources.eo.geochat`); untagged ones by the
           question (:func:`geochat_route`: count / area / comparison / presence → vqa, describe → caption)
=========  ==================================================================================
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import numpy as np
import polars as pl

from ..context import StepContext, StepOutput
from ..errors import BuildError, SpecError
from ..registry import step
from ..schema import completion_expr, prompt_expr
from ..tasks.eo.contract import (
    BOX_FORMATS,
    BOX_RE_ANY,
    EO_TASKS,
    QWEN_MAX_PIXELS,
    QWEN_MIN_PIXELS,
    SYSTEM_EO,
    SYSTEM_EO_QWEN,
    canonical_boxes,
    format_box,
    geochat_question_type,
    parse_boxes,
)
from ..tasks.eo.series import DAMAGE_NAMES, FAMILY_TASKS as SERIES_FAMILY_TASKS, SERIES_TASKS, THINK as SERIES_THINK
from ..image_geometry import image_size
from .eo_rows import BOX_HINT, Boxes as _Boxes, row as _row
from .eo_series import SERIES_BUILDERS

__all__ = ["eo_tasks", "eo_mix", "FAMILY_TASKS", "geochat_route"]

FAMILY_TASKS: dict[str, tuple[str, ...]] = {
    "scene": ("scene_cls",),
    "objects": ("detection", "referring", "region_caption", "multilabel_cls"),
    "vqa": ("vqa",),
    "caption": ("image_caption",),
    "change": ("change_caption", "change_presence"),
    "geochat": EO_TASKS,
    **SERIES_FAMILY_TASKS,  # temporal, disaster, landcover: geodata.steps.eo_series
}
#: every task eo_tasks can build (eo_mix's weights and caps name these)
ALL_TASKS: tuple[str, ...] = EO_TASKS + SERIES_TASKS


THINK = {
    "scene_cls": "I look at the land cover, the objects and their spatial layout, and compare them with the candidate scene classes.",
    "multilabel_cls": "I scan the whole image for each candidate object class and keep the classes I can see.",
    "detection": "I scan the image tile by tile for the requested objects and fit a rotated box to each instance.",
    "referring": "I find the object the question refers to and fit a rotated box around it.",
    "region_caption": "I look at the content of the given region and identify what it contains.",
    "vqa": "I look for the objects and land cover the question asks about and reason about them.",
    "image_caption": "I look at the main land cover, objects and their arrangement to summarize the scene.",
    "change_caption": "I compare the two acquisitions region by region and describe what differs.",
    "change_presence": "I compare the two acquisitions region by region for new, removed or altered structures.",
    **SERIES_THINK,
}

ROW_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String,
    "source": pl.String,
    "task": pl.String,
    "images": pl.List(pl.String),
    "text": pl.String,
    "answer": pl.String,
    "solution": pl.String,
    "split": pl.String,
    "category": pl.String,
    "qtype": pl.String,
}


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


# -- per family -------------------------------------------------------------------------------------
def _scene(df: pl.DataFrame, tasks: set[str], ctx: StepContext, out: StepOutput, p: dict) -> list[dict]:
    rows = []
    options = {d: sorted(set(g["label"])) for (d,), g in df.group_by(["dataset"])}
    for r in df.iter_rows(named=True):
        opts = ", ".join(options[r["dataset"]])
        text = f"Classify the scene of this remote sensing image. Choose one of: {opts}. Answer with the class name."
        rows.append(_row(f"{r['dataset']}-scene_cls-{r['key']}", r["dataset"], "scene_cls", [r["image"]], text,
                         r["label"], {"label": r["label"]}, r["split"], category=r["label"]))
    return rows


def _objects(df: pl.DataFrame, tasks: set[str], ctx: StepContext, out: StepOutput, p: dict) -> list[dict]:
    rows = []
    rng = ctx.rng("region_caption")
    vocab = {d: sorted(set(g["category"])) for (d,), g in df.group_by(["dataset"])}
    hint = BOX_HINT[p["boxes"]]
    for (dataset, split, image_id, image), g in df.sort("where").group_by(
        ["dataset", "split", "image_id", "image"], maintain_order=True
    ):
        src = str(dataset)
        base = f"{dataset}-{split}-{image_id}"
        form = _Boxes(p, g["width"][0], g["height"][0])
        boxes = np.array(g["box"].to_list(), dtype=float)
        cats = g["category"].to_list()
        by_cat: dict[str, list[int]] = {}
        for i, c in enumerate(cats):
            by_cat.setdefault(c, []).append(i)
        for cat, idx in sorted(by_cat.items()):
            cb = boxes[idx]
            order = np.lexsort((cb[:, 0], cb[:, 1]))
            cb = cb[order]
            if "detection" in tasks:
                if len(cb) > p["max_boxes"]:
                    out.drop("detection: more boxes than max_boxes", 1)
                else:
                    text = f"Detect every {cat} in this image. Answer with one box per instance. {hint}"
                    ans, sb = form.answer(cb, cat)
                    rows.append(_row(f"{base}-detection-{cat}", src, "detection", [image], text, ans,
                                     {**form.solution(sb), "category": cat}, split, category=cat))
            if "referring" in tasks:
                area = (cb[:, 2] - cb[:, 0]) * (cb[:, 3] - cb[:, 1])
                ref = None
                if len(cb) == 1:
                    ref, phrase = cb[0], f"the {cat}"
                else:
                    top = np.argsort(-area, kind="stable")
                    if area[top[0]] >= p["largest_ratio"] * area[top[1]]:
                        ref, phrase = cb[top[0]], f"the largest {cat}"
                if ref is not None:
                    text = f"Where is {phrase} in this image? Answer with its box. {hint}"
                    ans, sb = form.answer(ref[None], cat)
                    rows.append(_row(f"{base}-referring-{cat}", src, "referring", [image], text, ans,
                                     {**form.solution(sb), "referent": phrase}, split, category=cat))
        if "region_caption" in tasks:
            k = min(p["regions_per_image"], len(cats))
            for i in sorted(rng.choice(len(cats), size=k, replace=False).tolist()):
                cat = cats[i]
                text = f"What is in the region {form.region(boxes[i])} of this image? Answer with a short phrase."
                ans = f"{_article(cat).capitalize()} {cat}."
                rows.append(_row(f"{base}-region_caption-{i}", src, "region_caption", [image], text, ans,
                                 {"references": [ans]}, split, category=cat))
        if "multilabel_cls" in tasks:
            present = sorted(by_cat)
            text = (f"Which of these object classes appear in this image: {', '.join(vocab[dataset])}? "
                    "List every class present, separated by commas.")
            rows.append(_row(f"{base}-multilabel_cls", src, "multilabel_cls", [image], text, ", ".join(present),
                             {"labels": present}, split))
    return rows


_VQA_HINT = {
    "count": "Answer with a number.",
    "area": "Answer with the area in m2.",
    "rural_urban": "Answer rural or urban.",
}


def _vqa(df: pl.DataFrame, tasks: set[str], ctx: StepContext, out: StepOutput, p: dict) -> list[dict]:
    rows = []
    for r in df.iter_rows(named=True):
        q = r["question"].rstrip()
        q = q if q.endswith("?") else q + "?"
        text = f"{q} {_VQA_HINT.get(r['qtype'], 'Answer with a single word.')}"
        sol = {"answer": r["answer"], "qtype": r["qtype"], "numeric": r["qtype"] in ("count", "area")}
        rows.append(_row(f"{r['dataset']}-vqa-{r['qid']}", r["dataset"], "vqa", [r["image"]], text, r["answer"], sol,
                         r["split"], qtype=r["qtype"]))
    return rows


def _caption(df: pl.DataFrame, tasks: set[str], ctx: StepContext, out: StepOutput, p: dict) -> list[dict]:
    rows = []
    for r in df.iter_rows(named=True):
        text = "Describe this remote sensing image in one sentence."
        rows.append(_row(f"{r['dataset']}-image_caption-{r['key']}", r["dataset"], "image_caption", [r["image"]], text,
                         r["captions"][0], {"references": list(r["captions"])}, r["split"]))
    return rows


def _change(df: pl.DataFrame, tasks: set[str], ctx: StepContext, out: StepOutput, p: dict) -> list[dict]:
    rows = []
    pre = "The first image was taken before the second image of the same place."
    for r in df.iter_rows(named=True):
        imgs = [r["image_a"], r["image_b"]]
        if "change_caption" in tasks and r["captions"]:
            rows.append(_row(f"{r['dataset']}-change_caption-{r['key']}", r["dataset"], "change_caption", imgs,
                             f"{pre} Describe what changed between them in one sentence.", r["captions"][0],
                             {"references": list(r["captions"])}, r["split"]))
        if "change_presence" in tasks:
            ans = "yes" if r["changed"] else "no"
            rows.append(_row(f"{r['dataset']}-change_presence-{r['key']}", r["dataset"], "change_presence", imgs,
                             f"{pre} Has anything changed between them? Answer yes or no.", ans,
                             {"changed": bool(r["changed"])}, r["split"]))
    return rows


_REFERENT = re.compile(r"<p>(.*?)</p>", re.S)


def _canonical_text(text: str, size: list[int] | None) -> str:
    """Every box in ``text`` rewritten in the integer GeoChat form (θ folded into [0, 90))."""
    def sub(m: re.Match) -> str:
        vals = [float(g) if g is not None else 0.0 for g in m.groups()]
        return format_box(canonical_boxes([vals], size)[0])

    return BOX_RE_ANY.sub(sub, text)


def geochat_route(question: str, task: str, tag: str) -> tuple[str, str | None]:
    """``(task, qtype)`` of a GeoChat turn: untagged non-classification turns by the question.

    Examples
    --------
    >>> geochat_route("How many buildings are there?", "image_caption", "")
    ('vqa', 'count')
    >>> geochat_route("Describe the image in detail", "vqa", "")
    ('image_caption', None)
    >>> geochat_route("[vqa] Is there a road?", "vqa", "vqa")
    ('vqa', 'presence')
    """
    if task == "vqa" or (not tag and task != "scene_cls"):
        qt = geochat_question_type(question)
        return ("image_caption", None) if qt == "caption" else ("vqa", qt)
    return task, None


def _geochat(df: pl.DataFrame, tasks: set[str], ctx: StepContext, out: StepOutput, p: dict) -> list[dict]:
    rows = []
    skipped = 0
    for r in df.iter_rows(named=True):
        q, a = r["question"], r["answer"]
        task, qtype = geochat_route(q, r["task"], r["tag"] or "")
        if task not in tasks:
            skipped += 1
            continue
        size = None
        if BOX_RE_ANY.search(q) or BOX_RE_ANY.search(a) or (task == "referring" and p["boxes"] == "qwen"):
            w, h = image_size(r["image"])
            size = [w, h]
            q, a = _canonical_text(q, size), _canonical_text(a, size)
        if task == "referring":
            boxes = parse_boxes(a, strict=True)
            form = _Boxes(p, *size) if size else _Boxes({**p, "boxes": "geochat"}, None, None)
            if p["boxes"] == "qwen":
                ref = _REFERENT.search(a)
                a, boxes = form.answer(np.array(boxes), ref.group(1).strip() if ref else "object")
            sol: dict = form.solution(boxes)
        elif task in ("image_caption", "region_caption"):
            sol = {"references": [a]}
        elif task == "scene_cls":
            sol = {"label": a.strip().rstrip(".")}
        else:
            sol = {"answer": a, "qtype": qtype or "other", "numeric": qtype in ("count", "area")}
        rows.append(_row(f"geochat-{task}-{r['key']}", r["dataset"], task, [r["image"]], q, a, sol,
                         r["split"], qtype=qtype or r["tag"] or None))
    out.drop("geochat: task not requested", skipped)
    return rows


BUILDERS: dict[str, Callable[[pl.DataFrame, set[str], StepContext, StepOutput, dict], list[dict]]] = {
    "scene": _scene,
    "objects": _objects,
    "vqa": _vqa,
    "caption": _caption,
    "change": _change,
    "geochat": _geochat,
}


def assemble(rows: list[dict], boxes: str = "geochat") -> pl.DataFrame:
    """Rows → the schema columns (``prompt`` with the EO system prompt, ``completion``)."""
    base = pl.DataFrame(rows, schema=ROW_SCHEMA)
    parts = []
    for (n,), g in base.with_columns(_n=pl.col("images").list.len()).group_by(["_n"], maintain_order=True):
        think = pl.col("task").replace_strict(THINK, return_dtype=pl.String)
        parts.append(
            g.select(
                "id", "source", "task", "images",
                prompt=prompt_expr(pl.col("text"), int(n), SYSTEM_EO_QWEN if boxes == "qwen" else SYSTEM_EO),
                completion=completion_expr(
                    pl.concat_str([pl.lit("<think>"), think, pl.lit("</think>\n<answer>"), pl.col("answer"), pl.lit("</answer>")])
                ),
                solution=pl.col("solution"),
                split=pl.col("split"),
                category=pl.col("category"),
                qtype=pl.col("qtype"),
            )
        )
    if not parts:
        raise SpecError("eo_tasks: no rows were built (check the sources and tasks)")
    return pl.concat(parts).sort("id")


@step("eo_tasks", kind="join")
def eo_tasks(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    sources: dict[str, list[str]],
    max_boxes: int = 50,
    largest_ratio: float = 1.5,
    regions_per_image: int = 2,
    max_frames: int = 4,
    buildings_per_image: int = 4,
    damage_names: str = "xbd",
    boxes: str = "geochat",
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
    **tables: pl.DataFrame,
) -> StepOutput:
    """Build the unified EO task rows from several reader tables (``sources: {table: [tasks]}``).

    A join: every table named in ``sources`` is one of the step's ``inputs``.

    ``max_frames`` caps the frames of a time series (fMoW, evenly spaced, first and last kept) and
    ``buildings_per_image`` the ``damage_cls`` rows of one xBD pair; ``damage_names`` writes damage
    levels as xBD / EarthDial do (``xbd``: ``no-damage``) or as TEOChat's scorer reads them
    (``teochat``: ``No damage``) (:mod:`geodata.steps.eo_series`).

    ``boxes`` picks the box convention of answers and prompts (:mod:`geodata.tasks.eo.contract`):
    ``geochat`` (integer ``{<x1><y1><x2><y2>|<θ>}`` on the 0–100 grid) or ``qwen``
    (Qwen2.5-VL ``bbox_2d`` JSON in pixels of the image resized by the processor with
    ``min_pixels`` / ``max_pixels``; rotated objects become their axis-aligned hull).

    Examples
    --------
    A spec step::

        - step: eo_tasks
          inputs: {ucm: ucm, dota: eo_tiles.dota}
          sources: {ucm: [scene_cls], dota: [detection, referring, region_caption, multilabel_cls]}
    """
    out = StepOutput()
    if damage_names not in DAMAGE_NAMES:
        raise SpecError(f"eo_tasks: damage_names must be one of {', '.join(DAMAGE_NAMES)}, got '{damage_names}'")
    if boxes not in BOX_FORMATS:
        raise SpecError(f"eo_tasks: boxes must be one of {', '.join(BOX_FORMATS)}, got '{boxes}'")
    rows: list[dict] = []
    params = {"max_boxes": max_boxes, "largest_ratio": largest_ratio, "regions_per_image": regions_per_image,
              "max_frames": max_frames, "buildings_per_image": buildings_per_image, "damage_names": damage_names,
              "boxes": boxes, "min_pixels": min_pixels, "max_pixels": max_pixels}
    for name, tasks in sources.items():
        if name not in tables:
            raise BuildError(f"step '{ctx.name}': sources.{name} is not among its inputs ({sorted(tables)})")
        table = tables[name]
        if "eo_family" not in table.columns or table.height == 0:
            if table.height == 0:
                out.note(f"eo.{name}.rows", 0)
                continue
            raise SpecError(f"eo_tasks: source '{name}' is not an EO reader table (no eo_family column)")
        family = table["eo_family"][0]
        allowed = FAMILY_TASKS[family]
        bad = [t for t in tasks if t not in allowed]
        if bad:
            raise SpecError(f"eo_tasks: sources.{name}: tasks {bad} cannot be built from a '{family}' source (allowed: {', '.join(allowed)})")
        built = {**BUILDERS, **SERIES_BUILDERS}[family](table, set(tasks), ctx, out, params)
        out.note(f"eo.{name}.rows", len(built))
        rows.extend(built)
    kept = assemble(rows, boxes)
    dup = kept.height - kept["id"].n_unique()
    if dup:
        out.drop("duplicate id", dup)
        kept = kept.unique("id", keep="first", maintain_order=True)
    return out.result(kept)


@step("eo_mix", kind="frame")
def eo_mix(
    df: pl.DataFrame,
    ctx: StepContext,
    *,
    weights: dict[str, float] = {},
    caps: dict[str, int] = {},
    total: int | None = None,
    splits: list[str] = ["train"],  # noqa: B006
) -> StepOutput:
    """Per-task caps and mixture weights; the resulting mixture goes to the card (``mixture``).

    Only rows of the training ``splits`` are mixed; rows of the other splits (validation,
    test) pass through untouched, counted per split and task on the card (``held_out``).

    Each task first keeps at most ``caps[task]`` rows (a seeded random subset). With ``total``,
    task ``t`` then keeps at most ``round(total · w_t / Σw)`` rows; without it, the weights only
    switch tasks off (weight 0). Tasks missing from ``weights`` have weight 1. Shortfalls are
    not redistributed and nothing is up-sampled: the card shows requested and actual shares.
    """
    out = StepOutput()
    unknown = sorted((set(weights) | set(caps)) - set(ALL_TASKS))
    if unknown:
        raise SpecError(f"eo_mix: unknown task(s) {unknown} in weights/caps (tasks: {', '.join(ALL_TASKS)})")
    if "split" in df.columns:
        held = df.filter(~pl.col("split").is_in(splits))
        df = df.filter(pl.col("split").is_in(splits))
        counts = held.group_by("split", "task").len().sort("split", "task")
        out.note("held_out", {s: dict(zip(g["task"].to_list(), g["len"].to_list()))
                              for (s,), g in counts.group_by(["split"], maintain_order=True)})
    else:
        held = df.clear()
    present = sorted(df["task"].unique().to_list())
    w = {t: float(weights.get(t, 1.0)) for t in present}
    wsum = sum(w.values()) or 1.0
    keep_parts = []
    mixture: dict[str, dict[str, Any]] = {}
    for t in present:
        g = df.filter(pl.col("task") == t)
        avail = g.height
        n = avail
        if t in caps:
            n = min(n, caps[t])
        if total is not None:
            n = min(n, int(round(total * w[t] / wsum)))
        if w[t] <= 0:
            n = 0
        if n < avail:
            idx = np.sort(ctx.rng(t).permutation(avail)[:n])
            out.drop(f"mixture: {t} over cap/quota", avail - n)
            g = g[idx.tolist()] if n else g.clear()
        keep_parts.append(g)
        mixture[t] = {"available": avail, "weight": w[t], "cap": caps.get(t), "rows": n}
    kept = pl.concat(keep_parts) if keep_parts else df.clear()
    n_out = max(kept.height, 1)
    for t in mixture:
        mixture[t]["share"] = round(mixture[t]["rows"] / n_out, 4)
        srcs = kept.filter(pl.col("task") == t).group_by("source").len().sort("source")
        mixture[t]["sources"] = dict(zip(srcs["source"].to_list(), srcs["len"].to_list()))
    out.note("mixture", mixture)
    return out.result(pl.concat([kept, held]).sort("id"))
