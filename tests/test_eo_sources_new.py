"""The fMoW, xBD, BigEarthNet, WHU-RS19, RSITMD, NWPU-Captions and NWPU VHR-10 readers read their
releases as shipped.

Every fixture below is written by this file's own code from the evidence cited in the source's
``catalogs/<name>.yaml`` (official devkits / loaders, torchgeo's classes), in the release's folder
structure — never by the sources' sample writers (those are exercised separately). Each source:
rows in its documented columns, a counted drop for a bad row, an error with a reason when nothing
is found, and ``geodata check <name> --root DIR``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from geodata.cli import app
from geodata.context import StepContext
from geodata.errors import SourceError
from geodata.registry import SOURCES, _load_all

_load_all()

NEW = ("fmow_rgb", "xbd", "bigearthnet_s2", "whu_rs19", "rsitmd", "nwpu_captions", "nwpu_vhr10")


def _img(path: Path, size=(24, 24), seed=0, fmt=None) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB").save(path, format=fmt)


def _read(name: str, root: Path, **params):
    return SOURCES[name].fn(StepContext(), root=root, **params)


# -- fMoW-RGB -----------------------------------------------------------------------------------
def _fmow(root: Path) -> Path:
    """fmow-rgb train/val as fMoW/baseline walks it: <split>/<cat>/<cat>_<site>/<cat>_<site>_<k>_rgb.{jpg,json}."""
    def put(split, cat, site, k, ts, *, bbs_as_dict=False, msrgb=True):
        stem = root / "fmow-rgb" / split / cat / f"{cat}_{site}" / f"{cat}_{site}_{k}"
        _img(stem.parent / (stem.name + "_rgb.jpg"), seed=k)
        bb = {"category": cat, "box": [3, 4, 10, 12], "ID": k}
        meta = {"bounding_boxes": bb if bbs_as_dict else [bb], "gsd": 0.6, "utm": "17R", "cloud_cover": 0,
                "img_width": 24, "img_height": 24, "scan_direction": "Forward"}
        if ts is not None:
            meta["timestamp"] = ts
        (stem.parent / (stem.name + "_rgb.json")).write_text(json.dumps(meta))
        if msrgb:  # the multispectral-to-RGB copy beside it is not read
            _img(stem.parent / (stem.name + "_msrgb.jpg"), seed=50 + k)
            (stem.parent / (stem.name + "_msrgb.json")).write_text(json.dumps(meta))

    put("train", "dam", 12, 0, "2016-02-03T10:00:00Z")
    put("train", "dam", 12, 1, "2012-07-01T09:00:00.123Z", bbs_as_dict=True)
    put("train", "dam", 12, 2, "2014-11-30T10:30:00Z")
    put("train", "zoo", 4, 0, None)  # no timestamp: a counted skip, and the site is then empty
    put("val", "runway", 1, 0, "2017-01-01T00:00:00Z")
    (root / "fmow-rgb" / "test" / "0000001").mkdir(parents=True)
    return root


def test_fmow_sequences_in_time_order(tmp_path: Path) -> None:
    res = _read("fmow_rgb", _fmow(tmp_path))
    df = res.rows.sort("key")
    assert df["key"].to_list() == ["train/dam/dam_12", "val/runway/runway_1"]
    dam = df.row(0, named=True)
    assert dam["timestamps"] == ["2012-07-01T09:00:00Z", "2014-11-30T10:30:00Z", "2016-02-03T10:00:00Z"]
    assert [Path(p).name for p in dam["images"]] == ["dam_12_1_rgb.jpg", "dam_12_2_rgb.jpg", "dam_12_0_rgb.jpg"]
    assert dam["n_images"] == 3 and dam["category"] == "dam" and dam["eo_family"] == "temporal"
    assert dam["boxes"][0] == [3.0, 4.0, 10.0, 12.0]
    assert df["split"].to_list() == ["train", "validation"]
    assert res.drops == {"fmow_rgb: bad metadata": 1, "fmow_rgb: site without images": 1}
    assert "test/ left out" in res.notes["fmow_rgb.test"]


def test_fmow_unknown_category_and_empty_root(tmp_path: Path) -> None:
    _img(tmp_path / "train" / "spaceport" / "spaceport_0" / "spaceport_0_0_rgb.jpg")
    with pytest.raises(SourceError, match="'spaceport' is not an fMoW category"):
        _read("fmow_rgb", tmp_path)
    (tmp_path / "e" / "train").mkdir(parents=True)
    with pytest.raises(SourceError, match="no fMoW site"):
        _read("fmow_rgb", tmp_path / "e", splits=["train"])


# -- xBD ------------------------------------------------------------------------------------------
def _xbd(root: Path) -> Path:
    """train / tier3 / test folders of images/, labels/, targets/ (torchgeo XView2, xView2_baseline)."""
    def label(stem, phase, feats):
        xy = []
        for uid, sub, wkt in feats:
            props = {"feature_type": "building", "uid": uid}
            if phase == "post":
                props["subtype"] = sub
            xy.append({"properties": props, "wkt": wkt})
        return {"features": {"lng_lat": [], "xy": xy},
                "metadata": {"sensor": "WORLDVIEW02", "disaster": stem.rsplit("_", 1)[0], "disaster_type": "flooding",
                             "img_name": f"{stem}_{phase}_disaster.png", "width": 24, "height": 24}}

    def pair(folder, stem, feats, *, post_image=True):
        for phase in ("pre", "post"):
            if phase == "post" and not post_image:
                continue
            _img(root / folder / "images" / f"{stem}_{phase}_disaster.png", seed=len(stem), fmt="PNG")
            _img(root / folder / "targets" / f"{stem}_{phase}_disaster_target.png", seed=1, fmt="PNG")
        for phase in ("pre", "post"):
            (root / folder / "labels").mkdir(parents=True, exist_ok=True)
            (root / folder / "labels" / f"{stem}_{phase}_disaster.json").write_text(json.dumps(label(stem, phase, feats)))

    pair("train", "midwest-flooding_00000001", [
        ("u1", "no-damage", "POLYGON ((1.5 1.5, 8 1.5, 8 9, 1.5 9, 1.5 1.5))"),
        ("u2", "major-damage", "POLYGON ((10 10, 20 10, 20 20, 10 10))"),
        ("u3", "un-classified", "POLYGON ((2 2, 4 2, 4 4, 2 2))"),
        ("u4", "destroyed", "POLYGON EMPTY")])
    pair("tier3", "joplin-tornado_00000003", [("v1", "minor-damage", "POLYGON ((0 0, 5 0, 5 5, 0 0))")])
    pair("test", "hurricane-harvey_00000072", [])
    pair("train", "guatemala-volcano_00000000", [("w", "destroyed", "POLYGON ((0 0, 1 0, 1 1, 0 0))")], post_image=False)
    return root


def test_xbd_pairs_polygons_damage(tmp_path: Path) -> None:
    _xbd(tmp_path)
    lab = tmp_path / "tier3" / "labels" / "joplin-tornado_00000003_post_disaster.json"
    meta = json.loads(lab.read_text())
    del meta["metadata"]["width"], meta["metadata"]["height"]  # then the image header tells the size
    lab.write_text(json.dumps(meta))
    res = _read("xbd", tmp_path)
    df = res.rows.sort("key")
    assert df["key"].to_list() == ["test/hurricane-harvey_00000072", "tier3/joplin-tornado_00000003",
                                   "train/midwest-flooding_00000001"]
    assert df["split"].to_list() == ["test", "train", "train"]
    row = df.row(2, named=True)
    assert row["damage"] == ["no-damage", "major-damage"] and row["building_uids"] == ["u1", "u2"]
    assert row["polygons"][0] == [1.5, 1.5, 8.0, 1.5, 8.0, 9.0, 1.5, 9.0]
    assert row["bboxes"] == [[1.5, 1.5, 8.0, 9.0], [10.0, 10.0, 20.0, 20.0]]
    assert [Path(p).name for p in row["images"]] == ["midwest-flooding_00000001_pre_disaster.png",
                                                      "midwest-flooding_00000001_post_disaster.png"]
    assert row["disaster"] == "midwest-flooding" and row["disaster_type"] == "flooding" and row["n_buildings"] == 2
    assert df.row(0, named=True)["damage"] == []  # a pair without buildings stays (the image is still a pair)
    assert (df["width"] == 24).all() and (df["height"] == 24).all()
    assert res.drops == {"xbd: un-classified building": 1, "xbd: bad polygon": 1, "xbd: incomplete pair": 1}


def test_xbd_nothing_found(tmp_path: Path) -> None:
    (tmp_path / "train" / "labels").mkdir(parents=True)
    with pytest.raises(SourceError, match="no xBD pair"):
        _read("xbd", tmp_path)
    with pytest.raises(SourceError, match="unknown split folder 'holdout'"):
        _read("xbd", tmp_path, splits=["holdout"])


# -- BigEarthNet-S2 ---------------------------------------------------------------------------------
def _band(path: Path, value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 6), value, np.uint16)).save(path, format="TIFF")


def _band_arr(path: Path, value: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(value.astype(np.uint16)).save(path, format="TIFF")


_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")


def _ben_v1(root: Path) -> Path:
    """BigEarthNet-v1.0/<patch>/ as torchgeo's BigEarthNet reads it, with the split csv files."""
    patches = {"S2A_MSIL2A_20170613T101031_61_39": ["Non-irrigated arable land", "Vineyards", "Olive groves", "Water courses"],
               "S2B_MSIL2A_20170924T93020_34_82": ["Port areas", "Sea and ocean"],
               "S2B_MSIL2A_20180204T94161_12_65": ["Burnt areas"],
               "S2A_MSIL2A_20170717T113321_13_20": ["Pastures"]}
    for pid, labels in patches.items():
        for b in _BANDS:
            _band(root / "BigEarthNet-v1.0" / pid / f"{pid}_{b}.tif", {"B04": 3000, "B03": 1500, "B02": 0}.get(b, 7))
        (root / "BigEarthNet-v1.0" / pid / f"{pid}_labels_metadata.json").write_text(json.dumps(
            {"labels": labels, "coordinates": {"ulx": 1, "uly": 2, "lrx": 3, "lry": 4}, "projection": "PROJCS[...]",
             "tile_source": "S2A_MSIL1C_...", "acquisition_date": "2017-06-13 10:10:31"}))
    ids = list(patches)
    (root / "bigearthnet-train.csv").write_text(f"{ids[0]},S1A_x_61_39\n{ids[2]},S1B_y\n")
    (root / "bigearthnet-val.csv").write_text(f"{ids[1]},S1A_z\n")
    (root / "bigearthnet-test.csv").write_text("")
    return root


