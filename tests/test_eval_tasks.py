"""`geodata eval` for every task on planted predictions, against hand-computed metrics."""

from __future__ import annotations

import json
import os
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

from geodata.cli import app
from geodata.evaluate import evaluate as evaluate_tasks
from geodata.tasks.eo import caption_metrics, voc_ap


def _truth(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"id": i, "task": t, "source": src, "split": sp, "solution": json.dumps(sol)} for i, t, src, sp, sol in rows]
    )


def _run(rows: list[tuple], comps: dict[str, str], **kw):
    pred = pl.DataFrame({"id": list(comps), "completion": list(comps.values())})
    return evaluate_tasks(pred, _truth(rows), meteor=False, **kw)


def test_classification_vqa_change_mcq() -> None:
    rows = [
        ("s1", "scene_cls", "ucm", "test", {"label": "forest"}),
        ("s2", "scene_cls", "ucm", "test", {"label": "forest"}),
        ("s3", "scene_cls", "aid", "test", {"label": "harbor"}),
        ("s4", "scene_cls", "aid", "test", {"label": "harbor"}),
        ("m1", "multilabel_cls", "dota", "test", {"labels": ["airplane", "ship"]}),
        ("m2", "multilabel_cls", "dota", "test", {"labels": ["ship"]}),
        ("v1", "vqa", "rsvqa_lr", "test", {"answer": "12", "qtype": "count", "numeric": True}),
        ("v2", "vqa", "rsvqa_lr", "test", {"answer": "12", "qtype": "count", "numeric": True}),
        ("v3", "vqa", "rsvqa_lr", "test", {"answer": "yes", "qtype": "presence", "numeric": False}),
        ("v4", "vqa", "rsvqa_lr", "test", {"answer": "yes", "qtype": "presence", "numeric": False}),
        ("v5", "vqa", "rsvqa_hr", "test", {"answer": "rural", "qtype": "rural_urban", "numeric": False}),
        ("c1", "change_presence", "levir_cd", "test", {"changed": True}),
        ("c2", "change_presence", "levir_cd", "test", {"changed": False}),
        ("x1", "crossview_mcq", "cvusa", "test", {"answer": "B"}),
        ("x2", "crossview_mcq", "cvusa", "test", {"answer": "C"}),
    ]
    comps = {
        "s1": "<answer>Forest.</answer>", "s2": "<answer>harbour</answer>", "s3": "<answer>port</answer>", "s4": "",
        "m1": "<answer>plane, ship</answer>", "m2": "<answer>ship, harbor</answer>",
        "v1": "<answer>15</answer>", "v2": "<answer>many</answer>", "v3": "<answer>Yes.</answer>",
        "v4": "<answer>Yes, there is one.</answer>", "v5": "<answer>urban</answer>",
        "c1": "<answer>yes</answer>", "c2": "<answer>hmm</answer>",
        "x1": "<think>.</think><answer>B</answer>", "x2": "<answer>(C)</answer>",  # Geo-R1's extract_choice reads no letter in "(C)"
    }
    r = _run(rows, comps, protocol="synonyms")  # synonyms: "port" is a harbor (geochat would not count it)
    sc = r.tasks["scene_cls"]
    # predictions: forest, harbor, harbor, '' -> accuracy 2/4
    # F1 forest: tp 1, pred 1, gold 2 -> 2/3; harbor: tp 1, pred 2, gold 2 -> 1/2
    assert sc.metrics["accuracy"] == 0.5 and sc.n_unparsed == 1
    assert sc.metrics["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    ml = r.tasks["multilabel_cls"]
    assert ml.metrics["sample_f1"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert ml.metrics["micro_f1"] == pytest.approx(2 * 3 / (4 + 3))  # tp 2 + 1, 4 predicted, 3 gold and ml.metrics["exact_match"] == 0.5
    vqa = r.tasks["vqa"]
    # count: 15 in the bin of 12 (right), "many" unparsed (wrong); presence: 1 of 2; rural_urban 0 of 1
    assert vqa.per_type["count"]["accuracy"] == 0.5 and vqa.per_type["presence"]["accuracy"] == 0.5
    assert vqa.per_type["rural_urban"]["accuracy"] == 0.0
    assert vqa.metrics["overall_accuracy"] == pytest.approx(2 / 5)
    assert vqa.metrics["average_accuracy"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert vqa.n_unparsed == 1
    assert r.tasks["change_presence"].metrics["accuracy"] == 0.5 and r.tasks["change_presence"].n_unparsed == 1
    assert r.tasks["crossview_mcq"].metrics["accuracy"] == 0.5 and r.tasks["crossview_mcq"].n_unparsed == 1


def test_boxes_referring_and_detection() -> None:
    rows = [
        ("r1", "referring", "dota", "test", {"boxes": [[0, 0, 10, 10, 0]], "box_format": "geochat", "size": [100, 100]}),
        ("r2", "referring", "dota", "test", {"boxes": [[0, 0, 10, 10, 0]], "box_format": "geochat", "size": [100, 100]}),
        ("r3", "referring", "dota", "test", {"boxes": [[0, 0, 50, 25, 0]], "box_format": "qwen", "size": [400, 200],
                                              "resized": [392, 196]}),
        ("r4", "referring", "dota", "test", {"boxes": [[0, 0, 10, 10, 0]]}),
        ("r5", "referring", "geochat", "test", {"boxes": [[0, 0, 10, 10, 0], [50, 50, 60, 60, 0]]}),
        ("d1", "detection", "dota", "test", {"boxes": [[0, 0, 10, 10, 0], [20, 20, 30, 30, 0]], "category": "ship"}),
        ("d2", "detection", "dota", "test", {"boxes": [[0, 0, 10, 10, 0]], "category": "ship"}),
        ("d3", "detection", "dota", "test", {"boxes": [[50, 50, 60, 60, 0]], "category": "plane"}),
    ]
    comps = {
        "r1": "<answer>{<0><0><10><10>|<0>}</answer>",                 # IoU 1
        "r2": "<answer>{<5><0><15><10>|<0>}</answer>",                 # IoU 1/3
        "r3": '<answer>[{"bbox_2d": [0, 0, 196, 49], "label": "x"}]</answer>',  # IoU 1 (Qwen form)
        "r4": "<answer>{<0><0><10><10>|<-5>}</answer>",                # unreadable by GeoChat's parser
        "r5": "<answer>{<0><0><10><10>|<0>}{<80><80><90><90>|<0>}</answer>",  # 1 of 2 gold boxes
        "d1": "<answer>{<0><0><10><10>|<0>}{<70><70><80><80>|<0>}</answer>",  # 1 TP, 1 FP
        "d2": "<answer>{<0><0><10><10>|<0>}</answer>",                 # 1 TP
        "d3": "<answer>none</answer>",                                 # no prediction, not unparsed
    }
    r = _run(rows, comps)
    ref = r.tasks["referring"]
    # TEOChat's Acc@0.5: matched gold boxes / gold boxes = (1 + 0 + 1 + 0 + 1) / 6
    assert ref.metrics["acc@0.5"] == 0.5 and ref.n_unparsed == 1
    assert ref.metrics["mean_iou"] == pytest.approx((1 + 1 / 3 + 1 + 0 + 1) / 5)
    det = r.tasks["detection"]
    # ship: 3 predictions (2 TP), 3 gold -> AP = recall 2/3 × precision 2/3; plane: AP 0
    assert det.per_type["ship"]["ap"] == pytest.approx(4 / 9) and det.per_type["plane"]["ap"] == 0.0
    assert det.metrics["map@0.5"] == pytest.approx(2 / 9)
    assert det.metrics["precision"] == pytest.approx(2 / 3) and det.metrics["recall"] == pytest.approx(2 / 4)
    assert det.n_unparsed == 0


def test_voc_ap_reference_values() -> None:
    import numpy as np

    # ranked: TP, FP, TP with 2 gold: precision 1 up to recall 1/2, then 2/3 up to recall 1
    assert voc_ap(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 2) == pytest.approx(0.5 + (2 / 3) * 0.5)
    assert voc_ap(np.array([]), np.array([]), 3) == 0.0
    # ties are one operating point, whatever their order
    assert voc_ap(np.ones(3), np.array([0, 1, 1]), 2) == voc_ap(np.ones(3), np.array([1, 1, 0]), 2) == pytest.approx(2 / 3)


def test_caption_metrics_and_breakdown() -> None:
    m, notes = caption_metrics(["a red car on a road"], [["a red car on a road", "a car"]], meteor=False)
    assert m["bleu_1"] == pytest.approx(1.0) and m["bleu_4"] == pytest.approx(1.0) and m["rouge_l"] == pytest.approx(1.0)
    assert m["meteor"] is None and "METEOR skipped" in notes[0]
    # BLEU-1 by hand: hypothesis "a red boat", reference "a red car": 2/3 unigrams, brevity 1
    m, _ = caption_metrics(["a red boat"], [["a red car"]], meteor=False)
    assert m["bleu_1"] == pytest.approx(2 / 3, abs=1e-6)
    rows = [("i1", "image_caption", "rsicd", "test", {"references": ["many planes at an airport"]}),
            ("i2", "image_caption", "ucm_captions", "val", {"references": ["a river in a forest"]})]
    r = _run(rows, {"i1": "<answer>many planes at an airport</answer>", "i2": "<answer></answer>"}, by="split")
    assert r.tasks["image_caption"].n_unparsed == 1
    assert set(r.breakdown) == {"test", "val"}
    assert r.breakdown["test"]["image_caption"].metrics["bleu_1"] == pytest.approx(1.0)
    assert r.breakdown["test"]["image_caption"].metrics["cider"] == pytest.approx(0.0)  # one image: no idf signal


@pytest.mark.skipif(shutil.which("java") is None or not os.environ.get("GEODATA_SLOW"),
                    reason="METEOR 1.5 needs java and ~30 s (set GEODATA_SLOW=1)")
def test_meteor_runs_offline() -> None:
    m, notes = caption_metrics(["a red car on the road", "a dog"], [["a red car on the road"], ["a cat"]], meteor=True)
    assert notes == [] and 0.0 < m["meteor"] < 1.0


def test_geolocation_rows_and_cli(tmp_path) -> None:
    rows = [("g1", "geolocation", "im2gps3k", "test", {"lat": 48.8566, "lon": 2.3522}),
            ("g2", "geolocation", "im2gps3k", "test", {"lat": -33.87, "lon": 151.21}),
            ("z1", "change_presence", "levir_cd", "test", {"changed": True})]
    r = _run(rows, {"g1": "<answer>(48.86, 2.35)</answer>", "g2": "no idea", "z1": "<answer>no</answer>"})
    g = r.tasks["geolocation"]
    assert g.metrics["acc@25km"] == 0.5 and g.n_unparsed == 1
    # the CLI on a built task dataset: per-task table, --by source, JSON in the one schema

    d = tmp_path / "ds"
    (d / "default").mkdir(parents=True)
    _truth(rows).write_parquet(d / "default" / "test-00000.parquet")
    (d / "manifest.json").write_text(json.dumps({
        "written_by": "geodata", "name": "ds", "fingerprint": "f", "geodata_version": "0", "default_config": "default",
        "configs": {"default": {"test": {"num_rows": len(rows), "files": ["default/test-00000.parquet"]}}}}))
    p = tmp_path / "p.csv"
    pl.DataFrame({"id": ["g1", "g2", "z1", "stray"],
                  "completion": ["<answer>(48.86, 2.35)</answer>", "no idea", "yes", "x"]}).write_csv(p)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", str(p), "--truth", str(d), "--out", str(out), "--by", "source",
                                   "--compare", "geo-r", "--no-geocode"])
    assert res.exit_code == 0, res.output
    assert "change_presence" in res.output and "geolocation" in res.output and "published" in res.output
    j = json.loads(out.read_text())
    assert j["tasks"]["change_presence"]["metrics"]["accuracy"] == 1.0 and j["n_unknown_ids"] == 1
    assert set(j["breakdown"]) == {"im2gps3k", "levir_cd"}
    assert j["compare"][0]["metric"] == "acc@1km" and j["compare"][0]["ours"] == 0.5
    res = CliRunner().invoke(app, ["eval", str(p), "--truth", str(d), "--by", "colour"])
    assert res.exit_code == 2 and "--by must be source or split" in res.output
