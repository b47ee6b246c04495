"""Each rule where geodata's scores used to differ from a benchmark's own code, at that code's value.

Every test names the reference code (repository, path) it reproduces; docs/eval.md lists them.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import polars as pl
import pytest
import shapely

from geodata.errors import SourceError
from geodata.evaluate import evaluate, evaluate_files, load_truth
from geodata.tasks.eo.contract import (
    eval_boxes,
    format_boxes,
    parse_bracket_boxes,
    parse_numeric,
    parse_qwen2_boxes,
    rotated_iou_matrix,
    split_geochat_boxes,
)
from geodata.tasks.geolocation.parse import parse_coords
from geodata.tasks.geolocation.rewards import curve_score, geolocation
from geodata.tasks.mcq import cosine_length_term, geo_r1_choice, repetition_term


def _eval(rows: list[tuple], comps: dict[str, str], **kw):
    truth = pl.DataFrame([{"id": i, "task": t, "source": src, "split": "test", "solution": json.dumps(sol)}
                          for i, t, src, sol in rows])
    pred = pl.DataFrame({"id": list(comps), "completion": list(comps.values())})
    return evaluate(pred, truth, meteor=False, **kw)


# -- syvlo/RSVQA VQA_model/train.py: HR answers encoded with range_numbers=False ----------------
def test_rsvqa_hr_counts_are_exact_lr_counts_binned() -> None:
    sol = {"answer": "12", "qtype": "count", "numeric": True}
    r = _eval([("h", "vqa", "rsvqa_hr", sol), ("l", "vqa", "rsvqa_lr", sol),
               ("a", "vqa", "rsvqa_hr", {"answer": "1234m2", "qtype": "area", "numeric": True})],
              {"h": "<answer>15</answer>", "l": "<answer>15</answer>", "a": "<answer>more than 1000 m2</answer>"})
    per = r.tasks["vqa"].per_type
    assert per["count"]["accuracy"] == 0.5  # HR 12 vs 15: 0 (exact); LR: 1 (same bin)
    assert per["area"]["accuracy"] == 1.0   # areas binned (VocabEncoder's m2 branch is not gated)


# -- ermongroup/TEOChat videollava/eval/geochat_bench.py (iou > iou_thr); VLM-R1 src/eval/test_rec_r1.py (> 0.5)
# -- hiyamdebary/EarthDial src/earthdial/eval/rs_detection/eval.py (iou >= 0.5) ------------------------
def test_iou_exactly_half_is_a_miss_for_teochat_and_a_hit_for_earthdial() -> None:
    gold = [[0, 0, 20, 20, 0]]
    assert rotated_iou_matrix([[0, 0, 20, 10, 0]], gold)[0, 0] == pytest.approx(0.5)
    rows = [("r", "referring", "geochat", {"boxes": gold, "size": [100, 100]})]
    half = {"r": "<answer>{<0><0><20><10>|<0>}</answer>"}
    assert _eval(rows, half).tasks["referring"].metrics["acc@0.5"] == 0.0
    half_ed = {"r": "<answer>[[0, 0, 20, 10, 0]]</answer>"}
    r = _eval(rows, half_ed, protocol="earthdial")
    assert r.tasks["referring"].metrics["acc@0.5"] == 1.0 and r.protocol == "earthdial"


# -- TEOChat eval_geochat_referring.py convert_geochat_string; GeoChat geochat_demo.py ("}{" -> <delim>) --
def test_multi_box_answers_split_on_closing_opening_brace_only() -> None:
    joined = "{<0><0><10><10>|<0>}{<50><50><60><60>|<0>}"
    assert len(split_geochat_boxes(joined)) == 2
    assert split_geochat_boxes(joined.replace("}{", "} {")) == []  # one piece of ten numbers: dropped
    assert format_boxes([[0, 0, 10, 10, 0], [50, 50, 60, 60, 0]]) == joined  # what geodata writes
    rows = [("r", "referring", "geochat", {"boxes": [[0, 0, 10, 10, 0], [50, 50, 60, 60, 0]]})]
    assert _eval(rows, {"r": joined}).tasks["referring"].metrics["acc@0.5"] == 1.0
    assert _eval(rows, {"r": joined.replace("}{", "} {")}).tasks["referring"].metrics["acc@0.5"] == 0.0


def test_box_without_theta_is_dropped_and_swapped_corners_score_iou_one() -> None:
    # TEOChat: `xmin, ymin, xmax, ymax, angle = bbox` needs five numbers; its polygon IoU of a
    # box written with swapped corners is the IoU of the same rectangle
    assert split_geochat_boxes("{<0><0><10><10>}") == []
    rows = [("r", "referring", "geochat", {"boxes": [[0, 0, 10, 10, 0]]})]
    assert _eval(rows, {"r": "{<0><0><10><10>}"}).tasks["referring"].metrics["acc@0.5"] == 0.0
    r = _eval(rows, {"r": "{<10><10><0><0>|<0>}"}).tasks["referring"]
    assert r.metrics["acc@0.5"] == 1.0 and r.metrics["mean_iou"] == pytest.approx(1.0)


# -- rotation sense: TEOChat convert_geochat_string (clockwise) vs EarthDial rect @ R (counter-clockwise)
def _ref_corners(b, clockwise: bool) -> list[tuple[float, float]]:
    x1, y1, x2, y2, a = b
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    t = math.radians(a)
    out = []
    for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
        tx, ty = x - cx, y - cy
        if clockwise:  # TEOChat: tx*cos - ty*sin, tx*sin + ty*cos
            out.append((tx * math.cos(t) - ty * math.sin(t) + cx, tx * math.sin(t) + ty * math.cos(t) + cy))
        else:  # EarthDial: [tx, ty] @ [[cos, -sin], [sin, cos]]
            out.append((tx * math.cos(t) + ty * math.sin(t) + cx, -tx * math.sin(t) + ty * math.cos(t) + cy))
    return out


def test_rotation_sense_follows_the_protocol() -> None:
    a, b = [40, 40, 70, 50, 30], [45, 48, 75, 58, 0]

    def ref_iou(cw: bool) -> float:
        pa, pb = shapely.Polygon(_ref_corners(a, cw)), shapely.Polygon(_ref_corners(b, cw))
        return pa.intersection(pb).area / pa.union(pb).area

    cw, ccw = rotated_iou_matrix([a], [b])[0, 0], rotated_iou_matrix([a], [b], sense="ccw")[0, 0]
    assert cw == pytest.approx(ref_iou(True)) and ccw == pytest.approx(ref_iou(False))
    assert abs(cw - ccw) > 0.05


# -- om-ai-lab/VLM-R1 src/open-r1-multimodal/src/open_r1/grpo_jsonl.py yes_no_reward ------------------
def test_nothing_has_changed_reads_as_no() -> None:
    rows = [("c", "change_presence", "levir_cd", {"changed": False})]
    assert _eval(rows, {"c": "<answer>Nothing has changed.</answer>"}).tasks["change_presence"].metrics["accuracy"] == 1.0


# -- salaniz/pycocoevalcap tokenizer/ptbtokenizer.py ---------------------------------------------------
@pytest.mark.skipif(shutil.which("java") is None, reason="the PTB tokenizer needs java")
def test_ptb_tokenizer_runs_with_java_and_the_report_says_so() -> None:
    from geodata.tasks.eo.caption import _ptb_tokenize, caption_metrics

    tok = _ptb_tokenize({0: ["A café near 3.5 well-known roads."]})[0][0]
    assert tok == "a café near 3.5 well-known roads"
    _, notes = caption_metrics(["a café"], [["a café"]], meteor=False)
    assert any(n.startswith("caption tokenizer: ptb") for n in notes)
    _, notes = caption_metrics(["a café"], [["a café"]], meteor=False, tokenizer="simple")
    assert any(n.startswith("caption tokenizer: simple") for n in notes)


# -- gastruc/osv5m metrics/distance_based.py: every truth row counts --------------------------------------
def test_truth_rows_at_zero_zero_stay_in_the_denominator(tmp_path) -> None:
    t = tmp_path / "t.csv"
    t.write_text("IMG_ID,LAT,LON\na,0,0\nb,48.8566,2.3522\n")
    p = tmp_path / "p.csv"
    p.write_text("id,pred_lat,pred_lon\na,0,0\nb,48.8566,2.3522\n")
    g = evaluate_files(p, t).tasks["geolocation"]
    assert g.n == 2 and g.metrics["acc@1km"] == 1.0 and g.n_truth_invalid == 0


# -- aialt/geo-r src/open-r1-multimodal/src/open_r1/vlm_modules/qwen_module.py --------------------------
def test_geo_r_released_curve_and_loc_answers() -> None:
    assert curve_score([3000.0], "released").tolist() == [0.2]   # released: 3000 km → 0.2
    assert curve_score([2500.0], "paper").tolist() == [pytest.approx(0.2)]  # paper (default): 2500 km
    assert curve_score([2500.0], "released").tolist() == [0.2667]  # round(0.5 - 1750/2250·0.3, 4)
    sol = ['{"lat": 48.8566, "lon": 2.3522}']
    loc = "<think>Paris.</think><answer>{'LOC': [48.8566, 2.3522]}</answer>"
    assert geolocation([loc], sol).tolist() == [1.0]
    assert geolocation([loc], sol, curve="released").tolist() == [1.0]
    p = parse_coords(["[Lat. 48.85, Long. 2.35]", "{'LOC': [48.8566, 2.3522]}"])
    assert p.lat.tolist() == [48.85, 48.8566]


# -- answer forms: EarthDial parse_bboxes, Qwen2-VL <|box_start|>, number words --------------------------
def test_bracket_qwen2_and_number_word_answers_are_read() -> None:
    assert parse_bracket_boxes("[[10, 20, 30, 40, 15]]") == [[10.0, 20.0, 30.0, 40.0, 15.0]]
    assert parse_qwen2_boxes("<|box_start|>(100,200),(300,400)<|box_end|>") == [[10.0, 20.0, 30.0, 40.0, 0.0]]
    assert eval_boxes("<|box_start|>(0,0),(100,100)<|box_end|>", {}) == [[0.0, 0.0, 10.0, 10.0, 0.0]]
    assert parse_numeric("twenty-three") == (23.0, 23.0) and parse_numeric("one hundred and five") == (105.0, 105.0)
    rows = [("v", "vqa", "rsvqa_hr", {"answer": "23", "qtype": "count", "numeric": True})]
    assert _eval(rows, {"v": "<answer>Twenty-three.</answer>"}).tasks["vqa"].metrics["overall_accuracy"] == 1.0


# -- om-ai-lab/VLM-R1 src/open-r1-multimodal/src/open_r1/grpo_jsonl.py extract_choice / mcq_reward -------
def test_mcq_letters_as_geo_r1_reads_them() -> None:
    assert geo_r1_choice("<answer>(B)</answer>") is None and geo_r1_choice("<answer>[B]</answer>") is None
    assert geo_r1_choice("I choose B.") == "B" and geo_r1_choice("The answer is B") == "B"
    assert geo_r1_choice("<answer>A</answer> <answer>B</answer>") == "A"  # the first answer block
    rows = [("x", "crossview_mcq", "cvusa", {"answer": "B"})]
    assert _eval(rows, {"x": "<answer>(B)</answer>"}).tasks["crossview_mcq"].metrics["accuracy"] == 0.0
    assert _eval(rows, {"x": "I choose B."}).tasks["crossview_mcq"].metrics["accuracy"] == 1.0


def test_geo_r1_repetition_is_six_grams_and_length_a_cosine() -> None:
    # repetition_reward: 1 - unique/total over word 6-grams, times -1; 0 below six words
    assert repetition_term("a b c d e") == 0.0
    text = "one two three four five six " * 3
    words = text.split()
    grams = list(zip(*(words[i:] for i in range(6))))
    assert repetition_term(text) == pytest.approx(-(1 - len(set(grams)) / len(grams)))
    # cosine_reward (correct branch, max_len 1024): 1.0 at 0, 0.5 at 1024
    assert cosine_length_term("") == 1.0 and cosine_length_term("w " * 1024) == pytest.approx(0.5)


# -- scene synonyms: GeoChat geochat/eval/batch_geochat_scene.py (exact) vs --protocol synonyms ----------
def test_scene_synonyms_count_only_under_the_synonyms_protocol() -> None:
    rows = [("s", "scene_cls", "ucm", {"label": "agricultural"})]
    assert _eval(rows, {"s": "<answer>farmland</answer>"}).tasks["scene_cls"].metrics["accuracy"] == 0.0
    r = _eval(rows, {"s": "<answer>farmland</answer>"}, protocol="synonyms")
    assert r.tasks["scene_cls"].metrics["accuracy"] == 1.0 and r.protocol == "synonyms"
    assert _eval(rows, {"s": "<answer>Agricultural.</answer>"}).tasks["scene_cls"].metrics["accuracy"] == 1.0


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(SourceError, match="unknown protocol 'teo'.*geochat"):
        _eval([("c", "change_presence", "x", {"changed": True})], {"c": "yes"}, protocol="teo")


# -- issue 19 item 6: truth files -------------------------------------------------------------------------
@pytest.mark.parametrize("content, line, what", [
    (b"IMG_ID,LAT,LON\na,1,2\nb\xe9,3,4\n", 3, "not UTF-8"),
    (b"", 1, "empty"),
    (b"IMG_ID,LAT,LON\na,1,2\nb,3\n", 3, "2 fields where the header has 3"),
    (b'IMG_ID,LAT,LON\na,1,2\nb,"3,4\nc,5,6\n', 3, "stray quote"),
])
def test_bad_truth_files_are_one_line_errors_naming_file_and_line(tmp_path, content, line, what) -> None:
    t = tmp_path / "truth.csv"
    t.write_bytes(content)
    with pytest.raises(SourceError) as e:
        load_truth(t)
    msg = str(e.value)
    assert "\n" not in msg and str(t) in msg and f"line {line}" in msg and what in msg, msg


def test_one_bad_row_never_flips_the_other_rows(tmp_path) -> None:
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(40, 60, 60), rng.uniform(-5, 20, 60)  # Europe only
    lat_txt = [f"{v:.5f}" for v in lat]
    lat_txt[7] = "95"      # one mistyped latitude
    lat_txt[8] = "nan"     # one NaN
    t = tmp_path / "europe.csv"
    t.write_text("IMG_ID,LAT,LON\n" + "".join(f"i{k},{a},{b:.5f}\n" for k, (a, b) in enumerate(zip(lat_txt, lon))))
    p = tmp_path / "p.csv"
    p.write_text("id,pred_lat,pred_lon\n" + "".join(f"i{k},{a:.5f},{b:.5f}\n" for k, (a, b) in enumerate(zip(lat, lon))))
    r = evaluate_files(p, t)
    g = r.tasks["geolocation"]
    assert r.n_truth_lat_lon_swapped == 0 and r.n_truth_invalid == 2 and g.n_truth_invalid == 2
    assert g.n == 60 and g.metrics["acc@25km"] == pytest.approx(58 / 60)
    assert g.metrics["median_km"] < 1.0
