"""The eo-instruct pipeline from the samples: per-task configs, gold = 1 under every reward, mixture on the card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from geodata.engine import build
from geodata.registry import SOURCES, _load_all, get_reward, reward_for_task
from geodata.steps.eo import ALL_TASKS as EO_TASKS  # the unified tasks and the image-sequence / land-cover ones

_load_all()
# every reader of the EO family folder, found by where it is defined (no list to edit per source)
EO_SOURCES = sorted(n for n, info in SOURCES.items() if info.fn.__module__.startswith("geodata.sources.eo."))


def test_the_eo_family_is_discovered() -> None:
    assert {"ucm", "aid", "nwpu_resisc45", "eurosat_rgb", "dota", "dior", "rsvqa_lr", "rsvqa_hr", "rsicd",
            "ucm_captions", "sydney_captions", "levir_cd", "levir_cc", "geochat_instruct"} <= set(EO_SOURCES)
    assert all(SOURCES[n].sample is not None for n in EO_SOURCES), "every EO reader ships a sample"


@pytest.fixture(scope="module")
def sample_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("eo_samples")
    mp = pytest.MonkeyPatch()
    for name in EO_SOURCES:
        info = SOURCES[name]
        info.sample(base / name)
        mp.setenv(info.env, str(base / name))
    yield base
    mp.undo()


@pytest.fixture(scope="module")
def built(sample_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("eo_build") / "eo-instruct"
    res = build("eo-instruct", out=out, force=True)
    return res, out


def _rows(out: Path) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(f) for f in sorted(out.glob("*/train-*.parquet"))], how="vertical_relaxed")


def test_one_config_per_task(built) -> None:
    res, out = built
    assert set(res.configs) == set(EO_TASKS)
    for task in EO_TASKS:
        df = pl.concat([pl.read_parquet(f) for f in (out / task).glob("train-*.parquet")])
        assert set(df["task"]) == {task}
    df = _rows(out)
    assert df["id"].n_unique() == df.height
    n_img = dict(zip(df["task"], df["images"].list.len()))
    assert n_img["change_caption"] == 2 and n_img["change_presence"] == 2 and n_img["detection"] == 1
    # system prompt in GeoVLM-R1's form and the image placeholders in the user turn
    prompt = df["prompt"][0].to_list()
    assert prompt[0]["role"] == "system" and "expert in Earth Observation" in prompt[0]["content"][0]["text"]
    assert "<think>" in prompt[0]["content"][0]["text"] and "<answer>" in prompt[0]["content"][0]["text"]


def test_gold_scores_max_under_every_task_reward(built) -> None:
    _, out = built
    df = _rows(out)
    fmt = get_reward("eo_format")
    for (task,), g in df.group_by(["task"]):
        info = reward_for_task(task)
        comps = [m[0]["content"][0]["text"] for m in g["completion"].to_list()]
        sols = g["solution"].to_list()
        scores = np.asarray(info.fn(comps, sols))
        assert (scores == info.max_score).all(), (task, [s for s, v in zip(sols, scores) if v != 1.0])
        assert (np.asarray(fmt.fn(comps, sols)) == 1.0).all(), task
        # a wrong answer does not score 1 (the rewards can fail); no number for VQA rows, whose
        # counts are scored by RSVQA bin (a stray 90 is right for any gold of 11-100)
        bad = "{<90><90><95><99>|<10>} lorem ipsum" if task in ("detection", "referring") else "lorem ipsum"
        wrong = [f"<think>x</think><answer>{bad}</answer>"] * len(sols)
        assert (np.asarray(info.fn(wrong, sols)) < 1.0).all(), task


def test_card_lists_the_mixture(built) -> None:
    res, out = built
    mix = res.notes["mixture"]
    assert set(mix) == set(EO_TASKS)
    assert mix["scene_cls"]["sources"] == {"aid": 6, "eurosat_rgb": 6, "geochat_instruct": 1, "nwpu_resisc45": 6, "ucm": 6}
    assert mix["vqa"]["cap"] == 100000 and mix["vqa"]["weight"] == 1.5
    card = (out / "README.md").read_text()
    assert "mixture" in card and "change_presence" in card


def test_caps_and_total(sample_env, tmp_path) -> None:
    res = build("eo-instruct", sets=["mix.caps.scene_cls=3", "mix.total=25"], out=tmp_path / "capped", force=True)
    mix = res.notes["mixture"]
    assert mix["scene_cls"]["rows"] == 3 and mix["scene_cls"]["available"] == 25
    wsum = sum(m["weight"] for m in mix.values())
    assert mix["vqa"]["rows"] == min(mix["vqa"]["available"], round(25 * 1.5 / wsum))
    # only train rows are mixed; validation / test rows pass through to their own HF splits
    held = sum(n for per in res.notes["held_out"].values() for n in per.values())
    assert held > 0 and res.notes["split_guard"]["dropped"] == 0
    assert res.rows == sum(m["rows"] for m in mix.values()) + held
    assert res.drops["mixture: scene_cls over cap/quota"] == 22


def _source_polygons(sample_env: Path, source: str, rid: str) -> dict[str, list[np.ndarray]]:
    """Pixel polygons of the source annotation of a row's image, by canonical class."""
    from geodata.sources.eo.common import canonical_class
    from geodata.sources.eo.dior import OBB_DIR, parse_dior_xml
    from geodata.sources.eo.dota import parse_dota_label

    _, split, image_id = rid.split("-")[:3]
    if source == "dota":
        _, objs, _ = parse_dota_label(sample_env / "dota" / split / "labelTxt" / f"{image_id}.txt")
        items = [(cat, q) for _, q, cat, _ in objs]
    else:
        _, objs, _ = parse_dior_xml(sample_env / "dior" / OBB_DIR / f"{image_id}.xml", True)
        items = [(name, q) for _, name, q in objs]
    out: dict[str, list[np.ndarray]] = {}
    for cat, q in items:
        out.setdefault(canonical_class(cat), []).append(np.asarray(q, dtype=float).reshape(4, 2))
    return out


