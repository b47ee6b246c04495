"""EO converters: every sample converts in its real layout; bad input follows the documented rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geodata.context import StepContext
from geodata.errors import SourceError
from geodata.registry import SOURCES, _load_all
from geodata.sources.eo.common import (
    canonical_class,
    class_table,
    format_box,
    hbbs_to_boxes,
    parse_boxes,
    quads_to_boxes,
)
from geodata.sources.eo.scene import AID_CLASSES, EUROSAT_CLASSES, NWPU_CLASSES, UCM_CLASSES

_load_all()

EXPECTED = {  # reader -> (env, rows from its sample, family)
    "ucm": ("UCM_ROOT", 6, "scene"),
    "aid": ("AID_ROOT", 6, "scene"),
    "nwpu_resisc45": ("NWPU_RESISC45_ROOT", 6, "scene"),
    "eurosat_rgb": ("EUROSAT_ROOT", 6, "scene"),
    "dota": ("DOTA_ROOT", 11, "objects"),
    "dior": ("DIOR_ROOT", 7, "objects"),
    "rsvqa_lr": ("RSVQA_LR_ROOT", 6, "vqa"),
    "rsvqa_hr": ("RSVQA_HR_ROOT", 6, "vqa"),
    "rsicd": ("RSICD_ROOT", 2, "caption"),
    "ucm_captions": ("UCM_CAPTIONS_ROOT", 2, "caption"),
    "sydney_captions": ("SYDNEY_CAPTIONS_ROOT", 2, "caption"),
    "levir_cd": ("LEVIR_CD_ROOT", 3, "change"),
    "levir_cc": ("LEVIR_CC_ROOT", 2, "change"),
    "geochat_instruct": ("GEOCHAT_ROOT", 5, "geochat"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_converts(name: str, tmp_path: Path) -> None:
    env, n, family = EXPECTED[name]
    info = SOURCES[name]
    assert info.env == env and info.sample is not None
    info.sample(tmp_path)
    df = info.fn(StepContext(), root=tmp_path).rows
    assert df.height == n
    assert set(df["eo_family"]) == {family}
    for col in ("image", "image_a", "image_b"):
        if col in df.columns:
            assert all(Path(p).is_file() and Path(p).is_absolute() for p in df[col])
    # each source has a catalog entry naming its variable
    cat = Path(__file__).resolve().parent.parent / "catalogs" / f"{name}.yaml"
    assert cat.exists() and f"env: {env}" in cat.read_text()


def test_sample_layouts_are_real(tmp_path: Path) -> None:
    SOURCES["ucm"].sample(tmp_path / "ucm")
    assert (tmp_path / "ucm/Images/airplane/airplane00.tif").is_file()
    SOURCES["dota"].sample(tmp_path / "dota")
    assert (tmp_path / "dota/train/labelTxt/P0001.txt").read_text().startswith("imagesource:GoogleEarth\ngsd:")
    SOURCES["dior"].sample(tmp_path / "dior")
    assert (tmp_path / "dior/Annotations/Oriented Bounding Boxes/00001.xml").is_file()
    assert (tmp_path / "dior/ImageSets/Main/test.txt").read_text().split() == ["11726"]
    SOURCES["rsvqa_lr"].sample(tmp_path / "lr")
    qs = json.loads((tmp_path / "lr/LR_split_train_questions.json").read_text())["questions"]
    assert any(not q["active"] and "question" not in q for q in qs)
    SOURCES["levir_cc"].sample(tmp_path / "cc")
    assert (tmp_path / "cc/images/train/A/train_000001.png").is_file()


def test_class_mapping_is_injective_per_dataset() -> None:
    for classes in (UCM_CLASSES, AID_CLASSES, NWPU_CLASSES, EUROSAT_CLASSES):
        canon = [canonical_class(c, strict=True) for c in classes]
        assert len(set(canon)) == len(classes)
    dota = "plane ship storage-tank baseball-diamond tennis-court basketball-court ground-track-field harbor bridge large-vehicle small-vehicle helicopter roundabout soccer-ball-field swimming-pool container-crane".split()
    dior = "airplane airport baseballfield basketballcourt bridge chimney expressway-service-area expressway-toll-station dam golffield groundtrackfield harbor overpass ship stadium storagetank tenniscourt trainstation vehicle windmill".split()
    for classes in (dota, dior):
        assert len({canonical_class(c, strict=True) for c in classes}) == len(classes)
    # the same concept across datasets
    assert {canonical_class(c) for c in ("storagetanks", "StorageTanks", "storage_tank", "storage-tank", "storagetank")} == {"storage tank"}
    assert canonical_class("Port") == canonical_class("harbor") == "harbor"
    assert canonical_class("Expressway-Service-area") == "expressway service area"
    assert class_table()  # loads
    with pytest.raises(SourceError, match="unknown class name 'quarry'"):
        canonical_class("quarry", strict=True, where="x")


def test_box_conversion() -> None:
    # a horizontal pixel box on a non-square image
    assert hbbs_to_boxes([[40, 30, 120, 90]], 400, 300).tolist() == [[10.0, 10.0, 30.0, 30.0, 0.0]]
    # a quadrilateral that is an axis-aligned rectangle listed from another corner
    assert quads_to_boxes([[30, 20, 10, 20, 10, 10, 30, 10]], 100, 100).tolist() == [[10.0, 10.0, 30.0, 20.0, 0.0]]
    # rotated 30°: the centre, side lengths and angle come back
    t = np.radians(30)
    c, w, h = np.array([50.0, 50.0]), 20.0, 10.0
    pts = [c + np.array([dx * np.cos(t) - dy * np.sin(t), dx * np.sin(t) + dy * np.cos(t)])
           for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))]
    b = quads_to_boxes([np.concatenate(pts)], 100, 100)[0]
    assert b.tolist() == [40.0, 45.0, 60.0, 55.0, 30.0]
    assert parse_boxes(format_box(b)) == [b.tolist()]


def _dota(tmp_path: Path, text: str) -> Path:
    SOURCES["dota"].sample(tmp_path)
    (tmp_path / "train/labelTxt/P0001.txt").write_text(text)
    return tmp_path


def test_dota_nine_numbers_names_file_and_line(tmp_path: Path) -> None:
    root = _dota(tmp_path, "imagesource:GoogleEarth\ngsd:0.1\n1 1 9 1 9 5 1 5 plane 0\n1 2 3 4 5 6 7 8 9 ship 0\n")
    with pytest.raises(SourceError, match=r"P0001\.txt:4: expected 8 coordinates.*got 9 numbers"):
        SOURCES["dota"].fn(StepContext(), root=root).rows
    res = SOURCES["dota"].fn(StepContext(), root=root, on_error="skip")
    df = res.rows
    assert res.drops["dota: malformed line"] == 1
    assert "P0001.txt:3" in df["where"].to_list()


def test_dota_box_outside_image_is_a_counted_skip(tmp_path: Path) -> None:
    # P0001 is 200x150: the second object reaches x=260
    root = _dota(tmp_path, "10 10 50 10 50 40 10 40 plane 0\n150 10 260 10 260 40 150 40 plane 0\n199 149 201 149 201 151 199 151 ship 0\n")
    res = SOURCES["dota"].fn(StepContext(), root=root)
    df = res.rows
    assert res.drops["dota: box outside image"] == 1
    p1 = df.filter(df["image_id"] == "P0001")
    assert p1.height == 2  # the third is within the 2 px tolerance and clipped
    assert max(max(b) for b in p1["box"].to_list()) <= 100.0


def test_dior_xml_without_bndbox(tmp_path: Path) -> None:
    SOURCES["dior"].sample(tmp_path)
    p = tmp_path / "Annotations/Horizontal Bounding Boxes/00001.xml"
    text = p.read_text()
    start = text.index("<bndbox>")
    end = text.index("</bndbox>") + len("</bndbox>")
    p.write_text(text[:start] + text[end:])
    line = text[: text.index("<object>")].count("\n") + 1
    with pytest.raises(SourceError, match=rf"00001\.xml:{line}: object 'golffield' has no <bndbox>"):
        SOURCES["dior"].fn(StepContext(), root=tmp_path, boxes="horizontal").rows
    res = SOURCES["dior"].fn(StepContext(), root=tmp_path, boxes="horizontal", on_error="skip")
    df = res.rows
    assert res.drops["dior: malformed object"] == 1 and df.height == 6
    # the oriented folder is untouched
    assert SOURCES["dior"].fn(StepContext(), root=tmp_path).rows.height == 7


def test_empty_caption_list_is_a_counted_skip(tmp_path: Path) -> None:
    SOURCES["rsicd"].sample(tmp_path)
    res = SOURCES["rsicd"].fn(StepContext(), root=tmp_path)
    df = res.rows
    assert res.drops == {"rsicd: no captions": 1}
    assert df.height == 2
    # RSICD repeats sentences: captions are de-duplicated and cleaned
    assert df["captions"][0].to_list()[0] == "Many planes are parked next to a long building in an airport."
    assert len(df["captions"][0]) == 2


def test_rsvqa_stubs_are_not_drops(tmp_path: Path) -> None:
    # the {"id": k, "active": false} stubs of other splits' entries are not data
    SOURCES["rsvqa_lr"].sample(tmp_path)
    res = SOURCES["rsvqa_lr"].fn(StepContext(), root=tmp_path)
    df = res.rows
    assert set(df["qtype"]) == {"presence", "comparison", "rural_urban", "count"}
    assert res.drops == {}
    assert res.notes["rsvqa_lr.stubs"] == 15
    assert sorted(df["split"].unique()) == ["test", "train"]
    with pytest.raises(SourceError, match="LR_split_val_questions.json: file not found"):
        SOURCES["rsvqa_lr"].fn(StepContext(), root=tmp_path, splits=["val"]).rows


def test_levir_change_flags(tmp_path: Path) -> None:
    SOURCES["levir_cd"].sample(tmp_path / "cd")
    cd = SOURCES["levir_cd"].fn(StepContext(), root=tmp_path / "cd").rows
    assert cd["changed"].to_list() == [True, False, True]
    assert SOURCES["levir_cd"].fn(StepContext(), root=tmp_path / "cd", min_changed_frac=0.5).rows["changed"].sum() == 0
    SOURCES["levir_cc"].sample(tmp_path / "cc")
    cc = SOURCES["levir_cc"].fn(StepContext(), root=tmp_path / "cc").rows
    assert cc["changed"].to_list() == [True, False]


def test_geochat_tasks(tmp_path: Path) -> None:
    SOURCES["geochat_instruct"].sample(tmp_path)
    res = SOURCES["geochat_instruct"].fn(StepContext(), root=tmp_path)
    df = res.rows
    assert df["task"].to_list() == ["referring", "region_caption", "image_caption", "scene_cls", "vqa"]
    assert res.drops == {"geochat: missing image": 1}
    assert "<image>" not in "".join(df["question"])
