"""The Geo-R1 multiple-choice reward: gold rows score 1, wrong or malformed answers do not."""

from __future__ import annotations

import numpy as np
import pytest

from geodata.context import StepContext
from geodata.registry import get_reward, reward_for_task
from geodata.tasks.mcq import crossview_mcq, extract_choice, format_ok, mcq_format
from geodata.sources.crossview import cvact, vigor
from geodata.steps.crossview import crossview_mcq as mcq_step


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory):
    import polars as pl

    frames = []
    for mod, fn in ((vigor, vigor.read_vigor), (cvact, cvact.read_cvact)):
        d = tmp_path_factory.mktemp(mod.__name__.rsplit(".", 1)[-1])
        mod.write_sample(d)
        frames.append(fn(StepContext(), root=d).rows)
    return mcq_step(pl.concat(frames, how="diagonal_relaxed"), StepContext(seed=3, name="crossview_mcq")).rows


def _gold(rows) -> list[str]:
    return [c[0]["content"][0]["text"] for c in rows["completion"]]


@pytest.mark.parametrize("combine", ["product", "sum", "accuracy"])
def test_gold_completions_score_one(rows, combine: str) -> None:
    sols = rows["solution"].to_list()
    got = crossview_mcq(_gold(rows), sols, combine=combine, length_weight=1.0, repetition_weight=1.0)
    assert got.shape == (rows.height,) and (got == 1.0).all()
    # TRL hands conversational completions as message lists
    assert (crossview_mcq(rows["completion"].to_list(), sols) == 1.0).all()


def test_wrong_letter_scores_zero(rows) -> None:
    sols = rows["solution"].to_list()
    wrong = [f"<think>x</think><answer>{'B' if a == 'A' else 'A'}</answer>" for a in rows["answer"]]
    assert (crossview_mcq(wrong, sols) == 0.0).all()
    assert (crossview_mcq(wrong, sols, combine="sum") == 0.5).all()  # format only


def test_registered_for_task() -> None:
    assert reward_for_task("crossview_mcq").name == "crossview_mcq"
    assert get_reward("mcq_format").fn is mcq_format


@pytest.mark.parametrize(
    "text, letter",
    [
        ("<think>a</think><answer>C</answer>", "C"),
        ("<think>a</think><answer> (c). </answer>", "C"),
        ("<think>a</think><answer>Option D</answer>", "D"),
        ("<answer>A</answer> then <answer>B</answer>", "B"),
        ("<think>a</think><answer>C or D</answer>", None),
        ("<think>a</think><answer>CD</answer>", None),
        ("C", None),
        ("", None),
    ],
)
def test_extract_choice(text: str, letter: str | None) -> None:
    assert extract_choice(text) == letter


@pytest.mark.parametrize(
    "text, ok",
    [
        ("<think>a</think><answer>C</answer>", 1.0),
        ("  <think>\nlong\n</think>\n<answer>C</answer>\n", 1.0),
        ("<answer>C</answer>", 0.0),
        ("<think>a</think>C", 0.0),
        ("prefix <think>a</think><answer>C</answer>", 0.0),
        ("<think>a</think><answer>C</answer><answer>D</answer>", 0.0),
        ("<think>a<think>b</think><answer>C</answer>", 0.0),
    ],
)
def test_format(text: str, ok: float) -> None:
    assert format_ok(text) == ok


def test_sum_form_penalizes_length_and_repetition() -> None:
    sol = ['{"answer":"A"}']
    good = "<think>The road bends north.</think><answer>A</answer>"
    loop = "<think>" + "same words again " * 100 + "</think><answer>A</answer>"
    kw = dict(combine="sum", length_weight=1.0, repetition_weight=1.0, length_limit=200, length_buffer=100)
    g, lp = crossview_mcq([good, loop], sol * 2, **kw)
    assert g == 1.0 and lp < 0.1
    raw = crossview_mcq([good], sol, combine="sum", normalize=False, format_weight=1.0, accuracy_weight=2.0)
    assert raw.tolist() == [3.0]


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        crossview_mcq(["a", "b"], ["A"])
    assert isinstance(crossview_mcq([], []), np.ndarray)
