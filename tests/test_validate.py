"""geodata validate: schema/feature/image/id checks and the reward self-check, on good and planted-bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import Features, List, Value
from typer.testing import CliRunner

from dataset_fixture import FEATURES, make_dataset, make_rows, rewrite_shard, write_dataset
from geodata.cli import app
from geodata.validate import validate_dataset

SHARD0 = "data/train-00000-of-00002.parquet"
SHARD1 = "data/train-00001-of-00002.parquet"


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    return make_dataset(tmp_path, n=12, shards=2, hotspots=True)


def _rows(folder: Path, rel: str) -> list[dict]:
    return pq.read_table(folder / rel).to_pylist()


def test_valid_dataset_passes_every_check(good: Path) -> None:
    r = validate_dataset(good)
    assert r.ok, r.summary() + "\n" + "\n".join(i.line() for i in r.issues)
    assert r.rows == 12
    assert r.configs == {"default": {"train": 12}, "hotspots": {"train": 2}}
    assert r.images_checked == 12
    assert r.rewards["fixture_echo"]["rows"] == 12
    assert r.rewards["fixture_echo"]["at_max"] == 12


def _plant(folder: Path, mutate) -> None:  # noqa: ANN001 - a row mutator
    rows = _rows(folder, SHARD1)
    mutate(rows)
    rewrite_shard(folder, SHARD1, rows)


@pytest.mark.parametrize(
    "check, mutate, needle",
    [
        ("reward", lambda rows: rows[2]["completion"][0]["content"][0].update(text="<think>x</think><answer>0.00,0.00</answer>"),
         "scores 0 < 1"),
        ("image", lambda rows: rows[1]["images"][0].update(bytes=rows[1]["images"][0]["bytes"][:40]), "does not decode"),
        ("image", lambda rows: rows[1]["images"][0].update(bytes=None), "no image bytes"),
        ("id", lambda rows: rows[0].update(id="row-00000"), "duplicate id"),
        ("solution", lambda rows: rows[3].update(solution="{not json"), "not valid json"),
        ("prompt", lambda rows: rows[0]["images"].append(rows[0]["images"][0]), "1 image placeholders but the row has 2"),
        ("completion", lambda rows: rows[0]["completion"][0].update(role="user"), "one assistant message"),
        ("coords", lambda rows: rows[4].update(lat=123.0), "outside"),
        ("reward", lambda rows: rows[0].update(task="no_such_task"), "no reward for task 'no_such_task'"),
        ("reward", lambda rows: rows[3].update(solution='{"lat": 1.0}'), "raised KeyError"),
    ],
)
def test_planted_bad_row_is_listed(good: Path, check: str, mutate, needle: str) -> None:  # noqa: ANN001
    _plant(good, mutate)
    r = validate_dataset(good)
    assert not r.ok
    hits = [i for i in r.issues if i.check == check]
    assert hits, r.summary()
    assert any(needle in i.message for i in hits), [i.message for i in hits]
    assert all(i.file == SHARD1 and i.row is not None for i in hits)
    # only the planted check fails
    assert set(r.counts) == {check}, r.counts


def test_row_index_and_id_point_at_the_bad_row(good: Path) -> None:
    def bad(rows: list[dict]) -> None:
        rows[4]["solution"] = json.dumps({"answer": "wrong"})

    _plant(good, bad)
    r = validate_dataset(good)
    (issue,) = r.issues
    assert (issue.check, issue.row, issue.id) == ("reward", 4, _rows(good, SHARD1)[4]["id"])
    assert r.rewards["fixture_echo"]["at_max"] == 11


def test_box_scale_bug_is_caught_by_the_reward_self_check(tmp_path: Path) -> None:
    """VLM-R1's IoU-stuck-at-0: gold boxes in pixels, reward expecting [0, 1000] coordinates."""
    rows = make_rows(2)
    sol = {"task": "detection", "boxes": [[100, 100, 300, 300, 0]]}  # normalized to [0, 1000]
    for r, box in zip(rows, ["{<100><100><300><300>|<0>}", "{<51><51><154><154>|<0>}"]):  # 2nd: pixels of 512 px
        r.update(task="detection", solution=json.dumps(sol))
        r["completion"][0]["content"][0]["text"] = f"<think>one plane</think><answer>{box}</answer>"
    folder = write_dataset(tmp_path, "boxes", {"default": {"train": [rows]}}, {"default": FEATURES})
    rep = validate_dataset(folder)
    assert rep.rewards["detection"] == {**rep.rewards["detection"], "reward": "eo_detection", "rows": 2, "at_max": 1}
    (issue,) = rep.issues
    assert issue.check == "reward" and issue.id == "row-00001" and "eo_detection" in issue.message


