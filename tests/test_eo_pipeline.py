"""The eo-instruct pipeline from the samples: per-task configs, gold = 1 under every reward, mixture on the card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from geodata.engine import build
from geodata.registry import SOURCES, _load_all, get_reward, reward_for_task
from geodata.sources.eo.common import EO_TASKS

_load_all()
EO_SOURCES = ["ucm", "aid", "nwpu_resisc45", "eurosat_rgb", "dota", "dior", "rsvqa_lr", "rsvqa_hr", "rsicd",
              "ucm_captions", "sydney_captions", "levir_cd", "levir_cc", "geochat_instruct"]


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
    res = build("eo-instruct", sets=["mix.caps.scene_cls=3", "mix.total=20"], out=tmp_path / "capped", force=True)
    mix = res.notes["mixture"]
    assert mix["scene_cls"]["rows"] == 3 and mix["scene_cls"]["available"] == 25
    wsum = sum(m["weight"] for m in mix.values())
    assert mix["vqa"]["rows"] == min(mix["vqa"]["available"], round(20 * 1.5 / wsum))
    assert res.rows == sum(m["rows"] for m in mix.values())
    assert res.drops["mixture: scene_cls over cap/quota"] == 22