def test_every_box_parses_with_geochat_regex_and_round_trips(built, sample_env) -> None:
    import math
    import re

    import shapely

    from geodata.tasks.eo.contract import GEOCHAT_INT_RE, box_corners, extract_answer, parse_boxes

    _, out = built
    df = _rows(out)
    checked = 0
    for r in df.filter(pl.col("task").is_in(["detection", "referring"])).iter_rows(named=True):
        sol = json.loads(r["solution"])
        ans = extract_answer(r["completion"][0]["content"][0]["text"])
        groups = re.findall(r"\{[^{}]*\}", ans)
        assert groups, r["id"]
        for g in groups:  # GeoChat's integer regex reads every number of every box
            assert len(GEOCHAT_INT_RE.findall(g)) == 5 and "-" not in g and "." not in g, (r["id"], g)
        assert parse_boxes(ans, strict=True) == sol["boxes"], r["id"]
        if r["source"] not in ("dota", "dior"):
            continue
        W, H = sol["size"]
        polys = _source_polygons(sample_env, r["source"], r["id"])[r["category"]]
        for box in sol["boxes"]:
            c = box_corners([box], (W, H))[0]
            tol = math.hypot(0.5 * W / 100, 0.5 * H / 100) + math.radians(0.5) * math.hypot(*(c[2] - c[0])) / 2 + 0.01
            d = min(shapely.hausdorff_distance(shapely.Polygon(c), shapely.Polygon(p)) for p in polys)
            assert d <= tol, (r["id"], box, d, tol)
            checked += 1
    assert checked >= 10


def test_qwen_convention_build(sample_env, tmp_path, monkeypatch) -> None:
    from geodata.tasks.eo.contract import parse_qwen, smart_resize

    monkeypatch.setenv("EO_BOXES", "qwen")
    _, out = None, tmp_path / "qwen"
    build("eo-instruct", out=out, force=True)
    df = _rows(out)
    fmt = get_reward("eo_format")
    for task in ("detection", "referring"):
        g = df.filter(pl.col("task") == task)
        comps = [m[0]["content"][0]["text"] for m in g["completion"].to_list()]
        sols = g["solution"].to_list()
        assert (np.asarray(reward_for_task(task).fn(comps, sols)) == 1.0).all(), task
        assert (np.asarray(fmt.fn(comps, sols)) == 1.0).all(), task
        for c, s in zip(comps, map(json.loads, sols)):
            assert s["box_format"] == "qwen" and parse_qwen(c)
            rh, rw = smart_resize(s["size"][1], s["size"][0])
            assert s["resized"] == [int(rw), int(rh)]
            assert all(b[4] == 0 for b in s["boxes"])  # horizontal: the axis-aligned hull
    assert "bbox_2d" in df["prompt"][0].to_list()[0]["content"][0]["text"]


def test_eval_scores_gold_predictions_as_perfect(built, tmp_path) -> None:
    from geodata.evaluate import evaluate_files

    _, out = built
    df = _rows(out)
    preds = tmp_path / "gold.parquet"
    df.select("id", completion=pl.col("completion").list.first().struct.field("content").list.first()
              .struct.field("text")).write_parquet(preds)
    rep = evaluate_files(preds, out, by="source", meteor=False)
    assert set(rep.tasks) == set(EO_TASKS)
    for task, r in rep.tasks.items():
        assert r.n_unparsed == 0, task
        for k, v in r.metrics.items():
            if k.startswith(("bleu", "rouge", "accuracy", "overall", "average", "acc@", "map", "precision",
                             "recall", "sample_f1", "micro_f1", "macro_f1", "exact", "mean_iou")):
                assert v == pytest.approx(1.0), (task, k, v)
    assert "dota" in rep.breakdown and "detection" in rep.breakdown["dota"]


def test_gold_boxes_split_as_geochat_and_teochat_split_them(built) -> None:
    """Every detection / referring gold answer of a built eo-instruct is read whole by GeoChat's
    demo (``mbzuai-oryx/GeoChat`` ``geochat_demo.py``: ``}{`` → ``}<delim>{``) and TEOChat's
    scorer (``ermongroup/TEOChat`` ``videollava/eval/eval_geochat_referring.py``
    ``convert_geochat_string``): as many boxes as the solution holds."""
    import re

    from geodata.tasks.eo.contract import extract_answer, split_geochat_boxes

    _, out = built
    df = _rows(out).filter(pl.col("task").is_in(["detection", "referring"]))
    texts = df.select(c=pl.col("completion").list.first().struct.field("content").list.first()
                      .struct.field("text"))["c"].to_list()
    n_multi = 0
    for text, sol in zip(texts, map(json.loads, df["solution"].to_list())):
        if sol.get("box_format") == "qwen" or not sol["boxes"]:
            continue
        ans = extract_answer(text)
        assert len(split_geochat_boxes(ans)) == len(sol["boxes"]), ans
        pieces = ans[ans.find("{"): ans.rfind("}") + 1].replace("}{", "}<delim>{").split("<delim>")
        assert sum(len(re.findall(r"-?\d+", p)) == 5 for p in pieces) == len(sol["boxes"]), ans
        n_multi += len(sol["boxes"]) > 1
    assert n_multi > 0