def test_layout_and_card_drift_are_reported(good: Path) -> None:
    # a shard rewritten after the build without updating the manifest
    rows = _rows(good, SHARD0)
    rewrite_shard(good, SHARD0, rows[:-1], fix_manifest=False)
    # and a card whose configs name a config the manifest lacks
    text = (good / "README.md").read_text().replace("config_name: hotspots", "config_name: hot")
    (good / "README.md").write_text(text)
    r = validate_dataset(good)
    layout = " | ".join(i.message for i in r.issues if i.check == "layout")
    assert "differs from the manifest" in layout or "rows, the manifest says" in layout
    card = " | ".join(i.message for i in r.issues if i.check == "card")
    assert "'hot'" in card and "'hotspots'" in card


def test_schema_errors_stop_row_checks(tmp_path: Path) -> None:
    rows = make_rows(3)
    for r in rows:
        del r["solution"]
    feats = Features({k: v for k, v in FEATURES.items() if k != "solution"})
    folder = write_dataset(tmp_path, "nosol", {"default": {"train": [rows]}}, {"default": feats})
    r = validate_dataset(folder)
    assert [i.message for i in r.issues if i.check == "schema"] == ["core column 'solution' is missing"]
    assert set(r.counts) == {"schema"}


def test_images_without_image_feature_are_a_schema_error(tmp_path: Path) -> None:
    rows = make_rows(2)
    feats = Features({**FEATURES, "images": List({"bytes": Value("binary"), "path": Value("string")})})
    folder = write_dataset(tmp_path, "rawimg", {"default": {"train": [rows]}}, {"default": feats})
    r = validate_dataset(folder)
    msgs = [i.message for i in r.issues if i.check == "schema"]
    assert any("expected List(Image())" in m for m in msgs), msgs


def test_cli_exit_codes_and_failing_rows(good: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "ok (12 rows" in ok.output and "12/12 gold completions" in ok.output

    _plant(good, lambda rows: rows[2]["images"][0].update(bytes=b"\xff\xd8\xff\xe0garbage"))
    bad = runner.invoke(app, ["validate", str(good), "--json"])
    assert bad.exit_code == 1
    data = json.loads(bad.output)
    assert data["ok"] is False and data["counts"] == {"image": 1}
    assert data["issues"][0]["id"] == _rows(good, SHARD1)[2]["id"]

    table = runner.invoke(app, ["validate", str(good)])
    assert table.exit_code == 1 and "FAILED" in table.output and "image" in table.output


def test_unknown_dataset_is_one_line_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["validate", "nope", "--datasets", str(tmp_path)])
    assert res.exit_code == 2
    assert "no built dataset 'nope'" in res.output


def test_real_sample_build_validates(tmp_path: Path) -> None:
    """The engine's own sample build passes (the geolocation reward checks every gold answer)."""
    from geodata.engine import build
    from geodata.errors import SpecError
    from geodata.registry import reward_for_task

    res = build("mp16-rand-500k", sets=["sample.n=30"], out=tmp_path / "mp16-rand-500k")
    try:
        reward_for_task("geolocation")
        has_reward = True
    except SpecError:
        has_reward = False
    r = validate_dataset(res.path, rewards=has_reward)
    assert r.ok, "\n".join(i.line() for i in r.issues[:10])
    assert r.rows == 30 and r.images_checked == 30
    if has_reward:
        assert r.rewards["geolocation"]["at_max"] == 30