def test_bigearthnet_v1_19_classes_and_rgb(tmp_path: Path) -> None:
    from PIL import Image

    res = _read("bigearthnet_s2", _ben_v1(tmp_path))
    df = res.rows.sort("key")
    assert df["key"].to_list() == ["S2A_MSIL2A_20170613T101031_61_39", "S2B_MSIL2A_20170924T93020_34_82"]
    assert df["labels"].to_list() == [["Arable land", "Permanent crops", "Inland waters"], ["Marine waters"]]
    assert df["split"].to_list() == ["train", "validation"]
    assert df["labels_43"][1].to_list() == ["Port areas", "Sea and ocean"]
    assert res.drops == {"bigearthnet_s2: no 19-class label": 1}  # Burnt areas only; the 4th patch is in no split file
    assert [Path(p).name.rsplit("_", 1)[1] for p in df["rgb_bands"][0]] == ["B04.tif", "B03.tif", "B02.tif"]
    with Image.open(df["image"][0]) as im:
        assert im.mode == "RGB" and im.size == (6, 6)
        assert im.getpixel((0, 0)) == (255, 128, 0)  # B04=3000 → 255, B03=1500 → 128 (rounded), B02=0 → 0


def test_bigearthnet_v2_parquet(tmp_path: Path) -> None:
    """BigEarthNet v2.0: metadata.parquet (torchgeo BigEarthNetV2) + BigEarthNet-S2/<tile>/<patch>/."""
    pids = ["S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57", "S2B_MSIL2A_20170614T102021_N9999_R122_T32TQT_45_38"]
    for pid in pids:
        tile = "_".join(pid.split("_")[:-2])
        for b in _BANDS:
            _band(tmp_path / "BigEarthNet-S2" / tile / pid / f"{pid}_{b}.tif", 900)
    pl.DataFrame({"patch_id": pids + ["S2A_MSIL2A_20180101T000000_N9999_R001_T31ABC_0_0"],
                  "labels": [["Coniferous forest", "Mixed forest"], ["Urban fabric"], ["Pastures"]],
                  "split": ["train", "test", "validation"], "country": ["Austria", "Portugal", "Finland"],
                  "s1_name": ["a", "b", "c"], "contains_seasonal_snow": [False] * 3,
                  "contains_cloud_or_shadow": [False] * 3}).write_parquet(tmp_path / "metadata.parquet")
    res = _read("bigearthnet_s2", tmp_path)
    assert res.rows.sort("key")["labels"].to_list() == [["Coniferous forest", "Mixed forest"], ["Urban fabric"]]
    assert res.rows.sort("key")["split"].to_list() == ["train", "test"]
    assert res.drops == {"bigearthnet_s2: missing band": 1}
    assert res.notes["bigearthnet_s2.image_layout"].startswith("v2")
    only = _read("bigearthnet_s2", tmp_path, splits=["test"])
    assert only.rows["split"].to_list() == ["test"]
    pl.DataFrame({"patch_id": ["x_1_2"], "labels": [["Farmland"]], "split": ["train"]}).write_parquet(tmp_path / "metadata.parquet")
    with pytest.raises(SourceError, match=r"unknown 19-class label\(s\) \['Farmland'\]"):
        _read("bigearthnet_s2", tmp_path)


def test_bigearthnet_composite_same_bytes_from_two_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same release in two folders (one a later copy: other paths and mtimes) gives the same composite
    name and bytes, and landcover_cls rows embed identical images; an edited band gets a fresh composite."""
    import os
    import shutil

    from geodata.context import StepOutput
    from geodata.dataset.writer import embed_images
    from geodata.steps.eo_series import build_landcover

    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache"))
    a = _ben_v1(tmp_path / "a" / "ben")
    rng = np.random.default_rng(3)  # varied pixels, so the PNG encoder's output is exercised
    for f in sorted(a.rglob("*_B0[234].tif")):
        _band_arr(f, rng.integers(0, 4000, (6, 6)))
    b = tmp_path / "elsewhere" / "b" / "ben"
    shutil.copytree(a, b, copy_function=shutil.copyfile)  # fresh mtimes
    ra, rb = (_read("bigearthnet_s2", r).rows.sort("key") for r in (a, b))
    assert ra["image"].to_list() != rb["image"].to_list()  # two cache entries (keyed by location) ...
    assert [Path(p).name for p in ra["image"]] == [Path(p).name for p in rb["image"]] == [
        f"{k}.png" for k in ra["key"]]  # ... named by the patch id alone
    assert [Path(p).read_bytes() for p in ra["image"]] == [Path(p).read_bytes() for p in rb["image"]]

    def embedded(df: pl.DataFrame) -> list:
        rows = build_landcover(df, {"landcover_cls"}, StepContext(), StepOutput(), {})
        items, why = embed_images([r["images"] for r in rows], check=True)
        assert why == [None] * len(rows) and len(rows) == 2
        return items

    assert embedded(ra) == embedded(rb)
    old = Path(rb["image"][0]).read_bytes()
    band = b / "BigEarthNet-v1.0" / rb["key"][0] / f"{rb['key'][0]}_B04.tif"
    _band_arr(band, np.zeros((6, 6)))
    os.utime(band, ns=(1, 1))
    again = _read("bigearthnet_s2", b).rows.sort("key")
    assert again["image"][0] != rb["image"][0] and Path(again["image"][0]).read_bytes() != old


def test_bigearthnet_nothing_found(tmp_path: Path) -> None:
    (tmp_path / "BigEarthNet-v1.0").mkdir()
    with pytest.raises(SourceError, match="no BigEarthNet patch"):
        _read("bigearthnet_s2", tmp_path)


# -- WHU-RS19 ---------------------------------------------------------------------------------------
WHU = ("Airport Beach Bridge Commercial Desert Farmland footballField Forest Industrial Meadow Mountain Park "
       "Parking Pond Port railwayStation Residential River Viaduct").split()


def test_whu_rs19_all_classes(tmp_path: Path) -> None:
    for i, c in enumerate(WHU):
        _img(tmp_path / "WHU-RS19" / c / f"{c.lower()}_01.jpg", seed=i, fmt="JPEG")
    (tmp_path / "WHU-RS19" / "Pond" / "pond_02.jpg").write_bytes(b"not a jpeg")
    res = _read("whu_rs19", tmp_path)
    assert res.rows.height == 19 and res.rows["label"].n_unique() == 19
    assert set(res.rows["label"]) >= {"football field", "railway station", "harbor", "parking lot"}
    assert res.drops == {"whu_rs19: unreadable image": 1}
    with pytest.raises(SourceError, match="not found here nor in a sub-folder"):
        _read("whu_rs19", tmp_path / "WHU-RS19" / "Pond")
    # a lower-cased copy (as some loaders keep it) reads the same
    _img(tmp_path / "lower" / "images" / "footballfield" / "footballfield_03.jpg", fmt="JPEG")
    assert _read("whu_rs19", tmp_path / "lower").rows["label"].to_list() == ["football field"]


# -- RSITMD -------------------------------------------------------------------------------------------
def test_rsitmd_captions_keywords(tmp_path: Path) -> None:
    root = tmp_path / "RSITMD"
    ents = [{"filename": "boat_0.tif", "imgid": 0, "split": "train", "sentids": [0, 1],
             "sentences": [{"tokens": ["a", "boat"], "raw": "a boat is in the port .", "imgid": 0, "sentid": 0},
                           {"tokens": ["a", "boat"], "raw": "A boat is in the port.", "imgid": 0, "sentid": 1}],
             "keywords": ["boat", "port"]},
            {"filename": "church_3.tif", "imgid": 1, "split": "test", "sentids": [],
             "sentences": [], "keywords": ["church"]}]
    (root / "images").mkdir(parents=True)
    for e in ents:
        _img(root / "images" / e["filename"], fmt="TIFF")
    (root / "dataset_RSITMD.json").write_text(json.dumps({"images": ents, "dataset": "rsitmd"}))
    res = _read("rsitmd", tmp_path)
    row = res.rows.row(0, named=True)
    assert row["captions"] == ["A boat is in the port."] and row["keywords"] == ["boat", "port"]
    assert res.drops == {"rsitmd: no captions": 1}
    (root / "dataset_RSITMD.json").write_text(json.dumps({"images": ents[1:]}))
    with pytest.raises(SourceError, match="no entry with captions"):
        _read("rsitmd", root)


# -- NWPU-Captions ------------------------------------------------------------------------------------
def test_nwpu_captions(tmp_path: Path) -> None:
    data = {"chaparral": [{"filename": "chaparral_001.jpg", "split": "val", "raw": "Green chaparral covers the hills .",
                           "raw_1": "Some shrubs on the slope .", "raw_2": "Green chaparral covers the hills .",
                           "raw_3": "The ground is covered with bushes .", "raw_4": "Many bushes grow here .",
                           "imgid": 0, "sentids": [0, 1, 2, 3, 4]},
                          {"filename": "chaparral_002.jpg", "split": "train", "raw": "Bushes .", "imgid": 1}],
            "thermal_power_station": [{"filename": "thermal_power_station_700.jpg", "split": "test",
                                       "raw": "Two chimneys stand by the plant .", "imgid": 2}]}
    _img(tmp_path / "NWPU_images" / "chaparral" / "chaparral_001.jpg", fmt="JPEG")
    _img(tmp_path / "NWPU_images" / "thermal_power_station" / "thermal_power_station_700.jpg", fmt="JPEG")
    (tmp_path / "dataset_nwpu.json").write_text(json.dumps(data))
    res = _read("nwpu_captions", tmp_path)
    df = res.rows.sort("key")
    assert df["captions"][0].to_list() == ["Green chaparral covers the hills.", "Some shrubs on the slope.",
                                           "The ground is covered with bushes.", "Many bushes grow here."]
    assert df["split"].to_list() == ["validation", "test"]
    assert df["label"].to_list() == ["chaparral", "thermal power station"]
    assert res.drops == {"nwpu_captions: missing image": 1}
    (tmp_path / "dataset_nwpu.json").write_text(json.dumps({"chaparral": [{"split": "train"}]}))
    with pytest.raises(SourceError, match=r"chaparral\[0\]: entry lacks 'filename'"):
        _read("nwpu_captions", tmp_path)


# -- NWPU VHR-10 --------------------------------------------------------------------------------------
def _vhr10(root: Path) -> Path:
    base = root / "NWPU VHR-10 dataset"
    _img(base / "positive image set" / "001.jpg", size=(100, 80), fmt="JPEG")
    _img(base / "positive image set" / "650.jpg", size=(100, 80), fmt="JPEG")
    _img(base / "negative image set" / "001.jpg", size=(100, 80), fmt="JPEG")
    (base / "ground truth").mkdir(parents=True)
    (base / "ground truth" / "001.txt").write_text("(10,20),(60,70),1\n(0,0),(50,40),4\n\n")
    (base / "ground truth" / "650.txt").write_text("(5,5),(25,30),10\r\n(5,5),(25,30),11\r\n")
    (base / "ground truth" / "651.txt").write_text("(5,5),(25,30),2\n")  # its image is missing
    return root


def test_nwpu_vhr10_ground_truth(tmp_path: Path) -> None:
    res = _read("nwpu_vhr10", _vhr10(tmp_path))
    df = res.rows
    assert df["category"].to_list() == ["airplane", "baseball field", "vehicle"]
    assert df["raw_category"].to_list() == ["airplane", "baseball diamond", "vehicle"]
    assert df["where"].to_list() == ["001.txt:1", "001.txt:2", "650.txt:1"]
    assert (df["width"] == 100).all() and (df["height"] == 80).all()
    assert df["box"][0].to_list() == pytest.approx([10.0, 25.0, 60.0, 88.0, 0.0], abs=1)
    assert res.drops == {"nwpu_vhr10: malformed line": 1, "nwpu_vhr10: missing image": 1}
    # the 'NWPU VHR-10 dataset' folder itself works as the root too
    assert _read("nwpu_vhr10", tmp_path / "NWPU VHR-10 dataset").rows.height == 3


def test_nwpu_vhr10_nothing_found(tmp_path: Path) -> None:
    (tmp_path / "NWPU VHR-10 dataset" / "ground truth").mkdir(parents=True)
    with pytest.raises(SourceError, match="no ground-truth .txt file"):
        _read("nwpu_vhr10", tmp_path)


# -- samples, catalogs and the check command ----------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_sample_reads_and_catalog_names_env(name: str, tmp_path: Path) -> None:
    info = SOURCES[name]
    info.sample(tmp_path)
    res = info.fn(StepContext(), root=tmp_path)
    assert res.rows.height > 0 and "split" in res.rows.columns
    assert sum(res.drops.values()) >= 1  # every sample plants one bad row
    assert any(k.endswith("image_layout") for k in res.notes)
    cat = Path(__file__).resolve().parent.parent / "catalogs" / f"{name}.yaml"
    text = cat.read_text()
    assert f"env: {info.env}" in text and "evidence:" in text and "unverified:" in text


def test_check_command(tmp_path: Path) -> None:
    roots = {"fmow_rgb": _fmow(tmp_path / "f"), "xbd": _xbd(tmp_path / "x"), "bigearthnet_s2": _ben_v1(tmp_path / "b"),
             "nwpu_vhr10": _vhr10(tmp_path / "v")}
    for name, root in roots.items():
        out = CliRunner().invoke(app, ["check", name, "--root", str(root), "--json"])
        assert out.exit_code == 0, out.output
        rep = json.loads(out.output)
        assert rep["rows_after_drops"] > 0 and rep["drops"], rep
    out = CliRunner().invoke(app, ["check", "fmow_rgb", "--root", str(tmp_path / "v")])
    assert out.exit_code != 0 and "fMoW's train/ or val/ folder not found" in out.output
    out = CliRunner().invoke(app, ["check", "fmow_rgb", "--root", str(tmp_path / "x")])  # xBD's train/ is no fMoW
    assert out.exit_code != 0 and "'images' is not an fMoW category" in out.output


def test_existing_families_build_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """WHU-RS19 (scene), RSITMD and NWPU-Captions (caption), NWPU VHR-10 (objects) build into a dataset
    through eo_tasks from their release-layout fixtures; official test rows stay test rows."""
    import yaml

    from geodata.engine import build

    for i, c in enumerate(WHU[:3]):
        _img(tmp_path / "whu" / c / f"{c.lower()}_01.jpg", seed=i, fmt="JPEG")
    (tmp_path / "nwpu" / "NWPU_images" / "harbor").mkdir(parents=True)
    _img(tmp_path / "nwpu" / "NWPU_images" / "harbor" / "harbor_001.jpg", seed=9, fmt="JPEG")
    (tmp_path / "nwpu" / "dataset_nwpu.json").write_text(json.dumps({"harbor": [
        {"filename": "harbor_001.jpg", "split": "test", "raw": "Many boats are moored in the harbor .", "imgid": 0}]}))
    _img(tmp_path / "rsitmd" / "images" / "port_1.tif", seed=11, fmt="TIFF")
    (tmp_path / "rsitmd" / "dataset_RSITMD.json").write_text(json.dumps({"images": [
        {"filename": "port_1.tif", "imgid": 0, "split": "train", "sentids": [0], "keywords": ["port"],
         "sentences": [{"raw": "A port with cranes .", "tokens": ["a", "port"], "imgid": 0, "sentid": 0}]}]}))
    _vhr10(tmp_path / "vhr")
    monkeypatch.setenv("GEODATA_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "new-eo.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "new-eo", "seed": 5,
        "sources": {"whu": {"reader": "whu_rs19", "root": str(tmp_path / "whu")},
                    "nwpu": {"reader": "nwpu_captions", "root": str(tmp_path / "nwpu")},
                    "rsitmd": {"reader": "rsitmd", "root": str(tmp_path / "rsitmd")},
                    "vhr": {"reader": "nwpu_vhr10", "root": str(tmp_path / "vhr")}},
        "steps": [{"step": "eo_tasks", "inputs": {"whu": "whu", "nwpu": "nwpu", "rsitmd": "rsitmd", "vhr": "vhr"},
                   "sources": {"whu": ["scene_cls"], "nwpu": ["image_caption"], "rsitmd": ["image_caption"],
                               "vhr": ["detection", "multilabel_cls"]}}],
        "output": {"config_by": "task", "split_by": "split"}}))
    res = build(str(spec), out=tmp_path / "out", force=True)
    assert res.configs["scene_cls"].keys() == {"train"} and res.configs["image_caption"].keys() == {"train", "test"}
    assert {"detection", "multilabel_cls"} <= set(res.configs)
    cap = pl.read_parquet(next((tmp_path / "out" / "image_caption").glob("test-*.parquet")))
    assert cap["source"].to_list() == ["nwpu_captions"] and cap["images"][0][0]["bytes"]
